"""The training loop of the paper's protocol: Adam, minibatches of 100, validation
ELBO after every epoch, best-validation weights kept, early stopping on a
look-ahead window of ``patience`` epochs.

:func:`train_model` reads top to bottom: setup, resume or start, ``while not
finished`` one epoch, finish. It is resumable: after every epoch it writes
the full training state, and started again with the same configuration it
continues from the last completed epoch, bitwise as an uninterrupted run on
CPU (:mod:`dlgmm_core.resume`: seeds, RNG states, fingerprint, state file). A
finished state makes a rerun rewrite the outputs without training.

Outputs are a function of that state: the checkpoint (best-validation
weights) and the dvclive logs (:mod:`dlgmm_core.history`, rebuilt from the
stored history on resume, so that DVC deleting them before a rerun loses
nothing). Wall-clock times go to the logs only, never into the checkpoint.
Model initialisation is the caller's business (seed before building).
``precision: bf16`` autocasts the training forward pass only (float32
weights, Adam state and loss reduction); the validation pass always runs in
float32, so the selection criterion and the logged values are comparable
across precisions.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import fields
from .errors import DlgmmError
from .fields import as_dict
from .history import HistoryWriter, summarize
from .resume import (TrainState, derive_seed, fingerprint, fingerprint_parts, get_rng, load_state,
                     remove_interrupted_writes, rng_devices, seed_global, set_rng)
from .runtime import as_float_tensor, compiler_unavailable, compute_device, seed_everything

#: Steps between device syncs (progress bar, NaN check).
SYNC_EVERY = 20
#: Examples per model call in the validation pass.
VALID_BATCH = 1000
#: ``train.precision``: float32, or bf16 autocast of the training forward pass.
PRECISIONS = ("float32", "bf16")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The ``train`` section of params.yaml (its ``max_epochs_by_model`` resolved into ``max_epochs``).

    The optional fields have defaults for library callers; params.yaml sets them all.
    """

    lr: float = fields.number(positive=True)
    batch_size: int = fields.integer()
    patience: int = fields.integer()
    max_epochs: int = fields.integer()
    max_train_examples: int | None = fields.integer(optional=True, default=None)
    max_valid_examples: int | None = fields.integer(optional=True, default=None)
    device: str = fields.device(default="auto")
    threads: int = fields.integer(default=1)
    precision: str = fields.choice(PRECISIONS, default="float32")
    compile: bool = fields.flag(default=False)

    def __post_init__(self) -> None:
        fields.check(self)


# --------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------
def train_model(model: torch.nn.Module, x_train, x_valid, config: TrainConfig, *, seed: int,
                state_path: str | os.PathLike, checkpoint_path: str | os.PathLike, log_dir: str | os.PathLike,
                code: str = "", metadata: dict | None = None, progress: bool | None = None) -> dict:
    """Train ``model`` (built from its config, the caller seeding first) by maximizing its mean ELBO with Adam.

    ``x_train``/``x_valid``: (N, D) arrays. ``code``: the training code's
    :func:`~dlgmm_core.resume.code_sha256` (the stage's). Writes ``state_path``
    every epoch, ``checkpoint_path`` (best-validation weights, ``metadata`` plus
    the results) and the logs in ``log_dir``; ``model`` ends with the best
    weights. ``progress``: a tqdm bar per epoch (None: on a terminal). Returns
    :func:`_summary`; a non-finite ELBO or gradient is a DlgmmError naming
    epoch and step, the files of the last completed epoch kept.
    """
    # setup: the examples, the device, the fingerprint and a stored state of this configuration
    x_train, x_valid = _truncated_examples(model, x_train, x_valid, config)
    device = _training_device(config)
    remove_interrupted_writes(Path(state_path), Path(checkpoint_path))
    elbo_fn, compiled = step_elbo(model, config.compile, device)
    parts = fingerprint_parts(model, config, seed, x_train, x_valid, device, compiled, code)
    loaded = load_state(Path(state_path), model, parts)

    # resume or start: every stream seeded, then a stored state's weights, Adam state and RNG states restored
    seed_everything(derive_seed(seed, "train"))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config.lr, device)
    shuffle = torch.Generator(device=device)
    shuffle.manual_seed(derive_seed(seed, "shuffle"))
    state = TrainState(fingerprint=fingerprint(parts), fingerprint_parts=parts) if loaded is None else loaded[1]
    if loaded is not None:
        model.load_state_dict(loaded[0])
        optimizer.load_state_dict(state.optimizer)
        set_rng(state.rng, device, shuffle)
    out = _Outputs(model, state, config, seed, Path(state_path), Path(checkpoint_path), dict(metadata or {}),
                   HistoryWriter(log_dir, state.history))
    if state.finished:
        return out.rewrite()
    xt, xv = as_float_tensor(x_train, device), as_float_tensor(x_valid, device)
    out.start(xt.shape[0], xv.shape[0], device, compiled)

    while not state.finished:
        epoch = state.epoch + 1
        start = time.perf_counter()
        train_elbo = _run_epoch(model, optimizer, params, xt, shuffle, batch_size=config.batch_size,
                                precision=config.precision, epoch=epoch, progress=progress, elbo_fn=elbo_fn)
        train_seconds = time.perf_counter() - start
        valid_elbo = _finite(validation_elbo(model, xv, seed=seed, epoch=epoch), epoch)
        improved = state.record_validation(epoch, valid_elbo, model)
        row = {"epoch": epoch, "train_elbo": train_elbo, "valid_elbo": valid_elbo,
               "seconds": time.perf_counter() - start, "examples_per_second": xt.shape[0] / train_seconds}
        state.complete_epoch(row, patience=config.patience, max_epochs=config.max_epochs,
                             optimizer=optimizer.state_dict(), rng=get_rng(device, shuffle))
        out.epoch_done(row, improved)

    return out.finish()


