"""The report's markdown tables and the cell formats they share.

Cells read ``ours (ours - paper)``; ``—`` marks a value that does not exist,
``not run`` an input whose stage has not run.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..params.stage import DATASETS
from .analysis import (EMBEDDINGS, common_bound, differing_settings, estimator_gap, knn_neighbors,
                       nearest_to_paper)
from .inputs import Inputs, ProtocolInputs
from .paper import (DATASET_NAMES, MODELS, NOT_REPRODUCED, PAPER_KS, architecture, differs_from_paper, name,
                    paper_value, registered_models, table_rows)

MISSING = "—"
NOT_RUN = "not run"
NOT_MEASURED = "not measured yet"
#: The kNN neighbour count of the top-level README's Results table (the paper's Figure 3a has 3, 5 and 10).
RESULTS_K = 10


def fixed(value: float | None, decimals: int = 2) -> str:
    """``value`` with ``decimals`` decimals, ``—`` for None."""
    return MISSING if value is None else f"{value:.{decimals}f}"


def signed(value: float | None, decimals: int = 2) -> str:
    """``value`` with its sign, ``not measured yet`` for None."""
    return NOT_MEASURED if value is None else f"{value:+.{decimals}f}"


def format_cell(ours: float | None, paper: float | None, se: float | None = None, decimals: int = 2) -> str:
    """``97.12 ± 0.21 (+0.62)``: ours, its standard error and ours minus the paper's value; without a
    published value only ours (``97.12 ± 0.21``); ``—`` without ours."""
    if ours is None:
        return MISSING
    text = f"{ours:.{decimals}f}"
    if se is not None:
        text += f" ± {se:.{decimals}f}"
    return text if paper is None else f"{text} ({ours - paper:+.{decimals}f})"


def seed_list(seeds) -> str:
    """``seeds`` as the report lists them: ``1234, 1235``."""
    return ", ".join(str(seed) for seed in seeds)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table (first column left-aligned, the others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def embedding_label(embedding: str, draws: object) -> str:
    """``one sample`` or ``mean of 20 draws``: a kNN embedding of :data:`EMBEDDINGS`."""
    return "one sample" if embedding == "sample" else f"mean of {draws} draws"


def knn_table(inputs: Inputs, dataset: str, with_paper: bool = True) -> str:
    """Figure 3a: kNN test error (%) per model and k: the paper's, then ours under each protocol."""
    ks = knn_neighbors(inputs, dataset)
    header = ["model"]
    for k in ks:
        header += ([f"k={k} paper"] if with_paper else []) + [f"k={k} {p}" for p in inputs.protocols]
    rows = []
    for model in table_rows("knn"):
        cells = []
        for k in ks:
            paper = paper_value(dataset, model, f"knn_err@{k}") if with_paper else None
            cells += [fixed(paper)] if with_paper else []
            for run in inputs.protocols.values():
                data = run.knn[dataset].get(model)
                cells.append(NOT_RUN if data is None else format_cell(data.error(k), paper))
        rows.append([name(model)] + cells)
    return markdown_table(header, rows)


def nll_label(tree: Mapping[str, Any], model: str) -> str:
    """``DLGMM (500d-3x25s)``, with ``† paper: ...`` where our architecture is not the paper's."""
    ours = architecture(tree, model)
    label = name(model) if ours is None else f"{name(model)} ({ours})"
    if differs_from_paper(tree, model):
        label += f" † paper: {MODELS[model].paper_architecture}"
    return label


def nll_table(inputs: Inputs, tree: Mapping[str, Any]) -> str:
    """Figure 3b: -log p(x) (nats, ± standard error) per model and dataset: the paper's, then ours per protocol."""
    header = ["model"]
    for dataset in DATASETS:
        header += [f"{DATASET_NAMES[dataset]} paper"] + [f"{DATASET_NAMES[dataset]} {p}" for p in inputs.protocols]
    rows = []
    for model in table_rows("nll"):
        cells = []
        for dataset in DATASETS:
            paper = paper_value(dataset, model, "nll")
            cells.append(fixed(paper))
            for run in inputs.protocols.values():
                data = run.nll[dataset].get(model)
                cells.append(NOT_RUN if data is None else format_cell(data.nll, paper, se=data.nll_se))
        rows.append([nll_label(tree, model)] + cells)
    return markdown_table(header, rows)


