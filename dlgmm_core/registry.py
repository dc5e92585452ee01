"""The model registry: each model kind's config class and model class, and params.yaml's model sections.

:data:`KINDS` maps a kind to its two classes, both defined in the kind's own
file under ``dlgmm_core/models/``. :data:`SECTIONS` maps each ``model.<key>``
section of params.yaml to the kind it builds: one section per kind, named
like it, plus the qualitative model of Figure 2a/2b (a DLGMM trained on MNIST
only and not evaluated). Adding a kind takes its file, one line in
:data:`KINDS` and its params.yaml sections (``docs/models.md``).

A model is built from its config, ``build(config)``, as a checkpoint rebuilds
it (``Model(Config(**stored))``, :mod:`dlgmm_core.checkpoint`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from torch import nn

from .errors import DlgmmError
from .fields import FieldError
from .models import (DeepLatentMixture, DLDPMMConfig, DLGMMConfig, GaussVAE, GaussVAEConfig, SBVAEConfig,
                     StickBreakingVAE)

#: Model kind -> (config class, model class).
KINDS: dict[str, tuple[type, type[nn.Module]]] = {
    "gauss_vae": (GaussVAEConfig, GaussVAE),
    "sb_vae": (SBVAEConfig, StickBreakingVAE),
    "dlgmm": (DLGMMConfig, DeepLatentMixture),
    "dldpmm": (DLDPMMConfig, DeepLatentMixture),
}


@dataclass(frozen=True)
class Section:
    """One ``model.<key>`` section of params.yaml.

    ``kind``: the kind it builds. ``title``: its display name (default: the
    kind's config's ``title``). ``evaluated``: whether the evaluation stages
    and the report's tables cover it (else it is only trained). ``datasets``:
    the datasets it is trained on (None: every one). ``top_level``: config
    fields set by a top-level params.yaml key instead of the section.
    """

    kind: str
    title: str = ""
    evaluated: bool = True
    datasets: tuple[str, ...] | None = None
    top_level: Mapping[str, str] = field(default_factory=dict)


#: params.yaml model key -> its section: one per kind, the DLGMM's components set by the top-level ``k``
#: (``dvc exp run -S k=10`` retrains the DLGMM alone), and Figure 2a/2b's qualitative DLGMM.
SECTIONS: dict[str, Section] = {kind: Section(kind) for kind in KINDS} | {
    "dlgmm": Section("dlgmm", top_level={"components": "k"}),
    "qualitative": Section("dlgmm", "Qualitative DLGMM", evaluated=False, datasets=("mnist",)),
}


def title(key: str) -> str:
    """The display name of the model key ``key`` (the paper's names)."""
    section = SECTIONS[key]
    return section.title or KINDS[section.kind][0].title


def evaluated_keys() -> tuple[str, ...]:
    """The model keys the evaluation stages and the report's tables cover, in :data:`SECTIONS` order."""
    return tuple(key for key, section in SECTIONS.items() if section.evaluated)


def trained_keys(dataset: str) -> tuple[str, ...]:
    """The model keys trained on ``dataset``, in :data:`SECTIONS` order."""
    return tuple(key for key, section in SECTIONS.items() if section.datasets is None or dataset in section.datasets)


def config_class(kind: str, where: str = "build_model") -> type:
    """The config class of ``kind``; DlgmmError naming ``where`` and the known kinds if there is none."""
    if kind not in KINDS:
        raise DlgmmError(f"{where}: unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind][0]


def make_config(kind: str, values: Mapping[str, Any], where: str = "") -> Any:
    """The config of ``kind`` from exactly its fields ``values`` (checked by the config itself).

    A missing or unknown field, or a bad value, is a DlgmmError naming
    ``where`` (default: ``build_model('<kind>')``), and the field.
    """
    where = where or f"build_model({kind!r})"
    cls = config_class(kind, where)
    names = [f.name for f in fields(cls)]
    required = [f.name for f in fields(cls) if f.default is f.default_factory]  # both MISSING: no default
    missing = [name for name in required if name not in values]
    unknown = sorted(str(name) for name in values if name not in names)
    if missing or unknown:
        parts = ([f"missing argument(s) {', '.join(missing)}"] if missing else []) + \
                ([f"unknown argument(s) {', '.join(unknown)}"] if unknown else [])
        raise DlgmmError(f"{where}: {'; '.join(parts)} (expected exactly: {', '.join(names)})")
    try:
        return cls(**values)
    except FieldError as err:
        raise DlgmmError(f"{where}: {err.field} {err.problem} (got {err.value!r})") from None


def build(config: Any) -> nn.Module:
    """A freshly initialised model of ``config`` (its kind's model class); seed torch's global RNG first."""
    return KINDS[config.kind][1](config)


def build_model(kind: str, **values: Any) -> nn.Module:
    """``build(make_config(kind, values))``: a fresh model of ``kind`` from exactly its config's fields.

    ``build_model(model.kind, **dlgmm_core.fields.as_dict(model.config))`` rebuilds any model.
    """
    return build(make_config(kind, values))
