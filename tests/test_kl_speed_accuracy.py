"""Accuracy of the float32 evaluation of the quadrature KL, which the models train with.

The reference is E_q[log(1 - v)] by a dense float64 rule (1,000 panels of 8
Gauss-Legendre nodes, independent of the module's panel layout) with
autograd through the plain integrand log1mexp(log1mexp(-t) / a) + t, on a log
grid of a, b over the box the Kumaraswamy heads are clamped to
(LOG_AB_RANGE, [1e-3, 1e3]). Value and gradient in log a, log b are compared
for the KL to Beta(1, 5), the SB-VAE's stick prior with alpha0 = 5.
"""
from __future__ import annotations

import math

import pytest
import torch

from dlgmm_core.distributions import LOG_AB_RANGE, _gauss_legendre, kl_kumaraswamy_beta, log1mexp

F64 = torch.float64
ALPHA, BETA = 1.0, 5.0
EULER = 0.5772156649015329


def _dense_rule() -> tuple[torch.Tensor, torch.Tensor]:
    """e^rho and weights exp(rho - e^rho) d rho of a uniform composite rule over rho in [-45, 4.6]."""
    x, w = _gauss_legendre(8)
    edges = torch.linspace(-45.0, 4.6, 1001, dtype=F64)
    lo, hi = edges[:-1, None], edges[1:, None]
    rho = ((lo + hi) / 2 + (hi - lo) / 2 * x).flatten()
    return torch.exp(rho), ((hi - lo) / 2 * w).flatten() * torch.exp(rho - torch.exp(rho))


def _reference_kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """KL(Kumaraswamy(a, b) || Beta(1, 5)) in float64, differentiable in log a, log b."""
    a, b = log_a.exp(), log_b.exp()
    exp_rho, weights = _dense_rule()
    t = (exp_rho / b.unsqueeze(-1)).clamp(max=600.0)
    e_log1m_v = (log1mexp(log1mexp(-t) / a.unsqueeze(-1)) + t) @ weights - 1 / b
    entropy = (1 - 1 / b) + (1 - 1 / a) * (torch.digamma(b + 1) + EULER) - torch.log(a * b)
    e_log_v = -(EULER + torch.digamma(b) + 1 / b) / a
    log_beta = math.lgamma(ALPHA) + math.lgamma(BETA) - math.lgamma(ALPHA + BETA)
    return -entropy - (ALPHA - 1) * e_log_v - (BETA - 1) * e_log1m_v + log_beta


def _value_and_grads(fn, log_a: torch.Tensor, log_b: torch.Tensor):
    log_a, log_b = log_a.clone().requires_grad_(), log_b.clone().requires_grad_()
    kl = fn(log_a, log_b)
    grad_a, grad_b = torch.autograd.grad(kl.sum(), (log_a, log_b))
    return kl.detach().double(), grad_a.double(), grad_b.double()


@pytest.fixture(scope="module")
def grid():
    """(log a, log b, reference KL, its d/d log a, its d/d log b) on a 37 x 37 log grid over [1e-3, 1e3]^2."""
    axis = torch.linspace(*LOG_AB_RANGE, 37).double()  # float32 numbers: both dtypes see the same a, b
    log_a, log_b = (t.flatten() for t in torch.meshgrid(axis, axis, indexing="ij"))
    return (log_a, log_b) + _value_and_grads(_reference_kl, log_a, log_b)


def _model_kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    return kl_kumaraswamy_beta(log_a.exp(), log_b.exp(), ALPHA, BETA, method="quadrature")


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_quadrature_kl_value_and_gradients_match_dense_reference(grid, dtype):
    """Within 1e-5 nats and 1e-5 + 1e-4 |grad| on [1e-2, 1e2]^2; within 2e-4 nats and 2e-3 + 1e-3 |grad| on [1e-3, 1e3]^2.

    Plus two units in the last place of the result's dtype: a float32 KL of
    100 nats is itself rounded by up to 4e-6. Measured on the inner box, beyond
    that rounding: float32 within 3e-6 nats, float64 within 5e-8 (from a or
    b < 1e-2 on, the rule's own error dominates, equally in both dtypes).
    """
    log_a, log_b, ref, ref_a, ref_b = grid
    kl, grad_a, grad_b = _value_and_grads(_model_kl, log_a.to(dtype), log_b.to(dtype))
    assert kl.isfinite().all() and grad_a.isfinite().all() and grad_b.isfinite().all()
    rounding = 2 * torch.finfo(dtype).eps * ref.abs()
    inner = (log_a.abs() <= math.log(100.0) + 1e-9) & (log_b.abs() <= math.log(100.0) + 1e-9)
    for mask, value_tol, grad_abs, grad_rel in ((inner, 1e-5, 1e-5, 1e-4), (~inner, 2e-4, 2e-3, 1e-3)):
        assert ((kl - ref).abs() <= value_tol + rounding)[mask].all(), ((kl - ref).abs() - rounding)[mask].max()
        for ours, theirs in ((grad_a, ref_a), (grad_b, ref_b)):
            err = (ours - theirs)[mask].abs()
            assert (err <= grad_abs + grad_rel * theirs[mask].abs()).all(), err.max()


def test_float32_and_float64_nodes_agree(grid):
    """Over the whole box, the float32 evaluation adds at most 1e-5 nats to the float64 one beyond rounding its result."""
    log_a, log_b = grid[:2]
    kl32, grad_a32, grad_b32 = _value_and_grads(_model_kl, log_a.float(), log_b.float())
    kl64, grad_a64, grad_b64 = _value_and_grads(_model_kl, log_a, log_b)
    assert ((kl32 - kl64).abs() <= 1e-5 + 2 * torch.finfo(torch.float32).eps * kl64.abs()).all()
    assert ((grad_a32 - grad_a64).abs() <= 1e-5 + 1e-5 * grad_a64.abs()).all()
    assert ((grad_b32 - grad_b64).abs() <= 1e-5 + 1e-5 * grad_b64.abs()).all()
