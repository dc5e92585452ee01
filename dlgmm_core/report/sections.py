"""The section "Where the published numbers come from": the protocols' differences and their measured effects,
every MNIST cell against the paper, our training beside the authors' logs, and Figure 3a's unknown protocol."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import authors_logs
from .analysis import (LATE_EPOCHS, estimator_effects, isolated_effects, knn_neighbors, late_gain, logged_runs,
                       nearest_variant, protocol_effects, common_bound, setting_order, valid_at)
from .inputs import Inputs
from .paper import (AUTHORS, CORRECTED, DATASET_NAMES, DIFFERENCES, GAUSSIAN, MIXTURE, STICK_BREAKING, TOLERANCE, name,
                    paper_value, table_rows)
from .tables import (MISSING, NOT_RUN, combined_effect_table, embedding_label, estimator_effect_table, fixed,
                     format_cell, markdown_table, not_reproduced_table, sensitivity_table, signed)
from .templates import paragraphs, phrase

#: Epochs at which the validation ELBO of our run and of the authors' log are compared.
LOG_EPOCHS = (10, 50, 100, 200)
#: The settings whose training effect alone is looked for among the models (one model per set may isolate it).
ISOLATED = ({"encoder"}, {"KL(Kumaraswamy ‖ Beta)"}, {"early stopping"}, {"encoder", "early stopping"})


def effect_range(values: list[float]) -> str:
    """``+0.41 to +1.20 nats over 8 runs``, or ``not measured yet`` without values."""
    if not values:
        return signed(None)
    return phrase("effect.range", low=f"{min(values):+.2f}", high=f"{max(values):+.2f}", count=len(values))


def _isolated_effect(inputs: Inputs, tree: Mapping[str, Any], settings: set[str]) -> str | None:
    """The sentence giving the training effect of exactly ``settings``; None where no model isolates them."""
    found = isolated_effects(inputs, tree, settings)
    if not found:
        return None
    parts = ", ".join(f"{DATASET_NAMES[dataset]} {name(model)} {effect:+.2f}" for dataset, model, _, effect in found)
    sizes = "/".join(str(s) for s in dict.fromkeys(sorted({size for _, _, size, _ in found})))
    return phrase("effect.isolated", settings=" and ".join(sorted(settings, key=setting_order)),
                  together=phrase("effect.together") if len(settings) > 1 else "", parts=parts, sizes=sizes)


def _measured_effects(inputs: Inputs, tree: Mapping[str, Any], gaps: list[float], combined: dict) -> dict[str, str]:
    """The "measured effect" cell of each row of :data:`DIFFERENCES`."""
    not_isolated, same_data = phrase("effect.not_isolated"), phrase("effect.same_data")
    measured = {"encoder": not_isolated, "KL(Kumaraswamy ‖ Beta)": not_isolated, "early stopping": not_isolated,
                "-log p(x) estimator": phrase("effect.estimator", range=effect_range(gaps)),
                "MNIST": same_data, "Omniglot": same_data}
    for settings in ISOLATED if combined else ():
        effect = _isolated_effect(inputs, tree, settings)
        for setting in settings if effect else ():
            if measured[setting] == not_isolated:
                measured[setting] = effect
    return measured


def _combined(inputs: Inputs, tree: Mapping[str, Any], combined: dict) -> str:
    if not combined:
        return phrase("combined.not_measured", authors=AUTHORS, corrected=CORRECTED)
    trained = [same[1] for dataset, model in combined if (same := common_bound(inputs, dataset, model))]
    headlines = [effect["nll"] for effect in combined.values() if effect["nll"] is not None]
    return phrase("combined.measured", table=combined_effect_table(inputs, tree, combined), authors=AUTHORS,
                  corrected=CORRECTED, headlines=effect_range(headlines), trained=effect_range(trained))


def where_section(inputs: Inputs, tree: Mapping[str, Any], authors_figure: Path | None = None) -> str:
    """"Where the published numbers come from" (``tree``: the parameters as params.yaml defines them;
    ``authors_figure``: the plot beside the authors' logs, relative to reports/)."""
    estimator = estimator_effects(inputs)
    combined = protocol_effects(inputs)
    gaps = [value for per_run in estimator.values() for value in per_run.values()]
    measured = _measured_effects(inputs, tree, gaps, combined)
    differences = markdown_table(["setting", "paper's text", "authors' code (protocol `authors`)",
                                  "protocol `corrected`", "measured effect"],
                                 [[*row, measured[row[0]]] for row in DIFFERENCES])
    return phrase("where", dlgmm_nll=fixed(paper_value("mnist", MIXTURE, "nll")),
                  gauss_nll=fixed(paper_value("mnist", GAUSSIAN, "nll")),
                  sb_nll=fixed(paper_value("mnist", STICK_BREAKING, "nll")), differences=differences,
                  estimator_effects=estimator_effect_table(inputs, estimator), authors=AUTHORS, corrected=CORRECTED,
                  combined=_combined(inputs, tree, combined), not_reproduced=not_reproduced_table(),
                  tolerance=tolerance_section(inputs), authors_logs=authors_log_section(inputs, authors_figure),
                  sensitivity=knn_sensitivity_section(inputs))


def _candidate(label: str, value: float | None, paper: float, tolerance: float) -> str | None:
    """``label: value (value - paper)``, marked where it falls within ``tolerance``; None without a value."""
    if value is None:
        return None
    within = phrase("tolerance.within") if abs(value - paper) <= tolerance else ""
    return phrase("tolerance.candidate", label=label, value=fixed(value), difference=signed(value - paper)) + within


def _row(cell: str, paper: float, ours: float, tolerance: float, found: list[str | None]) -> list[str]:
    return [cell, fixed(paper), fixed(ours), signed(ours - paper), "yes" if abs(ours - paper) <= tolerance else "no",
            "; ".join(f for f in found if f) or MISSING]


def _nll_rows(inputs: Inputs) -> list[list[str]]:
    run = inputs.protocols[inputs.headline]
    rows = []
    for model in table_rows("nll"):
        paper, data = paper_value("mnist", model, "nll"), run.nll["mnist"].get(model)
        if paper is None or data is None:
            continue
        ours, found = float(data.nll), []
        if not abs(ours - paper) <= TOLERANCE["nll"]:
            for estimator in ("ours", "authors"):
                if estimator != data.headline:
                    entry = getattr(data, estimator)
                    label = phrase("tolerance.our_estimator" if estimator == "ours" else "estimator.authors")
                    found.append(_candidate(phrase("tolerance.estimator", estimator=label,
                                                   samples=f"{int(entry['samples']):,}"),
                                            float(entry["nll"]), paper, TOLERANCE["nll"]))
            for other, other_run in inputs.protocols.items():
                value = other_run.nll["mnist"].get(model) if other != inputs.headline else None
                if other != inputs.headline:
                    found.append(_candidate(f"`{other}`", None if value is None else float(value.nll), paper,
                                            TOLERANCE["nll"]))
            log = run.logs["mnist"].get(model)
            if log is not None:
                gain = late_gain(log)
                found.append(phrase("tolerance.training", best_epoch=log.summary.get("best_epoch", MISSING),
                                    epochs=log.epochs)
                             + ("" if gain is None else phrase("tolerance.late_gain", gain=f"{gain:+.2f}",
                                                               late=LATE_EPOCHS)))
        rows.append(_row(f"-log p(x), {name(model)}", paper, ours, TOLERANCE["nll"], found))
    return rows


def _knn_rows(inputs: Inputs) -> list[list[str]]:
    run = inputs.protocols[inputs.headline]
    rows = []
    for model in table_rows("knn"):
        data = run.knn["mnist"].get(model)
        for k in knn_neighbors(inputs, "mnist"):
            paper = paper_value("mnist", model, f"knn_err@{k}")
            if paper is None or data is None or data.error(k) is None:
                continue
            ours, found = float(data.error(k)), []
            if not abs(ours - paper) <= TOLERANCE["knn"]:
                nearest = nearest_variant(data.sensitivity, k, paper)
                if nearest is not None:
                    label = embedding_label(nearest[1], data.sensitivity.get("draws", "several"))
                    found.append(_candidate(phrase("tolerance.nearest", embedding=label, examples=f"{nearest[2]:,}"),
                                            nearest[0], paper, TOLERANCE["knn"]))
                for other, other_run in inputs.protocols.items():
                    if other != inputs.headline:
                        value = other_run.knn["mnist"].get(model)
                        found.append(_candidate(f"`{other}`", value and value.error(k), paper, TOLERANCE["knn"]))
            rows.append(_row(f"kNN error k={k}, {name(model)}", paper, ours, TOLERANCE["knn"], found))
    return rows


def tolerance_section(inputs: Inputs) -> str:
    """"Every MNIST cell against the paper": each published MNIST cell of Figure 3a/3b beside the headline
    protocol's, whether it is within :data:`TOLERANCE`, and for a cell beyond it the measurements that bear on
    the difference, each marked where it falls within the tolerance."""
    rows = _nll_rows(inputs) + _knn_rows(inputs)
    if not rows:
        return ""
    protocol = inputs.headline
    table = markdown_table(["cell", "paper", f"ours (`{protocol}`)", "ours - paper", "within", "measurements"], rows)
    return phrase("tolerance", protocol=protocol, nll=f"{TOLERANCE['nll']:g}", knn=f"{TOLERANCE['knn']:g}",
                  within=sum(row[4] == "yes" for row in rows), cells=len(rows), table=table)


def knn_sensitivity_section(inputs: Inputs) -> str:
    """Figure 3a's unknown protocol: the headline protocol's MNIST kNN error fitted on the first N training images,
    with one sample or the mean of several draws as the embedding, beside the paper's."""
    protocol = inputs.headline
    measured = {model: data.sensitivity for model, data in inputs.protocols[protocol].knn["mnist"].items()
                if data.sensitivity}
    heading = phrase("sensitivity.heading", protocol=protocol)
    if not measured:
        return paragraphs(heading, phrase("sensitivity.not_measured"))
    draws = next(iter(measured.values())).get("draws", "several")
    return paragraphs(heading, phrase("sensitivity.intro", draws=draws), sensitivity_table(measured))


def _authors_log_rows(inputs: Inputs, runs: dict) -> list[list[str]]:
    rows = []
    width = 4 + len(LOG_EPOCHS) + 2
    for model, (log, ours) in runs.items():
        theirs = [valid_at(log.epoch, log.valid_elbo, e) for e in LOG_EPOCHS]
        rows.append([f"{name(model)}: authors' log", str(log.epochs), str(log.best_epoch), fixed(log.best_valid_elbo)]
                    + [fixed(v) for v in theirs] + [MISSING, fixed(log.test_nll)])
        if ours is None:
            rows.append([f"{name(model)}: ours"] + [NOT_RUN] * (width - 1))
            continue
        steps, valid = ours.valid
        gaps = [abs(valid_at(steps, valid, e) - valid_at(log.epoch, log.valid_elbo, e))
                for e in np.intersect1d(steps, log.epoch)]
        best_epoch = ours.summary.get("best_epoch")
        nll = inputs.protocols[AUTHORS].nll["mnist"].get(model)
        rows.append([f"{name(model)}: ours", format_cell(ours.epochs, log.epochs, decimals=0),
                     MISSING if best_epoch is None else format_cell(int(best_epoch), log.best_epoch, decimals=0),
                     format_cell(ours.best_valid_elbo, log.best_valid_elbo)]
                    + [format_cell(valid_at(steps, valid, e), t) for e, t in zip(LOG_EPOCHS, theirs)]
                    + [phrase("authors_logs.mean_gap", gap=f"{np.mean(gaps):.2f}", count=len(gaps)) if gaps
                       else MISSING, MISSING if nll is None else format_cell(float(nll.authors["nll"]), log.test_nll)])
    return rows


def authors_log_section(inputs: Inputs, figure: Path | None) -> str:
    """"Our training beside the authors' logs": epochs, best epoch, validation ELBO at fixed epochs and the 50-draw
    test -log p(x) of the authors' logged MNIST runs, ours beside each under protocol ``authors``; empty when that
    protocol is not listed."""
    runs = logged_runs(inputs)
    if not runs:
        return ""
    header = (["run", "epochs", "best epoch", "best valid ELBO"] + [f"valid ELBO, epoch {e}" for e in LOG_EPOCHS]
              + ["valid ELBO, mean absolute Δ", "test -log p(x), 50 draws"])
    links = ", ".join(f"[{name(m)}]({authors_logs.SOURCES[m].url})" for m in runs)
    text = phrase("authors_logs", dlgmm_nll=fixed(paper_value("mnist", MIXTURE, "nll")),
                  gauss_nll=fixed(paper_value("mnist", GAUSSIAN, "nll")), links=links,
                  table=markdown_table(header, _authors_log_rows(inputs, runs)))
    return paragraphs(text, "" if figure is None else phrase("authors_logs.figure", path=figure.as_posix()))
