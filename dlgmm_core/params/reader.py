"""Typed reads from a parameter tree, each error naming the key as params.yaml writes it."""
from __future__ import annotations

import difflib
from typing import Any

from ..errors import DlgmmError
from ..fields import FieldError
from .read import SOURCE

#: The default of a read that has none (a missing key is then an error).
MISSING = object()


def did_you_mean(key: str, known: dict[str, str]) -> str:
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

    def __init__(self, tree: dict, source: str = SOURCE, prefix: str = "", origins: dict[str, str] | None = None):
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

    def raw(self, key: str, default: Any = MISSING) -> Any:
        self.read.add(key)
        node: Any = self.tree
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not MISSING:
                    return default
                raise DlgmmError(f"{self.source}: missing key {self.prefix}{key}")
            node = node[part]
        return node

    def typed(self, key: str, kind: type | tuple[type, ...], default: Any = MISSING) -> Any:
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

    def integer(self, key: str, minimum: int | None = None, optional: bool = False, default: Any = MISSING) -> int | None:
        value = self.raw(key, default)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be an integer" + (" or null" if optional else ""), value)
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum}", value)
        return value

    def number(self, key: str, positive: bool = False, default: Any = MISSING) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, "must be a number", value)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(key, "must be finite", value)
        if positive and value <= 0:
            raise self.fail(key, "must be > 0", value)
        return float(value)

    def choice(self, key: str, options: tuple[str, ...], default: Any = MISSING) -> str:
        value = self.raw(key, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}", value)
        return value

    def string(self, key: str, default: Any = MISSING) -> str:
        value = self.raw(key, default)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", value)
        return value

    def config(self, cls: type, values: dict[str, Any], keys: dict[str, str]) -> Any:
        """``cls(**values)``, a config dataclass checked as it is built; its :class:`FieldError` names instead the
        key of ``keys`` (field -> relative key) that the bad value was read from."""
        try:
            return cls(**values)
        except FieldError as err:
            field, bracket, index = err.field.partition("[")
            raise self.fail(keys[field] + bracket + index, err.problem, err.value) from None

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


def leaf_paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    """The key path of every non-mapping value (or empty mapping) in ``tree``."""
    paths = []
    for key, value in tree.items():
        path = (*prefix, key)
        paths.extend(leaf_paths(value, path) if isinstance(value, dict) and value else [path])
    return paths


def leaf_keys(tree: dict) -> list[str]:
    """The dotted keys of every non-mapping value (or empty mapping) in ``tree``."""
    return [".".join(map(str, path)) for path in leaf_paths(tree)]
