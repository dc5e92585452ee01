"""Kumaraswamy sticks, KL(Kumaraswamy || Beta) both ways, stick-breaking and the stick priors.

References are independent of the code under test: KL by scipy's adaptive
quadrature of the expectations, Kumaraswamy samples against the exact CDF
1 - (1 - v^a)^b, log1mexp against 50-digit decimal arithmetic, the priors
against Dirichlet moments.
"""
from __future__ import annotations

import itertools
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
import torch
from scipy import integrate, special
from torch.distributions import Beta, kl_divergence

from dlgmm_core.distributions import (Kumaraswamy, _expected_log1m_v, _gauss_legendre, _quadrature_rule,
                                      dirichlet_stick_prior, dp_stick_prior, kl_kumaraswamy_beta, log1mexp,
                                      log_stick_breaking, stick_breaking)

GRID = (0.05, 0.3, 1.0, 3.0, 10.0, 50.0)
# Beta(1, beta): finite-mixture sticks with alpha = 1 and DP sticks; Beta(0.5, 0.5) and
# Beta(1, 16) (the first stick of a 17-component Dirichlet(1)) as harder cases.
PRIORS = ((1.0, 1.0), (1.0, 2.0), (1.0, 5.0), (1.0, 9.0), (0.5, 0.5), (1.0, 16.0))
EXTREMES = (1e-3, 1e-2, 100.0, 1e3)
EULER = 0.5772156649015329
F64 = torch.float64


# --- reference values by scipy quadrature -------------------------------------------------
def _log1mexp(x: float) -> float:
    return math.log(-math.expm1(x)) if x > -math.log(2) else math.log1p(-math.exp(x))


_BREAKS = [-300.0, -100.0, -40.0, -20.0, -10.0, -6.0, -3.0, -1.5]


def reference_expectations(a: float, b: float) -> tuple[float, float, float]:
    """(E[log q(v)], E[log v], E[log(1 - v)]) for q = Kumaraswamy(a, b), by scipy.integrate.quad.

    Integrates over the uniform u of the inverse CDF, v = (1 - (1 - u)^(1/b))^(1/a),
    in y = log u for u < 1/2 and y = log(1 - u) for u > 1/2, so that both ends
    (where log v or log(1 - v) diverge) are resolved in float64; log(1 - v^a) =
    log(1 - u) / b exactly. Below y = -700 the integrand is < 1e-300.
    """
    def logs(log1m_w: float) -> tuple[float, float]:
        log_v = _log1mexp(log1m_w) / a
        if log1m_w < -700:  # w = 1 - e^-700: 1 - w^(1/a) = (1 - w) / a to rounding
            return log_v, log1m_w - math.log(a)
        return log_v, _log1mexp(log_v)

    def integrand(y: float, upper: bool, k: int) -> float:
        log1m_w = (y if upper else math.log1p(-math.exp(y))) / b
        log_v, log1m_v = logs(log1m_w)
        piece = (math.log(a * b) + (a - 1) * log_v + (b - 1) * log1m_w, log_v, log1m_v)[k]
        return piece * math.exp(y)

    return tuple(sum(integrate.quad(integrand, -700.0, math.log(0.5), args=(upper, k), points=_BREAKS,
                                    epsabs=1e-11, epsrel=1e-11, limit=500)[0] for upper in (False, True))
                 for k in range(3))


def reference_kl(pieces: tuple[float, float, float], alpha: float, beta: float) -> float:
    e_log_q, e_log_v, e_log1m_v = pieces
    return e_log_q - (alpha - 1) * e_log_v - (beta - 1) * e_log1m_v + special.betaln(alpha, beta)


@pytest.fixture(scope="module")
def reference() -> dict[tuple[float, float], tuple[float, float, float]]:
    return {(a, b): reference_expectations(a, b) for a, b in itertools.product(GRID, GRID)}


@pytest.fixture(scope="module")
def grid_cases(reference):
    """(a, b, alpha, beta, reference KL) for every grid point and prior, as float64 tensors."""
    rows = [(a, b, al, be, reference_kl(reference[a, b], al, be))
            for (a, b), (al, be) in itertools.product(reference, PRIORS)]
    return torch.tensor(rows, dtype=F64).unbind(-1)


