"""Kumaraswamy sticks, their KL to Beta priors, and stick-breaking weights.

The mixture weights of the DLGMM / DLDPMM are built by stick-breaking,
pi_k = v_k prod_{j<k} (1 - v_j). The prior on each stick is a Beta (the
marginals of a symmetric Dirichlet, or Beta(1, alpha0) for a truncated DP);
the posterior on each stick is a Kumaraswamy, whose closed-form inverse CDF
gives a reparameterized sample where the Beta has none. The ELBO, Eq. (1) of
the paper, therefore needs KL(Kumaraswamy(a, b) || Beta(alpha, beta)) per
stick; it has no closed form. This module gives it two ways:

* ``"taylor"``: the authors' choice, the truncated Taylor series of
  Nalisnick & Smyth (2016, "Stick-Breaking Variational Autoencoders",
  appendix) with ``taylor_terms`` terms. It underestimates the KL badly when
  a Kumaraswamy puts mass near v = 1 (e.g. 2.03 instead of 2.39 nats for
  Kumaraswamy(1, 1) against Beta(1, 5)).
* ``"quadrature"`` (default): every term in closed form except
  E_q[log(1 - v)], which is a smooth one-dimensional integral done by
  fixed-node Gauss-Legendre quadrature, in the dtype of the inputs; within
  1e-8 nats (float64) of high-precision integration for a, b in [0.05, 50]
  and the priors of the paper; in float32, within 1e-5 nats (beyond rounding
  the result to float32) for a, b in [1e-2, 1e2] and the prior Beta(1, 5).

Only ``torch`` and ``math`` are imported so that the models can use this
module on any device.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Beta, Distribution, constraints
from torch.distributions.kl import register_kl
from torch.distributions.utils import broadcast_all

__all__ = ["Kumaraswamy", "log1mexp", "kl_kumaraswamy_beta", "stick_breaking", "log_stick_breaking",
           "dirichlet_stick_prior", "dp_stick_prior", "LOG_AB_RANGE", "kumaraswamy_log_density_from_logs",
           "beta_log_density_from_logs", "stick_log_densities", "KL_METHODS"]

#: How KL(Kumaraswamy || Beta) can be computed (:func:`kl_kumaraswamy_beta`).
KL_METHODS = ("quadrature", "taylor")

_EULER = 0.57721566490153286061  # Euler-Mascheroni constant
_EULER_AUTHORS = 0.57721  # the constant in the authors' Taylor-series code, kept to reproduce it
_LOG2 = math.log(2.0)


# --- stable log-space helpers -------------------------------------------------------------
def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate over the whole range (Maechler 2012).

    Near 0, 1 - exp(x) cancels, so expm1 is used; far from 0, exp(x) is tiny
    and log1p keeps it. Each branch sees only inputs where it is finite, so the
    unused one cannot put NaN into the gradient (``where``, not ``clamp``:
    clamp passes no gradient at its bound, here x = -log 2).
    """
    near_zero = x > -_LOG2
    near = torch.log(-torch.expm1(torch.where(near_zero, x, -_LOG2)))
    far = torch.log1p(-torch.exp(torch.where(near_zero, -_LOG2, x)))
    return torch.where(near_zero, near, far)


def _log1m_exp_neg_exp(ell: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(-exp(ell))), i.e. log(1 - v) from ell = log(-log v).

    Working with ell rather than log v keeps v = 1 - 1e-60 distinguishable
    from 1: for exp(ell) below machine epsilon, log(1 - e^-s) = log s to
    rounding, and the direct formula would underflow to log(0).
    """
    small = ell < math.log(torch.finfo(ell.dtype).eps)
    ell_big = torch.where(small, 0.0, ell)
    return torch.where(small, ell, log1mexp(-torch.exp(ell_big)))


def _log_neg_log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(-log(1 - exp(x))) for x < 0: the inverse of :func:`_log1m_exp_neg_exp`.

    Maps log(1 - w) to log(-log w). For exp(x) below machine epsilon,
    -log(1 - e^x) = e^x to rounding, so the result is x itself; evaluating the
    formula there would round log(1 - e^x) to 0 and return log(0).
    """
    small = x < math.log(torch.finfo(x.dtype).eps)
    x_big = torch.where(small, -1.0, x)
    return torch.where(small, x, torch.log(-log1mexp(x_big)))


def _log_beta_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)


