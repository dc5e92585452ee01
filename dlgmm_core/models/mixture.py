"""DLGMM and DLDPMM: deep latent Gaussian mixtures (finite Dirichlet or truncated DP weights)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.distributions import Beta, kl_divergence

from .. import fields
from ..distributions import (KL_METHODS, Kumaraswamy, dirichlet_stick_prior, dp_stick_prior, log_stick_breaking,
                             stick_breaking, stick_log_densities)
from ..errors import DlgmmError
from ..nets import (LOG_SIGMA_RANGE, bernoulli_log_likelihood, check_component, encoder_activation, encoder_trunk,
                    float32_at_least, gaussian_log_density, gaussian_mixture_log_densities, mlp, stick_posterior)


@dataclass(frozen=True, kw_only=True)
class DLGMMConfig:
    """A DLGMM, K = ``components`` with a symmetric Dirichlet(``alpha``) prior on the weights.

    ``model.dlgmm`` of params.yaml, where ``components`` is the top-level ``k``
    (:data:`dlgmm_core.registry.SECTIONS`), or any section building this kind
    (the qualitative model's sets ``components`` itself); ``kl_method`` is
    ``kl`` there, ``input_dim`` comes from the data.
    """

    kind: ClassVar[str] = "dlgmm"
    title: ClassVar[str] = "DLGMM"

    input_dim: int = fields.integer(from_data=True)
    hidden: int = fields.integer()
    encoder_activation: str = encoder_activation()
    latent: int = fields.integer()
    components: int = fields.integer()
    alpha: float = fields.number(positive=True)
    prior_means: tuple[float, ...] = fields.numbers(per="components")
    prior_scales: tuple[float, ...] = fields.numbers(positive=True, per="components")
    kl_method: str = fields.choice(KL_METHODS, param="kl")
    taylor_terms: int = fields.integer()

    def __post_init__(self) -> None:
        fields.check(self)

    def stick_prior(self, device: torch.device, dtype: torch.dtype) -> Beta:
        """The K-1 sticks' Beta(alpha, (K-1-k) alpha) priors: the marginals of the Dirichlet."""
        return dirichlet_stick_prior(self.components, self.alpha, device=device, dtype=dtype)

    def architecture(self) -> str:
        """The paper's notation: ``<hidden>d-<components>x<latent>s``."""
        return f"{self.hidden}d-{self.components}x{self.latent}s"


@dataclass(frozen=True, kw_only=True)
class DLDPMMConfig:
    """A DLDPMM, K = ``truncation`` with a truncated DP(``alpha0``) prior: sticks Beta(1, alpha0).

    ``model.dldpmm`` of params.yaml (``kl_method`` is ``kl`` there, ``input_dim`` from the data).
    """

    kind: ClassVar[str] = "dldpmm"
    title: ClassVar[str] = "DLDPMM"

    input_dim: int = fields.integer(from_data=True)
    hidden: int = fields.integer()
    encoder_activation: str = encoder_activation()
    latent: int = fields.integer()
    truncation: int = fields.integer(minimum=2)
    alpha0: float = fields.number(positive=True)
    prior_means: tuple[float, ...] = fields.numbers(per="truncation")
    prior_scales: tuple[float, ...] = fields.numbers(positive=True, per="truncation")
    kl_method: str = fields.choice(KL_METHODS, param="kl")
    taylor_terms: int = fields.integer()

    def __post_init__(self) -> None:
        fields.check(self)

    @property
    def components(self) -> int:
        """K: the truncation."""
        return self.truncation

    def stick_prior(self, device: torch.device, dtype: torch.dtype) -> Beta:
        """The K-1 sticks' Beta(1, alpha0) priors."""
        return dp_stick_prior(self.truncation, self.alpha0, device=device, dtype=dtype)

    def architecture(self) -> str:
        """The paper's notation: ``<hidden>d-<truncation>tx<latent>s``."""
        return f"{self.hidden}d-{self.truncation}tx{self.latent}s"


class DeepLatentMixture(nn.Module):
    """Deep latent Gaussian mixture: a DLGMM (:class:`DLGMMConfig`) or a DLDPMM (:class:`DLDPMMConfig`).

    Generative model: sticks v_k ~ Beta_k (k < K), pi = stick_breaking(v);
    z ~ sum_k pi_k N(m_k, s_k^2 I); x ~ Bernoulli(decoder(z)). The two kinds differ
    only in the stick prior: ``dlgmm`` Beta(alpha, (K-1-k) alpha) (the marginals
    of a symmetric Dirichlet(alpha)), ``dldpmm`` Beta(1, alpha0) (truncated DP).
    m_k, s_k come from ``prior_means``/``prior_scales`` (one value for all
    components, or one per component; each applies in every latent dimension).

    Posterior q(v, z | x) = prod_k Kumar(v_k; a_k, b_k) * sum_k pi_k(v) N(z; mu_k, sigma_k^2 I).
    Encoder: ``x -> hidden`` (a ReLU after it, or none: ``encoder_activation``,
    see :func:`~dlgmm_core.nets.encoder_trunk`), then ONE linear
    head for all K (mu_k, log sigma_k) and one head each for the K-1 log a and
    log b (log sigma and log a/b are clamped so that no extreme head gives 0 or
    inf). Decoder ``z -> hidden (ReLU) -> input_dim`` logits. Weights start N(0, 0.01^2), biases zero (the authors').

    :meth:`elbo` is Eq. (1) of the paper with S = 1, as the authors computed it::

        sum_k E[pi_k] [log p(x | z_k) + E_{q_k} log N(z; m_k, s_k)] - sum_k KL(Kumar(a_k, b_k) || Beta_k)
            - log sum_k pi_hat_k q_k(z_k)

    with one reparameterized z_k ~ q_k per component (the K decoder passes are
    one batched call), E[pi] = stick_breaking(E[v]) (exact: the sticks are
    independent), the prior term in closed form, and pi_hat from sampled sticks.
    q_k(z_k) is component k's density at its OWN sample (the authors' estimator).
    By Jensen, -log sum_k pi_k q_k(z_k) <= sum_k pi_k (-log q_k(z_k)): this entropy
    term never exceeds the component-wise entropy, so in expectation the objective
    stays below the component-indicator ELBO and hence below log p(x).
    """

    def __init__(self, config: DLGMMConfig | DLDPMMConfig):
        super().__init__()
        self.config, self.kind = config, config.kind
        k, latent, hidden = config.components, config.latent, config.hidden
        self.components, self.latent_dim = k, latent
        self.encoder = encoder_trunk(config.input_dim, hidden, config.encoder_activation)
        self.gauss_head = mlp([hidden, k * 2 * latent])  # all K (mu_k, log sigma_k) at once
        if k > 1:  # K = 1 has no sticks: pi = (1,)
            self.log_a_head = mlp([hidden, k - 1])
            self.log_b_head = mlp([hidden, k - 1])
        self.decoder = mlp([latent, hidden, config.input_dim])
        # Prior component parameters follow from the config, so they are not saved in the state_dict.
        self.register_buffer("prior_mean", torch.tensor(config.prior_means).expand(k).clone(), persistent=False)
        self.register_buffer("prior_log_scale", torch.tensor(config.prior_scales).log().expand(k).clone(),
                             persistent=False)

    # --- pieces -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Kumaraswamy | None]:
        """``(mu, log_sigma, q_v)``: (B, K, latent) Gaussian parameters and the K-1 Kumaraswamy sticks."""
        h = self.encoder(x)
        gauss = float32_at_least(self.gauss_head(h)).view(x.shape[0], self.components, 2, self.latent_dim)
        mu, log_sigma = gauss[:, :, 0], gauss[:, :, 1].clamp(*LOG_SIGMA_RANGE)
        if self.components == 1:
            return mu, log_sigma, None
        q_v = stick_posterior(h, self.log_a_head, self.log_b_head, self.config.kl_method,
                              self.config.taylor_terms)
        return mu, log_sigma, q_v

    def stick_prior(self, like: torch.Tensor):
        """The K-1 prior Betas of the sticks, as the config says (the only difference between the two kinds)."""
        return self.config.stick_prior(device=like.device, dtype=like.dtype)

    def _prior_params(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, 1) prior means and log scales, broadcasting over the latent dimensions."""
        return (self.prior_mean.to(like.dtype)[:, None], self.prior_log_scale.to(like.dtype)[:, None])

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | z) for ``latent`` of shape (N, latent)."""
        return self.decoder(latent)

    # --- objective ----------------------------------------------------------------------
    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO of Eq. (1) with S = 1 (see the class docstring), in nats, shape (B,)."""
        mu, log_sigma, q_v = self.encode(x)
        batch, k, dim = mu.shape
        z = mu + log_sigma.exp() * torch.randn_like(mu)  # one reparameterized sample per component
        logits = self.decode(z.reshape(batch * k, dim)).view(batch, k, -1)  # K decoder passes, one call
        log_lik = bernoulli_log_likelihood(x.unsqueeze(1), logits)  # (B, K)
        m, log_s = self._prior_params(mu)  # E_{q_k} log N(z; m_k, s_k^2 I) in closed form:
        prior_term = (-0.5 * math.log(2 * math.pi) - log_s
                      - 0.5 * (torch.exp(2 * (log_sigma - log_s)) + ((mu - m) * torch.exp(-log_s)).square())).sum(-1)
        log_q = gaussian_log_density(z, mu, log_sigma)  # log q_k(z_k), each component at its own sample
        if q_v is None:
            mean_pi, log_pi_hat, kl = torch.ones_like(log_q), torch.zeros_like(log_q), 0.0
        else:
            mean_pi = stick_breaking(q_v.mean)  # E[pi], exact since the sticks are independent
            log_pi_hat = log_stick_breaking(*q_v.log_rsample())  # sampled weights, in log space
            kl = kl_divergence(q_v, self.stick_prior(mu)).sum(-1)
        return (mean_pi * (log_lik + prior_term)).sum(-1) - kl - torch.logsumexp(log_pi_hat + log_q, dim=-1)

    # --- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """One z per example, from the component with the largest mean weight E[pi_k] (as the authors)."""
        mu, log_sigma, q_v = self.encode(x)
        best = torch.zeros(x.shape[0], dtype=torch.long, device=mu.device) if q_v is None \
            else stick_breaking(q_v.mean).argmax(-1)
        rows = torch.arange(x.shape[0], device=mu.device)
        return mu[rows, best] + log_sigma[rows, best].exp() * torch.randn_like(mu[:, 0])

    @torch.no_grad()
    def sample_prior(self, n: int, component: int | None = None) -> torch.Tensor:
        """``n`` draws z from the prior mixture, shape (n, latent): sticks -> pi -> component -> z.

        With ``component=k``, z ~ N(m_k, s_k^2 I) of prior component k only.
        """
        like = self.decoder[0].weight
        m, log_s = self._prior_params(like)
        if component is None:
            if self.components == 1:
                index = torch.zeros(n, dtype=torch.long, device=like.device)
            else:
                pi = stick_breaking(self.stick_prior(like).sample((n,)))
                index = torch.multinomial(pi, 1).squeeze(-1)
        elif isinstance(component, int) and not isinstance(component, bool) and 0 <= component < self.components:
            index = torch.full((n,), component, dtype=torch.long, device=like.device)
        else:
            raise DlgmmError(f"{self.kind}: component must be None or an integer in [0, {self.components}) "
                             f"(got {component!r})")
        eps = torch.randn(n, self.latent_dim, device=like.device, dtype=like.dtype)
        return m[index] + log_s[index].exp() * eps

    def log_importance_weights(self, x: torch.Tensor, samples: int, component: str = "summed") -> torch.Tensor:
        """Importance log-weights of ``samples`` draws (v, k, z) from the proposal; shape (samples, B).

        Proposal (the inference network): v ~ q(v|x) (Kumaraswamy),
        k ~ Categorical(pi(v)) (Gumbel-max), z ~ q_k(z|x). Both choices of
        ``component`` weigh the same draws, and both weights w are unbiased for
        p(x), because q > 0 wherever p > 0 (Kumaraswamy on (0, 1), Gaussians
        everywhere):

        - ``"summed"`` (ours): ``log p(x, v, z) - log q(v, z | x)``, latents
          (v, z) with k marginalized out: target p(v) sum_j pi_j(v) N(z; m_j, s_j^2 I)
          p(x|z), proposal q(v|x) sum_j pi_j(v) q_j(z|x); E_q[w] = int p(x, v, z) dv dz.
        - ``"sampled"`` (the authors'): ``log p(x, v, k, z) - log q(v, k, z | x)``
          = log p(x|z) + log p(v) + log N(z; m_k, s_k^2 I) - log q(v|x) - log q_k(z|x),
          on the augmented space (v, k, z) (pi_k(v) of target and proposal
          cancel); E_q[w] = sum_k int p(x, v, k, z) dv dz. Its variance is larger.

        Stick densities use log v, log(1 - v) from ``log_rsample``. One decoder
        pass per importance sample (not K): samples*B rows.
        """
        check_component(component)
        mu, log_sigma, q_v = self.encode(x)
        batch, k, dim = mu.shape
        zero = torch.zeros(samples, batch, dtype=mu.dtype, device=mu.device)
        if q_v is None:
            log_pi, log_p_v, log_q_v = torch.zeros(samples, batch, 1, dtype=mu.dtype, device=mu.device), zero, zero
        else:
            log_v, log1m_v = q_v.log_rsample((samples,))  # (S, B, K-1)
            log_pi = log_stick_breaking(log_v, log1m_v)  # (S, B, K)
            log_p_v, log_q_v = stick_log_densities(self.stick_prior(mu), q_v, log_v, log1m_v)
        gumbel = -torch.log(torch.empty_like(log_pi).exponential_())
        index = (log_pi + gumbel).argmax(-1)  # (S, B): k ~ Categorical(pi(v))
        rows = torch.arange(batch, device=mu.device)
        mu_k, log_sigma_k = mu[rows, index], log_sigma[rows, index]  # (S, B, D): the sampled component's
        z = mu_k + log_sigma_k.exp() * torch.randn(samples, batch, dim, dtype=mu.dtype, device=mu.device)
        logits = self.decode(z.reshape(samples * batch, dim)).view(samples, batch, -1)
        m, log_s = self._prior_params(mu)
        if component == "summed":
            # q_j(z) and N(z; m_j, s_j) for all K components at every sample: (S, B, K), one bmm each
            log_q_z = torch.logsumexp(log_pi + gaussian_mixture_log_densities(z, mu, log_sigma), dim=-1)
            log_p_z = torch.logsumexp(log_pi + gaussian_mixture_log_densities(z, m, log_s), dim=-1)
        else:
            log_q_z = gaussian_log_density(z, mu_k, log_sigma_k)
            log_p_z = gaussian_log_density(z, m[index], log_s[index])
        return bernoulli_log_likelihood(x, logits) + log_p_z + log_p_v - log_q_z - log_q_v
