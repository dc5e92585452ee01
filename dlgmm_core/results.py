"""The evaluation stages' output formats, one owner each: a dataclass per result with its ``write`` and checked
``read``.

The stage that computes a result writes it with ``write`` and the report reads
it back with ``read``; nothing else spells a key of these files. Each file is
indented, key-sorted JSON (:func:`dlgmm_core.io.write_json`), and ``read``
stops with one DlgmmError line naming the file and the key at fault.

- :class:`MarginalLikelihood`: ``reports/nll/<protocol>/<dataset>/<model>.json`` (Figure 3b);
- :class:`Knn`: ``reports/knn/<protocol>/<dataset>/<model>.json`` (Figure 3a);
- :class:`Clusters`: ``reports/figures/tsne/<protocol>/<dataset>_<model>.json`` (Figure 2c/2d in numbers);
- :class:`ComponentShapes`: ``reports/figures/qualitative/<protocol>/components.json`` (Figure 2a/2b in numbers).

The training history (dvclive's ``logs/...``) is written by the training loop and read by the report's
:func:`dlgmm_core.report.inputs.read_training_log`.
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DlgmmError
from .io import read_json, save_npz, write_json
from .layout import Root, qualitative_dir, tsne_figure

#: The file of the component grids' measurements, in the folder of the grids.
COMPONENT_SHAPES = "components.json"


def cluster_result(protocol: str, seed: int, dataset: str, model: str, root: Root = ".") -> Path:
    """``reports/figures/tsne/<protocol>/seed-<seed>/<dataset>_<model>.json``: how the t-SNE map beside it clusters
    by class."""
    return tsne_figure(protocol, seed, dataset, model, root).with_suffix(".json")


def component_shapes(protocol: str, seed: int, root: Root = ".") -> Path:
    """``reports/figures/qualitative/<protocol>/seed-<seed>/components.json``: the width and ink of each component's
    samples."""
    return qualitative_dir(protocol, seed, root) / COMPONENT_SHAPES


def _number(value: object, key: str, path: Path, stage: str = "its stage") -> float:
    """``value`` as a float; DlgmmError naming ``path`` and ``key`` unless it is a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DlgmmError(f"{path}: '{key}' must be a finite number (got {value!r}); run {stage} again")
    return float(value)


@dataclass(frozen=True)
class MarginalLikelihood:
    """The marginal-likelihood stage's result (:func:`dlgmm_core.evaluation.marginal_likelihood`, Eq. 7 of the
    paper by importance sampling): the headline estimator's ``nll`` ± ``nll_se`` (nats), both estimators' entries
    (``ours``: ``nll``, ``nll_se``, ``samples``; ``authors``: the same and ``dropped_draws``), the test ``elbo``,
    ``bounds`` (``{"s": -mean IWAE bound}``), ``samples`` (S), ``examples``, ``kl_method`` and ``seconds``."""

    nll: float
    nll_se: float
    headline: str
    elbo: float
    bounds: dict[str, float]
    samples: int
    examples: int
    ours: dict[str, Any]
    authors: dict[str, Any]
    kl_method: str | None = None
    seconds: float | None = None

    KEYS = ("nll", "nll_se", "headline", "elbo", "bounds", "samples", "examples", "ours", "authors")
    #: The keys of the two estimators' entries, all numbers.
    ESTIMATOR_KEYS = {"ours": ("nll", "nll_se", "samples"), "authors": ("nll", "nll_se", "samples", "dropped_draws")}

    def write(self, path: str | os.PathLike) -> None:
        data = {key: getattr(self, key) for key in self.KEYS + ("kl_method",)}
        write_json(path, data if self.seconds is None else {**data, "seconds": self.seconds})

    @classmethod
    def read(cls, path: str | os.PathLike, hint: str) -> MarginalLikelihood:
        path = Path(path)
        data = read_json(path, hint)
        stage = "its marginal_likelihood stage"
        for key in cls.KEYS:
            if key not in data:
                raise DlgmmError(f"{path}: missing key '{key}'; run {stage} again")
        for key in ("nll", "nll_se", "elbo"):
            _number(data[key], key, path)
        for estimator, keys in cls.ESTIMATOR_KEYS.items():
            entry = data[estimator]
            for key in keys:
                if not isinstance(entry, dict) or key not in entry:
                    raise DlgmmError(f"{path}: missing key '{estimator}.{key}'; run {stage} again")
                _number(entry[key], f"{estimator}.{key}", path)
        return cls(**{key: data[key] for key in cls.KEYS}, kl_method=data.get("kl_method"),
                   seconds=data.get("seconds"))


