"""Importance-sampling estimates of log p(x): the IWAE bounds, our marginal likelihood and the authors'.

Ours is :func:`importance_bounds`; :func:`log_marginal_likelihood` is its
``s = samples`` entry. For each example it draws ``samples`` independent
importance weights from the model's proposal (``model.log_importance_weights``:
the inference network, see each model's docstring; the mixture component is
summed out) and returns

    L_s = log (1/s) sum_{i <= s} w_i,

the importance-weighted bound of Burda et al. for every requested ``s`` (all
prefixes of ONE sample stream); L_samples is the marginal-likelihood estimate
(E[L_s] <= log p(x), increasing in s, consistent as s grows). No sample is ever
dropped: a non-finite log-weight is an error, not a skip.

The authors' is :func:`authors_log_marginal_likelihood` (the estimator behind
the paper's published numbers): ``draws`` weights per example with the
component sampled rather than summed out, draws whose mean log-weight over the
split is not finite dropped (and counted), then log-mean-exp per example.

Memory is bounded by ``batch_size`` = examples x samples decoded per model call:
examples are taken in chunks of ``max(1, batch_size // samples)`` (all their
samples when they fit), samples in chunks of ``batch_size // examples``; ours
folds the log-weights of each chunk into a running log-sum-exp in float64, and
reads the prefix sums at the requested ``s`` off a cumulative log-sum-exp.

Randomness comes from torch's global RNG (callers seed it). The sample stream
is a function of the seed *and* of the chunking, so results are reproducible
bitwise for a fixed seed and ``batch_size`` (on CPU) and statistically
equivalent for different ``batch_size``.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable

import torch
from torch import nn

from .errors import DlgmmError
from .nets import check_component, model_device, model_dtype

DEFAULT_AT = (1, 10, 100, 1000)


#: Draws per example of the authors' estimator (their code's 50).
AUTHORS_DRAWS = 50


def _check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int (integral floats such as params.yaml's 1000.0 accepted), else DlgmmError."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise DlgmmError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def _check_examples(x: torch.Tensor) -> None:
    if x.dim() != 2 or x.shape[0] == 0:
        raise DlgmmError(f"x must have shape (examples, input_dim) with at least one example (got {tuple(x.shape)})")


def _for_each_weight_chunk(model: nn.Module, x: torch.Tensor, samples: int, batch_size: int, component: str,
                           consume: Callable[[int, int, torch.Tensor], None]) -> None:
    """Draw ``samples`` log-weights per example of ``x`` in memory-bounded chunks and hand each to ``consume``.

    Examples go in chunks of ``max(1, batch_size // samples)``, the samples of
    each example chunk in chunks of ``batch_size // examples`` (see the module
    docstring); ``consume(first_example, first_sample, log_w)`` receives each
    chunk's float64 log-weights of shape (samples in chunk, examples in chunk)
    in sampling order. Runs on the model's device under ``no_grad`` in eval
    mode (the previous mode is restored).
    """
    device, dtype = model_device(model), model_dtype(model)
    n_examples = x.shape[0]
    example_chunk = max(1, min(n_examples, batch_size // samples))
    sample_chunk = max(1, batch_size // example_chunk)
    # the default is called without the keyword: models whose proposal has no component need not take it
    options = {} if component == "summed" else {"component": component}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for e0 in range(0, n_examples, example_chunk):
                xb = x[e0:e0 + example_chunk].to(device=device, dtype=dtype)
                done = 0
                while done < samples:
                    n = min(sample_chunk, samples - done)
                    log_w = model.log_importance_weights(xb, n, **options).to(torch.float64)
                    if log_w.shape != (n, xb.shape[0]):
                        raise RuntimeError(f"log_importance_weights returned shape {tuple(log_w.shape)}, "
                                           f"expected {(n, xb.shape[0])}")
                    consume(e0, done, log_w)
                    done += n
    finally:
        model.train(was_training)


def importance_bounds(model: nn.Module, x: torch.Tensor, samples: int, at: Iterable[int] = DEFAULT_AT,
                      batch_size: int = 50000) -> dict[int, torch.Tensor]:
    """IWAE bounds ``{s: log (1/s) sum_{i<=s} w_i}`` (float64, shape (B,)) for each ``s`` in ``at``.

    Entries of ``at`` larger than ``samples`` are left out; ``samples`` itself is
    always included (that entry is :func:`log_marginal_likelihood`). The
    weights sum the mixture component out (``component="summed"``). Runs on
    the model's device under ``no_grad`` in eval mode (the previous mode is
    restored); the results are on ``x``'s device.
    """
    samples = _check_int("samples", samples)
    batch_size = _check_int("batch_size", batch_size)
    wanted = set()
    for s in at:
        s = _check_int("every entry of at", s)
        if s <= samples:
            wanted.add(s)
    wanted.add(samples)
    wanted_sorted = sorted(wanted)
    _check_examples(x)

    device = model_device(model)
    out = {s: torch.empty(x.shape[0], dtype=torch.float64, device=device) for s in wanted_sorted}
    running = torch.empty(0, dtype=torch.float64, device=device)  # log-sum-exp of the current example chunk so far

    def fold(e0: int, done: int, log_w: torch.Tensor) -> None:
        nonlocal running
        n, b = log_w.shape
        if done == 0:
            running = torch.full((b,), -math.inf, dtype=torch.float64, device=device)
        if not torch.isfinite(log_w).all():
            raise DlgmmError(f"{getattr(model, 'kind', 'model')}: non-finite importance weight "
                             f"(examples {e0}..{e0 + b - 1}); the estimate would be invalid")
        # prefix log-sum-exp over this chunk, combined with everything before it
        prefix = torch.logaddexp(running.unsqueeze(0), torch.logcumsumexp(log_w, dim=0))
        for s in wanted_sorted:
            if done < s <= done + n:
                out[s][e0:e0 + b] = prefix[s - done - 1] - math.log(s)
        running = prefix[-1]

    _for_each_weight_chunk(model, x, samples, batch_size, "summed", fold)
    return {s: value.to(x.device) for s, value in out.items()}


def log_marginal_likelihood(model: nn.Module, x: torch.Tensor, samples: int,
                            batch_size: int = 50000) -> torch.Tensor:
    """Importance-sampling estimate ``log (1/S) sum_s w_s`` of log p(x), float64 of shape (B,).

    The ``s = samples`` entry of :func:`importance_bounds` (same code path).
    """
    return importance_bounds(model, x, samples, at=(), batch_size=batch_size)[samples]


def log_weight_table(model: nn.Module, x: torch.Tensor, samples: int, component: str = "sampled",
                     batch_size: int = 50000) -> torch.Tensor:
    """All ``samples`` log-weights of every example of ``x``, float64 of shape (samples, B), on ``x``'s device.

    Row d is the d-th draw of each example, drawn with ``component`` (see
    :data:`dlgmm_core.nets.COMPONENTS`) in the memory-bounded chunks of :func:`importance_bounds`.
    Non-finite log-weights are kept as they are (the caller decides).
    """
    samples = _check_int("samples", samples)
    batch_size = _check_int("batch_size", batch_size)
    check_component(component)
    _check_examples(x)
    table = torch.empty(samples, x.shape[0], dtype=torch.float64, device=model_device(model))

    def store(e0: int, done: int, log_w: torch.Tensor) -> None:
        table[done:done + log_w.shape[0], e0:e0 + log_w.shape[1]] = log_w

    _for_each_weight_chunk(model, x, samples, batch_size, component, store)
    return table.to(x.device)


def log_mean_exp_over_finite_draws(log_w: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The authors' combination of a (draws, N) log-weight table: ``(log-mean-exp per example, dropped draws)``.

    A draw (row) whose mean log-weight over the N examples is NaN or +-inf is
    dropped, as the authors' code did (there silently; here the count is
    returned to be reported); each example's estimate is the log-mean-exp of
    its weights in the kept draws, float64 of shape (N,). DlgmmError when every
    draw is dropped.
    """
    log_w = log_w.to(torch.float64)
    kept = torch.isfinite(log_w.mean(dim=1))
    dropped = int((~kept).sum())
    if dropped == log_w.shape[0]:
        raise DlgmmError(f"authors' marginal likelihood: all {dropped} draws have a non-finite mean log-weight "
                         f"over the {log_w.shape[1]} examples; the model is numerically broken (check its training)")
    return torch.logsumexp(log_w[kept], dim=0) - math.log(log_w.shape[0] - dropped), dropped


