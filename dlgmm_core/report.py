"""The final report: our numbers beside the paper's, flat DVC metrics, static training curves.

:func:`write_report` reads what the evaluation stages wrote
(``reports/nll/<dataset>/<model>.json``, ``reports/knn/<dataset>/<model>.json``,
the figures under ``reports/figures/``) and the training logs
(``logs/<dataset>/<model>/metrics.json`` and its dvclive ``plots/metrics/{train,valid}/elbo.tsv``),
and writes

- ``reports/README.md``: header (budget, k, KL methods), Figure 3a/3b tables
  with every cell as ``ours (paper P, +diff)``, the Omniglot kNN table, the
  IWAE convergence table, training summary and links to every figure;
- ``reports/metrics.json``: flat, sorted keys ``<dataset>.<model>.<metric>``
  (``nll``, ``nll_se``, ``elbo``, ``knn_err@<k>``, ``valid_elbo``, ``epochs``),
  numbers only, for ``dvc metrics diff``;
- ``reports/figures/training/<dataset>.png``: train and valid ELBO per epoch
  for every model (static, since ``dvc plots show`` needs a CDN).

Every input is required: a missing one is a DlgmmError naming the file.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import layout, registry
from .config import DATASETS, Params
from .errors import DlgmmError
from .io import read_json

# --------------------------------------------------------------------------
# the paper's published values (Figure 3), in one place
# --------------------------------------------------------------------------
#: ``PAPER[dataset][paper_key][metric]`` (``paper_key`` of the model's registry spec): -log p(x) in nats (Fig. 3b) and MNIST kNN test error in % (Fig. 3a).
#: A metric absent here was not published (shown as "—").
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "mnist": {
        "dlgmm": {"nll": 96.50, "knn_err@3": 9.14, "knn_err@5": 8.38, "knn_err@10": 8.42},
        "dldpmm": {"nll": 96.91},
        "gauss_vae": {"nll": 96.80, "knn_err@3": 28.4, "knn_err@5": 20.96, "knn_err@10": 15.33},
        "sb_vae": {"nll": 98.01, "knn_err@3": 9.34, "knn_err@5": 8.65, "knn_err@10": 8.90},
    },
    "omniglot": {
        "dlgmm": {"nll": 123.50},
        "dldpmm": {"nll": 123.76},
        "gauss_vae": {"nll": 119.18},
        "sb_vae": {},
    },
}
# The models, their names, the architectures of Figure 3b, the row orders of the tables and the
# trained models whose logs are read per dataset come from the model registry (dlgmm_core.registry).
DATASET_NAMES = {"mnist": "MNIST", "omniglot": "Omniglot"}
MISSING = "—"
DECIMALS = 4

NLL_KEYS = ("nll", "nll_se", "elbo", "bounds", "samples", "examples")


def _names() -> dict[str, str]:
    return registry.MODEL_NAMES


def _spec(model: str) -> registry.ModelSpec:
    """The registry spec of the kind the params.yaml model key ``model`` builds."""
    return registry.spec(registry.model_key(model).kind)


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
@dataclass
class TrainingLog:
    """One model's dvclive logs: the final summary and the per-epoch ELBO curves (step = epoch)."""

    summary: dict
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]

    @property
    def epochs(self) -> int:
        for key in ("epochs", "step"):
            if isinstance(self.summary.get(key), (int, float)):
                return int(self.summary[key])
        return int(len(self.valid[0]))

    @property
    def best_valid_elbo(self) -> float:
        value = self.summary.get("best_valid_elbo")
        if isinstance(value, (int, float)):
            return float(value)
        return float(np.max(self.valid[1]))


@dataclass
class Inputs:
    """Everything the report reads, keyed ``[dataset][model]``."""

    nll: dict[str, dict[str, dict]] = field(default_factory=dict)
    knn: dict[str, dict[str, dict]] = field(default_factory=dict)
    logs: dict[str, dict[str, TrainingLog]] = field(default_factory=dict)
    figures: dict[str, list[Path]] = field(default_factory=dict)