@dataclass(frozen=True)
class Knn:
    """The kNN stage's result (Figure 3a): test error (%) per k on one latent sample per image (``errors``), the
    labelled and test set sizes, and ``sensitivity`` (the same errors on fewer labelled images and with the mean of
    ``draws`` draws as the embedding: ``{"draws", "sample": {N: {k: error}}, "mean": {...}}``)."""

    errors: dict[int, float]
    train_examples: int | None = None
    test_examples: int | None = None
    sensitivity: dict[str, Any] = field(default_factory=dict)

    def error(self, k: int) -> float | None:
        return self.errors.get(k)

    def write(self, path: str | os.PathLike) -> None:
        write_json(path, {**{f"error@{k}": e for k, e in self.errors.items()},
                          "train_examples": self.train_examples, "test_examples": self.test_examples,
                          "sensitivity": self.sensitivity})

    @classmethod
    def read(cls, path: str | os.PathLike, hint: str) -> Knn:
        path = Path(path)
        data = read_json(path, hint)
        errors = {int(key.split("@", 1)[1]): _number(value, key, path, "its knn stage")
                  for key, value in data.items() if key.startswith("error@")}
        if not errors:
            raise DlgmmError(f"{path}: no 'error@<k>' entries; run its knn stage again")
        sensitivity = data.get("sensitivity")
        return cls(errors, data.get("train_examples"), data.get("test_examples"),
                   sensitivity if isinstance(sensitivity, dict) else {})


@dataclass(frozen=True)
class Clusters:
    """The t-SNE stage's measurement of its map (:func:`dlgmm_core.evaluation.cluster_errors`): ``points``,
    ``latent_dim``, ``perplexity`` and ``clusters`` (``neighbors``, ``map_error``, ``latent_error`` in %; None
    without labels)."""

    points: int
    latent_dim: int | None = None
    perplexity: float | None = None
    clusters: dict[str, float] | None = None

    def write(self, path: str | os.PathLike) -> None:
        write_json(path, {"points": self.points, "latent_dim": self.latent_dim, "perplexity": self.perplexity,
                          "clusters": self.clusters})

    @classmethod
    def read(cls, path: str | os.PathLike, hint: str) -> Clusters:
        path = Path(path)
        data = read_json(path, hint)
        clusters = data.get("clusters")
        if clusters is not None:
            for key in ("neighbors", "map_error", "latent_error"):
                _number(clusters.get(key) if isinstance(clusters, dict) else None, f"clusters.{key}", path)
        return cls(int(_number(data.get("points"), "points", path)), data.get("latent_dim"), data.get("perplexity"),
                   clusters)


@dataclass(frozen=True)
class ComponentShapes:
    """The qualitative model's component grids in numbers (Figure 2a/2b): per component (from 1) its
    ``prior_mean``, ``images``, mean ``width`` ± ``width_se`` and ``ink`` (px) at ``ink_level``, and where the
    data carry labels its ``classes`` (images per digit) by the pixel-space ``classifier`` (``neighbors``,
    ``train_images``, ``test_images``, ``test_error``)."""

    ink_level: float
    components: list[dict[str, Any]]
    classifier: dict[str, Any] | None = None

    def write(self, path: str | os.PathLike) -> None:
        classifier = {} if self.classifier is None else {"classifier": self.classifier}
        write_json(path, {"ink_level": self.ink_level, **classifier, "components": self.components})

    @classmethod
    def read(cls, path: str | os.PathLike, hint: str, components: int) -> ComponentShapes:
        """The file's shapes, which must describe ``components`` components."""
        path = Path(path)
        data = read_json(path, hint)
        stage = "its samples_qualitative stage"
        shapes = data.get("components")
        if not isinstance(shapes, list) or len(shapes) != components:
            raise DlgmmError(f"{path}: expected 'components', one entry for each of the {components} components; "
                             f"run {stage} again")
        for entry in shapes:
            for key in ("prior_mean", "images", "width", "width_se", "ink"):
                _number(entry.get(key) if isinstance(entry, dict) else None, f"components[].{key}", path, stage)
        ink_level = _number(data.get("ink_level"), "ink_level", path, stage)
        if not any("classes" in entry for entry in shapes):
            return cls(ink_level, shapes)
        classifier = data.get("classifier")
        for key in ("neighbors", "train_images", "test_images", "test_error"):
            _number(classifier.get(key) if isinstance(classifier, dict) else None, f"classifier.{key}", path, stage)
        for entry in shapes:
            counts = entry.get("classes")
            if (not isinstance(counts, list) or len(counts) < 10
                    or sum(_number(c, "components[].classes[]", path, stage) for c in counts) != entry["images"]):
                raise DlgmmError(f"{path}: components[].classes must count every image of its component by digit; "
                                 f"run {stage} again")
        return cls(ink_level, shapes, classifier)


