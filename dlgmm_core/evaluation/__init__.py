"""Evaluation of trained models: marginal likelihood, kNN on latent samples, t-SNE, sample grids.

Everything here works on a loaded model (see :func:`load_eval_model`) and
NumPy/torch arrays; the stage scripts in ``stages/`` only parse arguments,
read params.yaml and the prepared data, call these functions and write the
outputs. Figures are drawn on ``matplotlib.figure.Figure`` objects (Agg
canvas, no pyplot state) and written atomically with :func:`save_figure`;
folders of figures with :func:`atomic_dir`.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ..errors import DlgmmError
from ..io import atomic_path

if TYPE_CHECKING:  # torch is imported where it is used, so the report stage never loads it
    import torch

#: Examples per model call when embedding or computing ELBOs.
EMBED_BATCH = 1000
#: Display names of the params.yaml model keys (the paper's names), as the model registry declares them.
from ..registry import MODEL_NAMES  # noqa: E402


# --------------------------------------------------------------------------
# atomic outputs
# --------------------------------------------------------------------------
def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` (a matplotlib Figure) as PNG to ``path`` atomically, at ``dpi``, no bbox cropping."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    An interrupted writer leaves ``path`` as it was (never a mix of old and
    new files); stale files of an earlier run do not survive.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
def checkpoint_path(dataset: str, model_key: str, root: str | os.PathLike = "models") -> Path:
    """``models/<dataset>/<model_key>.pt``."""
    return Path(root) / dataset / f"{model_key}.pt"


def load_eval_model(path: str | os.PathLike, model_key: str, device: torch.device) -> torch.nn.Module:
    """Load the checkpoint ``path`` of the params.yaml model ``model_key`` onto ``device``, in eval mode.

    DlgmmError naming the file when it is missing or is not a checkpoint of
    that model kind (784 inputs).
    """
    from .. import load_checkpoint
    from ..config import INPUT_DIM, MODEL_KEYS

    path = Path(path)
    if not path.is_file():
        dataset = path.parent.name
        stage = (f"train_dlgmm@{dataset}" if model_key == "dlgmm" else "train_qualitative"
                 if model_key == "qualitative" else f"train@{dataset}-{model_key}")
        raise DlgmmError(f"{path}: checkpoint not found; train it first (`python stages/train.py --dataset "
                         f"{dataset} --model {model_key}` or `dvc repro {stage}`)")
    model = load_checkpoint(path, map_location="cpu", expect_kind=MODEL_KEYS.get(model_key),
                            expect_input_dim=INPUT_DIM)
    model.to(device)
    model.eval()
    return model


def model_components(model: Any) -> int:
    """Number of prior mixture components of a mixture model (``components`` or ``truncation``)."""
    config = getattr(model, "config", {}) or {}
    for key in ("components", "truncation"):
        if config.get(key):
            return int(config[key])
    raise DlgmmError(f"a {getattr(model, 'kind', type(model).__name__)} model has no mixture components "
                     f"(its config has neither 'components' nor 'truncation')")


def prior_mean(model: Any, component: int) -> float:
    """The prior mean (per dimension) of mixture component ``component`` (0-based)."""
    means = list((getattr(model, "config", {}) or {}).get("prior_means") or [0.0])
    return float(means[component] if len(means) > 1 else means[0])


# --------------------------------------------------------------------------
# batched model calls
# --------------------------------------------------------------------------
def _progress(total: int, desc: str, unit: str, enabled: bool | None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                disable=(None if enabled is None else not enabled))


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=torch.float32)


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray | torch.Tensor, device: torch.device,
            batch_size: int = EMBED_BATCH, desc: str = "batches", progress: bool | None = None) -> np.ndarray:
    """``fn`` applied to ``x`` in batches of ``batch_size`` examples on ``device`` (no grad); rows concatenated.

    ``x``: (N, 784) uint8/float array. Returns a float64 NumPy array.
    """
    import torch

    n = int(x.shape[0])
    out = []
    with torch.no_grad(), _progress(n, desc, "ex", progress) as bar:
        for start in range(0, n, batch_size):
            xb = _as_tensor(x[start:start + batch_size], device)
            out.append(fn(xb).detach().to("cpu", torch.float64))
            bar.update(xb.shape[0])
    if not out:
        raise DlgmmError(f"{desc}: no examples to evaluate")
    return torch.cat(out).numpy()


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

    if bounds_fn is None:
        from .. import importance_bounds as bounds_fn
    samples = int(samples)
    at = sorted({int(s) for s in bounds_at if int(s) <= samples})
    n = int(x.shape[0])
    if n == 0:
        raise DlgmmError("marginal likelihood: no test examples")
    chunk = max(1, int(batch_size) // samples)
    parts: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad(), _progress(n, f"log p(x), S={samples}", "ex", progress) as bar:
        for start in range(0, n, chunk):
            xb = _as_tensor(x[start:start + chunk], device)
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


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards (wall time)."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


from .knn import check_neighbors, embed, knn_errors, require_labels  # noqa: E402
from .samples import grid_png_size, prior_bernoulli_means, save_component_grids, save_grid, tile  # noqa: E402
from .tsne import plot_tsne, tsne_embedding  # noqa: E402

__all__ = [
    "EMBED_BATCH", "MODEL_NAMES", "Timer", "atomic_dir", "batched", "check_neighbors", "checkpoint_path", "embed",
    "grid_png_size", "knn_errors", "load_eval_model", "marginal_likelihood", "model_components",
    "plot_tsne", "prior_bernoulli_means", "prior_mean", "require_labels", "save_component_grids",
    "save_figure", "save_grid", "tile", "tsne_embedding",
]
