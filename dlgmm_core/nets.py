"""Network pieces shared by every model: the one MLP builder and the Bernoulli likelihood.

All encoders and decoders are built by :func:`mlp` (Linear+ReLU stacks), with
the authors' initialisation: weights drawn from N(0, 0.01^2), biases zero.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LOG_TWO_PI = 1.8378770664093453  # log(2 pi)

#: Standard deviation of the initial weights (the authors' N(0, 0.01^2)).
INIT_STD = 0.01


def mlp(sizes: list[int] | tuple[int, ...], *, activate_last: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ReLU between them.

    ``activate_last=True`` also puts a ReLU after the last layer (an encoder
    trunk ``input_dim -> hidden``); otherwise the output is linear (a decoder
    producing logits, or a single linear head ``mlp([hidden, n])``).
    Weights start as N(0, 0.01^2) and biases as zero, as in the authors' code.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least two sizes, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        nn.init.normal_(linear.weight, mean=0.0, std=INIT_STD)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if activate_last or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def float32_at_least(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or unchanged if it already has float32/float64 precision.

    Under bf16/fp16 autocast the linear layers return half precision; the
    distribution parameters and every log-density sum are computed in float32
    so that the ELBO keeps its precision (float64 models stay float64).
    """
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``log p(x | logits)`` summed over the last dimension; ``x`` and ``logits`` broadcast.

    Uses ``-binary_cross_entropy_with_logits``, stable for any finite logit,
    and sums in (at least) float32.
    """
    logits = float32_at_least(logits)
    logits, target = torch.broadcast_tensors(logits, x.to(logits.dtype))
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """``sum_d log N(z_d; mean_d, exp(log_scale_d)^2)`` (diagonal Gaussian, last dim summed).

    Written in terms of ``log_scale`` so a tiny scale never divides by zero.
    """
    standardized = (z - mean) * torch.exp(-log_scale)
    return (-0.5 * standardized.square() - log_scale - 0.5 * _LOG_TWO_PI).sum(-1)


def gaussian_mixture_log_densities(z: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """``gaussian_log_density(z.unsqueeze(2), mean, log_scale)`` for every sample and component: (S, B, K).

    ``z``: (S, B, D) samples; ``mean``, ``log_scale``: K diagonal Gaussians per
    example, broadcastable to (B, K, D). The direct form builds an S x B x K x D
    tensor (21 million elements for the marginal likelihood of the DLDPMM) and
    is memory-bound. Expanding the square,
    sum_d (z_d - m_d)^2 / s_d^2 = sum_d z_d^2 / s_d^2 - 2 z_d m_d / s_d^2 + m_d^2 / s_d^2,
    is one batched matrix product of the features [z^2, z] (B, S, 2D) with the
    per-component terms [-1/(2 s^2), m / s^2] (B, 2D, K), plus a constant per
    component. The expansion cancels (terms of size (z / s)^2 for a result of
    size D), so it runs in float64, where the cancellation costs ~1e-12 nats;
    the result is then as accurate as the direct form in float64 and returned
    in ``z``'s dtype.
    """
    batch, dim = z.shape[1], z.shape[-1]
    mean, log_scale = (t.double().expand(batch, -1, dim) for t in torch.broadcast_tensors(mean, log_scale))
    precision = torch.exp(-2 * log_scale)
    terms = torch.cat([-0.5 * precision, mean * precision], dim=-1)  # (B, K, 2D)
    const = (-0.5 * mean.square() * precision - log_scale).sum(-1) - 0.5 * dim * _LOG_TWO_PI  # (B, K)
    z64 = z.double().transpose(0, 1)  # (B, S, D)
    features = torch.cat([z64.square(), z64], dim=-1)  # (B, S, 2D)
    return torch.baddbmm(const.unsqueeze(1), features, terms.transpose(1, 2)).transpose(0, 1).to(z.dtype)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter."""
    return next(model.parameters()).device


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of ``model``'s first parameter."""
    return next(model.parameters()).dtype


#: log a and log b of every Kumaraswamy head are clamped to this range, so
#: a, b lie in [1e-3, 1e3], the box on which the Kumaraswamy sampler, mean and
#: KL of :mod:`dlgmm_core.distributions` are finite and accurate: an extreme
#: head can neither make a or b 0 or inf nor put NaN into the ELBO.
LOG_AB_RANGE = (math.log(1e-3), math.log(1e3))


def kumaraswamy_log_density_from_logs(a: torch.Tensor, b: torch.Tensor, log_v: torch.Tensor,
                                      log1m_v: torch.Tensor) -> torch.Tensor:
    """log Kumaraswamy(v; a, b) = log a + log b + (a-1) log v + (b-1) log(1 - v^a), from log v and log(1 - v).

    ``Kumaraswamy.log_prob`` takes v itself, which cannot represent a stick
    within 1e-38 of 1 (common for small b); here log(1 - v^a) = log(1 - exp(-e^s))
    with s = log(-a log v), where log(-log v) is read from ``log1m_v`` whenever v
    is that close to 1 (then log(1 - v) = log(-log v) to rounding) and from
    ``log_v`` otherwise, so the density matches the sample (log v, log(1 - v)) of
    ``Kumaraswamy.log_rsample`` everywhere.
    """
    from .distributions import log1mexp

    log_eps = math.log(torch.finfo(log_v.dtype).eps)
    near_one = log1m_v < log_eps
    log_neg_log_v = torch.where(near_one, log1m_v, torch.log(-torch.where(near_one, -torch.ones_like(log_v), log_v)))
    s = log_neg_log_v + torch.log(a)
    log1m_va = torch.where(s < log_eps, s, log1mexp(-torch.exp(torch.where(s < log_eps, torch.zeros_like(s), s))))
    return torch.log(a) + torch.log(b) + (a - 1) * log_v + (b - 1) * log1m_va


def beta_log_density_from_logs(alpha: torch.Tensor, beta: torch.Tensor, log_v: torch.Tensor,
                               log1m_v: torch.Tensor) -> torch.Tensor:
    """log Beta(v; alpha, beta) from log v and log(1 - v) (exact where v rounds to 0 or 1)."""
    log_norm = torch.lgamma(alpha) + torch.lgamma(beta) - torch.lgamma(alpha + beta)
    return (alpha - 1) * log_v + (beta - 1) * log1m_v - log_norm