class _Outputs:
    """What a run writes: the checkpoint, the state file, the logs and its messages; all from its state."""

    def __init__(self, model: torch.nn.Module, state: TrainState, config: TrainConfig, seed: int, state_path: Path,
                 checkpoint_path: Path, metadata: dict, log: HistoryWriter):
        self.model, self.state, self.config, self.seed, self.log = model, state, config, seed, log
        self.state_path, self.checkpoint_path, self.metadata = state_path, checkpoint_path, metadata
        self.label = "/".join(str(metadata[k]) for k in ("dataset", "model") if k in metadata) or model.kind
        self.resumed_from = state.epoch

    def save_best(self) -> None:
        """The best epoch's weights to the checkpoint; the model keeps its own."""
        from .checkpoint import save_checkpoint

        state = self.state
        metadata = {**self.metadata, "epochs": state.epoch, "best_epoch": state.best_epoch,
                    "best_valid_elbo": state.best_valid_elbo, "finished": state.finished,
                    "stop_reason": state.stop_reason, "train": as_dict(self.config), "seed": int(self.seed),
                    "kl_method": getattr(self.model.config, "kl_method", None)}
        save_checkpoint(self.checkpoint_path, self.model, state_dict=state.best_state_dict, metadata=metadata)

    def start(self, n_train: int, n_valid: int, device: torch.device, compiled: bool) -> None:
        _print_start(self.label, n_train, n_valid, device, self.config, self.resumed_from, compiled)
        if self.state.best_state_dict is not None:
            self.save_best()  # DVC deletes the checkpoint before rerunning the stage

    def epoch_done(self, row: dict, improved: bool) -> None:
        """After an epoch: the checkpoint on a new best or at the end, the state file, the logs, one line."""
        from .checkpoint import save_checkpoint

        if improved or self.state.finished:
            self.save_best()
        save_checkpoint(self.state_path, self.model, extra=self.state.to_dict(),
                        metadata={**self.metadata, "training_state": True})
        self.log.append(row)
        _print_epoch(self.label, row, self.state, self.config.max_epochs, improved)

    def rewrite(self) -> dict:
        """A finished state: the outputs rewritten from it, without training."""
        state = self.state
        self.model.load_state_dict(state.best_state_dict)
        self.save_best()
        self.log.finish(state.history)
        print(f"{self.label}: already trained ({state.epoch} epochs, {state.stop_reason}; best valid ELBO "
              f"{state.best_valid_elbo:.4f} at epoch {state.best_epoch}); outputs rewritten from "
              f"{self.state_path}", flush=True)
        return _summary(state, self.resumed_from, 0)

    def finish(self) -> dict:
        state = self.state
        self.model.load_state_dict(state.best_state_dict)
        self.log.finish(state.history)
        print(f"{self.label}: stopped after epoch {state.epoch} ({state.stop_reason}); best valid ELBO "
              f"{state.best_valid_elbo:.4f} at epoch {state.best_epoch} -> {self.checkpoint_path}", flush=True)
        return _summary(state, self.resumed_from, state.epoch - self.resumed_from)


