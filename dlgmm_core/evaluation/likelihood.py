"""Figure 3b: importance-sampled -log p(x) of test examples (ours and the authors'), the ELBO, the IWAE bounds."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import DlgmmError
from .common import batched, progress_bar
from .config import HEADLINES

if TYPE_CHECKING:
    import torch


def _mean_and_se(nll: np.ndarray) -> tuple[float, float]:
    """Mean of the per-example -log p(x) and its standard error std(ddof=1) / sqrt(n) (0 for one example)."""
    n = nll.shape[0]
    return float(nll.mean()), (float(nll.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0)


def _bounds(model: Any, x: np.ndarray | torch.Tensor, samples: int, bounds_at: list[int] | tuple, batch_size: int,
            device: torch.device, progress: bool | None, bounds_fn: Callable) -> dict[int, np.ndarray]:
    """Our per-example log-likelihood bounds ``{s: (n,) float64}`` for every ``s`` of ``bounds_at`` up to S =
    ``samples`` and for S itself (Eq. 7 of the paper by importance sampling; the IWAE bound at s), the examples
    given to ``bounds_fn`` in chunks of ``max(1, batch_size // S)``."""
    import torch

    from ..runtime import as_float_tensor

    at = sorted({int(s) for s in bounds_at if int(s) <= samples})
    n = int(x.shape[0])
    chunk = max(1, int(batch_size) // samples)
    # Each chunk's bounds are copied into arrays allocated once: kept as a list of small tensors, one per chunk,
    # they pin the heap between the sampler's large temporaries, which then cannot be reused or returned
    # (measured on a loaded 5-component model at S = 5,000: 6.4 GB resident after 2,000 MNIST test images
    # against 0.7 GB; the full test set was killed at 23 GB).
    bounds: dict[int, np.ndarray] = {}
    with torch.no_grad(), progress_bar(n, f"log p(x), S={samples}", "ex", progress) as bar:
        for start in range(0, n, chunk):
            xb = as_float_tensor(x[start:start + chunk], device)
            out = {int(s): value for s, value in bounds_fn(model, xb, samples, at=tuple(at),
                                                           batch_size=int(batch_size)).items()}
            if samples not in out:
                raise DlgmmError(f"importance_bounds returned no entry for S={samples} (got {sorted(out)})")
            if not bounds:
                bounds = {s: np.empty(n, dtype=np.float64) for s in out}
            elif out.keys() != bounds.keys():
                raise DlgmmError(f"importance_bounds returned entries for s = {sorted(out)} at example {start}, "
                                 f"for s = {sorted(bounds)} before")
            for s, value in out.items():
                bounds[s][start:start + xb.shape[0]] = value.detach().to("cpu", torch.float64).numpy()
            bar.update(xb.shape[0])
    return dict(sorted(bounds.items()))


def marginal_likelihood(model: Any, x: np.ndarray | torch.Tensor, samples: int, bounds_at: list[int] | tuple,
                        batch_size: int, device: torch.device, progress: bool | None = None,
                        bounds_fn: Callable | None = None, *, authors_samples: int | None = None,
                        headline: str = "ours", weights_fn: Callable | None = None) -> dict:
    """Importance-sampled ``-log p(x)`` of the examples ``x`` by our estimator and the authors', ELBO, IWAE bounds.

    Ours: ``samples`` (S) importance samples per example, the component summed
    out; the bounds are computed for every ``s`` of ``bounds_at`` with
    ``s <= S`` and for S itself, whose bound is the log p(x) estimate. Examples
    go to :func:`dlgmm_core.estimators.importance_bounds` in chunks of
    ``max(1, batch_size // S)`` (``batch_size`` bounds examples x samples per
    decoder call); ``bounds_fn`` replaces it (tests). A non-finite estimate is
    a DlgmmError (nothing is dropped).

    The authors' (the estimator of the paper's published numbers, see
    :func:`dlgmm_core.estimators.authors_log_marginal_likelihood`):
    ``authors_samples`` draws (None: their 50) with the component sampled,
    drawn by :func:`dlgmm_core.estimators.log_weight_table` (``weights_fn``
    replaces it, tests) in chunks of ``max(1, batch_size // authors_samples)``
    examples; draws whose mean log-weight over all of ``x`` is not finite are
    dropped and counted. Random draws: ours first, then the ELBO, then the
    authors', so ours and the ELBO do not depend on the authors' settings.

    ``headline`` ("authors" or "ours") chooses which estimate is ``nll``.
    Returns the content of ``reports/nll/<protocol>/<dataset>/<model>.json``
    less ``seconds``: ``nll`` (mean of -log p(x) of the headline estimator,
    nats), ``nll_se`` (its standard error, std / sqrt(n)), ``headline``,
    ``elbo`` (mean ELBO, the training objective, a negative number), ``bounds``
    (ours: ``{"s": -mean IWAE bound with s samples}``, positive NLL-style
    numbers that decrease towards ours as s grows; the entry for S is ours),
    ``samples`` (S), ``examples``, ``kl_method``, ``ours`` (``nll``, ``nll_se``,
    ``samples``) and ``authors`` (``nll``, ``nll_se``, ``samples``,
    ``dropped_draws``); and ``per_image`` (``{"ours": ..., "authors": ...}``,
    each example's -log p(x) by each estimator, in the order of ``x``: the
    content of the ``.npz`` beside the result, :class:`dlgmm_core.results.PerImage`).
    """
    if headline not in HEADLINES:
        raise DlgmmError(f"marginal likelihood: headline must be one of {', '.join(map(repr, HEADLINES))} "
                         f"(got {headline!r})")
    if bounds_fn is None:
        from .. import importance_bounds as bounds_fn
    samples = int(samples)
    n = int(x.shape[0])
    if n == 0:
        raise DlgmmError("marginal likelihood: no test examples")
    bounds = _bounds(model, x, samples, bounds_at, batch_size, device, progress, bounds_fn)
    log_px = bounds[samples]
    bad = int((~np.isfinite(log_px)).sum())
    if bad:
        raise DlgmmError(f"marginal likelihood: {bad} of {n} test examples have a non-finite log p(x) estimate "
                         f"with S={samples}; the model is numerically broken (check its training)")
    elbo = batched(lambda xb: model.elbo(xb), x, device, desc="ELBO", progress=progress)
    if not np.isfinite(elbo).all():
        raise DlgmmError(f"marginal likelihood: {int((~np.isfinite(elbo)).sum())} of {n} test examples have a "
                         f"non-finite ELBO; the model is numerically broken (check its training)")
    ours_nll, ours_se = _mean_and_se(-log_px)
    authors, authors_nll = _authors_estimate(model, x, authors_samples, batch_size, device, progress, weights_fn)
    estimates = {"ours": {"nll": ours_nll, "nll_se": ours_se, "samples": samples}, "authors": authors}
    return {
        "nll": estimates[headline]["nll"],
        "nll_se": estimates[headline]["nll_se"],
        "headline": headline,
        "elbo": float(elbo.mean()),
        "bounds": {str(s): float(-v.mean()) for s, v in bounds.items()},
        "samples": samples,
        "examples": n,
        "kl_method": getattr(getattr(model, "config", None), "kl_method", None),
        "ours": estimates["ours"],
        "authors": estimates["authors"],
        "per_image": {"ours": -log_px, "authors": authors_nll},
    }


def _authors_estimate(model: Any, x: np.ndarray | torch.Tensor, draws: int | None, batch_size: int,
                      device: torch.device, progress: bool | None, weights_fn: Callable | None
                      ) -> tuple[dict, np.ndarray]:
    """The ``authors`` entry of :func:`marginal_likelihood` (``nll``, ``nll_se``, ``samples``,
    ``dropped_draws``) and each example's -log p(x) by that estimator."""
    import torch

    from ..estimators import AUTHORS_DRAWS, log_mean_exp_over_finite_draws, log_weight_table

    if weights_fn is None:
        weights_fn = log_weight_table
    draws = AUTHORS_DRAWS if draws is None else int(draws)
    if draws < 1:
        raise DlgmmError(f"marginal likelihood: authors_samples must be >= 1 (got {draws})")
    # (examples, draws) rows, so that batched concatenates the chunks along the examples
    table = batched(lambda xb: weights_fn(model, xb, draws, component="sampled", batch_size=int(batch_size)).T,
                    x, device, batch_size=max(1, int(batch_size) // draws), desc=f"authors' log p(x), S={draws}",
                    progress=progress)
    log_px, dropped = log_mean_exp_over_finite_draws(torch.from_numpy(table).T)
    nll_per_example = -log_px.numpy()
    nll, se = _mean_and_se(nll_per_example)
    return {"nll": nll, "nll_se": se, "samples": draws, "dropped_draws": dropped}, nll_per_example
