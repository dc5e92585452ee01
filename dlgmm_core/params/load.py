"""params.yaml loaded: the validated parameters (:class:`~.stage.Params`) of each protocol.

Loading merges each protocol defined under ``protocol`` into its
sections, applies the ``quick`` overrides (``budget: quick``), validates
every protocol (:mod:`.schema`; a bad value is refused whichever protocols
run) and refuses a key that validation does not read, with the nearest known
key suggested. A stage reads instead its own file (:mod:`.stage`).
"""
from __future__ import annotations

import copy
from pathlib import Path

from ..errors import DlgmmError
from . import schema
from .merge import apply_overrides, check_protocols_set_the_same_keys, merge_protocol, protocol_names
from .read import DEFAULT_PATH, SOURCE, read_params_tree
from .reader import ParamReader, did_you_mean, leaf_keys
from .stage import Params


def load_params(path: str | Path = DEFAULT_PATH, protocol: str | None = None) -> Params:
    """Read ``path``, merge ``protocol`` (None: the first of ``protocols``), override (``budget: quick``), validate.

    Raises :class:`DlgmmError` naming the file and the key on any problem.
    """
    return params_from_tree(read_params_tree(path), str(path), protocol)


def params_of_protocols(tree: dict, source: str = SOURCE) -> dict[str, Params]:
    """``{name: Params}`` for every protocol of ``protocols``, in its order, from one validation of ``tree``."""
    names, readers = _validated(tree, source)
    return {name: Params(tree=readers[name].tree, source=source, protocol=name) for name in names}


def params_from_tree(tree: dict, source: str = SOURCE, protocol: str | None = None) -> Params:
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
    quick = checker.choice("budget", schema.BUDGETS) == "quick"
    overrides = checker.raw("quick", {}) or {}
    if not isinstance(overrides, dict):
        raise checker.fail("quick", "must be a mapping of dotted keys to values", overrides)
    names = protocol_names(checker)
    check_protocols_set_the_same_keys(tree["protocol"], source)
    readers = {}
    for name in tree["protocol"]:
        effective = copy.deepcopy(tree)
        origins = merge_protocol(effective, name, source)
        if quick:  # the values the quick budget replaces are checked too: a bad one is refused, never hidden
            schema.validate(ParamReader(copy.deepcopy(effective), source, origins=dict(origins)))
        apply_overrides(effective, overrides, source, origins, apply=quick)
        reader = ParamReader(effective, source, origins=origins)
        schema.validate(reader)
        _refuse_unknown_keys(reader, reader.read | checker.read)
        readers[name] = reader
    return names, readers


def _is_known(key: str, known: set[str]) -> bool:
    """Whether ``key`` or a mapping above it (``data.omniglot.known_sha256`` above its file names) is in ``known``."""
    parts = key.split(".")
    return any(".".join(parts[:end]) in known for end in range(1, len(parts) + 1))


def _refuse_unknown_keys(reader: ParamReader, known: set[str]) -> None:
    """Refuse a value of ``reader.tree`` at a key outside ``known`` (the keys read), naming the nearest known key."""
    for key in leaf_keys(reader.tree):
        if not _is_known(key, known):
            suggestion = did_you_mean(key, {**{k: reader.written_at(k) for k in known},
                                            **{reader.written_at(k): reader.written_at(k) for k in known}})
            raise DlgmmError(f"{reader.source}: unknown key {reader.written_at(key)}{suggestion}")