def authors_log_marginal_likelihood(model: nn.Module, x: torch.Tensor, draws: int = AUTHORS_DRAWS,
                                    batch_size: int = 50000) -> tuple[torch.Tensor, int]:
    """The authors' estimate of log p(x) for the examples ``x``: ``(float64 (B,), dropped_draws)``.

    Their procedure (``calc_margLikelihood``/``get_log_margLL``): ``draws``
    draws, each one importance weight per example of the split; a draw whose
    mean log-weight over the split is NaN or inf is dropped (they dropped it
    silently; the count is returned here); per example, the log-mean-exp over
    the kept draws. For the mixtures a draw is v ~ q(v|x), k ~ Categorical(pi(v))
    and z ~ q_k(z|x), weighed ``component="sampled"``:
    log p(x|z) + log p(v) + log N(z; m_k, s_k^2 I) - log q(v|x) - log q_k(z|x)
    (pi_k(v) of target and proposal cancel). That weight is an unbiased
    estimator of p(x) on the augmented space (v, k, z), so its log-mean-exp is
    a stochastic lower bound of log p(x) (in expectation, by Jensen); its
    variance exceeds that of the summed-out weight of
    :func:`importance_bounds`, so at equal samples the bound is looser than
    ours. For models without a component both weights coincide. The whole of
    ``x`` is the split of the drop rule: pass all of it in one call (memory is
    bounded by ``batch_size`` as in :func:`importance_bounds`).
    """
    return log_mean_exp_over_finite_draws(log_weight_table(model, x, draws, "sampled", batch_size))
