"""Where every file of the pipeline lives: data, checkpoints, logs, results, figures, the report.

Each path function returns a path below ``root`` (default ``"."``: the
repository root, the folder the stages run in), spelled as ``dvc.yaml``
declares it; ``tests/test_layout.py`` holds ``dvc.yaml``'s outputs and inputs
to these functions. The ``*_stage`` functions name the DVC stage that writes
a file, for the hints of error messages.

:func:`stage_sources` lists the source files a stage script runs: the script
and every module of the package it imports, directly or through other
modules. ``dvc.yaml`` declares them as the stage's code deps, and the
training stage hashes its own into the fingerprint of a saved training state
(:func:`dlgmm_core.resume.code_sha256`).

Standard library only.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

from .errors import DlgmmError

Root = str | os.PathLike

#: The package whose modules :func:`stage_sources` follows.
PACKAGE = "dlgmm_core"


# --------------------------------------------------------------------------
# stage scripts and stage names
# --------------------------------------------------------------------------
def script(stage: str, root: Root = ".") -> Path:
    """``stages/<stage>.py``, the script of a stage (``prepare``, ``train``, ``knn``, ...)."""
    return Path(root, "stages", f"{stage}.py")


def resolve_stage() -> str:
    """The DVC stage that validates params.yaml and writes every :func:`stage_params` file."""
    return "resolve"


def report_stage() -> str:
    """The DVC stage that writes the report."""
    return "report"


def prepare_stage(dataset: str) -> str:
    """The DVC stage that writes :func:`prepared`."""
    return f"prepare@{dataset}"


def prepare_hint(dataset: str) -> str:
    """What to run to (re)make :func:`prepared`, for the end of an error message."""
    return (f"prepare the data with `python {script('prepare')} --dataset {dataset}` "
            f"(or `dvc repro {prepare_stage(dataset)}`)")


def train_stage(protocol: str, seed: int, dataset: str, model: str) -> str:
    """The DVC stage that writes :func:`checkpoint` (the qualitative model, trained on MNIST only, has its own).

    Named as ``dvc.yaml``'s matrices name their items: protocol, seed, dataset, model
    (``train@authors-1234-mnist-dlgmm``).
    """
    family = "train_qualitative" if model == "qualitative" else "train"
    return f"{family}@{protocol}-{seed}-{dataset}-{model}"


def nll_stage(protocol: str, seed: int, dataset: str, model: str) -> str:
    """The DVC stage that writes :func:`nll_result`."""
    return f"marginal_likelihood@{protocol}-{seed}-{dataset}-{model}"


def knn_stage(protocol: str, seed: int, dataset: str, model: str) -> str:
    """The DVC stage that writes :func:`knn_result`."""
    return f"knn@{protocol}-{seed}-{dataset}-{model}"


def tsne_stage(protocol: str, seed: int, model: str) -> str:
    """The DVC stage that writes :func:`tsne_figure` (MNIST only)."""
    return f"tsne@{protocol}-{seed}-{model}"


def samples_stage(protocol: str, seed: int, dataset: str, model: str) -> str:
    """The DVC stage that writes :func:`samples_figure`, or for ``qualitative`` :func:`qualitative_dir`."""
    if model == "qualitative":
        return f"samples_qualitative@{protocol}-{seed}"
    return f"samples@{protocol}-{seed}-{dataset}-{model}"


# --------------------------------------------------------------------------
# resolved parameters
# --------------------------------------------------------------------------
def stage_params_dir(root: Root = ".") -> Path:
    """``data/params``: what each stage reads of params.yaml, as the ``resolve`` stage wrote it."""
    return Path(root, "data", "params")


def stage_params(stage: str, root: Root = ".") -> Path:
    """``data/params/<stage>.json``: the parameters of the DVC stage named ``stage`` (e.g. ``train@authors-1234-mnist-dlgmm``)."""
    return stage_params_dir(root) / f"{stage}.json"


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def raw_dir(root: Root = ".") -> Path:
    """``data/raw``: the verified download cache."""
    return Path(root, "data", "raw")


def prepared_dir(root: Root = ".") -> Path:
    """``data/prepared``: the prepared datasets."""
    return Path(root, "data", "prepared")


def prepared_in(folder: Root, dataset: str) -> tuple[Path, Path]:
    """``(<folder>/<dataset>.npz, <folder>/<dataset>.json)``: a prepared dataset's arrays and metadata."""
    return Path(folder, f"{dataset}.npz"), Path(folder, f"{dataset}.json")


