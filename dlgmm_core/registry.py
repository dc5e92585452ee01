"""The model registry: every model kind and every params.yaml model key, declared once.

A :class:`ModelSpec` is all the package knows about one model kind: its
constructor (imported only when a model is built, so that this module, and
with it ``python -m dlgmm_core.config``, never loads torch), its keyword
arguments with the check each value must pass (:class:`Arg`), its display
name, the paper's architecture notation and sizes, the key of its published
values in :data:`dlgmm_core.report.PAPER`, and its place in the report's
tables. A :class:`ModelKey` is one ``model.<key>`` section of params.yaml: the
kind it builds, its display name, and whether the evaluation stages run on it
or it is only trained.

The config loader (:mod:`dlgmm_core.config`), :func:`dlgmm_core.build_model`
and the checkpoint loader, the evaluation stages, the report and the
benchmark all read what is registered here. :func:`register` adds a kind
(and its keys) and returns the function that removes them again. A kind
also needs its stages in ``dvc.yaml`` (the pipeline lists its models itself).
"""
from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .errors import DlgmmError

#: How KL(Kumaraswamy || Beta) can be computed (see :mod:`dlgmm_core.distributions`).
KL_METHODS = ("quadrature", "taylor")
#: What follows the first encoder layer (input -> hidden): a ReLU (the paper's text), or nothing (the authors' code).
ENCODER_ACTIVATIONS = ("relu", "linear")
#: The checks an :class:`Arg` can ask for.
CHECKS = ("integer", "positive", "choice", "per_component")
#: The ``default`` of an :class:`Arg` that has none.
REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    """One keyword argument of a model constructor and the check its value must pass.

    ``check``: ``"integer"`` (an int >= ``minimum``), ``"positive"`` (a finite
    number > 0), ``"choice"`` (one of ``choices``) or ``"per_component"`` (a
    list of 1 or n finite numbers, n the value of the argument named by
    ``length``; each > 0 when ``positive``). ``param`` is the argument's key in
    a params.yaml ``model.<key>`` section where it differs from ``name``;
    ``from_data`` marks the argument set from the data (the number of pixels)
    rather than read from params.yaml. ``default``: the value a caller of
    :func:`dlgmm_core.build_model` who omits the argument gets (params.yaml
    must set it all the same); without one the argument is required.
    """

    name: str
    check: str
    minimum: int = 1
    choices: tuple[str, ...] = ()
    positive: bool = False
    length: str = ""
    param: str = ""
    from_data: bool = False
    default: Any = REQUIRED

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"Arg {self.name!r}: check must be one of {', '.join(CHECKS)} (got {self.check!r})")
        if (self.check == "per_component") != bool(self.length):
            raise ValueError(f"Arg {self.name!r}: a per_component argument, and only one, names its length argument")

    @property
    def section_key(self) -> str:
        """The argument's key in a params.yaml ``model.<key>`` section."""
        return self.param or self.name

    def check_value(self, where: str, value: Any, components: int | None = None) -> Any:
        """``value`` normalised to a plain int, float, str or list of floats; DlgmmError naming ``where``.

        ``components`` is the value of the ``length`` argument (per_component only).
        """
        if self.check == "integer":
            if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
                raise DlgmmError(f"{where}: {self.name} must be an integer >= {self.minimum} (got {value!r})")
            return int(value)
        if self.check == "positive":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise DlgmmError(f"{where}: {self.name} must be a finite number > 0 (got {value!r})")
            return float(value)
        if self.check == "choice":
            if value not in self.choices:
                raise DlgmmError(f"{where}: {self.name} must be one of {', '.join(self.choices)} (got {value!r})")
            return str(value)
        if not isinstance(value, (list, tuple)) or len(value) not in (1, components):
            raise DlgmmError(f"{where}: {self.name} must be a list of 1 or {components} numbers, one per component "
                             f"(got {value!r})")
        out = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) \
                    or (self.positive and item <= 0):
                raise DlgmmError(f"{where}: every entry of {self.name} must be a finite number"
                                 f"{' > 0' if self.positive else ''} (got {value!r})")
            out.append(float(item))
        return out


