"""Gauss-VAE (500d-25s): factorized Gaussian posterior, N(0, I) prior, Bernoulli decoder."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

from .. import fields
from ..errors import DlgmmError
from ..nets import (LOG_SIGMA_RANGE, bernoulli_log_likelihood, check_component, encoder_activation, encoder_trunk,
                    float32_at_least, mlp)


@dataclass(frozen=True, kw_only=True)
class GaussVAEConfig:
    """A Gauss-VAE: ``model.gauss_vae`` of params.yaml (``input_dim`` from the data)."""

    kind: ClassVar[str] = "gauss_vae"
    title: ClassVar[str] = "Gauss-VAE"

    input_dim: int = fields.integer(from_data=True)
    hidden: int = fields.integer()
    encoder_activation: str = encoder_activation()
    latent: int = fields.integer()

    def __post_init__(self) -> None:
        fields.check(self)

    def architecture(self) -> str:
        """The paper's notation: ``<hidden>d-<latent>s``."""
        return f"{self.hidden}d-{self.latent}s"


class GaussVAE(nn.Module):
    """VAE of Kingma & Welling with a diagonal Gaussian q(z|x) and prior N(0, I).

    Encoder ``x -> hidden`` (a ReLU after it, or none: ``encoder_activation``,
    see :func:`encoder_trunk`) with linear heads for mu and log sigma; decoder
    ``z -> hidden (ReLU) -> input_dim`` Bernoulli logits. Weights start
    N(0, 0.01^2), biases zero (the authors' initialisation, see :func:`mlp`).
    """

    kind = GaussVAEConfig.kind

    def __init__(self, config: GaussVAEConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent
        self.encoder = encoder_trunk(config.input_dim, config.hidden, config.encoder_activation)
        self.mu_head = mlp([config.hidden, config.latent])
        self.log_sigma_head = mlp([config.hidden, config.latent])
        self.decoder = mlp([config.latent, config.hidden, config.input_dim])

    def posterior(self, x: torch.Tensor) -> Independent:
        """q(z | x) as a diagonal Normal (event dim = latent)."""
        h = self.encoder(x)
        mu = float32_at_least(self.mu_head(h))
        log_sigma = float32_at_least(self.log_sigma_head(h)).clamp(*LOG_SIGMA_RANGE)
        return Independent(Normal(mu, log_sigma.exp(), validate_args=False), 1)

    def prior(self, like: torch.Tensor) -> Independent:
        """p(z) = N(0, I), batch-shaped like ``like``."""
        zeros = torch.zeros_like(like)
        return Independent(Normal(zeros, torch.ones_like(like), validate_args=False), 1)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | z) for ``latent`` of shape (N, latent)."""
        return self.decoder(latent)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO (nats): log p(x | z) with one reparameterized z ~ q(z|x), minus KL(q || N(0, I))."""
        q = self.posterior(x)
        z = q.rsample()
        return bernoulli_log_likelihood(x, self.decode(z)) - kl_divergence(q, self.prior(q.mean))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """One sample z ~ q(z | x) per example, shape (B, latent)."""
        return self.posterior(x).sample()

    @torch.no_grad()
    def sample_prior(self, n: int, component: int | None = None) -> torch.Tensor:
        """``n`` draws z ~ N(0, I) of shape (n, latent); ``component`` must be None."""
        if component is not None:
            raise DlgmmError(f"{self.kind} has no mixture components (got component={component!r})")
        weight = self.decoder[0].weight
        return torch.randn(n, self.latent_dim, device=weight.device, dtype=weight.dtype)

    def log_importance_weights(self, x: torch.Tensor, samples: int, component: str = "summed") -> torch.Tensor:
        """``log p(x, z) - log q(z | x)`` for ``samples`` draws z ~ q(z | x); shape (samples, B).

        Proposal: the inference network's q(z|x). w = p(x|z) N(z; 0, I) / q(z|x)
        is unbiased for p(x) because E_q[w] = int p(x|z) p(z) dz = p(x), and q > 0
        everywhere. One decoder pass over samples*B rows. There is no mixture
        component, so ``component`` ("summed" or "sampled") changes nothing.
        """
        check_component(component)
        q = self.posterior(x)
        z = q.sample((samples,))  # (S, B, latent)
        logits = self.decode(z.reshape(-1, self.latent_dim)).view(samples, x.shape[0], -1)
        return bernoulli_log_likelihood(x, logits) + self.prior(z).log_prob(z) - q.log_prob(z)