def test_reference_agrees_with_closed_forms(reference):
    """The scipy reference itself: E[log v] and -H[q] are known exactly, as is E[log(1 - v)] at b = 1."""
    for (a, b), (e_log_q, e_log_v, e_log1m_v) in reference.items():
        assert e_log_v == pytest.approx(-(EULER + special.digamma(b) + 1 / b) / a, abs=1e-9)
        entropy = Kumaraswamy(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)).entropy().item()
        assert -e_log_q == pytest.approx(entropy, abs=1e-9)
        if b == 1.0:  # v = U^(1/a): E[log(1 - v)] = -sum_m a / (m (m + a)) = -(digamma(1 + a) + euler)
            assert e_log1m_v == pytest.approx(-(special.digamma(1 + a) + EULER), abs=1e-9)


# --- KL, quadrature -----------------------------------------------------------------------
def test_quadrature_kl_matches_numerical_integration(grid_cases):
    a, b, alpha, beta, ref = grid_cases
    err64 = (kl_kumaraswamy_beta(a, b, alpha, beta) - ref).abs()
    # The rule is accurate to ~1e-10 here; 1e-6 leaves room for other libm/BLAS builds.
    assert err64.max().item() < 1e-6, (a[err64.argmax()], b[err64.argmax()], err64.max())
    kl32 = kl_kumaraswamy_beta(a.float(), b.float(), alpha.float(), beta.float())
    assert kl32.dtype == torch.float32
    assert (kl32.double() - ref).abs().max().item() < 1e-3


def test_quadrature_kl_reference_values():
    one = torch.tensor(1.0, dtype=F64)
    # Uniform q against Beta(1, 5): KL = 4 E_U[-log(1 - u)] + log B(1, 5) = 4 - log 5.
    assert kl_kumaraswamy_beta(one, one, 1.0, 5.0).item() == pytest.approx(4 - math.log(5), abs=1e-9)
    assert kl_kumaraswamy_beta(10 * one, one, 1.0, 16.0).item() == pytest.approx(
        reference_kl(reference_expectations(10.0, 1.0), 1.0, 16.0), abs=1e-6)
    assert kl_kumaraswamy_beta(10 * one, one, 1.0, 16.0).item() == pytest.approx(42.56, abs=0.01)


def test_quadrature_kl_gradients_match_finite_differences():
    points = [(0.05, 0.3, 1.0, 5.0), (0.3, 50.0, 0.5, 0.5), (1.0, 1.0, 1.0, 5.0), (10.0, 1.0, 1.0, 16.0),
              (50.0, 0.05, 1.0, 9.0), (3.0, 10.0, 1.0, 2.0)]
    for a0, b0, alpha, beta in points:
        a = torch.tensor([a0], dtype=F64, requires_grad=True)
        b = torch.tensor([b0], dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: kl_kumaraswamy_beta(a, b, alpha, beta), (a, b),
                                        eps=1e-6, atol=1e-6, rtol=1e-5)


def test_quadrature_hand_written_gradients_match_autograd():
    """_ExpectedLog1mV's derivatives equal autograd through the same quadrature written plainly.

    Compared on a log grid of a, b over [1e-3, 1e3] in float64, relative to the
    size of the terms (the derivative in b is a difference of terms of size 1/b^2).
    """
    grid = torch.logspace(-3, 3, 25, dtype=F64)
    a, b = (t.flatten() for t in torch.meshgrid(grid, grid, indexing="ij"))
    exp_rho, weights = _quadrature_rule(a.device)

    def plain(a, b):  # h = log1mexp(log1mexp(-t) / a) + t through autograd
        t = (exp_rho / b.unsqueeze(-1)).clamp(max=600.0)
        return (log1mexp(log1mexp(-t) / a.unsqueeze(-1)) + t) @ weights - 1 / b

    values, grads = [], []
    for fn in (plain, _expected_log1m_v):
        a_, b_ = a.clone().requires_grad_(), b.clone().requires_grad_()
        value = fn(a_, b_)
        grads.append(torch.autograd.grad(value.sum(), (a_, b_)))
        values.append(value.detach())
    (plain_a, plain_b), (ours_a, ours_b) = grads
    assert ours_a.isfinite().all() and ours_b.isfinite().all() and values[1].isfinite().all()
    assert ((values[1] - values[0]).abs() <= 1e-12 * torch.maximum(values[0].abs(), 1 / b)).all()
    assert ((ours_a - plain_a).abs() <= 1e-10 * torch.maximum(plain_a.abs(), 1 / a)).all()
    assert ((ours_b - plain_b).abs() <= 1e-10 * torch.maximum(plain_b.abs(), 1 / b ** 2)).all()
    assert torch.autograd.gradcheck(_expected_log1m_v, (a[::37].clone().requires_grad_(),
                                                        b[::37].clone().requires_grad_()), eps=1e-7, atol=1e-7)