def prepared(dataset: str, root: Root = ".") -> tuple[Path, Path]:
    """``(data/prepared/<dataset>.npz, data/prepared/<dataset>.json)``."""
    return prepared_in(prepared_dir(root), dataset)


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------
def run_folder(protocol: str, seed: int) -> Path:
    """``<protocol>/seed-<seed>``: the folder of one run of the pipeline (a protocol and a seed) below each
    output folder (models, logs, results, figures)."""
    return Path(protocol, f"seed-{seed}")


def checkpoint(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``models/<protocol>/seed-<seed>/<dataset>/<model>.pt``: the best-validation weights."""
    return Path(root, "models", run_folder(protocol, seed), dataset, f"{model}.pt")


def train_state_dir(root: Root = ".") -> Path:
    """``.dlgmm/train-state``: the resumable training states, ignored by git and DVC.

    Not a DVC output: DVC's copies of the workspace for ``dvc exp run --queue``
    / ``--temp`` and fresh clones lack untracked files, and a missing output
    made every training stage look changed there. The checkpoints are what
    DVC caches; a state only lets a killed training resume in its workspace.
    """
    return Path(root, ".dlgmm", "train-state")


def train_state(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``.dlgmm/train-state/<protocol>/seed-<seed>/<dataset>/<model>.state.pt``: the resumable training state.

    One file per training stage; a state another configuration wrote there
    is discarded by its fingerprint (:mod:`dlgmm_core.resume`), never resumed.
    """
    return Path(train_state_dir(root), run_folder(protocol, seed), dataset, f"{model}.state.pt")


def stage_logs_dir(root: Root = ".") -> Path:
    """``.dlgmm/logs``: the output of stages run side by side (tools/schedule.py), ignored by git and DVC."""
    return Path(root, ".dlgmm", "logs")


def stage_log(stage: str, root: Root = ".") -> Path:
    """``.dlgmm/logs/<stage>.log``: what stage ``stage`` printed when tools/schedule.py ran it."""
    return Path(stage_logs_dir(root), f"{stage}.log")


def logs_dir(root: Root = ".") -> Path:
    """``logs``: the dvclive logs of every training run."""
    return Path(root, "logs")


def train_logs(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``logs/<protocol>/seed-<seed>/<dataset>/<model>``: one training run's dvclive folder."""
    return Path(logs_dir(root), run_folder(protocol, seed), dataset, model)


def train_metrics(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``logs/<protocol>/seed-<seed>/<dataset>/<model>/metrics.json``: dvclive's summary of the run (DVC metrics)."""
    return train_logs(protocol, seed, dataset, model, root) / "metrics.json"


def train_plots(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``logs/<protocol>/seed-<seed>/<dataset>/<model>/plots/metrics``: dvclive's per-epoch curves (DVC plots)."""
    return train_logs(protocol, seed, dataset, model, root) / "plots" / "metrics"


def train_curve(protocol: str, seed: int, dataset: str, model: str, split: str, root: Root = ".") -> Path:
    """``logs/<protocol>/seed-<seed>/<dataset>/<model>/plots/metrics/<split>/elbo.tsv``: the ELBO per epoch of
    ``train`` or ``valid``."""
    return train_plots(protocol, seed, dataset, model, root) / split / "elbo.tsv"


# --------------------------------------------------------------------------
# evaluation results and figures
# --------------------------------------------------------------------------
def reports_dir(root: Root = ".") -> Path:
    """``reports``: every evaluation result, figure and the report."""
    return Path(root, "reports")


def nll_dir(root: Root = ".") -> Path:
    """``reports/nll``: the marginal-likelihood results."""
    return reports_dir(root) / "nll"


def nll_result(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``reports/nll/<protocol>/seed-<seed>/<dataset>/<model>.json``."""
    return nll_dir(root) / run_folder(protocol, seed) / dataset / f"{model}.json"


def knn_dir(root: Root = ".") -> Path:
    """``reports/knn``: the kNN results."""
    return reports_dir(root) / "knn"


def knn_result(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``reports/knn/<protocol>/seed-<seed>/<dataset>/<model>.json``."""
    return knn_dir(root) / run_folder(protocol, seed) / dataset / f"{model}.json"


def figures_dir(root: Root = ".") -> Path:
    """``reports/figures``."""
    return reports_dir(root) / "figures"


def tsne_dir(root: Root = ".") -> Path:
    """``reports/figures/tsne``."""
    return figures_dir(root) / "tsne"


def tsne_figure(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``reports/figures/tsne/<protocol>/seed-<seed>/<dataset>_<model>.png``."""
    return tsne_dir(root) / run_folder(protocol, seed) / f"{dataset}_{model}.png"


def samples_dir(root: Root = ".") -> Path:
    """``reports/figures/samples``."""
    return figures_dir(root) / "samples"


def samples_figure(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``reports/figures/samples/<protocol>/seed-<seed>/<dataset>_<model>.png``."""
    return samples_dir(root) / run_folder(protocol, seed) / f"{dataset}_{model}.png"


def qualitative_root(root: Root = ".") -> Path:
    """``reports/figures/qualitative``: the qualitative model's component grids of every protocol."""
    return figures_dir(root) / "qualitative"


def qualitative_dir(protocol: str, seed: int, root: Root = ".") -> Path:
    """``reports/figures/qualitative/<protocol>/seed-<seed>``: one grid per prior component of the qualitative
    model."""
    return qualitative_root(root) / run_folder(protocol, seed)


def component_figure_in(folder: Root, component: int) -> Path:
    """``<folder>/component_<component>.png`` (``component`` counts from 1)."""
    return Path(folder, f"component_{component}.png")


def qualitative_figure(protocol: str, seed: int, component: int, root: Root = ".") -> Path:
    """``reports/figures/qualitative/<protocol>/seed-<seed>/component_<component>.png`` (``component`` counts
    from 1)."""
    return component_figure_in(qualitative_dir(protocol, seed, root), component)


def training_figures_dir(root: Root = ".") -> Path:
    """``reports/figures/training``: the static training curves of the report."""
    return figures_dir(root) / "training"


def training_figure(protocol: str, dataset: str, root: Root = ".") -> Path:
    """``reports/figures/training/<protocol>/<dataset>.png``."""
    return training_figures_dir(root) / protocol / f"{dataset}.png"


def report_readme(root: Root = ".") -> Path:
    """``reports/README.md``: the report."""
    return reports_dir(root) / "README.md"


def report_metrics(root: Root = ".") -> Path:
    """``reports/metrics.json``: the flat metrics (DVC metrics)."""
    return reports_dir(root) / "metrics.json"


# --------------------------------------------------------------------------
# the source files a stage runs
# --------------------------------------------------------------------------
def _module_file(root: Path, module: str) -> Path | None:
    """The file of the dotted ``module`` below ``root`` (a package's ``__init__.py``), or None."""
    base = Path(root, *module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _lazy_table(init: Path) -> dict[str, str]:
    """A package's ``_LAZY`` table (exported name -> submodule), read from its ``__init__.py``; {} if none."""
    for node in ast.parse(init.read_text(), str(init)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    return {}


def _imported_names(path: Path, module: str | None, is_package: bool) -> tuple[set[str], set[str]]:
    """Dotted names the file ``path`` (module ``module``; None for a script) imports anywhere in its body.

    Returns ``(names, whole)``: ``names`` holds every imported module and
    every ``from X import y`` as ``X.y`` (a submodule or an attribute);
    ``whole`` the modules bound by a bare ``import X``, whose attributes
    (lazily exported names included) may all be used.
    """
    names: set[str] = set()
    whole: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name)
                whole.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue  # a script has no package to be relative to
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names, whole


def stage_sources(stage_script: Root, root: Root = ".") -> list[Path]:
    """The source files the script ``stage_script`` runs, relative to the repository ``root``, sorted.

    The script itself and, transitively, every module of :data:`PACKAGE` it
    imports: imports inside functions count, ``from . import x`` counts,
    importing a module imports its parent packages, and a name a package
    exports lazily through its ``_LAZY`` table (``from dlgmm_core import
    build_model``) counts as importing the submodule the table names.
    Static: what a module might import, not what one run happens to import.
    """
    root = Path(root)
    start = Path(stage_script)
    if not (root / start).is_file():
        raise DlgmmError(f"{root / start}: stage script not found")
    found: dict[str, Path] = {}
    pending: list[tuple[Path, str | None, bool]] = [(start, None, False)]
    while pending:
        path, module, is_package = pending.pop()
        names, whole = _imported_names(root / path, module, is_package)
        for name in sorted(names):
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            parts = name.split(".")
            candidates = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            for candidate in candidates:
                file = _module_file(root, candidate)
                if file is None:
                    parent = candidate.rpartition(".")[0]
                    parent_file = _module_file(root, parent)
                    lazy = _lazy_table(parent_file) if parent_file and parent_file.name == "__init__.py" else {}
                    attribute = candidate.rpartition(".")[2]
                    if attribute in lazy:
                        candidates.append(f"{parent}.{lazy[attribute]}")
                    continue
                if file.name == "__init__.py" and candidate in whole:
                    candidates.extend(f"{candidate}.{sub}" for sub in _lazy_table(file).values())
                if candidate not in found:
                    found[candidate] = file.relative_to(root)
                    pending.append((file.relative_to(root), candidate, file.name == "__init__.py"))
    return sorted({start, *found.values()})