def _read_tsv(path: Path, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """``(step, value)`` of a dvclive metric file (header ``step<TAB><name>``, maybe ``timestamp``)."""
    import pandas as pd

    if not path.is_file():
        raise DlgmmError(f"{path}: not found; {hint}")
    try:
        frame = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as err:
        raise DlgmmError(f"{path}: not a readable dvclive .tsv ({err}); {hint}") from None
    columns = [c for c in frame.columns if c not in ("step", "timestamp")]
    if "step" not in frame.columns or len(columns) != 1 or frame.empty:
        raise DlgmmError(f"{path}: expected a header 'step<TAB><metric>' and at least one row; {hint}")
    return frame["step"].to_numpy(dtype=np.float64), frame[columns[0]].to_numpy(dtype=np.float64)


def _number(data: dict, key: str, path: Path) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DlgmmError(f"{path}: '{key}' must be a finite number (got {value!r}); run its stage again")
    return float(value)


def read_inputs(root: str | os.PathLike, params: Params) -> Inputs:
    """Read every input of the report under ``root`` (the repository); DlgmmError naming a missing file."""
    root = Path(root)
    inputs = Inputs()
    for dataset in DATASETS:
        inputs.nll[dataset], inputs.knn[dataset], inputs.logs[dataset] = {}, {}, {}
        for model in registry.evaluated_keys():
            path = layout.nll_result(dataset, model, root)
            data = read_json(path, f"run `dvc repro {layout.nll_stage(dataset, model)}`")
            for key in NLL_KEYS:
                if key not in data:
                    raise DlgmmError(f"{path}: missing key '{key}'; run its marginal_likelihood stage again")
            for key in ("nll", "nll_se", "elbo"):
                _number(data, key, path)
            inputs.nll[dataset][model] = data

            path = layout.knn_result(dataset, model, root)
            data = read_json(path, f"run `dvc repro {layout.knn_stage(dataset, model)}`")
            if not any(key.startswith("error@") for key in data):
                raise DlgmmError(f"{path}: no 'error@<k>' entries; run its knn stage again")
            for key in data:
                if key.startswith("error@"):
                    _number(data, key, path)
            inputs.knn[dataset][model] = data
        for model in registry.trained_keys(dataset):
            hint = f"train it (`python {layout.script('train')} --dataset {dataset} --model {model}`)"
            inputs.logs[dataset][model] = TrainingLog(
                summary=read_json(layout.train_metrics(dataset, model, root), hint),
                train=_read_tsv(layout.train_curve(dataset, model, "train", root), hint),
                valid=_read_tsv(layout.train_curve(dataset, model, "valid", root), hint))
    inputs.figures = _figures(root, params)
    return inputs


def _require(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise DlgmmError(f"{path}: figure not found; {hint}")
    return path


def _figures(root: Path, params: Params) -> dict[str, list[Path]]:
    """The figures of the evaluation stages, relative to ``root/reports``; each must exist."""
    reports = layout.reports_dir(root)
    out: dict[str, list[Path]] = {"tsne": [], "samples": [], "qualitative": []}
    for model in registry.evaluated_keys():
        path = _require(layout.tsne_figure("mnist", model, root), f"run `dvc repro {layout.tsne_stage(model)}`")
        out["tsne"].append(path.relative_to(reports))
    for dataset in DATASETS:
        for model in registry.evaluated_keys():
            path = _require(layout.samples_figure(dataset, model, root),
                            f"run `dvc repro {layout.samples_stage(dataset, model)}`")
            out["samples"].append(path.relative_to(reports))
    components = int(params.tree["model"]["qualitative"]["components"])
    for k in range(1, components + 1):
        path = _require(layout.qualitative_figure(k, root),
                        f"run `dvc repro {layout.samples_stage('mnist', 'qualitative')}`")
        out["qualitative"].append(path.relative_to(reports))
    return out


# --------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------
def architecture(params: Params, model: str) -> str:
    """The paper's architecture notation for our configuration of ``model`` (e.g. ``500d-3x25s``)."""
    kind, config = params.model_config(model)
    return registry.spec(kind).architecture(config)


def _differs_from_paper(params: Params, model: str) -> bool:
    """Whether our architecture of ``model`` is not the paper's (False for a model not in the paper)."""
    paper = _spec(model).paper_architecture
    return paper is not None and architecture(params, model) != paper


def paper_value(dataset: str, model: str, metric: str) -> float | None:
    """The published value, or None where the paper gives none."""
    return PAPER.get(dataset, {}).get(_spec(model).paper_key, {}).get(metric)


def format_cell(ours: float | None, paper: float | None, se: float | None = None, decimals: int = 2) -> str:
    """``97.12 ± 0.21 (paper 96.50, +0.62)``; ``(paper —)`` without a published value; ``—`` without ours."""
    if ours is None:
        return MISSING if paper is None else f"{MISSING} (paper {paper:.{decimals}f})"
    text = f"{ours:.{decimals}f}"
    if se is not None:
        text += f" ± {se:.{decimals}f}"
    if paper is None:
        return f"{text} (paper {MISSING})"
    return f"{text} (paper {paper:.{decimals}f}, {ours - paper:+.{decimals}f})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table (first column left-aligned, the others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _knn_neighbors(inputs: Inputs, dataset: str) -> list[int]:
    return sorted({int(key.split("@", 1)[1]) for data in inputs.knn[dataset].values()
                   for key in data if key.startswith("error@")})


def knn_table(inputs: Inputs, dataset: str, with_paper: bool = True) -> str:
    """Figure 3a: kNN test error (%) per model and k."""
    names = _names()
    ks = _knn_neighbors(inputs, dataset)
    rows = []
    for model in registry.table_rows("knn"):
        data = inputs.knn[dataset][model]
        cells = []
        for k in ks:
            ours = data.get(f"error@{k}")
            if with_paper:
                cells.append(format_cell(ours, paper_value(dataset, model, f"knn_err@{k}")))
            else:
                cells.append(MISSING if ours is None else f"{ours:.2f}")
        rows.append([names[model]] + cells)
    return markdown_table(["model"] + [f"k={k}" for k in ks], rows)


def nll_table(inputs: Inputs, params: Params) -> str:
    """Figure 3b: estimated -log p(x) (nats, ± standard error) per model and dataset."""
    names = _names()
    rows = []
    for model in registry.table_rows("nll"):
        label = f"{names[model]} ({architecture(params, model)})"
        if _differs_from_paper(params, model):
            label += f" † paper: {_spec(model).paper_architecture}"
        cells = []
        for dataset in DATASETS:
            data = inputs.nll[dataset][model]
            cells.append(format_cell(data["nll"], paper_value(dataset, model, "nll"), se=data["nll_se"]))
        rows.append([label] + cells)
    return markdown_table(["model"] + [DATASET_NAMES[d] for d in DATASETS], rows)


def _bound_sizes(inputs: Inputs) -> list[int]:
    return sorted({int(s) for per_model in inputs.nll.values() for data in per_model.values()
                   for s in data["bounds"]})


def iwae_table(inputs: Inputs) -> str:
    """-ELBO and -(IWAE bound) at each number of importance samples s, per dataset and model."""
    names = _names()
    sizes = _bound_sizes(inputs)
    rows = []
    for dataset in DATASETS:
        for model in registry.table_rows("nll"):
            data = inputs.nll[dataset][model]
            bounds = {int(s): v for s, v in data["bounds"].items()}
            cells = [f"{-data['elbo']:.2f}"] + [f"{bounds[s]:.2f}" if s in bounds else MISSING for s in sizes]
            seconds = data.get("seconds")
            cells += [str(data["examples"]), MISSING if seconds is None else f"{seconds:.0f}"]
            rows.append([f"{DATASET_NAMES[dataset]} {names[model]}"] + cells)
    return markdown_table(["model", "-ELBO"] + [f"s={s}" for s in sizes] + ["test examples", "seconds"], rows)


def training_table(inputs: Inputs) -> str:
    names = _names()
    rows = []
    for dataset in DATASETS:
        for model, log in inputs.logs[dataset].items():
            best_epoch = log.summary.get("best_epoch")
            stop = log.summary.get("stop_reason")
            rows.append([f"{DATASET_NAMES[dataset]} {names[model]}", str(log.epochs),
                         MISSING if best_epoch is None else str(best_epoch), f"{log.best_valid_elbo:.2f}",
                         f"{float(log.train[1][-1]):.2f}", str(stop) if stop else MISSING])
    return markdown_table(["model", "epochs", "best epoch", "best valid ELBO", "last train ELBO", "stop"], rows)


# --------------------------------------------------------------------------
# metrics.json
# --------------------------------------------------------------------------
def flat_metrics(inputs: Inputs) -> dict[str, float | int]:
    """``{"<dataset>.<model>.<metric>": number}``, sorted, rounded to :data:`DECIMALS`.

    Metrics: ``nll``, ``nll_se``, ``elbo`` (mean test ELBO), ``knn_err@<k>``
    (%), ``valid_elbo`` (best validation ELBO), ``epochs`` (int); the
    qualitative model has ``valid_elbo`` and ``epochs`` only.
    """
    out: dict[str, float | int] = {}
    for dataset in DATASETS:
        for model in registry.evaluated_keys():
            prefix = f"{dataset}.{model}"
            data = inputs.nll[dataset][model]
            for key in ("nll", "nll_se", "elbo"):
                out[f"{prefix}.{key}"] = round(float(data[key]), DECIMALS)
            for key, value in inputs.knn[dataset][model].items():
                if key.startswith("error@"):
                    out[f"{prefix}.knn_err@{key.split('@', 1)[1]}"] = round(float(value), DECIMALS)
        for model, log in inputs.logs[dataset].items():
            out[f"{dataset}.{model}.valid_elbo"] = round(log.best_valid_elbo, DECIMALS)
            out[f"{dataset}.{model}.epochs"] = log.epochs
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------
def plot_training_curves(logs: dict[str, TrainingLog], title: str, path: str | os.PathLike) -> Path:
    """Train and valid ELBO per epoch of every model in ``logs`` (two panels), PNG written atomically."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from .io import save_figure

    names = _names()
    fig = Figure(figsize=(11.0, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    values = []
    for ax, split in zip(axes, ("train", "valid")):
        for model, log in logs.items():
            steps, elbo = getattr(log, split)
            ax.plot(steps, elbo, label=names.get(model, model), linewidth=1.4,
                    marker="o" if len(steps) < 15 else None, markersize=3)
            values.append(elbo[1:] if len(elbo) > 2 else elbo)
        ax.set_title(f"{split} ELBO", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ELBO (nats per image)")
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        margin = max(0.05 * (high - low), 0.5)
        axes[0].set_ylim(low - margin, high + margin)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------
# README.md
# --------------------------------------------------------------------------
def _kl_methods(inputs: Inputs, params: Params) -> list[str]:
    names = _names()
    lines = []
    for model in registry.table_rows("nll"):
        if "kl_method" not in _spec(model).arg_names:
            continue
        methods = {dataset: inputs.nll[dataset][model].get("kl_method") for dataset in DATASETS}
        distinct = sorted({str(m) for m in methods.values()})
        if len(distinct) == 1:
            lines.append(f"{names[model]}: `{distinct[0]}`")
        else:
            lines.append(f"{names[model]}: " + ", ".join(f"`{m}` ({d})" for d, m in methods.items()))
    for model in registry.MODEL_KEYS:  # trained-only models: their KL method as params.yaml sets it
        kl_key = {arg.name: arg.section_key for arg in _spec(model).args}.get("kl_method")
        if not registry.model_key(model).evaluated and kl_key:
            lines.append(f"{names[model]}: `{params.tree['model'][model].get(kl_key, MISSING)}`")
    return lines


def render_readme(inputs: Inputs, params: Params, training_figures: list[Path]) -> str:
    names = _names()
    nll = inputs.nll
    out: list[str] = ["# Reproduction report: Approximate Inference for Deep Latent Gaussian Mixtures", ""]
    if params.budget == "quick":
        out += ["> **⚠️ REDUCED BUDGET RUN (`budget: quick`): few epochs, subsets of the data and fewer "
                "importance samples. These numbers are NOT comparable to the paper's.** "
                "Run `make repro` (`budget: paper`) for the published protocol.", ""]
    else:
        out += ["Budget: `paper` (the published protocol: full splits, early stopping with 30 look-ahead epochs).",
                ""]
    knn_mnist = inputs.knn["mnist"]["dlgmm"]
    out += [
        f"- budget: `{params.budget}`",
        f"- k (DLGMM components): {params.k} (paper: 3)",
        "- KL(Kumaraswamy ‖ Beta) method: " + "; ".join(_kl_methods(inputs, params)),
        "- -log p(x): " + "; ".join(
            f"{DATASET_NAMES[d]} {nll[d]['dlgmm']['examples']} test images x "
            f"{nll[d]['dlgmm']['samples']} importance samples" for d in DATASETS),
        f"- kNN (MNIST): {knn_mnist.get('train_examples', MISSING)} training / "
        f"{knn_mnist.get('test_examples', MISSING)} test latent samples",
        "",
        "Cells read `ours (paper P, ours - P)`; `—`: the paper gives no value. "
        "-log p(x) is in nats, ± one standard error over the test images.",
        "",
        "## Figure 3a: MNIST kNN test error (%) on latent samples",
        "",
        knn_table(inputs, "mnist"),
        "",
        "DLDPMM is an extra row (not in the paper's table).",
        "",
        "## Figure 3b: estimated -log p(x) on the test set (nats)",
        "",
        nll_table(inputs, params),
        "",
    ]
    if any(_differs_from_paper(params, m) for m in registry.table_rows("nll")):
        out += ["† our architecture differs from the paper's, so the comparison is indicative only.", ""]
    out += [
        "## Omniglot kNN test error (%) (extra; not in the paper)",
        "",
        knn_table(inputs, "omniglot", with_paper=False),
        "",
        "## Convergence of the importance-sampled bounds (nats)",
        "",
        "-(IWAE bound) with s importance samples per image; it decreases towards -log p(x) as s grows, "
        "and the largest s is the estimate reported above. -ELBO is the training objective on the test set.",
        "",
        iwae_table(inputs),
        "",
        "## Training",
        "",
        training_table(inputs),
        "",
    ]
    for path in training_figures:
        out += [f"![training curves {path.stem}]({path.as_posix()})", ""]
    out += ["## Figure 2c/2d: t-SNE of MNIST test-set latent samples", ""]
    for path in inputs.figures["tsne"]:
        model = path.stem.split("_", 1)[1]
        tag = {"gauss_vae": " (Figure 2c)", "dlgmm": " (Figure 2d)"}.get(model, "")
        out += [f"### {names[model]}{tag}", "", f"![t-SNE {names[model]}]({path.as_posix()})", ""]
    components = inputs.figures["qualitative"]
    out += ["## Figure 2a/2b: samples from single prior components of the qualitative DLGMM", "",
            f"{len(components)} components with prior means {params.tree['model']['qualitative']['prior_means']}; "
            f"the paper shows the two extremes (component 1 and component {len(components)}).", ""]
    for index, path in enumerate(components, start=1):
        tag = " (Figure 2a)" if index == 1 else " (Figure 2b)" if index == len(components) else ""
        out += [f"- [component {index}{tag}]({path.as_posix()})"]
    out += ["", f"![component 1]({components[0].as_posix()}) ![component {len(components)}]"
            f"({components[-1].as_posix()})", "",
            "## Samples from each model's prior (Bernoulli means)", ""]
    for path in inputs.figures["samples"]:
        dataset, model = path.stem.split("_", 1)
        out += [f"- [{DATASET_NAMES[dataset]} {names[model]}]({path.as_posix()})"]
    out += [""]
    return "\n".join(out)


def write_report(root: str | os.PathLike, params: Params) -> list[Path]:
    """Read the inputs under ``root`` and write README.md, metrics.json and the training curves.

    Returns the written paths. Nothing is written when an input is missing.
    """
    from .io import atomic_dir, write_json, write_text

    root = Path(root)
    reports = layout.reports_dir(root)
    inputs = read_inputs(root, params)
    metrics = flat_metrics(inputs)
    figures = [layout.training_figure(dataset, root).relative_to(reports) for dataset in DATASETS]
    with atomic_dir(layout.training_figures_dir(root)) as tmp:
        for dataset, rel in zip(DATASETS, figures):
            plot_training_curves(inputs.logs[dataset], f"{DATASET_NAMES[dataset]}: ELBO per epoch "
                                 f"(budget {params.budget})", tmp / rel.name)
    readme = render_readme(inputs, params, figures)
    write_json(layout.report_metrics(root), metrics)
    write_text(layout.report_readme(root), readme)
    return [layout.report_readme(root), layout.report_metrics(root), layout.training_figures_dir(root)]
