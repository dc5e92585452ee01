"""The training loop of the paper's protocol: Adam, minibatches of 100, validation
ELBO after every epoch, best-validation weights kept, early stopping on a
look-ahead window of ``patience`` epochs.

:func:`train_model` is resumable: after every epoch the full training state
(weights, Adam state, every RNG state, the best weights, the patience counter,
the per-epoch history: a :class:`TrainState`) is written atomically to
``state_path`` through the one checkpoint format of :mod:`dlgmm_core.checkpoint`
(its ``extra``). Started
again with the same configuration, training continues from the last completed
epoch and ends, on CPU, with bitwise the same weights and ELBO history as an
uninterrupted run. A state written by another configuration (model config,
train params, seed, data, device type, compiled or not, training code) is discarded with a notice. A
finished state makes a rerun rewrite the outputs without training.

Outputs are a function of that state: the checkpoint (best-validation
weights) and the dvclive logs (rebuilt from the stored history on resume, so
that DVC deleting them before a rerun loses nothing). Wall-clock times go to
the logs only, never into the checkpoint.

Random streams, all derived from ``seed`` (:func:`derive_seed`):

- ``("train",)``: the global torch/NumPy/Python RNGs of the training pass
  (the models' Monte Carlo samples);
- ``("shuffle",)``: a dedicated generator on the training device for the
  per-epoch permutation;
- ``("valid", epoch)``: the validation pass, run inside a fork of the global
  RNG so it never perturbs the training stream.
Model initialisation is the caller's business (seed before building).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from .config import validate_train
from .errors import DlgmmError
from .runtime import as_float_tensor, compiler_unavailable, compute_device, seed_everything

#: Format tag of the ``extra`` dict in the state file (:meth:`TrainState.to_dict`).
STATE_FORMAT = "dlgmm-train-state/1"
#: Steps between device syncs (progress bar, NaN check).
SYNC_EVERY = 20
#: Examples per model call in the validation pass.
VALID_BATCH = 1000
#: The repository holding the training stage's script and the package.
SOURCE_ROOT = Path(__file__).resolve().parents[1]


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


def code_files() -> list[Path]:
    """The sources whose change invalidates a saved training state, relative to :data:`SOURCE_ROOT`.

    The training stage's script and every package module it imports
    (:func:`dlgmm_core.layout.stage_sources`): the training stages' code deps
    in dvc.yaml, which ``tests/test_layout.py`` holds to this list.
    """
    from .layout import script, stage_sources

    return stage_sources(script("train"), SOURCE_ROOT)


def code_sha256() -> str:
    """sha256 over :func:`code_files` (names relative to the repository, and bytes)."""
    digest = hashlib.sha256()
    for path in code_files():
        digest.update(f"{path.as_posix()}\0".encode())
        digest.update((SOURCE_ROOT / path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _fingerprint_parts(model: torch.nn.Module, config: dict, seed: int, x_train, x_valid,
                       device: torch.device, compiled: bool) -> dict:
    return {
        "kind": getattr(model, "kind", type(model).__name__),
        "model_config": _jsonable(getattr(model, "config", {})),
        "train": _jsonable(config),
        "seed": int(seed),
        "device": device.type,  # RNG streams (and their saved states) differ between CPU and CUDA
        "compiled": compiled,  # train.compile where it could run: compiled and eager differ in the last bits
        "data": {"x_train": array_sha256(x_train), "x_valid": array_sha256(x_valid)},
        "code": code_sha256(),
    }


def _fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _check_examples(x: Any, name: str, input_dim: int | None) -> None:
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 2 or shape[0] == 0:
        raise DlgmmError(f"{name}: expected a non-empty (N, D) array (got shape {shape})")
    if input_dim is not None and shape[1] != input_dim:
        raise DlgmmError(f"{name}: {shape[1]} features per example, the model expects {input_dim}")


# --------------------------------------------------------------------------
# RNG state
# --------------------------------------------------------------------------
def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _seed_global(seed: int, device: torch.device) -> None:
    """Seed the CPU generator (and the training device's CUDA generator) only."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _get_rng(device: torch.device, shuffle: torch.Generator) -> dict:
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


def _set_rng(state: dict, device: torch.device, shuffle: torch.Generator) -> None:
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
# validation
# --------------------------------------------------------------------------
def validation_elbo(model: torch.nn.Module, x: torch.Tensor, *, seed: int, epoch: int,
                    batch_size: int = VALID_BATCH) -> float:
    """Mean per-example ELBO (nats) of ``x`` under ``model``: eval mode, no grad, float32.

    The Monte Carlo draws come from the stream ``derive_seed(seed, "valid", epoch)``
    inside a fork of the global RNG, so the value is a deterministic function of
    the weights, ``seed`` and ``epoch``, and the caller's RNG stream is untouched.
    """
    device = x.device
    was_training = model.training
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.random.fork_rng(devices=_rng_devices(device)):
        _seed_global(derive_seed(seed, "valid", epoch), device)
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, x.shape[0], batch_size):
                    total += model.elbo(x[start:start + batch_size]).double().sum()
        finally:
            model.train(was_training)
    return float(total) / x.shape[0]


