"""SB-VAE (500d-25t) of Nalisnick & Smyth: Kumaraswamy sticks, truncated GEM(alpha0) prior."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.distributions import kl_divergence

from .. import fields
from ..distributions import (KL_METHODS, Kumaraswamy, dp_stick_prior, log_stick_breaking, stick_breaking,
                             stick_log_densities)
from ..errors import DlgmmError
from ..nets import bernoulli_log_likelihood, check_component, encoder_activation, encoder_trunk, mlp, stick_posterior

#: What the decoder's first layer reads: the weights pi, or T * pi (see :class:`StickBreakingVAE`).
DECODER_INPUTS = ("pi", "scaled_pi")


@dataclass(frozen=True, kw_only=True)
class SBVAEConfig:
    """An SB-VAE: ``model.sb_vae`` of params.yaml (``input_dim`` from the data; ``kl_method`` is ``kl`` there)."""

    kind: ClassVar[str] = "sb_vae"
    title: ClassVar[str] = "SB-VAE"

    input_dim: int = fields.integer(from_data=True)
    hidden: int = fields.integer()
    encoder_activation: str = encoder_activation()
    truncation: int = fields.integer(minimum=2)
    alpha0: float = fields.number(positive=True)
    kl_method: str = fields.choice(KL_METHODS, param="kl")
    taylor_terms: int = fields.integer()
    decoder_input: str = fields.choice(DECODER_INPUTS, default="pi")

    def __post_init__(self) -> None:
        fields.check(self)

    def architecture(self) -> str:
        """The paper's notation: ``<hidden>d-<truncation>t``."""
        return f"{self.hidden}d-{self.truncation}t"


class StickBreakingVAE(nn.Module):
    """Stick-breaking VAE: the decoder reads the mixture-weight vector pi (T entries).

    Encoder ``x -> hidden`` (a ReLU after it, or none: ``encoder_activation``,
    see :func:`~dlgmm_core.nets.encoder_trunk`) with linear heads
    for log a and log b (T-1 each, clamped to ``LOG_AB_RANGE`` so that
    a = exp(log a) and b can be neither 0 nor inf); v_k ~ Kumaraswamy(a_k, b_k)
    by its inverse CDF, pi = stick_breaking(v); decoder ``pi -> hidden (ReLU) -> input_dim`` logits.
    Prior: v_k ~ Beta(1, alpha0) (a GEM(alpha0) truncated at T). Weights start
    N(0, 0.01^2), biases zero (the authors' initialisation).

    ``decoder_input``: ``pi``, the decoder's first layer reads pi itself, as
    in the authors' Theano code (enalisnick/stick-breaking_dgms); ``scaled_pi``,
    it reads T * pi (each weight relative to the uniform 1/T). Both are the
    same model: the factor T is a reparameterization of that layer's weights,
    so the model family, the ELBO and the estimator are unchanged; training
    is not. The entries of pi are small (mean 1/T) and the layer starts with
    weights of std 0.01, so with ``pi`` encoder and decoder learn from each
    other through a product of two tiny signals: on MNIST q(v|x) stays at the
    prior (KL about 2 nats) and the validation ELBO sits near -191 for epochs
    3-6 (-176 at epoch 10). With T * pi, entries of mean 1 like the
    Gauss-VAE's z, it reaches -126 at epoch 10. The authors' other choices
    (a, b = softplus of a bias-free linear map, uniforms clipped to
    [0.01, 0.99]) measured no faster, so a, b stay exp of linear heads and
    the uniforms unclipped: ``log_importance_weights`` uses exactly the
    Kumaraswamy density of the draws.

    ELBO = log p(x | pi(v)) (one reparameterized v) - sum_k KL(Kumar(a_k, b_k) || Beta(1, alpha0)).
    """

    kind = SBVAEConfig.kind

    def __init__(self, config: SBVAEConfig):
        super().__init__()
        self.config = config
        truncation, hidden = config.truncation, config.hidden
        self.latent_dim = truncation
        self.decoder_input_scale = {"pi": 1.0, "scaled_pi": float(truncation)}[config.decoder_input]
        self.encoder = encoder_trunk(config.input_dim, hidden, config.encoder_activation)
        self.log_a_head = mlp([hidden, truncation - 1])
        self.log_b_head = mlp([hidden, truncation - 1])
        self.decoder = mlp([truncation, hidden, config.input_dim])

    def posterior(self, x: torch.Tensor) -> Kumaraswamy:
        """q(v | x): independent Kumaraswamy sticks, batch shape (B, T-1)."""
        return stick_posterior(self.encoder(x), self.log_a_head, self.log_b_head, self.config.kl_method,
                               self.config.taylor_terms)

    def prior(self, like: torch.Tensor):
        """p(v): Beta(1, alpha0) for each of the T-1 sticks."""
        return dp_stick_prior(self.latent_dim, self.config.alpha0, device=like.device, dtype=like.dtype)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | pi) for weight vectors ``latent`` (N, T), scaled as ``decoder_input`` says."""
        return self.decoder(latent * self.decoder_input_scale)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO (nats): log p(x | pi(v)), v ~ q(v|x) reparameterized, minus the sticks' KL."""
        q = self.posterior(x)
        pi = log_stick_breaking(*q.log_rsample()).exp()
        kl = kl_divergence(q, self.prior(q.concentration1)).sum(-1)
        return bernoulli_log_likelihood(x, self.decode(pi)) - kl

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """One sampled weight vector pi ~ q(pi | x) per example, shape (B, T)."""
        return log_stick_breaking(*self.posterior(x).log_rsample()).exp()

    @torch.no_grad()
    def sample_prior(self, n: int, component: int | None = None) -> torch.Tensor:
        """``n`` weight vectors pi from the truncated GEM(alpha0) prior, shape (n, T); ``component`` must be None."""
        if component is not None:
            raise DlgmmError(f"{self.kind} has no mixture components (got component={component!r})")
        weight = self.decoder[0].weight
        v = self.prior(weight).sample((n,))
        return stick_breaking(v)

    def log_importance_weights(self, x: torch.Tensor, samples: int, component: str = "summed") -> torch.Tensor:
        """``log p(x, v) - log q(v | x)`` for ``samples`` draws of the T-1 sticks v ~ q(v|x); shape (samples, B).

        Proposal: the inference network's Kumaraswamy sticks. With pi = pi(v),
        w = p(x | pi) prod_k Beta(v_k; 1, alpha0) / prod_k Kumar(v_k; a_k, b_k)
        is unbiased for p(x): E_q[w] = int p(x | pi(v)) p(v) dv = p(x), and
        q > 0 on all of (0, 1)^(T-1). Both densities are evaluated from
        log v and log(1 - v) (``log_rsample``), so no v rounds to 0 or 1.
        One decoder pass over samples*B rows. The decoder reads pi itself, with
        no mixture component, so ``component`` ("summed" or "sampled") changes nothing.
        """
        check_component(component)
        q = self.posterior(x)
        log_v, log1m_v = q.log_rsample((samples,))  # (S, B, T-1)
        pi = log_stick_breaking(log_v, log1m_v).exp()
        logits = self.decode(pi.reshape(-1, self.latent_dim)).view(samples, x.shape[0], -1)
        log_p_v, log_q_v = stick_log_densities(self.prior(log_v), q, log_v, log1m_v)
        return bernoulli_log_likelihood(x, logits) + log_p_v - log_q_v