def estimator_table(run: ProtocolInputs) -> str:
    """One protocol's two -log p(x) estimators (the authors' and ours, samples in parentheses), their
    difference, the authors' dropped draws, and -ELBO and -(IWAE bound) at each s, per dataset and model."""
    sizes = sorted({int(s) for per_model in run.nll.values() for data in per_model.values() for s in data.bounds})
    header = ["model", "headline", "authors' (draws)", "dropped draws", "ours (S)", "authors' - ours", "-ELBO"]
    header += [f"s={s}" for s in sizes] + ["test examples", "seconds"]
    rows = []
    for dataset in DATASETS:
        for model in table_rows("nll"):
            label = f"{DATASET_NAMES[dataset]} {name(model)}"
            data = run.nll[dataset].get(model)
            if data is None:
                rows.append([label] + [NOT_RUN] * (len(header) - 1))
                continue
            authors, ours = data.authors, data.ours
            bounds = {int(s): v for s, v in data.bounds.items()}
            rows.append([label, str(data.headline),
                         f"{authors['nll']:.2f} ± {authors['nll_se']:.2f} ({authors['samples']})",
                         str(int(authors["dropped_draws"])),
                         f"{ours['nll']:.2f} ± {ours['nll_se']:.2f} ({ours['samples']})",
                         f"{estimator_gap(data):+.2f}", f"{-data.elbo:.2f}"]
                        + [fixed(bounds.get(s)) for s in sizes]
                        + [str(data.examples), MISSING if data.seconds is None else f"{data.seconds:.0f}"])
    return markdown_table(header, rows)


def training_table(run: ProtocolInputs) -> str:
    """One protocol's training runs: epochs, best epoch, best valid ELBO, last train ELBO, and the epochs run after
    the best one (the early-stopping patience where it stopped early; fewer where it reached the epoch limit)."""
    header = ["model", "epochs", "best epoch", "best valid ELBO", "last train ELBO", "epochs after the best"]
    rows = []
    for dataset in DATASETS:
        for model in registered_models(dataset):
            label = f"{DATASET_NAMES[dataset]} {name(model)}"
            log = run.logs[dataset].get(model)
            if log is None:
                rows.append([label] + [NOT_RUN] * (len(header) - 1))
                continue
            best_epoch = log.summary.get("best_epoch")
            rows.append([label, str(log.epochs), MISSING if best_epoch is None else str(best_epoch),
                         f"{log.best_valid_elbo:.2f}", f"{float(log.train[1][-1]):.2f}",
                         MISSING if best_epoch is None else str(log.epochs - int(best_epoch))])
    return markdown_table(header, rows)


def estimator_effect_table(inputs: Inputs, effects: dict[str, dict[tuple[str, str], float]]) -> str:
    """The authors' -log p(x) minus ours per dataset and model (rows) and protocol (columns)."""
    rows = [[f"{DATASET_NAMES[dataset]} {name(model)}"]
            + [signed(effects[p].get((dataset, model))) for p in inputs.protocols]
            for dataset in DATASETS for model in table_rows("nll")]
    return markdown_table(["model"] + list(inputs.protocols), rows)