def _finite(valid_elbo: float, epoch: int) -> float:
    if not math.isfinite(valid_elbo):
        raise DlgmmError(f"non-finite validation ELBO at epoch {epoch}; the state and checkpoint of the last "
                         f"completed epoch are kept; consider a lower train.lr")
    return valid_elbo


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
    with torch.random.fork_rng(devices=rng_devices(device)):
        seed_global(derive_seed(seed, "valid", epoch), device)
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, x.shape[0], batch_size):
                    total += model.elbo(x[start:start + batch_size]).double().sum()
        finally:
            model.train(was_training)
    return float(total) / x.shape[0]


# --------------------------------------------------------------------------
# the training step
# --------------------------------------------------------------------------
def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel on CPU and CUDA (one kernel for all parameters).

    The default (foreach) Adam runs about ten elementwise passes per parameter
    tensor; the fused one a single pass: at the paper's sizes on one CPU core
    ``Adam.step`` takes ~1 ms instead of ~2.7 ms (the Gauss-VAE's step ~11.5 -> ~9.5 ms).
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
            with torch.random.fork_rng(devices=rng_devices(x.device)), torch.no_grad():
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


def _truncated_examples(model, x_train, x_valid, config: TrainConfig) -> tuple[Any, Any]:
    """The examples checked against the model's input size, truncated to ``max_*_examples``."""
    input_dim = model.config.input_dim
    _check_examples(x_train, "x_train", input_dim)
    _check_examples(x_valid, "x_valid", input_dim)
    return x_train[:config.max_train_examples], x_valid[:config.max_valid_examples]


def _check_examples(x: Any, name: str, input_dim: int | None) -> None:
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 2 or shape[0] == 0:
        raise DlgmmError(f"{name}: expected a non-empty (N, D) array (got shape {shape})")
    if input_dim is not None and shape[1] != input_dim:
        raise DlgmmError(f"{name}: {shape[1]} features per example, the model expects {input_dim}")


def _training_device(config: TrainConfig) -> torch.device:
    device = compute_device(config.device, config.threads, key="train.device")
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return device


def _print_start(label: str, n_train: int, n_valid: int, device: torch.device, config: TrainConfig,
                 resumed_from: int, compiled: bool) -> None:
    start_note = f"resuming after epoch {resumed_from}" if resumed_from else "from scratch"
    where = f"{device.type}" + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
    print(f"{label}: {n_train} train / {n_valid} valid examples, {where} {config.precision}"
          f"{' compiled' if compiled else ''}, "
          f"lr {config.lr}, batch {config.batch_size}, patience {config.patience}, "
          f"max {config.max_epochs} epochs; {start_note}", flush=True)
    if config.precision == "bf16" and device.type == "cpu":
        print("notice: train.precision bf16 on CPU: autocast is emulated on CPUs without native bf16 "
              "(measured 3-9x slower than float32 on an AVX2 CPU); float32 is the faster choice there", flush=True)


def _print_epoch(label: str, row: dict, state: TrainState, max_epochs: int, improved: bool) -> None:
    print(f"{label} epoch {row['epoch']:>3}/{max_epochs}: train ELBO {row['train_elbo']:9.4f}  valid ELBO "
          f"{row['valid_elbo']:9.4f}  best {state.best_valid_elbo:9.4f} @ {state.best_epoch}"
          f"{' *' if improved else '  '}  {row['seconds']:6.1f} s  {row['examples_per_second']:8.0f} ex/s",
          flush=True)


def _summary(state: TrainState, resumed_from: int, trained: int) -> dict:
    """``{"best_valid_elbo", "best_epoch", "epochs", "stop_reason", "resumed_from", "epochs_trained", "history",
    "timing"}``."""
    timing = summarize(state.history).get("timing", {})
    return {"best_valid_elbo": state.best_valid_elbo, "best_epoch": state.best_epoch,
            "epochs": state.epoch, "stop_reason": state.stop_reason, "resumed_from": resumed_from,
            "epochs_trained": trained, "history": [dict(row) for row in state.history], "timing": timing}
