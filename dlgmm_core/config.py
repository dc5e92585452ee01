"""The one loader of ``params.yaml``: typed, validated, with the key named in every error.

Every stage calls :func:`load_params` and reads only its own sections through
the accessors of :class:`Params`. Validation happens here, before any work
starts, so a bad value stops a stage with one message such as
``params.yaml: train.lr must be > 0 (got -1)``.

Protocols: ``protocol.<name>`` holds, as a tree mirroring the sections
(``protocol.<name>.train.patience``), the settings in which the paper's text
and the authors' code differ; ``protocols`` lists the ones the pipeline runs.
Loading merges one protocol's tree into its sections (which must not set
the same keys), then applies the ``quick`` overrides, then validates. Every
defined protocol is validated, and an error names a key where params.yaml
writes it (``protocol.authors.train.patience``, ``quick.train.max_epochs``).
A key that validation does not read is unknown and refused, with the nearest
known key suggested.

The file is read as YAML 1.2, as DVC reads it (``1e-3`` is a number, ``yes``
a string), by :func:`read_yaml` and :func:`parse_yaml` only.
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import registry
from .errors import DlgmmError
# The model kinds, and the model keys of params.yaml's ``model`` section with the kind each builds, come
# from the model registry (live views: a kind registered later is listed too).
from .registry import KL_METHODS, MODEL_KEYS, MODEL_KINDS

DATASETS = ("mnist", "omniglot")
BUDGETS = ("paper", "quick")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("float32", "bf16")
#: The estimators ``eval.marginal_likelihood.headline`` can choose for the report's -log p(x): the
#: authors' (``authors_samples`` draws, component index sampled) or this package's (``samples``, index summed out).
HEADLINES = ("authors", "ours")
INPUT_DIM = 784

_MISSING = object()
_SOURCE = "params.yaml"

#: Keys of the data sections that only the prepare stage reads, and checks for the source in use; validation
#: reads them too (without checks) so that they are known keys. The two pin maps hold one entry per file name,
#: keys of free form.
PREPARE_KEYS = (
    "data.mnist.wheel.package", "data.mnist.wheel.version", "data.mnist.wheel.filename", "data.mnist.wheel.sha256",
    "data.mnist.wheel.member", "data.mnist.amat.url", "data.mnist.amat.sha256",
    "data.omniglot.chardata.url", "data.omniglot.chardata.sha256", "data.omniglot.lake.urls",
    "data.omniglot.known_sha256",
)


def parse_yaml(text: str, source: str = _SOURCE) -> Any:
    """``text`` read as DVC reads params.yaml (YAML 1.2, ruamel.yaml's safe loader), in plain Python types.

    Raises :class:`DlgmmError` naming ``source`` if ``text`` is not valid YAML.
    """
    from ruamel.yaml import YAML, YAMLError

    try:
        return _plain(YAML(typ="safe", pure=True).load(text))
    except YAMLError as err:
        detail = " ".join(str(err).split())
        raise DlgmmError(f"{source}: not valid YAML ({detail})") from None


def read_yaml(path: str | Path) -> Any:
    """The YAML file ``path`` read by :func:`parse_yaml`; a missing file is a :class:`DlgmmError` naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DlgmmError(f"{path}: file not found") from None
    return parse_yaml(text, str(path))


def _plain(value: Any) -> Any:
    """``value`` with every mapping a dict, every sequence a list and every str, bool, int or float of its base type."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    for kind in (str, bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _did_you_mean(key: str, known: dict[str, str]) -> str:
    """``" (did you mean <key>?)"`` for the entry of ``known`` (lookup key -> the key to show) nearest ``key``, else ``""``.

    Case is ignored (``K`` is nearest ``k``).
    """
    lowered = {str(candidate).lower(): shown for candidate, shown in known.items()}
    match = difflib.get_close_matches(str(key).lower(), list(lowered), n=1)
    return f" (did you mean {lowered[match[0]]}?)" if match else ""


class ParamReader:
    """Typed reads from a raw parameter tree, each error naming its key.

    ``tree`` is the whole params.yaml tree, or one of its sections with
    ``prefix`` its dotted key (``data.mnist``): keys are read relative to
    ``tree`` and named in full in every error. ``origins`` maps a full dotted
    key of ``tree`` to the key params.yaml writes its value at, where the two
    differ (a protocol's or a ``quick`` override's value); errors name that.
    ``read`` collects every key read (relative, present or not): after a
    validation, the known keys.
    """

    def __init__(self, tree: dict, source: str = _SOURCE, prefix: str = "", origins: dict[str, str] | None = None):
        self.tree = tree
        self.source = source
        self.prefix = f"{prefix}." if prefix else ""
        self.origins = origins or {}
        self.read: set[str] = set()

    def written_at(self, key: str) -> str:
        """The full key that params.yaml writes ``key`` (relative, maybe indexed: ``x[0]``) at."""
        full, bracket, index = f"{self.prefix}{key}".partition("[")
        return self.origins.get(full, full) + bracket + index

    def fail(self, key: str, problem: str, value: Any) -> DlgmmError:
        return DlgmmError(f"{self.source}: {self.written_at(key)} {problem} (got {value!r})")

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self.read.add(key)
        node: Any = self.tree
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not _MISSING:
                    return default
                raise DlgmmError(f"{self.source}: missing key {self.prefix}{key}")
            node = node[part]
        return node

    def typed(self, key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        """The value at ``key``, which must be an instance of ``kind`` (a bool is no number).

        A null reads as ``""`` when ``kind`` is ``str``.
        """
        value = self.raw(key, default)
        if value is None and kind is str:
            return ""
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be a {name}", value)
        return value

    def integer(self, key: str, minimum: int | None = None, optional: bool = False, default: Any = _MISSING) -> int | None:
        value = self.raw(key, default)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be an integer" + (" or null" if optional else ""), value)
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum}", value)
        return value

    def number(self, key: str, positive: bool = False, default: Any = _MISSING) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, "must be a number", value)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(key, "must be finite", value)
        if positive and value <= 0:
            raise self.fail(key, "must be > 0", value)
        return float(value)

    def choice(self, key: str, options: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}", value)
        return value

    def string(self, key: str, default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", value)
        return value

    def numbers(self, key: str, positive: bool = False, min_len: int = 1) -> list[float]:
        value = self.raw(key)
        if not isinstance(value, list) or len(value) < min_len:
            raise self.fail(key, f"must be a list of at least {min_len} number(s)", value)
        out = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (int, float)) or item != item:
                raise self.fail(f"{key}[{index}]", "must be a number", item)
            if positive and item <= 0:
                raise self.fail(f"{key}[{index}]", "must be > 0", item)
            out.append(float(item))
        return out


def _apply_overrides(tree: dict, overrides: dict, source: str, origins: dict[str, str], apply: bool = True) -> None:
    """Apply ``{"train.max_epochs": 3, ...}`` onto ``tree`` (if ``apply``); every key must already exist.

    An unknown key is refused whether or not the overrides apply, with the
    nearest key of ``tree`` suggested. Records each overridden key in
    ``origins`` as written at ``quick.<key>``.
    """
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        node = tree
        for part in parts[:-1]:
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if not isinstance(node, dict) or parts[-1] not in node:
            keys = {key: key for key in _leaf_keys(tree) if key.split(".")[0] not in ("protocol", "quick")}
            raise DlgmmError(f"{source}: quick.{dotted} overrides an unknown key {dotted}{_did_you_mean(dotted, keys)}")
        if apply:
            node[parts[-1]] = value
            origins[str(dotted)] = f"quick.{dotted}"


def _protocol_names(c: ParamReader) -> list[str]:
    """``protocols``, checked: a non-empty list of distinct names, each a mapping defined under ``protocol``."""
    definitions = c.raw("protocol")
    if not isinstance(definitions, dict) or not definitions:
        raise c.fail("protocol", "must be a mapping of protocol names to their settings", definitions)
    for name, definition in definitions.items():
        if not isinstance(definition, dict):
            raise c.fail(f"protocol.{name}", "must be a mapping of sections to settings", definition)
    names = c.raw("protocols")
    if not isinstance(names, list) or not names:
        raise c.fail("protocols", "must be a non-empty list of protocol names", names)
    for index, name in enumerate(names):
        if not isinstance(name, str) or name not in definitions:
            raise c.fail(f"protocols[{index}]", f"must name a protocol defined under protocol "
                                                f"({', '.join(map(str, definitions))})", name)
        if names.index(name) != index:
            raise c.fail(f"protocols[{index}]", "repeats a protocol", name)
    return names


def _leaf_paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    """The key path of every non-mapping value (or empty mapping) in ``tree``."""
    paths = []
    for key, value in tree.items():
        path = (*prefix, key)
        paths.extend(_leaf_paths(value, path) if isinstance(value, dict) and value else [path])
    return paths


def _leaf_keys(tree: dict) -> list[str]:
    """The dotted keys of every non-mapping value (or empty mapping) in ``tree``."""
    return [".".join(map(str, path)) for path in _leaf_paths(tree)]


def _check_protocols_set_the_same_keys(definitions: dict, source: str) -> None:
    """Every protocol is a complete set of the same settings: the keys of the first, no more, no fewer."""
    (first, reference), *others = definitions.items()
    expected = _leaf_keys(reference)
    for name, definition in others:
        keys = _leaf_keys(definition)
        for key in expected:
            if key not in keys:
                raise DlgmmError(f"{source}: protocol.{name} does not set {key}, which protocol.{first} sets "
                                 f"(every protocol sets the same keys)")
        for key in keys:
            if key not in expected:
                raise DlgmmError(f"{source}: protocol.{name}.{key} is not set by protocol.{first} "
                                 f"(every protocol sets the same keys)")


def _merge_protocol(tree: dict, name: str, source: str) -> dict[str, str]:
    """Merge ``protocol.<name>`` into the sections of ``tree`` (in place); return the keys it set, as origins.

    A protocol adds keys to existing sections only: a key its section
    already sets (a setting lives in one place), a section that does not
    exist, or a value at the top level is an error naming the keys.
    """
    origins: dict[str, str] = {}

    def merge(section: dict, settings: dict, path: str) -> None:
        for key, value in settings.items():
            dotted = f"{path}{key}"
            written = f"protocol.{name}.{dotted}"
            if not path and not isinstance(value, dict):
                raise DlgmmError(f"{source}: {written} must be a mapping mirroring a section of {source} "
                                 f"(got {value!r})")
            if isinstance(value, dict) and not (key in section and isinstance(section[key], dict)):
                if key in section:
                    raise DlgmmError(f"{source}: {written} is also set as {dotted}; a setting lives in one place")
                raise DlgmmError(f"{source}: {written} sets keys of {dotted}, a section that does not exist")
            if isinstance(value, dict):
                merge(section[key], value, f"{dotted}.")
            elif key in section:
                raise DlgmmError(f"{source}: {written} is also set as {dotted}; a setting lives in one place")
            else:
                section[key] = copy.deepcopy(value)
                origins[dotted] = written

    merge(tree, tree["protocol"][name], "")
    return origins


@dataclass(frozen=True)
class Params:
    """Validated parameters of one protocol.

    ``tree`` is the effective tree: protocol ``protocol``'s settings merged
    into their sections, then the quick overrides applied.
    """

    tree: dict
    source: str
    protocol: str

    # --- top level -------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.tree["seed"]

    @property
    def budget(self) -> str:
        return self.tree["budget"]

    @property
    def k(self) -> int:
        return self.tree["k"]

    @property
    def protocols(self) -> list[str]:
        """The protocols the pipeline runs; the first is the report's headline."""
        return list(self.tree["protocols"])

    # --- sections --------------------------------------------------------
    def data(self, dataset: str) -> dict:
        """The ``data.<dataset>`` section."""
        check_dataset(dataset, self.source)
        return copy.deepcopy(self.tree["data"][dataset])

    def model_config(self, key: str) -> tuple[str, dict]:
        """``(kind, kwargs)`` for :func:`dlgmm_core.build_model` of the model key ``key``.

        The section maps to the kwargs as its registry entry says
        (:func:`dlgmm_core.registry.section_kwargs`): ``input_dim`` is
        :data:`INPUT_DIM`, ``kl`` is ``kl_method``, and for the DLGMM the number
        of components is the top-level ``k``.
        """
        check_model_key(key, self.source)
        return registry.section_kwargs(key, self.tree, INPUT_DIM)

    @property
    def train(self) -> dict:
        return copy.deepcopy(self.tree["train"])

    @property
    def eval(self) -> dict:
        return copy.deepcopy(self.tree["eval"])


def check_dataset(name: str, source: str = _SOURCE) -> str:
    if name not in DATASETS:
        raise DlgmmError(f"{source}: unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return name


def check_model_key(name: str, source: str = _SOURCE) -> str:
    if name not in MODEL_KEYS:
        raise DlgmmError(f"{source}: unknown model {name!r}; known: {', '.join(MODEL_KEYS)}")
    return name


#: Optional keys of a ``train`` section, with their defaults (library callers may omit them).
TRAIN_DEFAULTS = {"max_train_examples": None, "max_valid_examples": None, "device": "auto", "threads": 1,
                  "precision": "float32", "compile": False}


def _validate_train(c: ParamReader) -> None:
    c.number("train.lr", positive=True)
    c.integer("train.batch_size", minimum=1)
    c.integer("train.patience", minimum=1)
    c.integer("train.max_epochs", minimum=1)
    c.integer("train.max_train_examples", minimum=1, optional=True)
    c.integer("train.max_valid_examples", minimum=1, optional=True)
    c.choice("train.device", DEVICES)
    c.integer("train.threads", minimum=1)
    c.choice("train.precision", PRECISIONS)
    c.typed("train.compile", bool)


def validate_train(section: dict, source: str = "train config") -> dict:
    """A ``train`` section checked on its own (for callers of the training loop without a params file).

    Returns a copy with :data:`TRAIN_DEFAULTS` filled in.
    """
    tree = {"train": {**TRAIN_DEFAULTS, **copy.deepcopy(section)}}
    _validate_train(ParamReader(tree, source))
    return tree["train"]


def _validate_model(c: ParamReader, key: str) -> None:
    """``model.<key>`` through its registry spec: every argument's check, per-component lists last.

    An argument set by a top-level key (the DLGMM's ``components``: ``k``) is
    checked, and named, at that key.
    """
    entry = registry.model_key(key)
    checked: dict[str, Any] = {}
    for arg in registry.spec(entry.kind).args:
        name = entry.top_level.get(arg.name) or f"model.{key}.{arg.section_key}"
        if arg.from_data or arg.check == "per_component":
            continue
        if arg.check == "integer":
            checked[arg.name] = c.integer(name, minimum=arg.minimum)
        elif arg.check == "positive":
            c.number(name, positive=True)
        else:
            c.choice(name, arg.choices)
    for arg in registry.spec(entry.kind).args:
        if arg.check == "per_component":
            name, components = f"model.{key}.{arg.section_key}", checked[arg.length]
            values = c.numbers(name, positive=arg.positive)
            if len(values) not in (1, components):
                raise c.fail(name, f"must hold 1 or {components} values (one per component)", values)


def _validate(c: ParamReader) -> None:
    c.integer("seed", minimum=0)
    c.choice("budget", BUDGETS)

    for dataset in DATASETS:
        c.integer(f"data.{dataset}.binarize_seed", minimum=0)
    c.choice("data.mnist.source", ("wheel", "amat"))
    c.string("data.mnist.amat.dir")
    c.choice("data.omniglot.source", ("chardata", "lake"))
    c.string("data.omniglot.dir")
    c.integer("data.omniglot.split_seed", minimum=0)
    c.integer("data.omniglot.valid_size", minimum=1)
    split = c.numbers("data.omniglot.lake_split", positive=True, min_len=3)
    if len(split) != 3 or abs(sum(split) - 1.0) > 1e-6:
        raise c.fail("data.omniglot.lake_split", "must be three positive fractions summing to 1", split)

    for key in MODEL_KEYS:
        _validate_model(c, key)

    _validate_train(c)
    by_model = c.raw("train.max_epochs_by_model")
    if not isinstance(by_model, dict):
        raise c.fail("train.max_epochs_by_model", "must be a mapping of model keys to epoch limits", by_model)
    for key in by_model:
        if key not in MODEL_KEYS:
            raise c.fail(f"train.max_epochs_by_model.{key}", f"names no model (known: {', '.join(MODEL_KEYS)})", key)
        c.integer(f"train.max_epochs_by_model.{key}", minimum=1)

    c.choice("eval.device", DEVICES)
    c.integer("eval.threads", minimum=1)
    c.choice("eval.marginal_likelihood.headline", HEADLINES)
    c.integer("eval.marginal_likelihood.samples", minimum=1)
    c.integer("eval.marginal_likelihood.authors_samples", minimum=1)
    bounds = c.numbers("eval.marginal_likelihood.bounds_at", positive=True)
    for i, value in enumerate(bounds):
        if value != int(value):
            raise c.fail(f"eval.marginal_likelihood.bounds_at[{i}]", "must be a whole number", value)
    c.integer("eval.marginal_likelihood.batch_size", minimum=1)
    c.integer("eval.marginal_likelihood.max_examples", minimum=1, optional=True)
    neighbors = c.numbers("eval.knn.neighbors", positive=True)
    for i, value in enumerate(neighbors):
        if value != int(value):
            raise c.fail(f"eval.knn.neighbors[{i}]", "must be a whole number", value)
    knn_train = c.integer("eval.knn.max_train_examples", minimum=1, optional=True)
    if knn_train is not None and max(neighbors) > knn_train:
        raise c.fail("eval.knn.neighbors", f"must not exceed eval.knn.max_train_examples ({knn_train})", neighbors)
    c.integer("eval.knn.max_test_examples", minimum=1, optional=True)
    c.integer("eval.tsne.points", minimum=10)
    c.number("eval.tsne.perplexity", positive=True)
    c.integer("eval.samples.grid", minimum=1)

    for key in PREPARE_KEYS:
        c.raw(key, default=None)


def _is_known(key: str, known: set[str]) -> bool:
    """Whether ``key`` or a mapping above it (``data.omniglot.known_sha256`` above its file names) is in ``known``."""
    parts = key.split(".")
    return any(".".join(parts[:end]) in known for end in range(1, len(parts) + 1))


def _refuse_unknown_keys(reader: ParamReader, known: set[str]) -> None:
    """Refuse a value of ``reader.tree`` at a key outside ``known`` (the keys read), naming the nearest known key."""
    for key in _leaf_keys(reader.tree):
        if not _is_known(key, known):
            suggestion = _did_you_mean(key, {**{k: reader.written_at(k) for k in known},
                                             **{reader.written_at(k): reader.written_at(k) for k in known}})
            raise DlgmmError(f"{reader.source}: unknown key {reader.written_at(key)}{suggestion}")


DEFAULT_PATH = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PATH, protocol: str | None = None) -> Params:
    """Read ``path``, merge ``protocol`` (None: the first of ``protocols``), override (``budget: quick``), validate.

    Raises :class:`DlgmmError` naming the file and the key on any problem.
    """
    tree = read_params_tree(path)
    return params_from_tree(tree, str(path), protocol)


def read_params_tree(path: str | Path = DEFAULT_PATH) -> dict:
    """The parameter file ``path`` as read (YAML 1.2), before any validation; DlgmmError if missing or no mapping."""
    path = Path(path)
    source = str(path)
    if path == DEFAULT_PATH and not path.exists():
        raise DlgmmError(f"{source}: file not found in {Path.cwd()}; run the stages from the repository root "
                         f"(where dvc.yaml is)")
    tree = read_yaml(path)
    if not isinstance(tree, dict):
        raise DlgmmError(f"{source}: expected a mapping of sections at the top level")
    return tree


def params_of_protocols(tree: dict, source: str = _SOURCE) -> dict[str, Params]:
    """``{name: Params}`` for every protocol of ``protocols``, in its order, from one validation of ``tree``."""
    names, readers = _validated(tree, source)
    return {name: Params(tree=readers[name].tree, source=source, protocol=name) for name in names}


def params_from_tree(tree: dict, source: str = _SOURCE, protocol: str | None = None) -> Params:
    """The :class:`Params` of ``protocol`` (None: the first of ``protocols``) from an already-parsed tree.

    Every protocol defined under ``protocol`` is merged and validated, so a
    bad value is refused whichever protocols run.
    """
    names, readers = _validated(tree, source)
    if protocol is None:
        protocol = names[0]
    elif protocol not in readers:
        raise DlgmmError(f"{source}: unknown protocol {protocol!r}; defined under protocol: "
                         f"{', '.join(map(str, readers))}")
    return Params(tree=readers[protocol].tree, source=source, protocol=protocol)


def _validated(tree: dict, source: str) -> tuple[list[str], dict[str, ParamReader]]:
    """``(protocols, {name: reader})``: every protocol defined, merged, overridden and validated, unknown keys refused.

    Each reader holds its protocol's effective tree, the keys params.yaml
    writes its values at, and the keys validation read.
    """
    checker = ParamReader(tree, source)
    quick = checker.choice("budget", BUDGETS) == "quick"
    overrides = checker.raw("quick", {}) or {}
    if not isinstance(overrides, dict):
        raise checker.fail("quick", "must be a mapping of dotted keys to values", overrides)
    names = _protocol_names(checker)
    _check_protocols_set_the_same_keys(tree["protocol"], source)
    readers = {}
    for name in tree["protocol"]:
        effective = copy.deepcopy(tree)
        origins = _merge_protocol(effective, name, source)
        if quick:  # the values the quick budget replaces are checked too: a bad one is refused, never hidden
            _validate(ParamReader(copy.deepcopy(effective), source, origins=dict(origins)))
        _apply_overrides(effective, overrides, source, origins, apply=quick)
        reader = ParamReader(effective, source, origins=origins)
        _validate(reader)
        _refuse_unknown_keys(reader, reader.read | checker.read)
        readers[name] = reader
    return names, readers


def set_params(path: str | Path, assignments: list[str]) -> None:
    """Set ``key=value`` pairs (dotted keys, YAML values) in ``path``, keeping its comments.

    A key segment that holds dots is quoted or bracketed
    (``data.omniglot.known_sha256."images_background_small1.zip"`` or
    ``data.omniglot.known_sha256[images_background_small1.zip]``). A value
    set where the file holds a string stays a string (a sha256 of digits
    only, a folder named ``2016``). The result is validated before the file
    is replaced, so a bad value leaves ``path`` untouched. ``make quick``
    uses this to switch the budget.
    """
    from ruamel.yaml import YAML

    from .io import atomic_path

    path = Path(path)
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    try:
        content = path.read_text()
    except FileNotFoundError:
        raise DlgmmError(f"{path}: file not found") from None
    parse_yaml(content, str(path))  # a syntax error named as load_params names it
    document = rt.load(content)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise DlgmmError(f"expected key=value, got {assignment!r}")
        parts = _key_parts(key, path)
        node = document
        for part in parts[:-1]:
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if not isinstance(node, dict) or parts[-1] not in node:
            raise DlgmmError(f"{path}: unknown key {key}{_protocol_hint(document, parts) or _set_hint(document, parts)}")
        value = parse_yaml(text, f"{path}: the value of {key}") if text else ""
        if isinstance(node[parts[-1]], str) and isinstance(value, (bool, int, float)):
            value = text.strip()
        node[parts[-1]] = "" if value is None else value
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            rt.dump(document, handle)
        params_from_tree(parse_yaml(tmp.read_text(), str(path)), source=str(path))


#: A segment of a key given to :func:`set_params` after a dot (or first): double- or single-quoted, or plain.
_DOTTED_SEGMENT = r'"([^"]+)"|\'([^\']+)\'|([^.\[\]"\']+)'
#: A segment in brackets, after any other.
_BRACKETED_SEGMENT = r'\[([^\]]+)\]'
_SEGMENT = re.compile(f"{_DOTTED_SEGMENT}|{_BRACKETED_SEGMENT}")
_KEY = re.compile(f"(?:{_DOTTED_SEGMENT})(?:\\.(?:{_DOTTED_SEGMENT})|{_BRACKETED_SEGMENT})*")


def _key_parts(key: str, path: Path) -> list[str]:
    """The segments of ``key``: split at dots outside quotes (``a."b.zip"``) and brackets (``a[b.zip]``)."""
    if not _KEY.fullmatch(key):
        raise DlgmmError(f"{path}: cannot read the key {key}: quote or bracket a segment that holds a dot "
                         f"(known_sha256.\"a.zip\" or known_sha256[a.zip])")
    return [next(group for group in match.groups() if group is not None) for match in _SEGMENT.finditer(key)]


def _as_key(parts: Iterable[Any]) -> str:
    """``parts`` as a key :func:`set_params` reads: dotted, a segment holding a dot quoted."""
    return ".".join(f'"{part}"' if "." in str(part) else str(part) for part in parts)


def _set_hint(document: Any, parts: list[str]) -> str:
    """``" (did you mean <key>?)"``: the key of ``document`` nearest ``parts``, a protocol setting also by its section's key."""
    known: dict[str, str] = {}
    for leaf in _leaf_paths(document):
        known[".".join(map(str, leaf))] = known[_as_key(leaf)] = _as_key(leaf)
        if leaf[0] == "protocol" and len(leaf) > 2:
            known.setdefault(".".join(map(str, leaf[2:])), _as_key(leaf))
    return _did_you_mean(".".join(parts), known)


def _protocol_hint(document: Any, parts: list[str]) -> str:
    """``" (a protocol setting: protocol.<name>.<key>)"`` if a protocol of ``document`` sets ``parts``, else ``""``."""
    definitions = document.get("protocol") if isinstance(document, dict) else None
    for name, definition in (definitions or {}).items():
        node = definition
        for part in parts:
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            return f" (a protocol setting: protocol.{name}.{_as_key(parts)})"
    return ""


def _main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dlgmm_core.config", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    setter = sub.add_parser("set", help="set key=value pairs in params.yaml",
                            description="Set key=value pairs in params.yaml (dotted keys, YAML values), keeping its "
                                        "comments; the result is validated before the file is replaced.")
    setter.add_argument("assignments", nargs="+", metavar="key=value",
                        help="a dotted key and a YAML value, e.g. train.lr=3e-4; quote or bracket a key segment that "
                             "holds a dot, and quote the whole argument for the shell: "
                             "'data.omniglot.known_sha256.\"images_background_small1.zip\"=<sha256>' or "
                             "'data.omniglot.known_sha256[images_background_small1.zip]=<sha256>'")
    setter.add_argument("--file", default="params.yaml")
    checker = sub.add_parser("check", help="validate params.yaml")
    checker.add_argument("--file", default="params.yaml")
    args = parser.parse_args(argv)
    if args.command == "set":
        set_params(args.file, args.assignments)
    else:
        load_params(args.file)
    print(f"{args.file}: ok")


