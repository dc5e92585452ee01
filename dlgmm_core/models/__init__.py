"""The four models of the paper and :func:`build_model`, the one way to construct them.

=========  ============================  =========================================
kind       class                         keyword arguments (``Params.model_config``)
=========  ============================  =========================================
gauss_vae  :class:`GaussVAE`             input_dim, hidden, encoder_activation, latent
sb_vae     :class:`StickBreakingVAE`     input_dim, hidden, encoder_activation, truncation,
                                         alpha0, kl_method, taylor_terms
dlgmm      :class:`DeepLatentMixture`    input_dim, hidden, encoder_activation, latent,
                                         components, alpha, prior_means, prior_scales,
                                         kl_method, taylor_terms
dldpmm     :class:`DeepLatentMixture`    input_dim, hidden, encoder_activation, latent,
                                         truncation, alpha0, prior_means, prior_scales,
                                         kl_method, taylor_terms
=========  ============================  =========================================

The kinds, their classes and their arguments with the checks they pass are
declared in :mod:`dlgmm_core.registry`; ``encoder_activation`` (``relu`` or
``linear``) may be omitted and is then ``relu``. Every model has ``kind``, ``config``
(``build_model(model.kind, **model.config)`` rebuilds it), ``latent_dim`` and
the methods ``elbo``, ``decode``, ``embed``, ``sample_prior`` and
``log_importance_weights``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .. import registry
from ..errors import DlgmmError
from ..registry import MODEL_ARGS
from .gauss_vae import GaussVAE
from .mixture import DeepLatentMixture
from .sb_vae import StickBreakingVAE

__all__ = ["build_model", "check_model_config", "GaussVAE", "StickBreakingVAE", "DeepLatentMixture", "MODEL_ARGS"]


def _spec(kind: str) -> registry.ModelSpec:
    if kind not in registry.MODEL_KINDS:
        raise DlgmmError(f"build_model: unknown model kind {kind!r}; known: {', '.join(registry.MODEL_KINDS)}")
    return registry.spec(kind)


def check_model_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` for ``kind`` through its registry spec; return it normalised to plain ints/floats/lists.

    Raises :class:`DlgmmError` naming the unknown kind, the missing or unknown
    arguments, or the argument with a bad value.
    """
    return _spec(kind).check_kwargs(config)


def build_model(kind: str, **config: Any) -> nn.Module:
    """Build a freshly initialised model of ``kind`` from exactly its keyword arguments.

    ``build_model(model.kind, **model.config)`` rebuilds any model. Raises
    :class:`DlgmmError` for an unknown kind or missing/unknown/bad arguments.
    Initialisation draws from torch's global RNG (seed it first).
    """
    return _spec(kind).build(**config)
