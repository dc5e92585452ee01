"""Device choice and seeding, shared by training and evaluation."""
from __future__ import annotations

import functools
import random

import numpy as np
import torch

from .errors import DlgmmError


def resolve_device(name: str, key: str = "device") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an error naming ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DlgmmError(f"params.yaml: {key} is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise DlgmmError(f"params.yaml: {key} must be auto, cpu or cuda (got {name!r})")
    return torch.device(name)


def compute_device(name: str, threads: int, key: str = "device") -> torch.device:
    """:func:`resolve_device`, with the CPU's torch thread count set to ``threads`` and subnormals flushed to zero.

    The thread count is part of a run's configuration: on CPU, a GEMM's
    reduction order (hence its last bits) depends on how many threads split
    it, so the same parameters give the same bits with the same ``threads``
    whatever the machine's core count, and whether stages run one at a time
    or side by side (``make repro JOBS=2``). At the paper's sizes one thread
    per process is also the fastest per core (benchmarks/README.md, "Speed").
    """
    device = resolve_device(name, key=key)
    if device.type == "cpu":
        torch.set_num_threads(int(threads))
        # Flush subnormal floats (below 1.2e-38) to zero: as training goes on, some activations and gradients
        # underflow into that range, where the CPU computes far slower (measured: the 5-component model's
        # epoch grew from 10 to 22 s over 70 epochs, and one of its steps took 46 ms with subnormals, 24 ms
        # without). Part of every run's arithmetic, so results stay bitwise repeatable.
        torch.set_flush_denormal(True)
    return device


@functools.lru_cache(maxsize=None)
def compiler_unavailable(device_type: str) -> str | None:
    """Why ``torch.compile`` cannot run on ``device_type`` here (one line), or ``None`` when it can.

    Compiles and runs a one-line function: inductor needs a working C++
    compiler on CPU (Triton on CUDA), which only an attempt proves.
    """
    try:
        probe = torch.compile(lambda t: t * 2.0 + 1.0, dynamic=False)
        value = probe(torch.ones(4, device=device_type))
        if not bool((value == 3.0).all()):
            return "a compiled probe computed a wrong value"
    except Exception as err:  # noqa: BLE001 - any failure means: run eager
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else 'no message'}"
    return None


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU generator seeded the same way.

    With the same seed and thread count, CPU runs are then bitwise identical
    (the CPU kernels used here are deterministic). ``torch.use_deterministic_algorithms``
    is not called: it only matters for CUDA kernels and costs seconds of import time.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def as_float_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Examples (N, D) -- a NumPy array (e.g. binary uint8 images) or a tensor -- as float32 on ``device``, copied once."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=torch.float32)
