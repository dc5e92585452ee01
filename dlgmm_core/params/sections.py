"""A section of a parameter tree as its config dataclass, checked as it is built, errors naming the key."""
from __future__ import annotations

import dataclasses
from typing import Any

from .. import registry
from ..data.contract import PIXELS
from ..errors import DlgmmError
from .reader import ParamReader
from .stage import Params

def section_config(c: ParamReader, cls: type, keys: dict[str, str], **from_data: Any) -> Any:
    """``cls`` built from the keys ``keys`` (field -> key) read by ``c``; ``from_data``: the fields set otherwise."""
    values = {name: c.raw(key) for name, key in keys.items()}
    return c.config(cls, {**values, **from_data}, keys)


def model_config(c: ParamReader, key: str) -> Any:
    """The config of ``model.<key>``: each field from the section (under its ``param`` name), from the top-level
    key that :class:`dlgmm_core.registry.Section`'s ``top_level`` names, or (``from_data``) :data:`dlgmm_core.data.contract.PIXELS`."""
    section = registry.SECTIONS[key]
    cls = registry.KINDS[section.kind][0]
    keys, from_data = {}, {}
    for field in dataclasses.fields(cls):
        if field.metadata.get("from_data"):
            from_data[field.name] = PIXELS
        else:
            keys[field.name] = section.top_level.get(field.name) or f"model.{key}.{field.metadata['param'] or field.name}"
    return section_config(c, cls, keys, **from_data)


def stage_model_config(params: Params, key: str) -> Any:
    """The config of the model section ``key`` of ``params`` (a stage's view or a protocol's tree)."""
    if key not in registry.SECTIONS:
        raise DlgmmError(f"{params.source}: unknown model {key!r}; known: {', '.join(registry.SECTIONS)}")
    return model_config(ParamReader(params.tree, params.source), key)
