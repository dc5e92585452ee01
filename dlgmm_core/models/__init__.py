"""The models of the paper, each with its frozen config dataclass in its own file.

=================================  ===================  ==========================
config (``model.<key>`` sections)  model class           file
=================================  ===================  ==========================
:class:`GaussVAEConfig`            :class:`GaussVAE`     ``gauss_vae.py``
:class:`SBVAEConfig`               :class:`StickBreakingVAE`  ``sb_vae.py``
:class:`DLGMMConfig`               :class:`DeepLatentMixture`  ``mixture.py``
:class:`DLDPMMConfig`              :class:`DeepLatentMixture`  ``mixture.py``
=================================  ===================  ==========================

A config is checked once, where it is built; the model takes it as its one
argument (``Model(Config(**kwargs))``) and keeps it as ``model.config``, which
the checkpoint stores (:mod:`dlgmm_core.checkpoint`). Every model has ``kind``
(its config's), ``config``, ``latent_dim`` and the methods ``elbo``,
``decode``, ``embed``, ``sample_prior`` and ``log_importance_weights``. The
registry (:mod:`dlgmm_core.registry`) maps each kind to its two classes;
``docs/models.md`` says how to add one.
"""
from __future__ import annotations

from .gauss_vae import GaussVAE, GaussVAEConfig
from .mixture import DeepLatentMixture, DLDPMMConfig, DLGMMConfig
from .sb_vae import SBVAEConfig, StickBreakingVAE

__all__ = ["GaussVAE", "GaussVAEConfig", "StickBreakingVAE", "SBVAEConfig", "DeepLatentMixture", "DLGMMConfig",
           "DLDPMMConfig"]
