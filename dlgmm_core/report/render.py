"""The report's markdown: ``templates/report.md`` with its slots filled from the inputs, the analysis and the
tables (the sentences are blocks of ``templates/phrases.md``), and :func:`write_report`, which writes it with
the flat metrics and the training curves."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from .. import layout
from ..params.stage import DATASETS, Params
from ..io import atomic_dir, write_json, write_text
from ..verdicts import CONFIDENCE
from .analysis import Judged, flat_metrics, frequent_digits, judge_claims, share
from .claims_section import claim_verdict, claims_section, division_slots
from .figures import AUTHORS_LOGS_FIGURE, drawn_models, plot_authors_logs, plot_training_curves
from .inputs import Inputs, ProtocolInputs, RunHistory, read_inputs
from .paper import (DATASET_NAMES, ENCODERS, GAUSSIAN, MIXTURE, MODELS, PAPER_THIN_DIGIT, PAPER_WIDE_DIGIT,
                    PROTOCOL_PURPOSES, differs_from_paper, name, registered_models, table_rows, trained_only)
from .sections import where_section
from .tables import (MISSING, NOT_RUN, estimator_table, knn_table, markdown_table, nll_table, seed_list,
                     training_table)
from .templates import fill, paragraphs, phrase

#: Digits listed per component in the table of Figure 2a/2b, at most.
FREQUENT_DIGITS = 4


def _distinct(values: list) -> str:
    """The distinct ``values`` in first-seen order, joined by ``/``."""
    return "/".join(str(v) for v in dict.fromkeys(values))


def _per_model(values: dict[str, str]) -> str:
    """``values`` (model key -> text) as one text where all agree, else ``text (names); …`` per distinct text."""
    texts = list(dict.fromkeys(values.values()))
    if len(texts) == 1:
        return texts[0]
    return "; ".join(f"{text} ({', '.join(name(k) for k, t in values.items() if t == text)})" for text in texts)


def _protocol_settings(params: Params, protocol: str) -> str:
    """What ``protocol``'s settings in params.yaml are (encoder, KL of the sticks, early stopping), with the quick
    budget's overrides of the epochs when ``budget`` is ``quick``."""
    settings = (params.tree.get("protocol") or {}).get(protocol) or {}
    models = settings.get("model") or {}
    train = dict(settings.get("train") or {})
    if params.budget == "quick":
        train.update({key.split(".", 1)[1]: value for key, value in (params.tree.get("quick") or {}).items()
                      if key in ("train.patience", "train.max_epochs")})
    parts = []
    encoders = {k: m["encoder_activation"] for k, m in models.items() if "encoder_activation" in m}
    if encoders:
        parts.append(_per_model({k: ENCODERS.get(a) or phrase("settings.encoder", activation=a)
                                 for k, a in encoders.items()}))
    kl = {k: phrase("settings.quadrature") if m["kl"] == "quadrature" else
          phrase("settings.taylor", terms=m["taylor_terms"]) for k, m in models.items() if "kl" in m}
    if kl:
        parts.append(_per_model(kl))
    if "patience" in train:
        parts.append(phrase("settings.patience", patience=train["patience"])
                     + (phrase("settings.max_epochs", max_epochs=train["max_epochs"]) if "max_epochs" in train else ""))
    return ", ".join(parts) or phrase("settings.none", protocol=protocol)


def _protocol_line(protocol: str, run: ProtocolInputs, headline: bool, params: Params) -> str:
    """The header line that says what ``protocol`` is, its settings, and how its -log p(x) was estimated."""
    purpose, settings = PROTOCOL_PURPOSES.get(protocol), _protocol_settings(params, protocol)
    described = settings if not purpose else phrase("protocol.purpose", purpose=purpose, settings=settings)
    results = [data for dataset in DATASETS for data in run.nll[dataset].values()]
    if not results:
        estimators = phrase("protocol.not_run")
    else:
        examples = ", ".join(f"{DATASET_NAMES[d]} {_distinct([x.examples for x in run.nll[d].values()])}"
                             for d in DATASETS if run.nll[d])
        estimators = phrase("protocol.estimators", examples=examples,
                            estimator=_distinct([phrase(f"estimator.{d.headline}") for d in results]),
                            draws=_distinct([d.authors["samples"] for d in results]),
                            samples=_distinct([d.ours["samples"] for d in results]))
    return phrase("protocol.line", protocol=protocol, headline=phrase("headline") if headline else "",
                  described=described, estimators=estimators)