@dataclass(frozen=True)
class ModelSpec:
    """One model kind.

    ``constructor``: ``"module:Class"``, or a function without arguments that
    imports and returns the class; it is resolved only when a model is built.
    The class takes exactly the keyword arguments ``args`` (in that order in
    error messages) and provides ``kind``, ``config``, ``latent_dim``,
    ``elbo``, ``decode``, ``embed``, ``sample_prior`` and
    ``log_importance_weights``. ``architecture`` writes a configuration (the
    constructor's keyword arguments) in the paper's notation (``500d-3x25s``);
    ``paper_sizes`` are the paper's values of the size arguments (None: not in
    the paper). ``paper_key`` names its published values in
    :data:`dlgmm_core.report.PAPER` (None: none). ``nll_row`` and ``knn_row``
    order the rows of the report's -log p(x) and kNN tables (None: after the
    numbered rows, in registration order).
    """

    kind: str
    constructor: str | Callable[[], type]
    args: tuple[Arg, ...]
    display_name: str
    architecture: Callable[[Mapping[str, Any]], str]
    paper_sizes: Mapping[str, int] | None = None
    paper_key: str | None = None
    nll_row: int | None = None
    knn_row: int | None = None

    def __post_init__(self) -> None:
        names = self.arg_names
        if len(set(names)) != len(names):
            raise ValueError(f"ModelSpec {self.kind!r}: argument names repeat ({', '.join(names)})")
        for arg in self.args:
            if arg.length and arg.length not in names:
                raise ValueError(f"ModelSpec {self.kind!r}: {arg.name} takes its length from unknown {arg.length!r}")

    @property
    def arg_names(self) -> tuple[str, ...]:
        """The constructor's keyword arguments, exactly."""
        return tuple(arg.name for arg in self.args)

    @property
    def paper_architecture(self) -> str | None:
        """The paper's architecture of this kind (``architecture`` of ``paper_sizes``), None if not in the paper."""
        return None if self.paper_sizes is None else self.architecture(self.paper_sizes)

    def model_class(self) -> type:
        """The constructor, imported now."""
        if callable(self.constructor):
            return self.constructor()
        module, _, name = self.constructor.partition(":")
        return getattr(importlib.import_module(module), name)

    def check_kwargs(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` checked against ``args`` and normalised to plain ints/floats/strs/lists, in ``args`` order.

        An argument with a ``default`` may be omitted, and then gets it.
        Raises :class:`DlgmmError` naming the missing or unknown arguments, or
        the argument with a bad value.
        """
        where = f"build_model({self.kind!r})"
        expected = self.arg_names
        missing = [arg.name for arg in self.args if arg.name not in config and arg.default is REQUIRED]
        unknown = sorted(name for name in config if name not in expected)
        if missing or unknown:
            parts = ([f"missing argument(s) {', '.join(missing)}"] if missing else []) + \
                    ([f"unknown argument(s) {', '.join(unknown)}"] if unknown else [])
            raise DlgmmError(f"{where}: {'; '.join(parts)} (expected exactly: {', '.join(expected)})")
        config = {arg.name: config.get(arg.name, arg.default) for arg in self.args}
        out: dict[str, Any] = {}
        for arg in self.args:  # per-component lists last: their length is another argument's checked value
            if arg.check != "per_component":
                out[arg.name] = arg.check_value(where, config[arg.name])
        for arg in self.args:
            if arg.check == "per_component":
                out[arg.name] = arg.check_value(where, config[arg.name], out[arg.length])
        return {name: out[name] for name in expected}

    def build(self, **config: Any) -> Any:
        """A freshly initialised model from exactly its keyword arguments (checked first)."""
        return self.model_class()(**self.check_kwargs(config))


@dataclass(frozen=True)
class ModelKey:
    """One ``model.<key>`` section of params.yaml.

    ``kind``: the registered kind it builds. ``evaluated``: whether the
    evaluation stages (marginal likelihood, kNN, t-SNE, samples) and the
    report's tables cover it; otherwise it is only trained. ``top_level`` maps
    a constructor argument to the top-level params.yaml key that sets it
    instead of the section (the DLGMM's ``components`` is ``k``).
    ``trained_on``: the datasets it is trained on, None for every dataset.
    """

    key: str
    kind: str
    display_name: str
    evaluated: bool = True
    top_level: Mapping[str, str] = field(default_factory=dict)
    trained_on: tuple[str, ...] | None = None


_SPECS: dict[str, ModelSpec] = {}
_KEYS: dict[str, ModelKey] = {}


def register(*entries: ModelSpec | ModelKey) -> Callable[[], None]:
    """Register model kinds and params.yaml model keys; return the function that removes them again.

    A :class:`ModelKey` must name a kind registered before or in the same
    call. A :class:`ModelSpec` given without a key of its kind gets one
    evaluated key named like the kind. Registration order is the order of
    :data:`MODEL_KINDS` and :data:`MODEL_KEYS`. A name already registered is
    a ``ValueError``, and then nothing is registered.
    """
    if not all(isinstance(e, (ModelSpec, ModelKey)) for e in entries):
        raise TypeError("register takes ModelSpec and ModelKey objects only")
    specs = [e for e in entries if isinstance(e, ModelSpec)]
    keys = []
    for entry in entries:  # keys in the order given, a spec's default key at the spec's place
        if isinstance(entry, ModelKey):
            keys.append(entry)
        elif not any(isinstance(e, ModelKey) and e.kind == entry.kind for e in entries):
            keys.append(ModelKey(entry.kind, entry.kind, entry.display_name))
    kinds = [s.kind for s in specs]
    for kind in kinds:
        if kind in _SPECS or kinds.count(kind) > 1:
            raise ValueError(f"model kind {kind!r} is already registered")
    names = [k.key for k in keys]
    for key in keys:
        if key.key in _KEYS or names.count(key.key) > 1:
            raise ValueError(f"model key {key.key!r} is already registered")
        if key.kind not in _SPECS and key.kind not in kinds:
            raise ValueError(f"model key {key.key!r} builds the unregistered kind {key.kind!r}")
    _SPECS.update((s.kind, s) for s in specs)
    _KEYS.update((k.key, k) for k in keys)

    def unregister() -> None:
        for key in keys:
            _KEYS.pop(key.key, None)
        for spec in specs:
            _SPECS.pop(spec.kind, None)

    return unregister


def spec(kind: str) -> ModelSpec:
    """The registered spec of ``kind`` (KeyError if none)."""
    return _SPECS[kind]


def model_key(key: str) -> ModelKey:
    """The registered params.yaml model key ``key`` (KeyError if none)."""
    return _KEYS[key]


def evaluated_keys() -> tuple[str, ...]:
    """The model keys the evaluation stages and the report's tables cover, in registration order."""
    return tuple(k for k, entry in _KEYS.items() if entry.evaluated)


def trained_keys(dataset: str) -> tuple[str, ...]:
    """The model keys trained on ``dataset`` (whose training logs the report reads), in registration order."""
    return tuple(k for k, entry in _KEYS.items() if entry.trained_on is None or dataset in entry.trained_on)


def table_rows(table: str) -> tuple[str, ...]:
    """The evaluated keys in the row order of the report's ``"nll"`` or ``"knn"`` table."""
    keys = evaluated_keys()
    rank = {key: getattr(_SPECS[_KEYS[key].kind], f"{table}_row") for key in keys}
    return tuple(sorted(keys, key=lambda k: (rank[k] is None, rank[k] or 0, keys.index(k))))


def section_kwargs(key: str, tree: Mapping[str, Any], input_dim: int) -> tuple[str, dict[str, Any]]:
    """``(kind, kwargs)`` of :func:`dlgmm_core.build_model` for ``model.<key>`` of the parameter tree ``tree``.

    Each argument is read from the section under its ``section_key``, from
    the top-level key that :attr:`ModelKey.top_level` names, or (``from_data``)
    is ``input_dim``. Section keys that are no argument are passed on as they
    are, so that :func:`dlgmm_core.build_model` names them.
    """
    entry = _KEYS[key]
    section = copy.deepcopy(tree["model"][key])
    config: dict[str, Any] = {}
    for arg in _SPECS[entry.kind].args:
        if arg.from_data:
            config[arg.name] = input_dim
        elif arg.name in entry.top_level:
            section.pop(arg.section_key, None)
            config[arg.name] = tree[entry.top_level[arg.name]]
        else:
            config[arg.name] = section.pop(arg.section_key)
    config.update(section)
    return entry.kind, config


class _LiveKinds(Sequence):
    """The registered kinds in registration order: a read-only, tuple-like view that follows :func:`register`."""

    def __getitem__(self, index):
        return tuple(_SPECS)[index]

    def __len__(self) -> int:
        return len(_SPECS)

    def __add__(self, other) -> tuple:
        return tuple(self) + tuple(other)

    def __radd__(self, other) -> tuple:
        return tuple(other) + tuple(self)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(tuple(self))


class _LiveMapping(Mapping):
    """A read-only dict-like view, recomputed from the registry on every access."""

    def __init__(self, compute: Callable[[], dict]):
        self._compute = compute

    def __getitem__(self, key):
        return self._compute()[key]

    def __iter__(self) -> Iterator:
        return iter(self._compute())

    def __len__(self) -> int:
        return len(self._compute())

    def __repr__(self) -> str:
        return repr(self._compute())


#: The registered model kinds, in registration order.
MODEL_KINDS = _LiveKinds()
#: params.yaml model key -> the kind it builds.
MODEL_KEYS = _LiveMapping(lambda: {k: entry.kind for k, entry in _KEYS.items()})
#: params.yaml model key -> its display name (the paper's names).
MODEL_NAMES = _LiveMapping(lambda: {k: entry.display_name for k, entry in _KEYS.items()})
#: model kind -> the exact keyword arguments of its constructor.
MODEL_ARGS = _LiveMapping(lambda: {kind: s.arg_names for kind, s in _SPECS.items()})


# --------------------------------------------------------------------------
# the paper's models
# --------------------------------------------------------------------------
def _common(*middle: Arg, length: str = "") -> tuple[Arg, ...]:
    """``input_dim, hidden, encoder_activation, *middle``, then the prior means and scales of ``length`` components.

    ``encoder_activation`` defaults to ``relu`` for callers of
    :func:`dlgmm_core.build_model` (the encoder of the paper's text, and of
    every checkpoint written before the argument existed).
    """
    priors = (Arg("prior_means", "per_component", length=length),
              Arg("prior_scales", "per_component", positive=True, length=length)) if length else ()
    head = (Arg("input_dim", "integer", from_data=True), Arg("hidden", "integer"),
            Arg("encoder_activation", "choice", choices=ENCODER_ACTIVATIONS, default="relu"))
    return head + middle + priors


_LATENT = Arg("latent", "integer")
_KL = (Arg("kl_method", "choice", choices=KL_METHODS, param="kl"), Arg("taylor_terms", "integer"))

register(
    ModelSpec("gauss_vae", "dlgmm_core.models.gauss_vae:GaussVAE", _common(_LATENT), "Gauss-VAE",
              lambda c: f"{c['hidden']}d-{c['latent']}s", paper_sizes={"hidden": 500, "latent": 25},
              paper_key="gauss_vae", nll_row=3, knn_row=3),
    ModelSpec("sb_vae", "dlgmm_core.models.sb_vae:StickBreakingVAE",
              _common(Arg("truncation", "integer", minimum=2), Arg("alpha0", "positive")) + _KL
              + (Arg("decoder_input", "choice", choices=("pi", "scaled_pi"), default="pi"),), "SB-VAE",
              lambda c: f"{c['hidden']}d-{c['truncation']}t", paper_sizes={"hidden": 500, "truncation": 25},
              paper_key="sb_vae", nll_row=4, knn_row=2),
    ModelSpec("dlgmm", "dlgmm_core.models.mixture:DeepLatentMixture",
              _common(_LATENT, Arg("components", "integer"), Arg("alpha", "positive"), length="components") + _KL,
              "DLGMM", lambda c: f"{c['hidden']}d-{c['components']}x{c['latent']}s",
              paper_sizes={"hidden": 500, "latent": 25, "components": 3}, paper_key="dlgmm", nll_row=1, knn_row=1),
    ModelKey("dlgmm", "dlgmm", "DLGMM", top_level={"components": "k"}),
    ModelSpec("dldpmm", "dlgmm_core.models.mixture:DeepLatentMixture",
              _common(_LATENT, Arg("truncation", "integer", minimum=2), Arg("alpha0", "positive"),
                      length="truncation") + _KL,
              "DLDPMM", lambda c: f"{c['hidden']}d-{c['truncation']}tx{c['latent']}s",
              paper_sizes={"hidden": 500, "latent": 25, "truncation": 17}, paper_key="dldpmm", nll_row=2, knn_row=4),
)
#: Figure 2a/2b: a DLGMM with its own section, trained on MNIST only, not evaluated.
register(ModelKey("qualitative", "dlgmm", "Qualitative DLGMM", evaluated=False, trained_on=("mnist",)))
