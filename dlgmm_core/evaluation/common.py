"""What the evaluation modules share: loading a checkpoint for evaluation, the paper's model names,
batched model calls with a progress bar, mixture-component facts, a wall-clock timer.

torch (and tqdm) are imported where they are used, so the report stage, which
only reads :data:`MODEL_NAMES`, never loads them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import DlgmmError
from ..layout import checkpoint, script, train_stage

if TYPE_CHECKING:
    import torch

#: Examples per model call when embedding or computing ELBOs.
EMBED_BATCH = 1000


def load_eval_model(protocol: str, seed: int, dataset: str, model_key: str, device: torch.device,
                    root: str | os.PathLike = ".", budget: str | None = None) -> torch.nn.Module:
    """Load the checkpoint of ``model_key`` trained on ``dataset`` under ``protocol`` with ``seed`` onto ``device``,
    in eval mode.

    DlgmmError naming the file when it is missing, is not a checkpoint of that
    model kind (784 inputs), holds non-finite weights, or records another
    dataset, model, protocol, seed or (when given) ``budget`` in its metadata than
    the stage expects (a file copied into the wrong place would otherwise give
    another model's numbers under this one's name, or quick-budget numbers
    under the paper's).
    """
    from .. import load_checkpoint
    from ..data.contract import PIXELS
    from ..registry import SECTIONS

    path = checkpoint(protocol, seed, dataset, model_key, root)
    stage = train_stage(protocol, seed, dataset, model_key)
    if not path.is_file():
        raise DlgmmError(f"{path}: checkpoint not found; train it first (`python {script('train')} --protocol "
                         f"{protocol} --seed {seed} --dataset {dataset} --model {model_key}` or `dvc repro {stage}`)")
    model = load_checkpoint(path, map_location="cpu", expect_kind=SECTIONS[model_key].kind if model_key in SECTIONS else None,
                            expect_input_dim=PIXELS)
    recorded = model.checkpoint_metadata
    expected_values = [("dataset", dataset), ("model", model_key), ("protocol", protocol), ("seed", seed)]
    for key, expected in expected_values + ([("budget", budget)] if budget is not None else []):
        if key in recorded and recorded[key] != expected:
            raise DlgmmError(f"{path}: records {key} {recorded[key]!r}, but this stage evaluates {key} "
                             f"{expected!r}; train it again (`dvc repro {stage}`)")
    model.to(device)
    model.eval()
    return model


def model_components(model: Any) -> int:
    """Number of prior mixture components of a mixture model (``components`` or ``truncation``)."""
    for key in ("components", "truncation"):
        if getattr(model.config, key, None):
            return int(getattr(model.config, key))
    raise DlgmmError(f"a {getattr(model, 'kind', type(model).__name__)} model has no mixture components "
                     f"(its config has neither 'components' nor 'truncation')")


def prior_mean(model: Any, component: int) -> float:
    """The prior mean (per dimension) of mixture component ``component`` (0-based)."""
    means = list(getattr(model.config, "prior_means", None) or [0.0])
    return float(means[component] if len(means) > 1 else means[0])


def progress_bar(total: int, desc: str, unit: str, enabled: bool | None):
    """A tqdm bar over ``total`` items; ``enabled`` None shows it only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                disable=(None if enabled is None else not enabled))


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray | torch.Tensor, device: torch.device,
            batch_size: int = EMBED_BATCH, desc: str = "batches", progress: bool | None = None) -> np.ndarray:
    """``fn`` applied to ``x`` in batches of ``batch_size`` examples on ``device`` (no grad); rows concatenated.

    ``x``: (N, 784) uint8/float array. Returns a float64 NumPy array.
    """
    import torch

    from ..runtime import as_float_tensor

    n = int(x.shape[0])
    if n == 0:
        raise DlgmmError(f"{desc}: no examples to evaluate")
    out: np.ndarray | None = None  # allocated once, at the first batch (a list of per-batch tensors fragments the heap)
    with torch.no_grad(), progress_bar(n, desc, "ex", progress) as bar:
        for start in range(0, n, batch_size):
            xb = as_float_tensor(x[start:start + batch_size], device)
            rows = fn(xb).detach().to("cpu", torch.float64).numpy()
            if out is None:
                out = np.empty((n, *rows.shape[1:]), dtype=np.float64)
            out[start:start + xb.shape[0]] = rows
            bar.update(xb.shape[0])
    return out


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards (wall time)."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
