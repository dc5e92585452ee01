"""Network pieces shared by every model: the one MLP builder, the stick heads, the Bernoulli likelihood.

All encoders and decoders are built by :func:`mlp` (Linear+ReLU stacks), with
the authors' initialisation: weights drawn from N(0, 0.01^2), biases zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import fields
from .distributions import LOG_AB_RANGE, Kumaraswamy
from .errors import DlgmmError

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


#: What follows the first encoder layer (input -> hidden): a ReLU (the paper's text), or nothing (the authors' code).
ENCODER_ACTIVATIONS = ("relu", "linear")

#: log sigma is clamped to this range: sigma in [4.5e-5, 2.2e4]. Wide enough to
#: never bind in training, narrow enough that sigma^2 cannot overflow float32
#: or vanish (no inf/NaN from an extreme head).
LOG_SIGMA_RANGE = (-10.0, 10.0)


def encoder_trunk(input_dim: int, hidden: int, activation: str) -> nn.Sequential:
    """The encoder's first layer ``input_dim -> hidden``, which every model's heads read.

    ``activation`` (checked by the model's config): ``relu`` puts a
    ReLU after the layer, as the paper's text describes; ``linear`` leaves it
    affine, as in the authors' code behind the published numbers
    (enalisnick/mixture_density_VAEs), whose only ReLU is in the decoder. With
    a linear encoder the validation-ELBO curve of this package lies on the
    authors' logged one; with a ReLU it runs 4-5 nats ahead. Either way the
    layer holds the same weights, drawn in the same order, under the same
    state_dict keys.
    """
    return mlp([input_dim, hidden], activate_last={"relu": True, "linear": False}[activation])


def encoder_activation():
    """The ``encoder_activation`` field of every model's config: ``relu`` unless set (the encoder of the
    paper's text, and of every checkpoint written before the field existed)."""
    return fields.choice(ENCODER_ACTIVATIONS, default="relu")


def float32_at_least(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or unchanged if it already has float32/float64 precision.

    Under bf16/fp16 autocast the linear layers return half precision; the
    distribution parameters and every log-density sum are computed in float32
    so that the ELBO keeps its precision (float64 models stay float64).
    """
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def stick_posterior(h: torch.Tensor, log_a_head: nn.Module, log_b_head: nn.Module, kl_method: str,
                    taylor_terms: int) -> Kumaraswamy:
    """q(v | x): Kumaraswamy sticks with a = exp(log_a_head(h)), b = exp(log_b_head(h)).

    Each head is read in (at least) float32 and clamped to ``LOG_AB_RANGE``,
    so a and b can be neither 0 nor inf; ``kl_method`` and ``taylor_terms``
    choose how the sticks' KL to a Beta prior is computed.
    """
    log_a = float32_at_least(log_a_head(h)).clamp(*LOG_AB_RANGE)
    log_b = float32_at_least(log_b_head(h)).clamp(*LOG_AB_RANGE)
    return Kumaraswamy(log_a.exp(), log_b.exp(), kl_method=kl_method, taylor_terms=taylor_terms, validate_args=False)


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


#: ``log_importance_weights(x, samples, component)``: "summed" weighs (v, z) with the
#: mixture component summed out of target and proposal (ours); "sampled" weighs
#: (v, k, z) with the sampled component k (the authors'). Models without a
#: mixture component give the same weights for both.
COMPONENTS = ("summed", "sampled")


def check_component(component: str) -> str:
    """``component`` if it is one of :data:`COMPONENTS` (``log_importance_weights``' argument), else DlgmmError."""
    if component not in COMPONENTS:
        raise DlgmmError(f"component must be one of {', '.join(map(repr, COMPONENTS))} (got {component!r})")
    return component