# --------------------------------------------------------------------------
# logs (dvclive), a pure function of the history
# --------------------------------------------------------------------------
def summarize_history(history: list[dict]) -> dict:
    """The final summary of ``metrics.json``: deterministic ELBO keys, timings under ``timing``."""
    if not history:
        return {}
    best = max(range(len(history)), key=lambda i: (history[i]["valid_elbo"], -i))
    seconds = [row["seconds"] for row in history]
    rates = [row["examples_per_second"] for row in history]
    return {
        "best_valid_elbo": history[best]["valid_elbo"],
        "best_epoch": history[best]["epoch"],
        "epochs": history[-1]["epoch"],
        "train": {"elbo": history[-1]["train_elbo"]},
        "valid": {"elbo": history[-1]["valid_elbo"]},
        "timing": {"mean_epoch_seconds": sum(seconds) / len(seconds),
                   "examples_per_second": sum(rates) / len(rates)},
    }


class TrainingLog:
    """dvclive logs under ``log_dir``: ``plots/metrics/{train/elbo,valid/elbo,epoch_seconds,
    examples_per_second}.tsv`` (one row per epoch, ``step`` = epoch) and ``metrics.json``.

    Opening clears the folder and replays ``history``, so the logs depend on
    the history alone. No dvc.yaml, no report, no experiment is written.
    """

    def __init__(self, log_dir: str | os.PathLike, history: Iterable[dict] = ()):
        from dvclive import Live

        self.live = Live(dir=str(log_dir), resume=False, report=None, save_dvc_exp=False, dvcyaml=None)
        for row in history:
            self.append(row)

    def append(self, row: dict) -> None:
        live = self.live
        live.step = int(row["epoch"])
        live.log_metric("train/elbo", float(row["train_elbo"]))
        live.log_metric("valid/elbo", float(row["valid_elbo"]))
        live.log_metric("epoch_seconds", float(row["seconds"]))
        live.log_metric("examples_per_second", float(row["examples_per_second"]))
        live.make_summary()

    def finish(self, history: list[dict]) -> None:
        self.live.summary = summarize_history(history)
        if history:
            self.live.summary["step"] = int(history[-1]["epoch"])
        self.live.end()


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
    #: What the fingerprint covers: kind, model config, train params, seed, device type, compiled, data, code.
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
    #: One row per completed epoch: epoch, train_elbo, valid_elbo, seconds, examples_per_second.
    history: list[dict] = field(default_factory=list)
    #: Adam's ``state_dict``.
    optimizer: dict | None = None
    #: Every RNG state (:func:`_get_rng`).
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
            self.best_state_dict = _cpu_state_dict(model)
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


