"""What lets a training resume bitwise: its seeds, its RNG states, its fingerprint and its state file.

After every epoch the loop (:mod:`dlgmm_core.training`) writes the full
training state, a :class:`TrainState` (weights, Adam state, every RNG state,
the best weights, the patience counter, the per-epoch history), atomically to
its state file through the one checkpoint format (its ``extra``). Started
again with the same configuration, training continues from the last completed
epoch and ends, on CPU, with bitwise the same weights and ELBO history as an
uninterrupted run. A state another configuration wrote (model config, train
config, seed, data, device type, compiled or not, training code: the
fingerprint) is discarded with a notice.

Random streams, all derived from the seed (:func:`derive_seed`):

- ``("train",)``: the global torch/NumPy/Python RNGs of the training pass
  (the models' Monte Carlo samples);
- ``("shuffle",)``: a dedicated generator on the training device for the
  per-epoch permutation;
- ``("valid", epoch)``: the validation pass, run inside a fork of the global
  RNG so it never perturbs the training stream.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from .errors import DlgmmError
from .fields import as_dict

#: Format tag of the ``extra`` dict in the state file (:meth:`TrainState.to_dict`).
STATE_FORMAT = "dlgmm-train-state/1"


# --------------------------------------------------------------------------
# seeds and fingerprints
# --------------------------------------------------------------------------
def derive_seed(seed: int, *tags: Any) -> int:
    """A 63-bit seed for the stream named by ``tags``, derived from ``seed`` by sha256."""
    text = json.dumps([int(seed), *tags], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def array_sha256(x: np.ndarray | torch.Tensor) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = np.ascontiguousarray(a)
    digest = hashlib.sha256(f"{a.dtype.str}:{a.shape};".encode())
    digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def code_sha256(files: Iterable[Path], root: Path) -> str:
    """sha256 over the source ``files`` (relative to ``root``: their names, then their bytes).

    The training stage passes its own sources (the script and every package
    module it imports, :func:`dlgmm_core.layout.stage_sources`): a change to
    any of them discards a saved state.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{Path(path).as_posix()}\0".encode())
        digest.update((Path(root) / path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def fingerprint_parts(model: torch.nn.Module, config: Any, seed: int, x_train, x_valid, device: torch.device,
                      compiled: bool, code: str) -> dict:
    """What a saved state must match to be resumed (``code``: :func:`code_sha256` of the training code)."""
    return {
        "kind": getattr(model, "kind", type(model).__name__),
        "model_config": as_dict(model.config),
        "train": as_dict(config),
        "seed": int(seed),
        "device": device.type,  # RNG streams (and their saved states) differ between CPU and CUDA
        "compiled": compiled,  # train.compile where it could run: compiled and eager differ in the last bits
        "data": {"x_train": array_sha256(x_train), "x_valid": array_sha256(x_valid)},
        "code": code,
    }


def fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------
# RNG state
# --------------------------------------------------------------------------
def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG a fork on ``device`` saves and restores."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def seed_global(seed: int, device: torch.device) -> None:
    """Seed the CPU generator (and the training device's CUDA generator) only."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def get_rng(device: torch.device, shuffle: torch.Generator) -> dict:
    """Every RNG state a resumed run restores: torch's, NumPy's, Python's, the shuffle generator's (and CUDA's)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
        "shuffle": shuffle.get_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng(state: dict, device: torch.device, shuffle: torch.Generator) -> None:
    """Restore the states :func:`get_rng` captured."""
    torch.set_rng_state(state["torch"].cpu())
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    shuffle.set_state(state["shuffle"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


# --------------------------------------------------------------------------
# the training state and its file
# --------------------------------------------------------------------------
@dataclass
class TrainState:
    """A training run after its last completed epoch: everything a resumed run continues from.

    Stored as the ``extra`` of the state file (:meth:`to_dict`), whose weights
    are the model's at the end of that epoch.
    """

    #: sha256 of ``fingerprint_parts``, the configuration that wrote the state.
    fingerprint: str
    #: What the fingerprint covers: kind, model config, train config, seed, device type, compiled, data, code.
    fingerprint_parts: dict
    #: The last completed epoch (0: none).
    epoch: int = 0
    #: Whether training has stopped, and why (``early_stopping`` or ``max_epochs``).
    finished: bool = False
    stop_reason: str | None = None
    #: The best validation ELBO so far and its epoch.
    best_valid_elbo: float | None = None
    best_epoch: int = 0
    #: Epochs since the best one: the patience counter.
    bad_epochs: int = 0
    #: One row per completed epoch (:mod:`dlgmm_core.history`).
    history: list[dict] = field(default_factory=list)
    #: Adam's ``state_dict``.
    optimizer: dict | None = None
    #: Every RNG state (:func:`get_rng`).
    rng: dict | None = None
    #: The best epoch's weights, on CPU.
    best_state_dict: dict | None = None

    def to_dict(self) -> dict:
        """The plain dict stored in the state file: the :data:`STATE_FORMAT` tag, then the fields in
        declaration order (the order is part of the file's bytes)."""
        return {"format": STATE_FORMAT, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_dict(cls, stored: dict) -> TrainState:
        """The state :meth:`to_dict` stored (the caller checks the format tag); the history list is copied."""
        values = {f.name: stored[f.name] for f in fields(cls)}
        values["history"] = list(values["history"])
        return cls(**values)

    def record_validation(self, epoch: int, valid_elbo: float, model: torch.nn.Module) -> bool:
        """A new best keeps ``model``'s weights (copied to CPU) and resets the patience counter, anything
        else counts a bad epoch; whether ``valid_elbo`` was a new best."""
        improved = self.best_valid_elbo is None or valid_elbo > self.best_valid_elbo
        if improved:
            self.best_state_dict = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self.best_valid_elbo, self.best_epoch, self.bad_epochs = valid_elbo, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    def complete_epoch(self, row: dict, *, patience: int, max_epochs: int, optimizer: dict, rng: dict) -> None:
        """Append the epoch's ``row``, decide whether training stops, keep the optimizer and RNG states."""
        self.history.append(row)
        self.epoch = row["epoch"]
        self.stop_reason = ("early_stopping" if self.bad_epochs >= patience
                            else "max_epochs" if self.epoch >= max_epochs else None)
        self.finished = self.stop_reason is not None
        self.optimizer, self.rng = optimizer, rng


def load_state(state_path: Path, model: torch.nn.Module, parts: dict) -> tuple[dict, TrainState] | None:
    """``(weights, state)`` of a resumable state of the configuration ``parts``, else ``None`` (with a notice)."""
    if not state_path.exists():
        return None
    from .checkpoint import load_checkpoint

    try:
        loaded, extra = load_checkpoint(state_path, map_location="cpu", expect_kind=getattr(model, "kind", None),
                                        with_extra=True)
    except DlgmmError as err:
        print(f"notice: {state_path}: not a usable training state ({err}); discarded, training from scratch",
              flush=True)
        return None
    if not isinstance(extra, dict) or extra.get("format") != STATE_FORMAT:
        print(f"notice: {state_path}: not a training state of this version; discarded, training from scratch",
              flush=True)
        return None
    if extra.get("fingerprint") != fingerprint(parts):
        old = extra.get("fingerprint_parts") or {}
        changed = sorted(k for k in set(parts) | set(old) if old.get(k) != parts.get(k))
        print(f"notice: {state_path}: written by another configuration ({', '.join(changed) or 'unknown'} "
              f"differ); discarded, training from scratch", flush=True)
        return None
    return loaded.state_dict(), TrainState.from_dict(extra)


def remove_interrupted_writes(*paths: Path) -> None:
    """Delete the temporaries of writes to ``paths`` cut short by a SIGKILL."""
    for path in paths:
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
