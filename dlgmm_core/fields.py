"""Checked fields of the frozen config dataclasses (each model's, training's, evaluation's).

A config dataclass declares each field with one of :func:`integer`, :func:`number`, :func:`choice`,
:func:`flag`, :func:`numbers` and calls :func:`check` in its ``__post_init__``: every value is checked
once, where the config is built, and normalised (a plain int, float, str, bool or tuple of floats). A bad
value raises :class:`FieldError` naming the field (``DLGMMConfig.latent must be >= 1 (got 0)``); the
parameter schema (:mod:`dlgmm_core.params.schema`) names instead the key params.yaml writes it at
(``params.yaml: model.dlgmm.latent must be >= 1 (got 0)``). A field's ``param`` is its key in its
params.yaml section where the two differ (``kl_method`` is ``kl``); ``from_data`` marks a field set from the
data (the number of pixels), not from params.yaml.

Standard library only: the model files import it before torch matters.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import DlgmmError


#: Where a stage computes: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
DEVICES = ("auto", "cpu", "cuda")


class FieldError(DlgmmError):
    """A config field's bad value: ``field`` (maybe indexed: ``prior_means[1]``), ``problem`` and ``value``."""

    def __init__(self, owner: str, field: str, problem: str, value: Any):
        self.field, self.problem, self.value = field, problem, value
        super().__init__(f"{owner}.{field} {problem} (got {value!r})")


def _field(check: str, default: Any = dataclasses.MISSING, param: str = "", from_data: bool = False,
           **options: Any) -> Any:
    return dataclasses.field(default=default, metadata={"check": check, "param": param, "from_data": from_data,
                                                        **options})


def integer(minimum: int = 1, optional: bool = False, **kw: Any) -> Any:
    """An int >= ``minimum`` (None too where ``optional``)."""
    return _field("integer", minimum=minimum, optional=optional, **kw)


def number(positive: bool = False, **kw: Any) -> Any:
    """A finite number (> 0 where ``positive``), stored as a float."""
    return _field("number", positive=positive, **kw)


def choice(options: tuple[str, ...], **kw: Any) -> Any:
    """One of ``options``."""
    return _field("choice", options=tuple(options), **kw)


def device(**kw: Any) -> Any:
    """One of :data:`DEVICES`."""
    return choice(DEVICES, **kw)


def flag(**kw: Any) -> Any:
    """A bool."""
    return _field("flag", **kw)


def numbers(positive: bool = False, whole: bool = False, per: str = "", **kw: Any) -> Any:
    """A non-empty list of finite numbers (each > 0 where ``positive``, whole where ``whole``), stored as a tuple.

    ``per``: the field holding the number of components: the list then holds 1 value or one per component.
    """
    return _field("numbers", positive=positive, whole=whole, per=per, **kw)


def param_key(config: Any, name: str) -> str:
    """The key of field ``name`` of the config class (or instance) ``config`` in its params.yaml section."""
    return {f.name: f.metadata.get("param") or f.name for f in dataclasses.fields(config)}[name]


def as_dict(config: Any) -> dict[str, Any]:
    """``config``'s fields in declaration order, tuples as lists: what a checkpoint and a fingerprint store."""
    return {f.name: (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(config) for v in [getattr(config, f.name)]}


def check(config: Any) -> None:
    """Check and normalise every field of the frozen dataclass ``config`` in place; :class:`FieldError` if bad.

    Lists whose length another field gives (``per``) are checked last.
    """
    owner = type(config).__name__
    ordered = sorted(dataclasses.fields(config), key=lambda f: bool(f.metadata.get("per")))
    for f in ordered:
        if "check" in f.metadata:
            value = _checked(owner, f.name, getattr(config, f.name), f.metadata, config)
            object.__setattr__(config, f.name, value)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _checked(owner: str, name: str, value: Any, meta: dict, config: Any) -> Any:
    kind = meta["check"]
    if kind == "integer":
        if value is None and meta["optional"]:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(owner, name, "must be an integer" + (" or null" if meta["optional"] else ""), value)
        if value < meta["minimum"]:
            raise FieldError(owner, name, f"must be >= {meta['minimum']}", value)
        return int(value)
    if kind == "number":
        if not _is_number(value):
            raise FieldError(owner, name, "must be a number", value)
        if not math.isfinite(value):
            raise FieldError(owner, name, "must be finite", value)
        if meta["positive"] and value <= 0:
            raise FieldError(owner, name, "must be > 0", value)
        return float(value)
    if kind == "choice":
        if value not in meta["options"]:
            raise FieldError(owner, name, f"must be one of {', '.join(meta['options'])}", value)
        return str(value)
    if kind == "flag":
        if not isinstance(value, bool):
            raise FieldError(owner, name, "must be a bool", value)
        return value
    return _checked_numbers(owner, name, value, meta, config)


def _checked_numbers(owner: str, name: str, value: Any, meta: dict, config: Any) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise FieldError(owner, name, "must be a list of at least 1 number(s)", value)
    for index, item in enumerate(value):
        if not _is_number(item) or not math.isfinite(item):
            raise FieldError(owner, f"{name}[{index}]", "must be a number", item)
        if meta["positive"] and item <= 0:
            raise FieldError(owner, f"{name}[{index}]", "must be > 0", item)
        if meta["whole"] and item != int(item):
            raise FieldError(owner, f"{name}[{index}]", "must be a whole number", item)
    if meta["per"]:
        components = getattr(config, meta["per"])
        if len(value) not in (1, components):
            raise FieldError(owner, name, f"must hold 1 or {components} values (one per component)", list(value))
    return tuple(float(item) for item in value)