def per_image_path(result: str | os.PathLike) -> Path:
    """The per-image file beside a result file: ``<result>.npz`` for ``<result>.json``."""
    return Path(result).with_suffix(".npz")


@dataclass(frozen=True)
class PerImage:
    """One evaluation's value for each test image (or t-SNE point), in test-set order, beside its result file:
    the paired comparisons of the claims need two models' values on the same images.

    The arrays (:data:`FORMATS`) are stored compressed in ``<result>.npz``
    (git-tracked, so that a clone without the DVC cache can compare models):

    - ``nll``: ``ours`` and ``authors``, -log p(x) in nats of each test image by
      each estimator (float32: rounding below 1e-5 relative, far below the
      Monte Carlo error of either estimator);
    - ``knn``: ``labels`` and ``k<k>`` for each k, the class the kNN classifier
      on one latent sample gives each test image with the whole labelled set;
    - ``clusters``: ``labels``, ``map`` and ``latent``, the class the
      leave-one-out classifier gives each point in the t-SNE map and in the
      latent space.
    """

    kind: str
    arrays: dict[str, np.ndarray]

    #: kind -> the arrays' dtypes by name (a name ending in ``*`` stands for any suffix: ``k*``).
    FORMATS = {"nll": {"ours": np.float32, "authors": np.float32},
               "knn": {"labels": np.int8, "k*": np.int8},
               "clusters": {"labels": np.int8, "map": np.int8, "latent": np.int8}}

    def __post_init__(self) -> None:
        if self.kind not in self.FORMATS:
            raise ValueError(f"per-image results: unknown kind {self.kind!r}; known: {', '.join(self.FORMATS)}")

    @classmethod
    def _dtype(cls, kind: str, name: str):
        formats = cls.FORMATS[kind]
        return formats.get(name, formats.get(name[:1] + "*") if name[1:].isdigit() else None)

    def write(self, path: str | os.PathLike) -> None:
        """The arrays, each in its format's dtype, compressed, atomically."""
        lengths = {np.shape(a)[0] for a in self.arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"per-image results of different lengths: {sorted(lengths)}")
        out = {}
        for name, array in self.arrays.items():
            dtype = self._dtype(self.kind, name)
            if dtype is None:
                raise ValueError(f"per-image {self.kind} results have no array {name!r}")
            out[name] = np.asarray(array).astype(dtype)
        save_npz(path, **out)

    @classmethod
    def read(cls, path: str | os.PathLike, kind: str, hint: str) -> PerImage:
        """The arrays of ``path``; DlgmmError naming the file unless each is a 1-d array of its format, all of one
        length, and every fixed name is there."""
        path = Path(path)
        if not path.is_file():
            raise DlgmmError(f"{path}: not found; {hint}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DlgmmError(f"{path}: not a readable .npz ({err}); {hint}") from None
        required = [name for name in cls.FORMATS[kind] if not name.endswith("*")]
        missing = [name for name in required if name not in arrays]
        if missing:
            raise DlgmmError(f"{path}: missing array(s) {', '.join(missing)}; {hint}")
        for name, array in arrays.items():
            dtype = cls._dtype(kind, name)
            if dtype is None or array.dtype != dtype or array.ndim != 1:
                raise DlgmmError(f"{path}: '{name}' must be a 1-d {np.dtype(dtype).name if dtype else 'known'} "
                                 f"array (found {array.dtype} of shape {array.shape}); {hint}")
        if len({a.shape[0] for a in arrays.values()}) != 1:
            raise DlgmmError(f"{path}: the arrays differ in length; {hint}")
        return cls(kind, arrays)