def _protocol_setting(params: Params, protocol: str, model: str, key: str) -> object:
    """``protocol.<protocol>.model.<model>.<key>`` of params.yaml where the protocol sets it, else
    ``model.<model>.<key>``."""
    section = params.tree.get("protocol", {}).get(protocol, {}).get("model", {}).get(model, {})
    return section[key] if key in section else params.tree["model"][model].get(key, MISSING)


def _kl_methods(run: ProtocolInputs, params: Params, protocol: str) -> str:
    """``<model>: `<method>``` for every model with a KL method: from its results, or from params.yaml for a model
    that is only trained; ``not run`` for one whose results are missing."""
    has_kl = [model for model in table_rows("nll") if "kl" in params.tree["model"].get(model, {})]
    parts = []
    for model in has_kl:
        methods = {dataset: run.nll[dataset][model].kl_method for dataset in DATASETS if model in run.nll[dataset]}
        distinct = sorted({str(m) for m in methods.values()})
        if not distinct:
            parts.append(f"{name(model)}: {NOT_RUN}")
        elif len(distinct) == 1:
            parts.append(f"{name(model)}: `{distinct[0]}`")
        else:
            parts.append(f"{name(model)}: " + ", ".join(f"`{m}` ({d})" for d, m in methods.items()))
    parts += [f"{name(model)}: `{_protocol_setting(params, protocol, model, 'kl')}`" for model in trained_only()
              if "kl" in params.tree["model"].get(model, {})]
    return phrase("kl.line", protocol=protocol, methods="; ".join(parts))


def _header(inputs: Inputs, params: Params) -> dict[str, str]:
    """The slots of the report's header."""
    if params.budget == "quick":
        overrides = ", ".join(f"`{key}: {json.dumps(value)}`" for key, value in (params.tree.get("quick") or {}).items())
        budget_note = phrase("budget.quick", overrides=overrides)
    else:
        budget_note = phrase("budget.paper")
    knn = inputs.protocols[inputs.headline].knn["mnist"][MIXTURE]
    return {"budget_note": budget_note, "budget": params.budget,
            "protocols": ", ".join(f"`{p}`" + (phrase("headline") if p == inputs.headline else "")
                                   for p in inputs.protocols),
            "protocol_lines": "\n".join(_protocol_line(p, run, p == inputs.headline, params)
                                        for p, run in inputs.protocols.items()),
            "k": params.k, "kl_lines": "\n".join(_kl_methods(run, params, p) for p, run in inputs.protocols.items()),
            "headline": inputs.headline,
            "knn_train": MISSING if knn.train_examples is None else knn.train_examples,
            "knn_test": MISSING if knn.test_examples is None else knn.test_examples,
            "incomplete": paragraphs(*(phrase("incomplete", protocol=p, stages=" ".join(run.not_run))
                                       for p, run in inputs.protocols.items() if run.not_run))}


def _paper_figure(model: str) -> str:
    """`` (Figure 2c)``: the paper's figure of ``model``'s t-SNE map, empty for a model the paper has none of."""
    figure = MODELS[model].figure if model in MODELS else ""
    return f" ({figure})" if figure else ""


def _tsne(inputs: Inputs) -> str:
    """Figure 2c/2d: each protocol's map of the first seed, per model, and the link to every seed's maps."""
    parts = [phrase("tsne.seeds", seed=inputs.seeds[0])]
    for model in registered_models():
        parts.append(phrase("tsne.heading", model=name(model), figure=_paper_figure(model)))
        for protocol, run in inputs.protocols.items():
            path = run.tsne.get(model)
            parts.append(f"`{protocol}`: {NOT_RUN}" if path is None else
                         phrase("tsne.figure", protocol=protocol, model=name(model), path=path.as_posix()))
    return paragraphs(*parts)


def _tsne_every_seed(inputs: Inputs) -> str:
    """The appendix: the t-SNE map of every seed that has one, per protocol and model, and one line naming the
    seeds whose map is not made yet."""
    parts = []
    for protocol, runs in inputs.runs.items():
        parts.append(phrase("appendix.protocol", protocol=protocol))
        for model in registered_models():
            made = {seed: run.tsne[model] for seed, run in runs.items() if model in run.tsne}
            lines = [phrase("appendix.map", seed=seed, protocol=protocol, model=name(model), path=path.as_posix())
                     for seed, path in made.items()]
            missing = [seed for seed in runs if seed not in made]
            if missing:
                lines.append(phrase("appendix.not_run", seeds=seed_list(missing)))
            parts.append(phrase("appendix.model", model=name(model), figure=_paper_figure(model),
                                maps="\n".join(lines)))
    return paragraphs(*parts)


