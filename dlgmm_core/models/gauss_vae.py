"""Gauss-VAE (500d-25s): factorized Gaussian posterior, N(0, I) prior, Bernoulli decoder."""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

from ..errors import DlgmmError
from ..nets import bernoulli_log_likelihood, check_component, float32_at_least, mlp

#: log sigma is clamped to this range: sigma in [4.5e-5, 2.2e4]. Wide enough to
#: never bind in training, narrow enough that sigma^2 cannot overflow float32
#: or vanish (no inf/NaN from an extreme head).
LOG_SIGMA_RANGE = (-10.0, 10.0)


def encoder_trunk(input_dim: int, hidden: int, activation: str) -> nn.Sequential:
    """The encoder's first layer ``input_dim -> hidden``, which every model's heads read.

    ``activation`` (checked by :func:`dlgmm_core.build_model`): ``relu`` puts a
    ReLU after the layer, as the paper's text describes; ``linear`` leaves it
    affine, as in the authors' code behind the published numbers
    (enalisnick/mixture_density_VAEs), whose only ReLU is in the decoder. With
    a linear encoder the validation-ELBO curve of this package lies on the
    authors' logged one; with a ReLU it runs 4-5 nats ahead. Either way the
    layer holds the same weights, drawn in the same order, under the same
    state_dict keys.
    """
    return mlp([input_dim, hidden], activate_last={"relu": True, "linear": False}[activation])


class GaussVAE(nn.Module):
    """VAE of Kingma & Welling with a diagonal Gaussian q(z|x) and prior N(0, I).

    Encoder ``x -> hidden`` (a ReLU after it, or none: ``encoder_activation``,
    see :func:`encoder_trunk`) with linear heads for mu and log sigma; decoder
    ``z -> hidden (ReLU) -> input_dim`` Bernoulli logits. Weights start
    N(0, 0.01^2), biases zero (the authors' initialisation, see :func:`mlp`).
    """

    kind = "gauss_vae"

    def __init__(self, *, input_dim: int, hidden: int, encoder_activation: str, latent: int):
        super().__init__()
        self.config = {"input_dim": input_dim, "hidden": hidden, "encoder_activation": encoder_activation,
                       "latent": latent}
        self.latent_dim = latent
        self.encoder = encoder_trunk(input_dim, hidden, encoder_activation)
        self.mu_head = mlp([hidden, latent])
        self.log_sigma_head = mlp([hidden, latent])
        self.decoder = mlp([latent, hidden, input_dim])

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
            raise DlgmmError(f"gauss_vae has no mixture components (got component={component!r})")
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
