"""dlgmm_core: reproduction of "Approximate Inference for Deep Latent Gaussian Mixtures".

Public API (imported lazily: ``import dlgmm_core`` loads no torch):

- :func:`build_model` (kind, **config fields) -> nn.Module, for every kind of :mod:`dlgmm_core.registry`
- :func:`log_marginal_likelihood`, :func:`importance_bounds` (importance sampling)
- :func:`save_checkpoint`, :func:`load_checkpoint`
- :class:`DlgmmError`, the one user-facing error

The model kinds (each a config class and a model class) and the params.yaml
model sections are declared in :mod:`dlgmm_core.registry`.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import DlgmmError

_LAZY = {
    "build_model": "registry",
    "GaussVAE": "models",
    "StickBreakingVAE": "models",
    "DeepLatentMixture": "models",
    "log_marginal_likelihood": "estimators",
    "importance_bounds": "estimators",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
}

__all__ = ["DlgmmError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