def _qualitative_every_seed(inputs: Inputs, judged: dict[str, dict[str, Judged]], components: int) -> str:
    """The appendix: the two extreme components' samples of every seed whose qualitative model has them, per
    protocol, each with the seed's width gap and orientation from the division claim; one line names the seeds
    whose ``samples_qualitative`` stage has not run yet."""
    parts = []
    for protocol, runs in inputs.runs.items():
        divisions = {row.seed: row for row in judged["division"][protocol].divisions}
        lines, missing = [], []
        for seed, run in runs.items():
            first, last = run.qualitative[0], run.qualitative[-1]
            if first is None or last is None:
                missing.append(seed)
                continue
            row = divisions.get(seed)
            gap = "" if row is None else phrase("appendix.components.gap", confidence=f"{100 * CONFIDENCE:g}",
                                                **division_slots(row, components))
            lines.append(phrase("appendix.components", seed=seed, gap=gap, protocol=protocol,
                                first=first.as_posix(), last_component=components, last=last.as_posix()))
        if missing:
            lines.append(phrase("appendix.not_run", seeds=seed_list(missing)))
        parts += [phrase("appendix.protocol", protocol=protocol), "\n".join(lines)]
    return paragraphs(*parts)


def _clusters(inputs: Inputs, judged: dict[str, dict[str, Judged]]) -> str:
    """Figure 2c/2d in numbers: each map's leave-one-out kNN class error, and where the paper's reading is judged."""
    measured = {protocol: run.clusters for protocol, run in inputs.protocols.items() if run.clusters}
    if not measured:
        return ""
    rows = [[f"`{protocol}`", name(model), f"{entry.points}", f"{int(entry.clusters['neighbors'])}",
             f"{entry.clusters['map_error']:.2f}", f"{entry.clusters['latent_error']:.2f}"]
            for protocol, clusters in measured.items() for model in registered_models()
            if (entry := clusters.get(model))]
    parts = [phrase("clusters", table=markdown_table(["protocol", "model", "points", "k", "error in the map (%)",
                                                       "error in the latent space (%)"], rows))]
    total = len(inputs.seeds)
    for protocol, clusters in measured.items():
        if GAUSSIAN in clusters and MIXTURE in clusters:
            gauss, dlgmm = clusters[GAUSSIAN].clusters, clusters[MIXTURE].clusters
            parts.append(phrase("clusters.numbers", protocol=protocol,
                                map_verdict=claim_verdict(judged["clusters_map"][protocol], total),
                                latent_verdict=claim_verdict(judged["clusters_latent"][protocol], total),
                                **{f"{m}_{key}": f"{data[f'{key}_error']:.2f}" for m, data in
                                   (("dlgmm", dlgmm), ("gauss", gauss)) for key in ("map", "latent")}))
    return paragraphs(*parts)


def _qualitative(inputs: Inputs, components: int) -> tuple[str, str]:
    """The links to every component grid, and the two extremes shown, per protocol."""
    links, shown = [], []
    for protocol, run in inputs.protocols.items():
        items = []
        for index, path in enumerate(run.qualitative, start=1):
            figure = " (Figure 2a)" if index == 1 else " (Figure 2b)" if index == components else ""
            items.append(phrase("qualitative.not_run", component=index, figure=figure) if path is None else
                         phrase("qualitative.link", component=index, figure=figure, path=path.as_posix()))
        links.append(phrase("qualitative.links", protocol=protocol, links=", ".join(items)))
        first, last = run.qualitative[0], run.qualitative[-1]
        if first is not None and last is not None:
            shown.append(phrase("qualitative.figures", protocol=protocol, first=first.as_posix(),
                                last_component=components, last=last.as_posix()))
    return "\n".join(links), paragraphs(*shown)


def _widths_sentence(protocol: str, components: list[dict], judged: Judged, seed: int, total: int) -> str:
    """The widths of the extreme components of ``seed``'s run, its gap with the interval and orientation of the
    division claim (:func:`dlgmm_core.claims.judge_division`), and the claim's verdict over every seed."""
    first, last = components[0], components[-1]
    row = next(r for r in judged.divisions if r.seed == seed)
    return phrase("shapes.widths", protocol=protocol, last=int(last["component"]), first_width=f"{first['width']:.1f}",
                  last_width=f"{last['width']:.1f}", confidence=f"{100 * CONFIDENCE:g}",
                  **division_slots(row, int(last["component"])), first_ink=f"{first['ink']:.0f}",
                  last_ink=f"{last['ink']:.0f}", verdict=claim_verdict(judged, total))