# --- the Kumaraswamy distribution ---------------------------------------------------------
class Kumaraswamy(Distribution):
    """Kumaraswamy(a, b) on (0, 1): density a b v^(a-1) (1 - v^a)^(b-1).

    Not derived from ``torch.distributions.Kumaraswamy``: that one samples by
    transforming a float32 uniform, which rounds v to exactly 0 (small a) or
    exactly 1 (small b), where its log_prob is NaN (for a = 1, b = 0.01, 84%
    of the samples). Here sampling works in log space, samples stay inside
    (0, 1), and ``log_rsample`` gives log v and log(1 - v) without forming v.

    ``kl_method`` and ``taylor_terms`` choose how ``kl_divergence(q, Beta)``
    is computed (see :func:`kl_kumaraswamy_beta`).
    """

    arg_constraints = {"a": constraints.positive, "b": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, a, b, kl_method: str = "quadrature", taylor_terms: int = 10, validate_args=None):
        _check_kl_options(kl_method, taylor_terms)
        self.a, self.b = broadcast_all(a, b)
        self.kl_method, self.taylor_terms = kl_method, taylor_terms
        super().__init__(self.a.shape, validate_args=validate_args)

    # torch's own Kumaraswamy names its parameters this way; the aliases let code
    # written against either class read them.
    @property
    def concentration1(self) -> torch.Tensor:
        return self.a

    @property
    def concentration0(self) -> torch.Tensor:
        return self.b

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Kumaraswamy, _instance)
        batch_shape = torch.Size(batch_shape)
        new.a, new.b = self.a.expand(batch_shape), self.b.expand(batch_shape)
        new.kl_method, new.taylor_terms = self.kl_method, self.taylor_terms
        super(Kumaraswamy, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_rsample(self, sample_shape=torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized ``(log v, log(1 - v))`` by the inverse CDF, never forming v.

        With u ~ U(0, 1): log(1 - v^a) = log(1 - u) / b exactly, and the rest
        goes through ell = log(-log v), in which neither v -> 0 nor v -> 1
        loses precision (b = 0.01 puts most v within 1e-30 of 1, which v and
        log v cannot resolve but log(1 - v) can). Both outputs are finite for
        a, b in [1e-3, 1e3].
        """
        shape = self._extended_shape(sample_shape)
        tiny = torch.finfo(self.a.dtype).tiny
        u = torch.rand(shape, dtype=self.a.dtype, device=self.a.device)
        # u may be exactly 0; capping log(1 - v^a) below 0 keeps log v finite.
        log1m_va = (torch.log1p(-u) / self.b).clamp(max=-tiny)
        ell = _log_neg_log1mexp(log1m_va) - torch.log(self.a)  # log(-log v)
        log_v = -torch.exp(ell).clamp(min=tiny)  # log v = 0 would mean v = 1 and an infinite log(1 - v)
        return log_v, _log1m_exp_neg_exp(ell)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """v = (1 - (1 - u)^(1/b))^(1/a), kept in [tiny, 1 - eps] so that log v, log(1 - v) stay finite."""
        finfo = torch.finfo(self.a.dtype)
        log_v, _ = self.log_rsample(sample_shape)
        return torch.exp(log_v).clamp(finfo.tiny, 1 - finfo.eps)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        log_v = torch.log(value)
        # log(1 - v^a) through log1mexp: 1 - v^a cancels for small a.
        return (torch.log(self.a) + torch.log(self.b) + (self.a - 1) * log_v
                + (self.b - 1) * log1mexp(self.a * log_v))

    @property
    def mean(self) -> torch.Tensor:
        """E[v] = b B(1 + 1/a, b) = exp(log b + lgamma(1 + 1/a) + lgamma(b) - lgamma(1 + 1/a + b)).

        In float64: for a = 1e-3 the lgamma terms are ~6000 and cancel to O(1),
        which would cost float32 three to four digits of the result.
        """
        a, b = self.a.double(), self.b.double()
        return torch.exp(torch.log(b) + _log_beta_fn(1 + 1 / a, b)).to(self.a.dtype)

    def entropy(self) -> torch.Tensor:
        """(1 - 1/b) + (1 - 1/a) H_b - log(a b), H_b = digamma(b + 1) + Euler's constant."""
        return _kumaraswamy_entropy(self.a, self.b)


def _kumaraswamy_entropy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    harmonic_b = torch.digamma(b + 1) + _EULER
    return (1 - 1 / b) + (1 - 1 / a) * harmonic_b - torch.log(a * b)


def _check_kl_options(method: str, taylor_terms: int) -> None:
    if method not in KL_METHODS:
        raise ValueError(f"kl_method must be one of {KL_METHODS}, got {method!r}")
    if isinstance(taylor_terms, bool) or not isinstance(taylor_terms, int) or taylor_terms < 1:
        raise ValueError(f"taylor_terms must be a positive integer, got {taylor_terms!r}")


# --- KL(Kumaraswamy || Beta) --------------------------------------------------------------
def kl_kumaraswamy_beta(a, b, alpha, beta, method: str = "quadrature", taylor_terms: int = 10) -> torch.Tensor:
    """Elementwise KL(Kumaraswamy(a, b) || Beta(alpha, beta)), the per-stick KL of Eq. (1).

    All four arguments broadcast; numbers are accepted. The result has the
    floating dtype of the inputs (float32 at least).

    ``method="quadrature"`` (accurate)::

        KL = -H[q] - (alpha - 1) E_q[log v] - (beta - 1) E_q[log(1 - v)] + log B(alpha, beta)

    with H[q] and E_q[log v] = -(euler + digamma(b) + 1/b) / a in closed form
    and E_q[log(1 - v)] by quadrature (see :func:`_expected_log1m_v`).

    ``method="taylor"``: the series of Nalisnick & Smyth (2016, appendix),
    as in the authors' code (Euler's constant 0.57721, M = ``taylor_terms``)::

        KL = (a - alpha)/a (-euler - digamma(b) - 1/b) + log(a b) + log B(alpha, beta) - (b - 1)/b
             + (beta - 1) b sum_{m=1}^{M} B(m/a, b) / (m + a b)

    The sum is -E_q[log(1 - v)] = sum_m E_q[v^m] / m, the Taylor expansion of
    log(1 - v) around v = 0, cut after M terms. The dropped terms are all
    positive and large when q has mass near v = 1, so the series underestimates
    the KL for beta > 1 (overestimates it for beta < 1), by tens of nats for
    sticks near 1.
    """
    _check_kl_options(method, taylor_terms)
    params = broadcast_all(a, b, alpha, beta)
    dtype = torch.float32
    for x in params:
        dtype = torch.promote_types(dtype, x.dtype)
    a, b, alpha, beta = (x.to(dtype) for x in params)
    if method == "taylor":
        return _kl_taylor(a, b, alpha, beta, taylor_terms)
    return _kl_quadrature(a, b, alpha, beta)


def _kl_taylor(a, b, alpha, beta, terms: int) -> torch.Tensor:
    m = torch.arange(1, terms + 1, dtype=a.dtype, device=a.device)  # trailing dim over the series terms
    a_, b_ = a.unsqueeze(-1), b.unsqueeze(-1)
    series = (torch.exp(_log_beta_fn(m / a_, b_)) / (m + a_ * b_)).sum(-1)
    return ((a - alpha) / a * (-_EULER_AUTHORS - torch.digamma(b) - 1 / b) + torch.log(a * b)
            + _log_beta_fn(alpha, beta) - (b - 1) / b + (beta - 1) * b * series)


def _kl_quadrature(a, b, alpha, beta) -> torch.Tensor:
    # float64 whatever the input dtype: the closed-form terms cancel to O(1) from
    # digamma and lgamma values of order 1/a; they are batch x sticks, so cheap.
    # The quadrature nodes have the input dtype (see _ExpectedLog1mV).
    a64, b64, alpha64, beta64 = (x.double() for x in (a, b, alpha, beta))
    entropy = _kumaraswamy_entropy(a64, b64)
    expected_log_v = -(_EULER + torch.digamma(b64) + 1 / b64) / a64
    kl = (-entropy - (alpha64 - 1) * expected_log_v - (beta64 - 1) * _expected_log1m_v(a64, b64, a.dtype)
          + _log_beta_fn(alpha64, beta64))
    return kl.to(a.dtype)


# Quadrature of E_q[log(1 - v)] (see _expected_log1m_v): composite Gauss-Legendre in
# rho over [-30, 3.6]. The omitted tails weigh e^-30 (left, times an integrand that
# vanishes there) and exp(-e^3.6) ~ 1e-16 (right). Panels are 1 wide where the mass
# and the steepest features of the integrand are (rho in [-3, 3.6]) and widen to the
# left, where the integrand is e^rho times a slowly varying function. Measured
# against mpmath, 12 panels of 8 float64 nodes are within 1e-10 of E_q[log(1 - v)] (and
# its derivatives in log a, log b within 1e-9) for a, b in [0.05, 50], within 2e-7 for
# a, b in [1e-3, 1e3]; uniform panels needed 256 nodes for the same accuracy. In float32
# (the models' dtype) the inner 10 panels are within 1e-6 of E_q[log(1 - v)] and 3e-6
# of its derivatives in log a, log b for a, b in [1e-2, 1e2] (3e-5 and 3e-4 for a, b in
# [1e-3, 1e3], where the rule, not float32, sets the error); two inner panels fewer or
# 7 nodes per panel lose a factor 4 to 10 of that. The nodes are the cost of the KL:
# a batch x sticks x nodes tensor, four transcendental functions per element.
_PANEL_EDGES = (-30.0, -20.0, -12.0, -7.0, -4.5, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 3.6)
# float32 drops the outermost two panels: each weighs 2e-9 (e^-20 on the left, exp(-e^3) on
# the right) times |h| <= log 1e3, below float32's resolution of E_q[log(1 - v)].
_PANEL_EDGES_FLOAT32 = _PANEL_EDGES[1:-1]
_NODES_PER_PANEL = 8
_RULE_CACHE: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _gauss_legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n-point Gauss-Legendre nodes and weights on [-1, 1] (Golub-Welsch, float64).

    Eigen-decomposition of the Jacobi matrix instead of numpy's leggauss keeps
    this module torch-only; for n = 8 the two agree to 1e-15.
    """
    k = torch.arange(1, n, dtype=torch.float64)
    off_diagonal = k / torch.sqrt(4 * k * k - 1)
    nodes, vectors = torch.linalg.eigh(torch.diag(off_diagonal, 1) + torch.diag(off_diagonal, -1))
    return nodes, 2 * vectors[0] ** 2


def _quadrature_rule(device: torch.device, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Node values e^rho_j and weights w_j exp(rho_j - e^rho_j) of the composite rule, cached per device and dtype.

    Only e^rho enters the integrand (t = e^rho / b), so it is stored instead of
    rho. Built in float64, stored in ``dtype``.
    """
    key = (dtype, torch.device(device))
    if key not in _RULE_CACHE:
        x, w = _gauss_legendre(_NODES_PER_PANEL)
        edges = torch.tensor(_PANEL_EDGES_FLOAT32 if dtype == torch.float32 else _PANEL_EDGES, dtype=torch.float64)
        lo, hi = edges[:-1, None], edges[1:, None]
        rho = ((lo + hi) / 2 + (hi - lo) / 2 * x).flatten()
        weights = ((hi - lo) / 2 * w).flatten() * torch.exp(rho - torch.exp(rho))
        _RULE_CACHE[key] = (torch.exp(rho).to(device, dtype), weights.to(device, dtype))
    return _RULE_CACHE[key]


# Cap on t per node dtype. Past t = 40, h = -log a - (1/a - 1) e^-t / 2 + O(e^-2t) is
# -log a to within 3e-15 for a >= 1e-3 (and t dh/dt to within 1e-13): float32 sees no
# difference, and the cap keeps e^t = 1 + expm1(t) and 1/expm1(u) (about a e^t) inside
# its range and u = log1p(1/expm1(t)) / a a normal number. Past t = 600, w = 1 - e^-t is 1
# to far below double precision; the cap keeps every quantity a normal double.
_T_MAX = {torch.float32: 40.0, torch.float64: 600.0}
# Cap on u per node dtype, so that exp(+-u) stays a normal number: exp and expm1 run
# about 30 times slower (on CPU) for arguments whose result overflows or underflows.
# Past the cap q = 1 / expm1(u) < e^-80 (float32) or e^-700 (float64) and
# 1 - e^-u = 1 to rounding, so the cap changes h by nothing and dh/da = -(u / a) q
# by less than 1e-28 (float32) for a >= 1e-3.
_U_MAX = {torch.float32: 80.0, torch.float64: 700.0}


class _ExpectedLog1mV(torch.autograd.Function):
    """E_q[log(1 - v)] and its exact derivatives in a and b, in one pass over the nodes.

    Written out (rather than left to autograd) because the quadrature is the
    largest elementwise cost of a stick-breaking training step: autograd through
    the two ``log1mexp`` would store a dozen batch x sticks x nodes tensors and
    run twice as many transcendental functions. Per node, with t = e^rho / b,
    r = 1 / expm1(t), u = log1p(r) / a (= -log(1 - e^-t) / a > 0) and
    q = 1 / expm1(u)::

        h      = log(1 - e^-u) + t = log((1 + expm1(t)) / (1 + q))
        dh/da  = q du/da           = -(u / a) q
        dh/dt  = 1 + q du/dt       = 1 - q r / a

    (du/dt = -r / a), and dt/db = -t / b. The nodes are evaluated in
    ``node_dtype`` (float32 halves the cost of these functions against
    float64), the node sums returned in the dtype of a and b. h is formed as
    the log of a ratio between 1 and 1/a, not as t - log1p(q), a difference
    of two numbers up to the cap on t whose float32 rounding would cost 1e-6
    nats; r, u and q come from expm1 and log1p only, never as differences of
    nearly equal numbers, so every quantity keeps the dtype's relative accuracy
    from t ~ 1e-16 to the cap and for a in [1e-3, 1e3]. Where u is large
    (a tiny), it is capped, q is then negligible and h = t, its limit; where t
    is capped, dt/db = 0 (as autograd through the cap would give). Only the
    batch x sticks derivatives are saved for the backward pass.
    """

    @staticmethod
    def forward(a, b, exp_rho, weights):
        # The rule (exp_rho, weights, in the nodes' dtype) comes in as an input: created or
        # cached in here, it would be a side effect that torch.compile cannot trace.
        node_dtype = exp_rho.dtype
        a_ = a.to(node_dtype).unsqueeze(-1)  # trailing dim over the quadrature nodes
        # batch x sticks x nodes temporaries, updated in place where possible
        t = exp_rho / b.to(node_dtype).unsqueeze(-1)
        capped = t > _T_MAX[node_dtype]
        t.clamp_(max=_T_MAX[node_dtype])
        expm1_t = torch.expm1(t)
        r = expm1_t.reciprocal()
        u = torch.log1p(r).div_(a_).clamp_(max=_U_MAX[node_dtype])
        q = torch.expm1(u).reciprocal_()
        h = torch.log(expm1_t.add_(1).div_(q + 1))  # log(e^t (1 - e^-u)), 1 - e^-u = 1 / (1 + q)
        value = (h @ weights).to(a.dtype) - 1 / b
        neg_dh_da = u.mul_(q).div_(a_)  # -dh/da
        # dE/db = sum_j w_j dh/dt (-t_j / b) + 1 / b^2; dt/db = 0 where the cap holds t fixed.
        dh_dt_t = r.mul_(q).div_(a_).neg_().add_(1).mul_(t).masked_fill_(capped, 0.0)  # t dh/dt
        grad_a = -(neg_dh_da @ weights).to(a.dtype)
        grad_b = (1 / b - (dh_dt_t @ weights).to(a.dtype)) / b
        return value, grad_a, grad_b

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, grad_a, grad_b = output
        ctx.save_for_backward(grad_a, grad_b)
        ctx.mark_non_differentiable(grad_a, grad_b)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_value, _grad_a, _grad_b):
        grad_a, grad_b = ctx.saved_tensors
        return grad_value * grad_a, grad_value * grad_b, None, None


def _expected_log1m_v(a: torch.Tensor, b: torch.Tensor, node_dtype: torch.dtype | None = None) -> torch.Tensor:
    """E_q[log(1 - v)] for q = Kumaraswamy(a, b), differentiable in a and b.

    In the uniform reparameterization, w = v^a = 1 - (1 - u)^(1/b). Then
    log(1 - v) = log(1 - w) + h with h = log((1 - w^(1/a)) / (1 - w)), and
    E[log(1 - w)] = -1/b exactly. The remainder h is bounded (between 0 and
    -log a) and smooth, whereas log(1 - v) itself has a log singularity at
    u = 1 and, for small a or large b, a sharp step near one end of (0, 1).
    Substituting u = 1 - exp(-e^rho) turns du into exp(rho - e^rho) d rho,
    a fixed density on the real line that decays exponentially to the left and
    doubly exponentially to the right, so the integrand is smooth on a bounded
    interval independent of a and b, and b only shifts it:
    t = -log(1 - w) = e^rho / b, and h = log(1 - exp(log(w) / a)) + t.
    Value and gradients come from :class:`_ExpectedLog1mV` (float64 inputs;
    nodes in ``node_dtype``, float32 or float64, by default the dtype of a).
    """
    a, b = torch.broadcast_tensors(a, b)
    return _ExpectedLog1mV.apply(a, b, *_quadrature_rule(a.device, a.dtype if node_dtype is None else node_dtype))[0]


@register_kl(Kumaraswamy, Beta)
def _kl_kumaraswamy_beta_dispatch(q: Kumaraswamy, p: Beta) -> torch.Tensor:
    return kl_kumaraswamy_beta(q.a, q.b, p.concentration1, p.concentration0, method=q.kl_method,
                               taylor_terms=q.taylor_terms)


# --- stick-breaking -----------------------------------------------------------------------
def stick_breaking(v: torch.Tensor) -> torch.Tensor:
    """Weights (..., K) from sticks v (..., K-1): pi_k = v_k prod_{j<k} (1 - v_j), last = what remains.

    K - 1 = 0 gives pi = 1. The weights sum to 1 by construction.
    """
    ones = v.new_ones(v.shape[:-1] + (1,))  # not ones_like(v[..., :1]): that is empty when K = 1
    remaining = torch.cumprod(1 - v, dim=-1)
    return torch.cat([v, ones], dim=-1) * torch.cat([ones, remaining], dim=-1)


def log_stick_breaking(log_v: torch.Tensor, log1m_v: torch.Tensor) -> torch.Tensor:
    """log of :func:`stick_breaking` from log v and log(1 - v) (shapes (..., K-1) -> (..., K)).

    With 50 sticks the product of the (1 - v_j) underflows in float32 long
    before its log does; the exclusive cumulative sum keeps every log weight
    finite.
    """
    zeros = log_v.new_zeros(log_v.shape[:-1] + (1,))
    return torch.cat([log_v, zeros], dim=-1) + torch.cat([zeros, torch.cumsum(log1m_v, dim=-1)], dim=-1)


def dirichlet_stick_prior(components: int, alpha: float, *, device=None, dtype=torch.float32) -> Beta:
    """Stick priors of a symmetric Dirichlet(alpha) over K = ``components`` weights.

    Stick k (0-based) is Beta(alpha, (K - 1 - k) alpha): the stick-breaking
    marginals of the Dirichlet, so stick_breaking(v) ~ Dirichlet(alpha, ..., alpha).
    Batch shape (K - 1,).
    """
    _check_prior_args("components", components, "alpha", alpha)
    remaining = torch.arange(components - 1, 0, -1, dtype=dtype, device=device)  # K-1-k for k = 0..K-2
    return _beta(torch.full_like(remaining, alpha), remaining * alpha)


def dp_stick_prior(truncation: int, alpha0: float, *, device=None, dtype=torch.float32) -> Beta:
    """Stick priors of a Dirichlet process truncated at T = ``truncation``: Beta(1, alpha0) each, shape (T - 1,)."""
    _check_prior_args("truncation", truncation, "alpha0", alpha0)
    ones = torch.ones(truncation - 1, dtype=dtype, device=device)
    return _beta(ones, ones * alpha0)


def _beta(concentration1: torch.Tensor, concentration0: torch.Tensor) -> Beta:
    # torch's argument validation cannot reshape an empty batch (K = 1, no sticks);
    # the values were checked by _check_prior_args.
    return Beta(concentration1, concentration0, validate_args=False if concentration1.numel() == 0 else None)


def _check_prior_args(count_name: str, count: int, conc_name: str, concentration: float) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{count_name} must be a positive integer, got {count!r}")
    if not (isinstance(concentration, (int, float)) and math.isfinite(concentration) and concentration > 0):
        raise ValueError(f"{conc_name} must be a positive finite number, got {concentration!r}")


# --- stick densities from log v and log(1 - v) -------------------------------------------
#: log a and log b of every Kumaraswamy head are clamped to this range, so
#: a, b lie in [1e-3, 1e3], the box on which the Kumaraswamy sampler, mean and
#: KL of this module are finite and accurate: an extreme head can neither make
#: a or b 0 or inf nor put NaN into the ELBO.
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


def stick_log_densities(prior: Beta, posterior: Kumaraswamy, log_v: torch.Tensor,
                        log1m_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(v), log q(v))`` of sticks given as (log v, log(1 - v)), summed over the last (stick) dimension.

    ``prior``: the Beta stick prior; ``posterior``: the Kumaraswamy sticks that
    drew the sample (``log_rsample``); both densities read the sample in log
    space, so no stick rounds to 0 or 1.
    """
    log_p_v = beta_log_density_from_logs(prior.concentration1, prior.concentration0, log_v, log1m_v).sum(-1)
    log_q_v = kumaraswamy_log_density_from_logs(posterior.concentration1, posterior.concentration0,
                                                log_v, log1m_v).sum(-1)
    return log_p_v, log_q_v