if __name__ == "__main__":
    from .errors import run_stage

    run_stage(_main)


def load_stage_params(stage: str, root: str | os.PathLike = ".") -> Params:
    """The parameters of the DVC stage ``stage``, as the ``resolve`` stage wrote them (validated there).

    ``data/params/<stage>.json`` holds exactly the values the stage reads
    (:mod:`dlgmm_core.resolved`); a stage never reads params.yaml itself.
    """
    from . import layout
    from .io import read_json

    path = layout.stage_params(stage, root)
    if not path.is_file():
        raise DlgmmError(f"{path}: not found; resolve the parameters first: `python {layout.script('resolve')}` "
                         f"(or `dvc repro {layout.resolve_stage()}`), from the repository root")
    view = read_json(path, f"run `python {layout.script('resolve')}` again")
    protocol = view["protocol"] if isinstance(view.get("protocol"), str) else (view.get("protocols") or [""])[0]
    return Params(tree=view, source=str(path), protocol=protocol)


def stage_arguments(doc: str, models: Iterable[str] = MODEL_KINDS, default_dataset: str | None = None) -> Any:
    """Parse a per-(protocol, dataset, model) stage's ``--protocol --dataset --model``.

    The stage then reads its parameters with :func:`load_stage_params`.
    ``doc`` is the stage's module docstring (its first line is the description).
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--protocol", required=True, help="the protocol (a name defined under protocol: in the params)")
    parser.add_argument("--dataset", required=default_dataset is None, default=default_dataset, choices=DATASETS)
    parser.add_argument("--model", required=True, choices=list(models))
    return parser.parse_args()