def _load_state(state_path: Path, model: torch.nn.Module, parts: dict, fingerprint: str):
    """``(weights, state)`` of a resumable state of this configuration, else ``None`` (with a notice)."""
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
    if extra.get("fingerprint") != fingerprint:
        old = extra.get("fingerprint_parts") or {}
        changed = sorted(k for k in set(parts) | set(old) if old.get(k) != parts.get(k))
        print(f"notice: {state_path}: written by another configuration ({', '.join(changed) or 'unknown'} "
              f"differ); discarded, training from scratch", flush=True)
        return None
    return loaded.state_dict(), TrainState.from_dict(extra)


def _cpu_state_dict(module: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _checkpoint_metadata(metadata: dict, config: dict, seed: int, model, state: TrainState) -> dict:
    return {
        **metadata,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        "best_valid_elbo": state.best_valid_elbo,
        "finished": state.finished,
        "stop_reason": state.stop_reason,
        "train": _jsonable(config),
        "seed": int(seed),
        "kl_method": getattr(model, "config", {}).get("kl_method"),
    }


# --------------------------------------------------------------------------
# the training step
# --------------------------------------------------------------------------
def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel on CPU and CUDA (one kernel for all parameters).

    The default (foreach) Adam runs about ten elementwise passes per parameter
    tensor; the fused one a single pass: at the paper's sizes on one CPU core
    ``Adam.step`` takes ~1 ms instead of ~2.7 ms (gauss_vae step ~11.5 -> ~9.5 ms).
    Its arithmetic differs from foreach Adam in the last bits, but it is
    deterministic, so a seed still gives the same weights on the same machine,
    and a resumed run keeps the setting it was saved with (``fused`` is part of
    the optimizer state's param_groups).
    """
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda") or None)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
               x_batch: torch.Tensor, precision: str, elbo_fn=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the minibatch's mean negative ELBO; ``(ELBO sum, gradient norm)``.

    ``precision``: ``float32``, or ``bf16`` to autocast the forward pass (on
    ``x_batch``'s device) while the loss is reduced in float32. ``elbo_fn``:
    what computes the per-example ELBO (default ``model.elbo``; the loop
    passes its compiled form, :func:`step_elbo`). The gradient
    norm (L2 over ``params``, taken before the step) is what the epoch loop
    checks for non-finite gradients. Both results are 0-dim tensors on the
    device, so a step never waits for the device.
    """
    with _autocast(x_batch.device, precision):
        elbo = (elbo_fn or model.elbo)(x_batch)
    elbo = elbo.float()
    loss = -elbo.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = _grad_norm(params)
    optimizer.step()
    return elbo.detach().sum(), grad_norm


def step_elbo(model: torch.nn.Module, compile: bool, device: torch.device, mode: str | None = None):
    """``(the training step's ELBO function, whether it is compiled)``.

    With ``compile`` (``train.compile``) and a working compiler here,
    ``torch.compile(model.elbo)`` with static shapes: inductor fuses the
    elementwise work between the GEMMs (the DLDPMM's step measured 53 -> 45 ms,
    the Gauss-VAE's 8.4 -> 7.0 ms at one thread; a first compile takes ~20 s,
    later processes load it from inductor's cache in ~2 s). Random draws stay
    torch's own (``fallback_random``), so a compiled step samples the same
    noise as an eager one and differs only in float rounding; the compiled
    step is deterministic, so resume stays bitwise. Elsewhere: eager, with a
    notice. The validation pass always runs eager. ``mode``: ``torch.compile``'s mode; ``None`` (its default) is
    what ``train.compile`` runs, ``"reduce-overhead"`` replays the step from CUDA graphs (measured by
    ``benchmarks/gpu_check.py``; the caller then marks each step with ``torch.compiler.cudagraph_mark_step_begin``).
    """
    if not compile:
        return model.elbo, False
    reason = compiler_unavailable(device.type)
    if reason is not None:
        print(f"notice: train.compile: torch.compile is unavailable here ({reason}); training eager", flush=True)
        return model.elbo, False
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    compiled_elbo = torch.compile(model.elbo, dynamic=False, mode=mode)
    warmed = []

    def elbo_fn(x: torch.Tensor) -> torch.Tensor:
        if not warmed:
            # One eager ELBO of one example, in a fork of the RNG (the training stream is untouched), fills
            # torch.distributions' KL dispatch cache: its first lookup is code torch.compile cannot trace,
            # which would split every step into two compiled graphs.
            with torch.random.fork_rng(devices=_rng_devices(x.device)), torch.no_grad():
                model.elbo(x[:1])
            warmed.append(True)
        return compiled_elbo(x)

    return elbo_fn, True


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0, error_if_nonfinite=False)


# --------------------------------------------------------------------------
# the epoch
# --------------------------------------------------------------------------
def _run_epoch(model, optimizer, params, x, shuffle, *, batch_size, precision, epoch, progress,
               elbo_fn=None) -> float:
    """One pass over ``x`` in a permutation drawn from ``shuffle``; the mean train ELBO.

    Waits for the device every :data:`SYNC_EVERY` steps only (progress bar, NaN
    check); raises on a non-finite ELBO or gradient, naming the step.
    """
    from tqdm import tqdm

    device = x.device
    n = x.shape[0]
    steps = math.ceil(n / batch_size)
    perm = torch.randperm(n, generator=shuffle, device=device)
    bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True,
               disable=(None if progress is None else not progress))
    sums = torch.zeros(steps, dtype=torch.float64, device=device)
    norms = torch.zeros(steps, dtype=torch.float32, device=device)
    checked = 0
    model.train()
    try:
        for step in range(steps):
            x_batch = x.index_select(0, perm[step * batch_size:(step + 1) * batch_size])
            sums[step], norms[step] = train_step(model, optimizer, params, x_batch, precision, elbo_fn)
            if (step + 1) % SYNC_EVERY == 0 or step + 1 == steps:
                total, grads_ok = torch.stack([sums[:step + 1].sum(),
                                               torch.isfinite(norms[checked:step + 1]).all().double()]).tolist()
                if not math.isfinite(total) or grads_ok != 1.0:
                    _raise_non_finite(sums, norms, checked, step, epoch, batch_size, n)
                checked = step + 1
                bar.update(step + 1 - bar.n)
                bar.set_postfix(elbo=f"{total / min(n, (step + 1) * batch_size):.2f}", refresh=False)
    finally:
        bar.close()
    return float(sums.sum()) / n