@pytest.mark.parametrize("method", ["quadrature", "taylor"])
def test_kl_and_gradients_finite_at_extremes(method):
    a0, b0 = torch.tensor(list(itertools.product(EXTREMES, EXTREMES))).unbind(-1)
    for alpha, beta in PRIORS:
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        kl = kl_kumaraswamy_beta(a, b, alpha, beta, method=method)
        grad_a, grad_b = torch.autograd.grad(kl.sum(), (a, b))
        assert kl.isfinite().all() and grad_a.isfinite().all() and grad_b.isfinite().all()
        assert (kl > -1e-4).all()  # a KL; the float32 result may round just below 0


def test_kl_dtype_follows_widest_input():
    a = torch.tensor([0.5, 2.0])
    assert kl_kumaraswamy_beta(a, a, 1.0, 5.0).dtype == torch.float32
    assert kl_kumaraswamy_beta(a, a, torch.tensor(1.0, dtype=F64), 5.0).dtype == F64
    assert kl_kumaraswamy_beta(a[:, None], a[:, None], 1.0, torch.tensor([1.0, 2.0, 5.0])).shape == (2, 3)


def test_gauss_legendre_nodes_match_numpy():
    for n in (2, 8, 16):
        x, w = _gauss_legendre(n)
        ref_x, ref_w = np.polynomial.legendre.leggauss(n)
        np.testing.assert_allclose(x.numpy(), ref_x, atol=1e-14)
        np.testing.assert_allclose(w.numpy(), ref_w, atol=1e-14)


# --- KL, Taylor series (the authors') -----------------------------------------------------
def test_taylor_reproduces_the_authors_numbers_and_is_off():
    one = torch.tensor(1.0, dtype=F64)
    taylor = kl_kumaraswamy_beta(one, one, 1.0, 5.0, method="taylor").item()
    exact = 4 - math.log(5)
    assert taylor == pytest.approx(2.027, abs=0.005)
    assert exact - taylor > 0.3  # 10 terms miss 15% of this KL
    taylor = kl_kumaraswamy_beta(10 * one, one, 1.0, 16.0, method="taylor").item()
    exact = reference_kl(reference_expectations(10.0, 1.0), 1.0, 16.0)
    assert taylor == pytest.approx(32.5, abs=0.05)
    assert exact - taylor > 10.0


def test_taylor_series_terms():
    """At a = b = 1 the series is 4 sum_{m<=M} 1/(m(m+1)) = 4 M/(M+1): checks every term and M."""
    one = torch.tensor(1.0, dtype=F64)
    for terms in (1, 3, 10, 100):
        kl = kl_kumaraswamy_beta(one, one, 1.0, 5.0, method="taylor", taylor_terms=terms).item()
        assert kl == pytest.approx(4 * terms / (terms + 1) - math.log(5), abs=1e-10)


def test_taylor_on_grid(grid_cases):
    a, b, alpha, beta, ref = grid_cases
    taylor = kl_kumaraswamy_beta(a, b, alpha, beta, method="taylor")
    # With beta = 1 the series is multiplied by 0: what remains is exact up to the
    # authors' Euler constant, 0.57721 instead of 0.5772156649...
    no_series = beta == 1
    shift = (a - alpha) / a * (EULER - 0.57721)
    assert ((taylor - ref - shift)[no_series]).abs().max().item() < 1e-7
    # The dropped terms of E_q[log(1 - v)] are all negative, so for beta > 1 the
    # truncation only ever loses KL (for beta < 1 it adds KL); on this grid the
    # error exceeds 100 nats.
    loses = beta > 1
    assert (taylor - ref - shift)[loses].max().item() < 1e-6
    assert (taylor - ref - shift)[beta < 1].min().item() > -1e-6
    assert (ref - taylor).abs().max().item() > 100.0


