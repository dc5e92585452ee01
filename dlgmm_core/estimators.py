"""Importance-sampling estimates of log p(x): the IWAE bounds and the marginal likelihood.

One estimator, :func:`importance_bounds`; :func:`log_marginal_likelihood` is its
``s = samples`` entry. For each example it draws ``samples`` independent
importance weights from the model's proposal (``model.log_importance_weights``:
the inference network, see each model's docstring) and returns

    L_s = log (1/s) sum_{i <= s} w_i,

the importance-weighted bound of Burda et al. for every requested ``s`` (all
prefixes of ONE sample stream); L_samples is the marginal-likelihood estimate
(E[L_s] <= log p(x), increasing in s, consistent as s grows).

Memory is bounded by ``batch_size`` = examples x samples decoded per model call:
examples are taken in chunks of ``max(1, batch_size // samples)`` (all their
samples when they fit), samples in chunks of ``batch_size // examples``; the
log-weights of each chunk are folded into a running log-sum-exp in float64, and
the prefix sums at the requested ``s`` are read off a cumulative log-sum-exp.
No sample is ever dropped: a non-finite log-weight is an error, not a skip.

Randomness comes from torch's global RNG (callers seed it). The sample stream
is a function of the seed *and* of the chunking, so results are reproducible
bitwise for a fixed seed and ``batch_size`` (on CPU) and statistically
equivalent for different ``batch_size``.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable

import torch
from torch import nn

from .errors import DlgmmError
from .nets import model_device, model_dtype

DEFAULT_AT = (1, 10, 100, 1000)


def _check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int (integral floats such as params.yaml's 1000.0 accepted), else DlgmmError."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise DlgmmError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def importance_bounds(model: nn.Module, x: torch.Tensor, samples: int, at: Iterable[int] = DEFAULT_AT,
                      batch_size: int = 50000) -> dict[int, torch.Tensor]:
    """IWAE bounds ``{s: log (1/s) sum_{i<=s} w_i}`` (float64, shape (B,)) for each ``s`` in ``at``.

    Entries of ``at`` larger than ``samples`` are left out; ``samples`` itself is
    always included (that entry is :func:`log_marginal_likelihood`). Runs on
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
    if x.dim() != 2 or x.shape[0] == 0:
        raise DlgmmError(f"x must have shape (examples, input_dim) with at least one example (got {tuple(x.shape)})")

    device, dtype = model_device(model), model_dtype(model)
    n_examples = x.shape[0]
    example_chunk = max(1, min(n_examples, batch_size // samples))
    sample_chunk = max(1, batch_size // example_chunk)
    out = {s: torch.empty(n_examples, dtype=torch.float64, device=device) for s in wanted_sorted}

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for e0 in range(0, n_examples, example_chunk):
                xb = x[e0:e0 + example_chunk].to(device=device, dtype=dtype)
                running = torch.full((xb.shape[0],), -math.inf, dtype=torch.float64, device=device)
                done = 0
                while done < samples:
                    n = min(sample_chunk, samples - done)
                    log_w = model.log_importance_weights(xb, n).to(torch.float64)
                    if log_w.shape != (n, xb.shape[0]):
                        raise RuntimeError(f"log_importance_weights returned shape {tuple(log_w.shape)}, "
                                           f"expected {(n, xb.shape[0])}")
                    if not torch.isfinite(log_w).all():
                        raise DlgmmError(f"{getattr(model, 'kind', 'model')}: non-finite importance weight "
                                         f"(examples {e0}..{e0 + xb.shape[0] - 1}); the estimate would be invalid")
                    # prefix log-sum-exp over this chunk, combined with everything before it
                    prefix = torch.logaddexp(running.unsqueeze(0), torch.logcumsumexp(log_w, dim=0))
                    for s in wanted_sorted:
                        if done < s <= done + n:
                            out[s][e0:e0 + xb.shape[0]] = prefix[s - done - 1] - math.log(s)
                    running = prefix[-1]
                    done += n
    finally:
        model.train(was_training)
    return {s: value.to(x.device) for s, value in out.items()}


def log_marginal_likelihood(model: nn.Module, x: torch.Tensor, samples: int,
                            batch_size: int = 50000) -> torch.Tensor:
    """Importance-sampling estimate ``log (1/S) sum_s w_s`` of log p(x), float64 of shape (B,).

    The ``s = samples`` entry of :func:`importance_bounds` (same code path).
    """
    return importance_bounds(model, x, samples, at=(), batch_size=batch_size)[samples]