def _examples_sentence(protocol: str, components: list[dict]) -> str:
    """The shares of the paper's example digits (sevens, zeros) among the extreme components' images."""
    first, last = components[0], components[-1]
    shares = [(share(entry, PAPER_THIN_DIGIT), share(entry, PAPER_WIDE_DIGIT)) for entry in (first, last)]
    return phrase("shapes.examples", protocol=protocol, last=int(last["component"]),
                  sevens_first=f"{shares[0][0]:.0f}", sevens_last=f"{shares[1][0]:.0f}",
                  zeros_first=f"{shares[0][1]:.0f}", zeros_last=f"{shares[1][1]:.0f}")


def _shapes(inputs: Inputs, judged: dict[str, dict[str, Judged]]) -> str:
    """Figure 2a/2b in numbers: the width, ink and digits of each prior component's samples, and where the paper's
    reading (thin digits from the most negative prior mean, wide ones from the most positive) is judged."""
    measured = {protocol: run.shapes for protocol, run in inputs.protocols.items() if run.shapes is not None}
    if not measured:
        return ""
    levels = " / ".join(sorted({f"{shapes.ink_level:g}" for shapes in measured.values()}))
    parts = [phrase("shapes.measured", levels=levels)]
    classifiers = {p: s.classifier for p, s in measured.items() if s.classifier is not None}
    if classifiers:
        parts.append(phrase("shapes.digits", classifiers="; ".join(
            phrase("shapes.classifier", protocol=p, neighbors=int(c["neighbors"]), train_images=int(c["train_images"]),
                   test_error=f"{c['test_error']:.2f}", test_images=int(c["test_images"]))
            for p, c in classifiers.items())))
    rows = [[f"`{protocol}`", str(int(entry["component"])), f"{entry['prior_mean']:+.2f}",
             f"{entry['width']:.1f} ± {entry['width_se']:.1f}", f"{entry['ink']:.0f}", str(int(entry["images"]))]
            + ([", ".join(f"{d}: {s:.0f}" for d, s in frequent_digits(entry, FREQUENT_DIGITS))
                if "classes" in entry else MISSING] if classifiers else [])
            for protocol, shapes in measured.items() for entry in shapes.components]
    parts.append(markdown_table(["protocol", "component", "prior mean", "width (px)", "ink (px)", "images"]
                                + (["digits (%)"] if classifiers else []), rows))
    seed = inputs.seeds[0]
    for protocol, shapes in measured.items():
        parts.append(_widths_sentence(protocol, shapes.components, judged["division"][protocol], seed,
                                      len(inputs.seeds)))
        if shapes.classifier is not None:
            parts.append(_examples_sentence(protocol, shapes.components))
    return paragraphs(*parts, "" if classifiers else phrase("shapes.width_only"))


def _samples(inputs: Inputs) -> str:
    lines = []
    for dataset in DATASETS:
        for model in registered_models():
            links = []
            for protocol, run in inputs.protocols.items():
                path = run.samples.get((dataset, model))
                links.append(phrase("samples.not_run", protocol=protocol) if path is None
                             else phrase("samples.link", protocol=protocol, path=path.as_posix()))
            lines.append(phrase("samples.line", dataset=DATASET_NAMES[dataset], model=name(model),
                                links=", ".join(links)))
    return "\n".join(lines)


def render_readme(inputs: Inputs, params: Params, training_figures: dict[str, dict[str, Path]],
                  authors_figure: Path | None = None, judged: dict[str, dict[str, Judged]] | None = None) -> str:
    """The report's markdown; ``training_figures``: per protocol and dataset, the training curves written,
    ``authors_figure``: the validation curves beside the authors' logs (both relative to reports/); ``judged``:
    the claims (:func:`~dlgmm_core.report.analysis.judge_claims`, judged here if not given)."""
    judged = judge_claims(inputs) if judged is None else judged
    qualitative: Mapping[str, Any] = params.tree["model"]["qualitative"]
    components = int(qualitative["components"])
    links, shown = _qualitative(inputs, components)
    text = fill("report.md", **_header(inputs, params), knn_mnist=knn_table(inputs, "mnist"),
                nll_table=nll_table(inputs, params.tree),
                architecture_note=phrase("architecture_note")
                if any(differs_from_paper(params.tree, m) for m in table_rows("nll")) else "",
                knn_omniglot=knn_table(inputs, "omniglot", with_paper=False),
                estimators=paragraphs(*(phrase("estimators", protocol=p, table=estimator_table(run))
                                        for p, run in inputs.protocols.items())),
                where=where_section(inputs, params.tree, authors_figure),
                training=_training(inputs, training_figures), tsne=_tsne(inputs),
                clusters=_clusters(inputs, judged), components=components,
                claims=claims_section(inputs, judged, components), prior_means=qualitative["prior_means"],
                qualitative_links=links, qualitative_figures=shown, shapes=_shapes(inputs, judged),
                samples=_samples(inputs), seeds=seed_list(inputs.seeds), first_seed=inputs.seeds[0],
                tsne_every_seed=_tsne_every_seed(inputs),
                qualitative_every_seed=_qualitative_every_seed(inputs, judged, components))
    return re.sub(r"\n{3,}", "\n\n", text)  # an empty slot leaves no empty paragraph