def _raise_non_finite(sums, norms, first, last, epoch, batch_size, n):
    sums = sums[first:last + 1].cpu()
    norms = norms[first:last + 1].cpu()
    for offset in range(last + 1 - first):
        step = first + offset
        size = min(batch_size, n - step * batch_size)
        if not math.isfinite(float(sums[offset])):
            raise DlgmmError(f"non-finite ELBO at epoch {epoch}, step {step + 1} (batch of {size} examples); "
                             f"the state and checkpoint of the last completed epoch are kept; "
                             f"check the data and consider a lower train.lr")
        if not math.isfinite(float(norms[offset])):
            raise DlgmmError(f"non-finite gradient at epoch {epoch}, step {step + 1} (batch of {size} examples; "
                             f"the ELBO was finite); the state and checkpoint of the last completed epoch are "
                             f"kept; consider a lower train.lr")
    raise DlgmmError(f"non-finite ELBO at epoch {epoch}, steps {first + 1}-{last + 1}")


# --------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------
def train_model(model: torch.nn.Module, x_train, x_valid, config: dict, *, seed: int,
                state_path: str | os.PathLike, checkpoint_path: str | os.PathLike,
                log_dir: str | os.PathLike, metadata: dict | None = None,
                progress: bool | None = None) -> dict:
    """Train ``model`` by maximizing its mean ELBO with Adam; resumable; return the summary.

    ``model`` needs ``elbo(x) -> Tensor[B]`` (per-example ELBO in nats), ``kind``
    and ``config`` (as built by :func:`dlgmm_core.build_model`); the caller seeds
    before building it. ``x_train``/``x_valid``: (N, D) arrays (uint8 0/1 or
    float), truncated here to ``max_train_examples``/``max_valid_examples``.
    ``config``: the ``train`` section (lr, batch_size, patience, max_epochs,
    max_train_examples, max_valid_examples, device, precision).

    Writes ``state_path`` (every epoch), ``checkpoint_path`` (best-validation
    weights, on every improvement and at the end; ``metadata`` plus the
    training results) and the dvclive logs in ``log_dir``. On return ``model``
    holds the best-validation weights. ``progress``: tqdm bar per epoch (None:
    only on a terminal). ``precision: bf16`` autocasts the training forward
    pass only (float32 weights, Adam state and loss reduction); the validation
    pass always runs in float32, so the selection criterion and the logged
    values are comparable across precisions.

    Returns ``{"best_valid_elbo", "best_epoch", "epochs", "stop_reason",
    "resumed_from", "epochs_trained", "history", "timing": {...}}``.
    Raises :class:`DlgmmError` on a non-finite ELBO or gradient, naming epoch
    and step; the files of the last completed epoch stay as they were.
    """
    from .checkpoint import save_checkpoint

    # setup: inputs, device, fingerprint, then the stored state of this configuration or a fresh one
    config = validate_train(config)
    metadata = dict(metadata or {})
    state_path, checkpoint_path, log_dir = Path(state_path), Path(checkpoint_path), Path(log_dir)
    x_train, x_valid = _truncated_examples(model, x_train, x_valid, config)
    label = "/".join(str(metadata[k]) for k in ("dataset", "model") if k in metadata) or getattr(model, "kind", "model")
    device = _training_device(config)
    _remove_interrupted_writes(state_path, checkpoint_path)
    elbo_fn, compiled = step_elbo(model, config["compile"], device)
    parts = _fingerprint_parts(model, config, seed, x_train, x_valid, device, compiled)
    fingerprint = _fingerprint(parts)
    loaded = _load_state(state_path, model, parts, fingerprint)

    seed_everything(derive_seed(seed, "train"))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config["lr"], device)
    shuffle = torch.Generator(device=device)
    shuffle.manual_seed(derive_seed(seed, "shuffle"))
    if loaded is None:
        state = TrainState(fingerprint=fingerprint, fingerprint_parts=parts)
    else:
        weights, state = loaded
        model.load_state_dict(weights)
        optimizer.load_state_dict(state.optimizer)
        _set_rng(state.rng, device, shuffle)
    resumed_from = state.epoch

    def save_best() -> None:
        """The best epoch's weights to ``checkpoint_path``; the model keeps its own."""
        save_checkpoint(checkpoint_path, model, state_dict=state.best_state_dict,
                        metadata=_checkpoint_metadata(metadata, config, seed, model, state))

    log = TrainingLog(log_dir, state.history)
    if state.finished:
        model.load_state_dict(state.best_state_dict)
        save_best()
        log.finish(state.history)
        print(f"{label}: already trained ({state.epoch} epochs, {state.stop_reason}; best valid ELBO "
              f"{state.best_valid_elbo:.4f} at epoch {state.best_epoch}); outputs rewritten from "
              f"{state_path}", flush=True)
        return _summary(state, resumed_from, 0)

    xt, xv = as_float_tensor(x_train, device), as_float_tensor(x_valid, device)
    n = xt.shape[0]
    _print_start(label, n, xv.shape[0], device, config, resumed_from, compiled)
    if state.best_state_dict is not None:
        save_best()  # DVC deletes the checkpoint before rerunning the stage

    while not state.finished:
        epoch = state.epoch + 1
        start = time.perf_counter()
        train_elbo = _run_epoch(model, optimizer, params, xt, shuffle, batch_size=config["batch_size"],
                                precision=config["precision"], epoch=epoch, progress=progress, elbo_fn=elbo_fn)
        train_seconds = time.perf_counter() - start
        valid_elbo = validation_elbo(model, xv, seed=seed, epoch=epoch)
        if not math.isfinite(valid_elbo):
            raise DlgmmError(f"non-finite validation ELBO at epoch {epoch}; the state and checkpoint of the last "
                             f"completed epoch are kept; consider a lower train.lr")
        improved = state.record_validation(epoch, valid_elbo, model)
        row = {"epoch": epoch, "train_elbo": train_elbo, "valid_elbo": valid_elbo,
               "seconds": time.perf_counter() - start, "examples_per_second": n / train_seconds}
        state.complete_epoch(row, patience=config["patience"], max_epochs=config["max_epochs"],
                             optimizer=optimizer.state_dict(), rng=_get_rng(device, shuffle))
        if improved or state.finished:
            save_best()
        save_checkpoint(state_path, model, extra=state.to_dict(), metadata={**metadata, "training_state": True})
        log.append(row)
        _print_epoch(label, row, state, config["max_epochs"], improved)

    model.load_state_dict(state.best_state_dict)
    log.finish(state.history)
    print(f"{label}: stopped after epoch {state.epoch} ({state.stop_reason}); best valid ELBO "
          f"{state.best_valid_elbo:.4f} at epoch {state.best_epoch} -> {checkpoint_path}", flush=True)
    return _summary(state, resumed_from, state.epoch - resumed_from)


