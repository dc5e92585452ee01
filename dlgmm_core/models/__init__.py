"""The four models of the paper and :func:`build_model`, the one way to construct them.

=========  ============================  =========================================
kind       class                         keyword arguments (``Params.model_config``)
=========  ============================  =========================================
gauss_vae  :class:`GaussVAE`             input_dim, hidden, latent
sb_vae     :class:`StickBreakingVAE`     input_dim, hidden, truncation, alpha0,
                                         kl_method, taylor_terms
dlgmm      :class:`DeepLatentMixture`    input_dim, hidden, latent, components, alpha,
                                         prior_means, prior_scales, kl_method, taylor_terms
dldpmm     :class:`DeepLatentMixture`    input_dim, hidden, latent, truncation, alpha0,
                                         prior_means, prior_scales, kl_method, taylor_terms
=========  ============================  =========================================

Every model has ``kind``, ``config`` (``build_model(model.kind, **model.config)``
rebuilds it), ``latent_dim`` and the methods ``elbo``, ``decode``, ``embed``,
``sample_prior`` and ``log_importance_weights``.
"""
from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..config import KL_METHODS, MODEL_KINDS
from ..errors import DlgmmError
from .gauss_vae import GaussVAE
from .mixture import DeepLatentMixture
from .sb_vae import StickBreakingVAE

__all__ = ["build_model", "check_model_config", "GaussVAE", "StickBreakingVAE", "DeepLatentMixture", "MODEL_ARGS"]

#: The exact keyword arguments of each kind.
MODEL_ARGS: dict[str, tuple[str, ...]] = {
    "gauss_vae": ("input_dim", "hidden", "latent"),
    "sb_vae": ("input_dim", "hidden", "truncation", "alpha0", "kl_method", "taylor_terms"),
    "dlgmm": ("input_dim", "hidden", "latent", "components", "alpha", "prior_means", "prior_scales",
              "kl_method", "taylor_terms"),
    "dldpmm": ("input_dim", "hidden", "latent", "truncation", "alpha0", "prior_means", "prior_scales",
               "kl_method", "taylor_terms"),
}
assert tuple(MODEL_ARGS) == MODEL_KINDS

_INT_MINIMUM = {"input_dim": 1, "hidden": 1, "latent": 1, "components": 1, "truncation": 2, "taylor_terms": 1}


def _integer(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < _INT_MINIMUM[name]:
        raise DlgmmError(f"{where}: {name} must be an integer >= {_INT_MINIMUM[name]} (got {value!r})")
    return int(value)


def _positive(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise DlgmmError(f"{where}: {name} must be a finite number > 0 (got {value!r})")
    return float(value)


def _per_component(where: str, name: str, value: Any, components: int, positive: bool) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) not in (1, components):
        raise DlgmmError(f"{where}: {name} must be a list of 1 or {components} numbers, one per component "
                         f"(got {value!r})")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) \
                or (positive and item <= 0):
            raise DlgmmError(f"{where}: every entry of {name} must be a finite number{' > 0' if positive else ''} "
                             f"(got {value!r})")
        out.append(float(item))
    return out


def check_model_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` for ``kind``; return it normalised to plain ints/floats/lists.

    Raises :class:`DlgmmError` naming the unknown kind, the missing or unknown
    arguments, or the argument with a bad value.
    """
    if kind not in MODEL_ARGS:
        raise DlgmmError(f"build_model: unknown model kind {kind!r}; known: {', '.join(MODEL_ARGS)}")
    where = f"build_model({kind!r})"
    expected = MODEL_ARGS[kind]
    missing = [name for name in expected if name not in config]
    unknown = sorted(name for name in config if name not in expected)
    if missing or unknown:
        parts = ([f"missing argument(s) {', '.join(missing)}"] if missing else []) + \
                ([f"unknown argument(s) {', '.join(unknown)}"] if unknown else [])
        raise DlgmmError(f"{where}: {'; '.join(parts)} (expected exactly: {', '.join(expected)})")
    out: dict[str, Any] = {}
    for name in expected:
        value = config[name]
        if name in _INT_MINIMUM:
            out[name] = _integer(where, name, value)
        elif name in ("alpha", "alpha0"):
            out[name] = _positive(where, name, value)
        elif name == "kl_method":
            if value not in KL_METHODS:
                raise DlgmmError(f"{where}: kl_method must be one of {', '.join(KL_METHODS)} (got {value!r})")
            out[name] = str(value)
    if kind in ("dlgmm", "dldpmm"):
        components = out["components"] if kind == "dlgmm" else out["truncation"]
        out["prior_means"] = _per_component(where, "prior_means", config["prior_means"], components, False)
        out["prior_scales"] = _per_component(where, "prior_scales", config["prior_scales"], components, True)
    return {name: out[name] for name in expected}


def build_model(kind: str, **config: Any) -> nn.Module:
    """Build a freshly initialised model of ``kind`` from exactly its keyword arguments.

    ``build_model(model.kind, **model.config)`` rebuilds any model. Raises
    :class:`DlgmmError` for an unknown kind or missing/unknown/bad arguments.
    Initialisation draws from torch's global RNG (seed it first).
    """
    config = check_model_config(kind, config)
    if kind == "gauss_vae":
        return GaussVAE(**config)
    if kind == "sb_vae":
        return StickBreakingVAE(**config)
    return DeepLatentMixture(**config)
