"""What the report reads: every protocol's and seed's stage outputs (checked by :mod:`dlgmm_core.results`), the
training histories, the figures it links, and the authors' logged MNIST runs.

The first protocol of params.yaml's ``protocols`` is the headline, and the
first of its ``seeds`` the run the single-run tables and figures show: each
input of the headline's first seed is required, and a missing one is a
DlgmmError naming the file and the stage to run. Any other run's inputs may be
missing in whole or in part: its stages are then listed in ``not_run`` and its
cells read "not run".
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import authors_logs, layout
from ..history import RunHistory, read_history
from ..params.stage import DATASETS, Params
from ..errors import DlgmmError
from ..io import read_json
from ..results import (Clusters, ComponentShapes, Knn, MarginalLikelihood, PerImage, cluster_result,
                       component_shapes, per_image_path)
from .paper import AUTHORS, registered_models


@dataclass
class ProtocolInputs:
    """What one protocol's stages wrote with one seed, keyed ``[dataset][model]``; an input not run is absent.

    ``figures`` are paths relative to ``reports/``: ``tsne[model]``,
    ``samples[(dataset, model)]`` and ``qualitative[component - 1]`` (None for
    a component grid not made). ``not_run`` lists the stages whose outputs are
    missing, in reading order, each once.

    The per-image results beside the results (:class:`dlgmm_core.results.PerImage`), where they were written
    (never required: results written before they existed have none): ``nll_per_image[(dataset, model)]``, each
    test image's -log p(x) by the result's headline estimator; ``knn_per_image[(dataset, model)][k]`` and
    ``clusters_per_image[model][space]`` (``map``, ``latent``), whether each test image or map point was
    misclassified (1) or not (0).
    """

    nll: dict[str, dict[str, MarginalLikelihood]] = field(default_factory=lambda: {d: {} for d in DATASETS})
    knn: dict[str, dict[str, Knn]] = field(default_factory=lambda: {d: {} for d in DATASETS})
    logs: dict[str, dict[str, RunHistory]] = field(default_factory=lambda: {d: {} for d in DATASETS})
    tsne: dict[str, Path] = field(default_factory=dict)
    samples: dict[tuple[str, str], Path] = field(default_factory=dict)
    qualitative: list[Path | None] = field(default_factory=list)
    clusters: dict[str, Clusters] = field(default_factory=dict)
    shapes: ComponentShapes | None = None
    not_run: list[str] = field(default_factory=list)
    nll_per_image: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    knn_per_image: dict[tuple[str, str], dict[int, np.ndarray]] = field(default_factory=dict)
    clusters_per_image: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass
class Inputs:
    """Everything the report reads, per protocol in the order of ``params.yaml``'s ``protocols`` (headline first)
    and per seed in the order of its ``seeds``, and the authors' logged MNIST runs
    (:mod:`dlgmm_core.authors_logs`) when protocol ``authors`` is listed.

    ``runs[protocol][seed]``: every run; ``protocols[protocol]``: its first seed's run, the one the single-run
    tables and figures show.
    """

    runs: dict[str, dict[int, ProtocolInputs]]
    authors_logs: dict[str, authors_logs.AuthorsLog] = field(default_factory=dict)

    @property
    def protocols(self) -> dict[str, ProtocolInputs]:
        """Each protocol's first-seed inputs."""
        return {name: next(iter(by_seed.values())) for name, by_seed in self.runs.items()}

    @property
    def seeds(self) -> list[int]:
        """The seeds, in params.yaml's order."""
        return list(next(iter(self.runs.values())))

    @property
    def headline(self) -> str:
        """The first protocol of the list, whose inputs are all present."""
        return next(iter(self.protocols))

    def training_logs(self, protocol: str, dataset: str) -> dict[int, dict[str, RunHistory]]:
        """Every seed's finished training histories of ``protocol`` on ``dataset``: ``{seed: {model: history}}``
        in the order of the seeds, a seed with none (not run yet, or still training) left out."""
        return {seed: run.logs[dataset] for seed, run in self.runs[protocol].items() if run.logs[dataset]}



def training_log_files(protocol: str, seed: int, dataset: str, model: str, root: Path) -> list[Path]:
    """The files of one training's history: its summary, then its train and valid ELBO curves."""
    return [layout.train_metrics(protocol, seed, dataset, model, root)] + [
        layout.train_curve(protocol, seed, dataset, model, split, root) for split in ("train", "valid")]


def read_training_log(protocol: str, seed: int, dataset: str, model: str, root: Path, hint: str) -> RunHistory:
    """One training's dvclive history (``logs/<protocol>/seed-<seed>/<dataset>/<model>/``): the report's only reader
    of it."""
    return read_history(layout.train_logs(protocol, seed, dataset, model, root), hint)