def _training_caption(logs: dict[int, dict[str, RunHistory]], seeds: list[int], models: tuple[str, ...]) -> str:
    """Which seeds a training figure draws (``logs``: :meth:`Inputs.training_logs`), the models of each seed that
    lacks some (a sentence of its own, so that it cannot be read as said of every seed), and the seeds of ``seeds``
    not drawn."""
    drawn = drawn_models(logs, models)
    partial = "".join(phrase("training.caption.models", seed=seed,
                             models=", ".join(name(model) for model in drawn if model in logs[seed]))
                      for seed in logs if any(model not in logs[seed] for model in drawn))
    headline, *others = logs
    missing = [seed for seed in seeds if seed not in logs]
    return phrase("training.caption", headline=headline,
                  others=phrase("training.caption.others", seeds=", ".join(map(str, others))) if others else "",
                  partial=partial,
                  not_run=phrase("training.caption.not_run", seeds=seed_list(missing)) if missing else "")


def _training(inputs: Inputs, training_figures: dict[str, dict[str, Path]]) -> str:
    """Each protocol's training table and curves, each figure with the seeds it draws."""
    parts = []
    for protocol, run in inputs.protocols.items():
        parts.append(phrase("training", protocol=protocol, table=training_table(run)))
        for dataset, path in training_figures[protocol].items():
            caption = _training_caption(inputs.training_logs(protocol, dataset), inputs.seeds,
                                        registered_models(dataset))
            parts.append(phrase("training.figure", protocol=protocol, name=dataset, path=path.as_posix(),
                                caption=caption))
    return paragraphs(*parts)


def _training_figures(inputs: Inputs, params: Params, root: Path) -> tuple[dict[str, dict[str, Path]], Path | None]:
    """Write every protocol's training curves, every seed's that has finished, per dataset, and the plot beside
    the authors' logs (the folder replaced as a whole); their paths relative to reports/."""
    reports, training_dir = layout.reports_dir(root), layout.training_figures_dir(root)
    figures: dict[str, dict[str, Path]] = {}
    with atomic_dir(training_dir) as tmp:
        for protocol in inputs.runs:
            figures[protocol] = {}
            for dataset in DATASETS:
                logs = inputs.training_logs(protocol, dataset)
                if not logs:
                    continue
                headline, *others = logs
                path = layout.training_figure(protocol, dataset, root)
                title = phrase("training.title", dataset=DATASET_NAMES[dataset], protocol=protocol,
                               budget=params.budget, count=len(logs), total=len(inputs.seeds))
                plot_training_curves(logs, registered_models(dataset), title,
                                     phrase("training.legend.headline", seed=headline),
                                     phrase("training.legend.others", seeds=seed_list(others)) if others else None,
                                     tmp / path.relative_to(training_dir))
                figures[protocol][dataset] = path.relative_to(reports)
        plotted = plot_authors_logs(inputs, tmp / AUTHORS_LOGS_FIGURE) is not None
    return figures, (training_dir / AUTHORS_LOGS_FIGURE).relative_to(reports) if plotted else None


def write_report(root: str | os.PathLike, params: Params) -> list[Path]:
    """Read the inputs under ``root`` and write reports/README.md, reports/metrics.json and the training curves.

    Returns the written paths. Nothing is written when a headline input is missing.
    """
    root = Path(root)
    inputs = read_inputs(root, params)
    judged = judge_claims(inputs)
    metrics = flat_metrics(inputs, judged)
    figures, authors_figure = _training_figures(inputs, params, root)
    readme = render_readme(inputs, params, figures, authors_figure, judged)
    write_json(layout.report_metrics(root), metrics)
    write_text(layout.report_readme(root), readme)
    return [layout.report_readme(root), layout.report_metrics(root), layout.training_figures_dir(root)]
