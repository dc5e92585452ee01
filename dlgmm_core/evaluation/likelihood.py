"""Figure 3b: importance-sampled -log p(x) of test examples, with the ELBO and the IWAE bounds."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import DlgmmError
from .common import batched, progress_bar

if TYPE_CHECKING:
    import torch


def marginal_likelihood(model: Any, x: np.ndarray | torch.Tensor, samples: int, bounds_at: list[int] | tuple,
                        batch_size: int, device: torch.device, progress: bool | None = None,
                        bounds_fn: Callable | None = None) -> dict:
    """Importance-sampled ``-log p(x)`` of the examples ``x``, with the ELBO and the IWAE bounds.

    ``samples`` (S) importance samples per example; the bounds are computed
    for every ``s`` of ``bounds_at`` with ``s <= S`` and for S itself, whose
    bound is the log p(x) estimate. Examples go to
    :func:`dlgmm_core.importance_bounds` in chunks of ``max(1, batch_size // S)``
    (``batch_size`` bounds examples x samples per decoder call); ``bounds_fn``
    replaces it (tests).

    Returns the content of ``reports/nll/<dataset>/<model>.json`` less
    ``seconds``: ``nll`` (mean of -log p(x), nats), ``nll_se`` (its standard
    error, std / sqrt(n)), ``elbo`` (mean ELBO, the training objective, a
    negative number), ``bounds`` (``{"s": -mean IWAE bound with s samples}``,
    positive NLL-style numbers that decrease towards ``nll`` as s grows; the
    entry for S equals ``nll``), ``samples``, ``examples``, ``kl_method``.
    A non-finite estimate is a DlgmmError (nothing is silently dropped).
    """
    import torch

    from ..runtime import as_float_tensor

    if bounds_fn is None:
        from .. import importance_bounds as bounds_fn
    samples = int(samples)
    at = sorted({int(s) for s in bounds_at if int(s) <= samples})
    n = int(x.shape[0])
    if n == 0:
        raise DlgmmError("marginal likelihood: no test examples")
    chunk = max(1, int(batch_size) // samples)
    parts: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad(), progress_bar(n, f"log p(x), S={samples}", "ex", progress) as bar:
        for start in range(0, n, chunk):
            xb = as_float_tensor(x[start:start + chunk], device)
            out = bounds_fn(model, xb, samples, at=tuple(at), batch_size=int(batch_size))
            for s, value in out.items():
                parts.setdefault(int(s), []).append(value.detach().to("cpu", torch.float64))
            bar.update(xb.shape[0])
    if samples not in parts:
        raise DlgmmError(f"importance_bounds returned no entry for S={samples} (got {sorted(parts)})")
    bounds = {s: torch.cat(v).numpy() for s, v in sorted(parts.items())}
    log_px = bounds[samples]
    bad = int((~np.isfinite(log_px)).sum())
    if bad:
        raise DlgmmError(f"marginal likelihood: {bad} of {n} test examples have a non-finite log p(x) estimate "
                         f"with S={samples}; the model is numerically broken (check its training)")
    elbo = batched(lambda xb: model.elbo(xb), x, device, desc="ELBO", progress=progress)
    if not np.isfinite(elbo).all():
        raise DlgmmError(f"marginal likelihood: {int((~np.isfinite(elbo)).sum())} of {n} test examples have a "
                         f"non-finite ELBO; the model is numerically broken (check its training)")
    nll = -log_px
    se = float(nll.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {
        "nll": float(nll.mean()),
        "nll_se": se,
        "elbo": float(elbo.mean()),
        "bounds": {str(s): float(-v.mean()) for s, v in bounds.items()},
        "samples": samples,
        "examples": n,
        "kl_method": (getattr(model, "config", {}) or {}).get("kl_method"),
    }