def combined_effect_table(inputs: Inputs, tree: Mapping[str, Any],
                          combined: dict[tuple[str, str], dict[str, float | None]]) -> str:
    """Per dataset and model: the settings the protocols differ in, each metric's ``authors - corrected``, and our
    -log p(x) with the same S on both checkpoints."""
    metrics = list(dict.fromkeys(m for effect in combined.values() for m in effect))
    header = (["model", "settings that differ"]
              + ["-log p(x), headlines (nats)" if m == "nll" else f"kNN k={m.split('@')[1]} (%)" for m in metrics]
              + ["-log p(x), ours on both (nats)"])
    rows = []
    for (dataset, model), effect in combined.items():
        same = common_bound(inputs, dataset, model)
        rows.append([f"{DATASET_NAMES[dataset]} {name(model)}", ", ".join(differing_settings(tree, model))]
                    + [signed(effect.get(m)) for m in metrics]
                    + [NOT_MEASURED if same is None else f"{same[1]:+.2f} (S = {same[0]})"])
    return markdown_table(header, rows)


def not_reproduced_table() -> str:
    """Settings of the authors' code that neither protocol reproduces."""
    return markdown_table(["setting", "the authors' code", "this package"], [list(row) for row in NOT_REPRODUCED])


def sensitivity_table(measured: dict[str, dict]) -> str:
    """Per model and embedding the MNIST kNN error at k = 3 / 5 / 10 fitted on the first N training images, the
    paper's, and the variant nearest the paper's (mean absolute difference over k)."""
    ks = list(PAPER_KS)
    sizes = sorted({int(n) for data in measured.values() for e in EMBEDDINGS for n in data.get(e, {})})
    rows = []
    for model in table_rows("knn"):
        if model not in measured:
            continue
        draws = measured[model].get("draws", "several")
        paper = [paper_value("mnist", model, f"knn_err@{k}") for k in ks]
        model_rows = []
        for embedding in EMBEDDINGS:
            cells = []
            for n in sizes:
                per_k = measured[model].get(embedding, {}).get(str(n), {})
                values = [per_k.get(str(k)) for k in ks]
                cells.append(MISSING if all(v is None for v in values) else " / ".join(fixed(v) for v in values))
            model_rows.append([name(model), embedding_label(embedding, draws)] + cells)
        best = nearest_to_paper(measured[model], ks, paper, sizes)
        model_rows[0] += [MISSING if None in paper else " / ".join(fixed(v) for v in paper),
                          MISSING if best is None else f"{embedding_label(best[1], draws)}, N = {best[2]:,} "
                                                       f"({best[0]:.2f})"]
        for row in model_rows[1:]:
            row += ["", ""]
        rows += model_rows
    header = ["model", "embedding"] + [f"N = {n:,}" for n in sizes] + ["paper", "nearest the paper"]
    return markdown_table(header, rows)


def results_table(metrics: dict[str, float], protocols: list[str]) -> str:
    """The top-level README's "Results" table, from the flat metrics of ``reports/metrics.json``: per dataset
    and model, -log p(x) (nats, ± standard error) and the kNN test error at k = :data:`RESULTS_K`, the paper's
    value beside ours under each of ``protocols`` (``ours (ours - paper)``; ``not run`` where a protocol's value
    is missing)."""
    header = ["model", "-log p(x) paper"] + [f"-log p(x) `{p}`" for p in protocols]
    header += [f"kNN k={RESULTS_K} paper"] + [f"kNN k={RESULTS_K} `{p}`" for p in protocols]
    rows = []
    for dataset in DATASETS:
        for model in table_rows("nll"):
            paper_nll = paper_value(dataset, model, "nll")
            paper_knn = paper_value(dataset, model, f"knn_err@{RESULTS_K}")
            row = [f"{DATASET_NAMES[dataset]} {name(model)}", fixed(paper_nll)]
            for p in protocols:
                nll = metrics.get(f"{p}.{dataset}.{model}.nll")
                row.append(NOT_RUN if nll is None else
                           format_cell(nll, paper_nll, se=metrics.get(f"{p}.{dataset}.{model}.nll_se")))
            row.append(fixed(paper_knn))
            for p in protocols:
                error = metrics.get(f"{p}.{dataset}.{model}.knn_err@{RESULTS_K}")
                row.append(NOT_RUN if error is None else format_cell(error, paper_knn))
            rows.append(row)
    return markdown_table(header, rows)
