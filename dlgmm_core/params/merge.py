"""A protocol's settings merged into their sections, then the quick budget's overrides; each value's origin kept.

``protocol.<name>`` holds, as a tree mirroring the sections
(``protocol.<name>.train.patience``), the settings in which the paper's text
and the authors' code differ; ``protocols`` lists the ones the pipeline runs.
A protocol adds keys to its sections (which must not set them too); then,
with ``budget: quick``, the ``quick`` overrides replace values. The origins
(effective key -> the key params.yaml writes the value at) let an error name
``protocol.authors.train.patience`` or ``quick.train.max_epochs``.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from ..errors import DlgmmError
from .reader import MISSING, ParamReader, did_you_mean, leaf_keys


def apply_overrides(tree: dict, overrides: dict, source: str, origins: dict[str, str], apply: bool = True) -> None:
    """Apply ``{"train.max_epochs": 3, ...}`` onto ``tree`` (if ``apply``); every key must already exist.

    An unknown key is refused whether or not the overrides apply, with the
    nearest key of ``tree`` suggested. Records each overridden key in
    ``origins`` as written at ``quick.<key>``.
    """
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        node = tree
        for part in parts[:-1]:
            node = node.get(part, MISSING) if isinstance(node, dict) else MISSING
        if not isinstance(node, dict) or parts[-1] not in node:
            keys = {key: key for key in leaf_keys(tree) if key.split(".")[0] not in ("protocol", "quick")}
            raise DlgmmError(f"{source}: quick.{dotted} overrides an unknown key {dotted}{did_you_mean(dotted, keys)}")
        if apply:
            node[parts[-1]] = value
            origins[str(dotted)] = f"quick.{dotted}"


def protocol_names(c: ParamReader) -> list[str]:
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


def check_protocols_set_the_same_keys(definitions: dict, source: str) -> None:
    """Every protocol is a complete set of the same settings: the keys of the first, no more, no fewer."""
    (first, reference), *others = definitions.items()
    expected = leaf_keys(reference)
    for name, definition in others:
        keys = leaf_keys(definition)
        for key in expected:
            if key not in keys:
                raise DlgmmError(f"{source}: protocol.{name} does not set {key}, which protocol.{first} sets "
                                 f"(every protocol sets the same keys)")
        for key in keys:
            if key not in expected:
                raise DlgmmError(f"{source}: protocol.{name}.{key} is not set by protocol.{first} "
                                 f"(every protocol sets the same keys)")


def merge_protocol(tree: dict, name: str, source: str) -> dict[str, str]:
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


def shadowed_by_quick(raw: dict) -> list[str]:
    """One line per value of ``params.yaml`` that the quick budget's overrides replace (``budget: quick`` only)."""
    if raw.get("budget") != "quick":
        return []
    lines = []
    for dotted, value in (raw.get("quick") or {}).items():
        written, node = _written_value(raw, str(dotted).split("."))
        if node is not None and node != value:
            lines.append(f"{written}: {json.dumps(node)} is replaced by quick.{dotted}: {json.dumps(value)}")
    return lines


def _written_value(raw: dict, parts: list[str]) -> tuple[str, Any]:
    """``(key, value)`` where params.yaml writes the setting ``parts``: its base section, else the first protocol
    that sets it (``protocol.<name>.<key>``); the value is None where nothing writes it."""
    candidates = [(".".join(parts), raw)] + [(f"protocol.{name}.{'.'.join(parts)}", definition)
                                             for name, definition in (raw.get("protocol") or {}).items()]
    for written, node in candidates:
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return written, node
    return candidates[0][0], None