# --- dispatch through torch.distributions -------------------------------------------------
def test_kl_divergence_dispatches_and_respects_kl_method():
    a = torch.tensor([[0.5, 2.0, 1.0], [3.0, 0.2, 10.0]])
    b = torch.tensor([[1.0, 0.7, 1.0], [4.0, 2.0, 1.0]])
    prior = Beta(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([5.0, 2.0, 16.0]))  # alpha, beta
    quad = kl_divergence(Kumaraswamy(a, b), prior)
    assert quad.shape == (2, 3)
    torch.testing.assert_close(quad, kl_kumaraswamy_beta(a, b, prior.concentration1, prior.concentration0))
    assert not torch.allclose(quad, kl_kumaraswamy_beta(a, b, prior.concentration0, prior.concentration1))
    taylor = kl_divergence(Kumaraswamy(a, b, kl_method="taylor", taylor_terms=4), prior)
    torch.testing.assert_close(taylor, kl_kumaraswamy_beta(a, b, 1.0, prior.concentration0, method="taylor",
                                                           taylor_terms=4))
    assert (quad - taylor).abs().max() > 0.1


def test_invalid_options_raise():
    with pytest.raises(ValueError):
        Kumaraswamy(1.0, 1.0, kl_method="series")
    with pytest.raises(ValueError):
        Kumaraswamy(1.0, 1.0, taylor_terms=0)
    with pytest.raises(ValueError):
        kl_kumaraswamy_beta(torch.ones(1), torch.ones(1), 1.0, 1.0, method="mc")
    with pytest.raises(ValueError):
        Kumaraswamy(torch.tensor(-1.0), torch.tensor(1.0), validate_args=True)


# --- the Kumaraswamy distribution ---------------------------------------------------------
def _np_log1mexp(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _kumaraswamy_cdf_log_v(y: np.ndarray, a: float, b: float) -> np.ndarray:
    """P(log v <= y) = 1 - (1 - e^(a y))^b, in float64."""
    return -np.expm1(b * _np_log1mexp(a * y))


def _kumaraswamy_cdf_log1m_v(y: np.ndarray, a: float, b: float) -> np.ndarray:
    """P(log(1 - v) <= y) = (1 - (1 - e^y)^a)^b, in float64; for e^y < 1e-300, 1 - (1 - e^y)^a = a e^y."""
    return np.exp(b * np.where(y < -690, math.log(a) + y, _np_log1mexp(a * _np_log1mexp(y))))


def _ks_distance(samples: torch.Tensor, cdf, below: float) -> float:
    """sup |F_n(y) - F(y)| over the samples y < ``below`` and at y = ``below``.

    Values from ``below`` up are left out of the sup (they still count in F_n):
    there float32 has rounded or clamped them (e.g. log v = -tiny for v ~ 1).
    """
    y = np.sort(samples.double().numpy())
    points = np.append(y[y < below], below)
    at_or_below = np.searchsorted(y, points, side="right") / y.size
    strictly_below = np.searchsorted(y, points, side="left") / y.size
    f = cdf(points)
    return float(max(np.abs(at_or_below - f).max(), np.abs(strictly_below - f).max()))


def test_sampler_at_extremes():
    """a, b in {1e-3, 1e-2, 100, 1e3}, float32, 10^5 draws each (one batch: 16 sticks)."""
    torch.manual_seed(0)
    pairs = list(itertools.product(EXTREMES, EXTREMES))
    a_, b_ = (x.requires_grad_() for x in torch.tensor(pairs).unbind(-1))
    q = Kumaraswamy(a_, b_)
    v = q.rsample((100_000,))
    assert v.dtype == torch.float32 and ((v > 0) & (v < 1)).all()
    log_q = q.log_prob(v)
    assert log_q.isfinite().all()
    log_v, log1m_v = q.log_rsample((100_000,))
    assert log_v.isfinite().all() and log1m_v.isfinite().all() and (log_v < 0).all() and (log1m_v <= 0).all()
    grads = torch.autograd.grad(v.sum() + log_q.sum() + log_v.sum() + log1m_v.sum(), (a_, b_))
    assert all(g.isfinite().all() for g in grads)
    # log v and log(1 - v) follow the exact distribution wherever float32 can hold them
    # (a = 1e-3 puts v below 1e-38; b = 1e-3 puts 1 - v below 1e-38).
    tiny = torch.finfo(torch.float32).tiny
    for i, (a, b) in enumerate(pairs):
        assert _ks_distance(log_v[:, i].detach(), lambda y: _kumaraswamy_cdf_log_v(y, a, b), -2 * tiny) < 0.01, (a, b)
        assert _ks_distance(log1m_v[:, i].detach(), lambda y: _kumaraswamy_cdf_log1m_v(y, a, b), -1e-30) < 0.01, (a, b)


def test_sampler_at_the_ends_of_the_uniform(monkeypatch):
    """float32 uniforms include 0 and 1 - 2^-24; the inverse CDF must stay finite there too."""
    ends = torch.tensor([0.0, 2.0 ** -24, 0.5, 1 - 2.0 ** -24])
    monkeypatch.setattr(torch, "rand", lambda shape, **kwargs: ends[:, None].expand(shape).clone())
    a_, b_ = (x.requires_grad_() for x in torch.tensor(list(itertools.product(EXTREMES, EXTREMES))).unbind(-1))
    q = Kumaraswamy(a_, b_)
    v, (log_v, log1m_v) = q.rsample((4,)), q.log_rsample((4,))
    assert ((v > 0) & (v < 1)).all() and log_v.isfinite().all() and log1m_v.isfinite().all()
    grads = torch.autograd.grad(q.log_prob(v).sum() + log_v.sum() + log1m_v.sum(), (a_, b_))
    assert all(g.isfinite().all() for g in grads)


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (2.0, 5.0), (1.0, 3.0), (5.0, 1.0), (0.3, 3.0), (5.0, 0.7)])
def test_moments_density_and_samples(a, b):
    q = Kumaraswamy(torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64))

    def density(v: float) -> float:
        return math.exp(q.log_prob(torch.tensor(v, dtype=F64)).item())

    total = integrate.quad(density, 0, 1, epsabs=1e-10, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-6)
    mean = integrate.quad(lambda v: v * density(v), 0, 1, epsabs=1e-10, limit=200)[0]
    assert q.mean.item() == pytest.approx(mean, abs=1e-7)
    v = torch.tensor([0.01, 0.3, 0.9])
    naive = np.log(a * b * v.double().numpy() ** (a - 1) * (1 - v.double().numpy() ** a) ** (b - 1))
    np.testing.assert_allclose(q.log_prob(v.double()).numpy(), naive, rtol=1e-12)

    torch.manual_seed(1)
    samples = Kumaraswamy(torch.tensor(a), torch.tensor(b)).rsample((100_000,)).double()
    standard_error = samples.std().item() / math.sqrt(samples.numel())
    assert abs(samples.mean().item() - q.mean.item()) < 5 * standard_error
    assert _ks_distance(samples, lambda v: _kumaraswamy_cdf_log_v(np.log(v), a, b), 1.0) < 0.01