class _Reader:
    """Reads one protocol's inputs with one seed into a :class:`ProtocolInputs`. ``required``: a missing file is a DlgmmError;
    otherwise its stage is recorded in ``not_run`` and the input left out (a file that exists is checked either
    way)."""

    def __init__(self, root: Path, protocol: str, seed: int, required: bool):
        self.root, self.protocol, self.seed, self.required = root, protocol, seed, required
        self.out = ProtocolInputs()

    def present(self, paths: list[Path], stage: str) -> bool:
        if self.required or all(path.is_file() for path in paths):
            return True
        if stage not in self.out.not_run:
            self.out.not_run.append(stage)
        return False

    def figure(self, path: Path, stage: str) -> Path | None:
        if not self.present([path], stage):
            return None
        if not path.is_file():
            raise DlgmmError(f"{path}: figure not found; run `dvc repro {stage}`")
        return path.relative_to(layout.reports_dir(self.root))

    @staticmethod
    def per_image(result: Path, kind: str, stage: str) -> dict[str, np.ndarray] | None:
        """The arrays of the per-image file beside ``result``; None where none was written."""
        path = per_image_path(result)
        return PerImage.read(path, kind, f"run `dvc repro {stage}`").arrays if path.is_file() else None

    def results(self, dataset: str, model: str) -> None:
        run, root, out = (self.protocol, self.seed), self.root, self.out
        path, stage = layout.nll_result(*run, dataset, model, root), layout.nll_stage(*run, dataset, model)
        if self.present([path], stage):
            out.nll[dataset][model] = result = MarginalLikelihood.read(path, f"run `dvc repro {stage}`")
            arrays = self.per_image(path, "nll", stage)
            if arrays is not None:
                if result.headline not in arrays:
                    raise DlgmmError(f"{per_image_path(path)}: no per-image values of the headline estimator "
                                     f"'{result.headline}'; run `dvc repro {stage}`")
                out.nll_per_image[(dataset, model)] = arrays[result.headline]
        path, stage = layout.knn_result(*run, dataset, model, root), layout.knn_stage(*run, dataset, model)
        if self.present([path], stage):
            out.knn[dataset][model] = Knn.read(path, f"run `dvc repro {stage}`")
            arrays = self.per_image(path, "knn", stage)
            if arrays is not None:
                labels = arrays["labels"]
                out.knn_per_image[(dataset, model)] = {int(name[1:]): (predicted != labels).astype(np.int8)
                                                       for name, predicted in arrays.items() if name != "labels"}

    def training(self, dataset: str, model: str) -> None:
        stage = layout.train_stage(self.protocol, self.seed, dataset, model)
        files = training_log_files(self.protocol, self.seed, dataset, model, self.root)
        if not self.present(files, stage):
            return
        log = read_training_log(self.protocol, self.seed, dataset, model, self.root, f"run `dvc repro {stage}`")
        if log.finished:
            self.out.logs[dataset][model] = log
        elif self.required:
            raise DlgmmError(f"{files[0]}: training has not finished (no final summary); run `dvc repro {stage}`")
        elif stage not in self.out.not_run:
            self.out.not_run.append(stage)

    def tsne(self, model: str) -> None:
        stage = layout.tsne_stage(self.protocol, self.seed, model)
        path = self.figure(layout.tsne_figure(self.protocol, self.seed, "mnist", model, self.root), stage)
        if path is None:
            return
        self.out.tsne[model] = path
        clusters = cluster_result(self.protocol, self.seed, "mnist", model, self.root)
        if self.present([clusters], stage):
            read = Clusters.read(clusters, f"run `dvc repro {stage}`")
            if read.clusters is not None:
                self.out.clusters[model] = read
            arrays = self.per_image(clusters, "clusters", stage)
            if arrays is not None and (arrays["labels"] >= 0).all():  # -1: a map of unlabelled data
                self.out.clusters_per_image[model] = {space: (arrays[space] != arrays["labels"]).astype(np.int8)
                                                      for space in ("map", "latent")}

    def qualitative(self, components: int) -> None:
        stage = layout.samples_stage(self.protocol, self.seed, "mnist", "qualitative")
        self.out.qualitative = [self.figure(layout.qualitative_figure(self.protocol, self.seed, k, self.root), stage)
                                for k in range(1, components + 1)]
        shapes = component_shapes(self.protocol, self.seed, self.root)
        if all(self.out.qualitative) and self.present([shapes], stage):
            self.out.shapes = ComponentShapes.read(shapes, f"run `dvc repro {stage}`", components)


def _read_run(root: Path, params: Params, protocol: str, seed: int, required: bool) -> ProtocolInputs:
    """One protocol's inputs with one seed, in the order their stages are named in ``not_run``."""
    reader = _Reader(root, protocol, seed, required)
    for dataset in DATASETS:
        for model in registered_models():
            reader.results(dataset, model)
        for model in registered_models(dataset):
            reader.training(dataset, model)
    for model in registered_models():
        reader.tsne(model)
    for dataset in DATASETS:
        for model in registered_models():
            path = reader.figure(layout.samples_figure(protocol, seed, dataset, model, root),
                                 layout.samples_stage(protocol, seed, dataset, model))
            if path is not None:
                reader.out.samples[(dataset, model)] = path
    reader.qualitative(int(params.tree["model"]["qualitative"]["components"]))
    return reader.out


def read_inputs(root: str | os.PathLike, params: Params) -> Inputs:
    """Read the inputs of every protocol and seed under ``root`` (the repository).

    The headline (first) protocol's with the first seed are required: DlgmmError naming a missing file.
    """
    root = Path(root)
    names, seeds = list(params.tree["protocols"]), list(params.tree["seeds"])
    logs = {model: authors_logs.read(model) for model in authors_logs.SOURCES} if AUTHORS in names else {}
    return Inputs({name: {seed: _read_run(root, params, name, seed, required=(name, seed) == (names[0], seeds[0]))
                          for seed in seeds}
                   for name in names}, logs)