def _truncated_examples(model, x_train, x_valid, config: dict) -> tuple[Any, Any]:
    """The examples checked against the model's input size, truncated to ``max_*_examples``."""
    input_dim = getattr(model, "config", {}).get("input_dim")
    _check_examples(x_train, "x_train", input_dim)
    _check_examples(x_valid, "x_valid", input_dim)
    return x_train[:config["max_train_examples"]], x_valid[:config["max_valid_examples"]]


def _training_device(config: dict) -> torch.device:
    device = compute_device(config["device"], config["threads"], key="train.device")
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return device


def _remove_interrupted_writes(*paths: Path) -> None:
    """Delete the temporaries of writes to ``paths`` cut short by a SIGKILL."""
    for path in paths:
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _print_start(label: str, n_train: int, n_valid: int, device: torch.device, config: dict,
                 resumed_from: int, compiled: bool) -> None:
    start_note = f"resuming after epoch {resumed_from}" if resumed_from else "from scratch"
    where = f"{device.type}" + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
    print(f"{label}: {n_train} train / {n_valid} valid examples, {where} {config['precision']}"
          f"{' compiled' if compiled else ''}, "
          f"lr {config['lr']}, batch {config['batch_size']}, patience {config['patience']}, "
          f"max {config['max_epochs']} epochs; {start_note}", flush=True)
    if config["precision"] == "bf16" and device.type == "cpu":
        print("notice: train.precision bf16 on CPU: autocast is emulated on CPUs without native bf16 "
              "(measured 3-9x slower than float32 on an AVX2 CPU); float32 is the faster choice there", flush=True)


def _print_epoch(label: str, row: dict, state: TrainState, max_epochs: int, improved: bool) -> None:
    print(f"{label} epoch {row['epoch']:>3}/{max_epochs}: train ELBO {row['train_elbo']:9.4f}  valid ELBO "
          f"{row['valid_elbo']:9.4f}  best {state.best_valid_elbo:9.4f} @ {state.best_epoch}"
          f"{' *' if improved else '  '}  {row['seconds']:6.1f} s  {row['examples_per_second']:8.0f} ex/s",
          flush=True)


def _summary(state: TrainState, resumed_from: int, trained: int) -> dict:
    timing = summarize_history(state.history).get("timing", {})
    return {"best_valid_elbo": state.best_valid_elbo, "best_epoch": state.best_epoch,
            "epochs": state.epoch, "stop_reason": state.stop_reason, "resumed_from": resumed_from,
            "epochs_trained": trained, "history": [dict(row) for row in state.history], "timing": timing}