def test_float32_mean_is_accurate_at_small_a():
    a, b = torch.tensor([1e-3, 1e-2, 0.05]), torch.tensor([0.01, 1.0, 50.0])
    mean32 = Kumaraswamy(a, b).mean
    mean64 = np.exp(np.log(b.double().numpy()) + special.betaln(1 + 1 / a.double().numpy(), b.double().numpy()))
    np.testing.assert_allclose(mean32.double().numpy(), mean64, rtol=1e-6)


def test_expand_keeps_parameters_and_kl_method():
    q = Kumaraswamy(torch.tensor([0.5, 2.0]), torch.tensor([1.0, 3.0]), kl_method="taylor", taylor_terms=5)
    wide = q.expand((3, 2))
    assert wide.batch_shape == (3, 2) and wide.rsample((4,)).shape == (4, 3, 2)
    assert (wide.kl_method, wide.taylor_terms) == ("taylor", 5)
    torch.testing.assert_close(wide.mean[2], q.mean)


# --- log1mexp -----------------------------------------------------------------------------
def _log1mexp_decimal(x: float) -> float:
    with localcontext() as ctx:
        ctx.prec = 700  # 1 - e^x must keep its digits at x = -1e-300 and at x = -700
        return float((1 - Decimal(x).exp()).ln())


def test_log1mexp_accuracy_and_gradient():
    xs = [-1e-300, -1e-20, -1e-5, -0.5, -math.log(2), -0.7, -5.0, -50.0, -700.0]
    x = torch.tensor(xs, dtype=F64, requires_grad=True)
    y = log1mexp(x)
    np.testing.assert_allclose(y.detach().numpy(), [_log1mexp_decimal(v) for v in xs], rtol=1e-14)
    (grad,) = torch.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(grad.numpy(), [-1 / math.expm1(-v) for v in xs], rtol=1e-12)  # e^x / (e^x - 1)
    x32 = torch.tensor([-1e-30, -1e-3, -80.0], requires_grad=True)
    y32 = log1mexp(x32)
    np.testing.assert_allclose(y32.detach().double().numpy(), [_log1mexp_decimal(v) for v in x32.tolist()],
                               rtol=1e-6)
    assert torch.autograd.grad(y32.sum(), x32)[0].isfinite().all()


# --- stick-breaking -----------------------------------------------------------------------
@pytest.mark.parametrize("components", [1, 2, 3, 17, 50])
def test_stick_breaking(components):
    generator = torch.Generator().manual_seed(components)
    v = torch.rand(4, components - 1, generator=generator, dtype=F64) * 0.98 + 0.01
    pi = stick_breaking(v)
    assert pi.shape == (4, components) and (pi > 0).all()
    torch.testing.assert_close(pi.sum(-1), torch.ones(4, dtype=F64), rtol=0, atol=1e-12)
    expected = torch.empty_like(pi)
    for k in range(components):
        rest = torch.prod(1 - v[:, :k], dim=-1)
        expected[:, k] = rest * (v[:, k] if k < components - 1 else 1)
    torch.testing.assert_close(pi, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(log_stick_breaking(v.log(), torch.log1p(-v)), pi.log(), rtol=1e-12, atol=1e-12)


def test_log_stick_breaking_survives_where_weights_underflow():
    """50 sticks near 1 (b = 0.01): the weights underflow in float32, their logs do not."""
    torch.manual_seed(2)
    q = Kumaraswamy(torch.full((8, 49), 1.0), torch.full((8, 49), 0.01))
    log_pi = log_stick_breaking(*q.log_rsample())
    assert log_pi.shape == (8, 50) and log_pi.isfinite().all()
    assert (log_pi[:, -1] < -1000).all()  # the remainder after 49 near-full sticks
    torch.testing.assert_close(torch.logsumexp(log_pi, -1), torch.zeros(8), rtol=0, atol=1e-5)


# --- stick priors -------------------------------------------------------------------------
def test_dirichlet_stick_prior_concentrations():
    prior = dirichlet_stick_prior(5, 0.5)
    assert isinstance(prior, Beta) and prior.batch_shape == (4,)
    assert prior.concentration1.dtype == torch.float32
    torch.testing.assert_close(prior.concentration1, torch.full((4,), 0.5))
    torch.testing.assert_close(prior.concentration0, torch.tensor([2.0, 1.5, 1.0, 0.5]))
    assert dirichlet_stick_prior(3, 1.0, dtype=F64).concentration0.dtype == F64
    assert dirichlet_stick_prior(1, 1.0).batch_shape == (0,)


def test_dirichlet_stick_prior_gives_dirichlet_weights():
    components, alpha = 4, 0.7
    torch.manual_seed(3)
    pi = stick_breaking(dirichlet_stick_prior(components, alpha, dtype=F64).sample((200_000,)))
    # Symmetric Dirichlet(alpha): E[pi_k] = 1/K, Var[pi_k] = (1/K)(1 - 1/K) / (K alpha + 1).
    mean, var = 1 / components, (1 / components) * (1 - 1 / components) / (components * alpha + 1)
    standard_error = math.sqrt(var / pi.shape[0])
    assert (pi.mean(0) - mean).abs().max().item() < 5 * standard_error
    assert (pi.var(0) / var - 1).abs().max().item() < 0.02


def test_dp_stick_prior_concentrations():
    prior = dp_stick_prior(17, 3.0)
    assert isinstance(prior, Beta) and prior.batch_shape == (16,)
    torch.testing.assert_close(prior.concentration1, torch.ones(16))
    torch.testing.assert_close(prior.concentration0, torch.full((16,), 3.0))
    assert dp_stick_prior(4, 1.0, dtype=F64).concentration1.dtype == F64


@pytest.mark.parametrize("builder,count,concentration", [
    (dirichlet_stick_prior, 0, 1.0), (dirichlet_stick_prior, 3, -1.0), (dirichlet_stick_prior, 3, float("nan")),
    (dp_stick_prior, 2.5, 1.0), (dp_stick_prior, 5, 0.0)])
def test_prior_builders_reject_bad_arguments(builder, count, concentration):
    with pytest.raises(ValueError):
        builder(count, concentration)
