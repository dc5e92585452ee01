#!/usr/bin/env python3
"""The GPU path checked by one command, where a GPU is lent: ``python3 benchmarks/gpu_check.py`` (``make gpu-check``).

Runs with nothing but torch, NumPy, scikit-learn, matplotlib, tqdm and pytest (no DVC, dvclive or
ruamel.yaml: a lent GPU machine has none of them), within a time budget (``--budget-s``, default
fits 8 minutes on one H100 or H200), part after part, each with its own cap; a part the budget no
longer allows is skipped with a note, and the summary is always written, even when the hard
deadline cuts a part off. docs/gpu.md says what each part measures and how to read the summary.

Parts (``--parts`` picks some): ``tests`` (the CUDA-marked tests), ``steps`` (a training step of
each model at paper sizes, eager and compiled as ``train.compile`` runs it, then with CUDA graphs),
``elbo`` (the same weights and batch on CPU and CUDA), ``estimator`` (importance sampling at two
chunk sizes), ``parallel`` (several trainings side by side on the GPU), ``stage`` (the training
stage's own code with ``train.device=cuda``, killed mid-epoch and resumed, then the evaluation
stages with ``eval.device=cuda``) and ``projection`` (the paper budget's wall time on this GPU).

Writes ``$OUT/gpu_check.json`` and ``$OUT/gpu_check.md`` when ``$OUT`` is set, else ``reports/gpu_check.*``. Without
CUDA it prints one line and exits with status 2. Exit status 1 when a check failed.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import functools
import importlib
import importlib.util
import json
import math
import os
import platform
import queue
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Parts in the order they run; each ``(name, cap in seconds)``.
PARTS = (("tests", 60), ("steps", 130), ("elbo", 20), ("estimator", 30), ("parallel", 75), ("stage", 130),
         ("graphs", 70), ("projection", 5))
#: Default time budget of all parts together (seconds); the watchdog writes the summary and exits
#: ``HARD_MARGIN_S`` later whatever is running. 420 + 45 s + start-up stays within 8 minutes.
BUDGET_S = 420
HARD_MARGIN_S = 45
#: A part is not started with less than this left of the budget.
MIN_PART_S = 8
#: The summary files' name, beside each other: <stem>.json and <stem>.md.
SUMMARY_STEM = "gpu_check"
#: The modes a training step is timed in: eager, ``torch.compile`` as ``train.compile`` runs it
#: (``dlgmm_core.training.step_elbo``, torch.compile's default mode) and with CUDA graphs.
STEP_MODES = ("eager", "compiled", "reduce-overhead")
#: Steps timed per mode (after ``WARMUP_STEPS``), and the larger batch that shows whether batch 100 is launch-bound.
TIMED_STEPS = 300
WARMUP_STEPS = 20
LARGE_BATCH = 1000
#: CPU and CUDA ELBOs of the same weights, batch and noise agree when |cuda - cpu| <= ATOL + RTOL * |cpu|
#: per example (float32 GEMMs and transcendental functions round differently on the two devices; TF32 is off).
ELBO_ATOL = 1e-3
ELBO_RTOL = 2e-5
#: Importance samples and test images of the estimator part (the issue's 1,000 images at S = 5,000).
ESTIMATOR_SAMPLES = 5000
ESTIMATOR_EXAMPLES = 1000
#: How many larger than the evaluation's ``batch_size`` the second chunk size of the estimator part is.
LARGER_CHUNK = 10
#: Trainings side by side (processes), and how long each is timed once all are ready.
PARALLEL_JOBS = (4, 8)
PARALLEL_SECONDS = 6.0
#: The training stage's check: epochs, validation images, and the test images of the evaluation stages.
STAGE_EPOCHS = 2
STAGE_VALID = 2000
STAGE_TEST = 300
STAGE_KNN_TRAIN = 5000
#: The model of the stage check and the dataset the steps are timed on.
STAGE_MODEL = "dlgmm"
DATASET = "mnist"
#: Synthetic data when no prepared MNIST is there: MNIST's split sizes and its share of 1 pixels.
SYNTHETIC_SPLITS = {"train": 50_000, "valid": 10_000, "test": 10_000}
PIXEL_DENSITY = 0.13
#: The packages a lent GPU machine lacks; what needs them is left out of the check.
ABSENT_THERE = ("dvc", "dvclive", "ruamel")
EXIT_NO_CUDA = 2
EXIT_FAILED = 1


# --------------------------------------------------------------------------
# time budget
# --------------------------------------------------------------------------
class Budget:
    """The check's time budget: ``left()`` of ``total_s`` since ``start``, and per-part deadlines."""

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic):
        self.total_s, self.clock, self.start = float(total_s), clock, clock()

    def left(self) -> float:
        return self.total_s - (self.clock() - self.start)

    def part(self, cap_s: float) -> "Deadline":
        return Deadline(self.clock() + max(0.0, min(cap_s, self.left())), self.clock)


class Deadline:
    """A part's deadline: ``left()`` seconds, ``allows(s)`` whether ``s`` more seconds fit."""

    def __init__(self, at: float, clock: Callable[[], float] = time.monotonic):
        self.at, self.clock = at, clock

    def left(self) -> float:
        return self.at - self.clock()

    def allows(self, seconds: float) -> bool:
        return self.left() >= seconds


# --------------------------------------------------------------------------
# the summary
# --------------------------------------------------------------------------
def output_dir() -> Path:
    """``$OUT`` when set (the device tool brings it back), else the repository's ``reports/``."""
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "reports"


def write_summary(results: dict, folder: Path) -> tuple[Path, Path]:
    """``results`` as ``<folder>/gpu_check.json`` and ``<folder>/gpu_check.md`` (each written whole, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"{SUMMARY_STEM}.json", folder / f"{SUMMARY_STEM}.md"
    for path, text in zip(paths, (json.dumps(results, indent=2, default=str) + "\n", render_markdown(results))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return paths


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    return str(value)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def render_markdown(results: dict) -> str:
    """The summary as markdown: the machine, then each part's status and its table(s)."""
    lines = [f"# GPU check, {results.get('started', '')}", ""]
    device = results.get("device") or {}
    lines += [f"- {key}: {_cell(value)}" for key, value in device.items()]
    data = results.get("data") or {}
    if data:
        lines.append(f"- data: {data.get('source')} ({data.get('note', '')})")
    lines += [f"- exit status: {results.get('exit_status')}", ""]
    for name, part in (results.get("parts") or {}).items():
        lines += [f"## {name}: {part.get('status')} ({_cell(part.get('seconds'))} s)", ""]
        if part.get("note"):
            lines += [part["note"], ""]
        for key, value in part.items():
            if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
                columns = list(dict.fromkeys(c for row in value for c, v in row.items()
                                             if not isinstance(v, (dict, list))))
                lines += [f"{key}:", "", *_table(value, columns), ""]
            elif isinstance(value, dict):
                lines += [f"{key}: `{json.dumps(value, default=str)}`", ""]
            elif key in ("output_tail", "traceback"):
                lines += [f"{key}:", "", "```", *map(str, value), "```", ""]
            elif isinstance(value, list) and value:
                lines += [f"{key}: {', '.join(map(_cell, value))}", ""]
            elif key not in ("status", "seconds", "note") and not isinstance(value, list):
                lines += [f"{key}: {_cell(value)}", ""]
    return "\n".join(lines).rstrip() + "\n"


class Run:
    """The check's results, its children and its summary: parts run one after another, each recorded."""

    def __init__(self, budget: Budget, out: Path, caps: dict[str, float]):
        self.budget, self.out, self.caps = budget, out, caps
        self.results: dict = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "budget_s": budget.total_s, "device": {}, "data": {}, "parts": {}}
        self.children: list[subprocess.Popen] = []
        self.current: str | None = None
        self.lock = threading.Lock()

    def part(self, name: str, fn: Callable[[Deadline], dict]) -> dict:
        """Run ``fn(deadline)`` as part ``name`` unless the budget is spent; record its result, error or skip."""
        left = self.budget.left()
        if left < MIN_PART_S:
            return self._record(name, {"status": "skipped", "seconds": 0.0,
                                       "note": f"time budget spent ({left:.0f} s left); rerun with --parts {name}"})
        print(f"== {name} (cap {min(self.caps[name], left):.0f} s)", flush=True)
        start, self.current = time.monotonic(), name
        try:
            result = fn(self.budget.part(self.caps[name]))
            result.setdefault("status", "ok")
        except Exception as err:  # noqa: BLE001 - a part's failure is a result; the other parts still run
            result = {"status": "error", "note": f"{type(err).__name__}: {_first_line(err)}",
                      "traceback": traceback.format_exc(limit=6).splitlines()[-8:]}
        self.current = None
        result["seconds"] = round(time.monotonic() - start, 1)
        print(f"== {name}: {result['status']} in {result['seconds']} s"
              + (f" ({result['note']})" if result.get("note") else ""), flush=True)
        return self._record(name, result)

    def _record(self, name: str, result: dict) -> dict:
        with self.lock:
            self.results["parts"][name] = result
        return result

    def finish(self) -> int:
        statuses = [part["status"] for part in self.results["parts"].values()]
        status = EXIT_FAILED if any(s in ("failed", "error") for s in statuses) else 0
        self.results["exit_status"] = status
        with self.lock:
            paths = write_summary(self.results, self.out)
        print(f"summary: {paths[0]} and {paths[1]}", flush=True)
        return status

    def cut_off(self) -> None:
        """The watchdog: the part running is recorded as cut off, children killed, the summary written, exit 3."""
        with self.lock:
            if self.current:
                self.results["parts"][self.current] = {"status": "cut off", "note": "the hard deadline stopped it "
                                                       f"({self.budget.total_s + HARD_MARGIN_S:.0f} s)"}
            self.results["exit_status"] = 3
            for child in self.children:
                with contextlib.suppress(OSError):
                    child.kill()
            write_summary(self.results, self.out)
        print(f"hard deadline: summary written to {self.out}", flush=True)
        os._exit(3)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no message"


# --------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------
def module_available(name: str) -> bool:
    """Whether ``name`` can be imported here (a finder that refuses it counts as absent)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def load_library() -> dict:
    """Import everything the check runs of ``dlgmm_core`` and the stages' imports (none needs DVC, dvclive or
    ruamel.yaml at import); the modules by name."""
    names = ("dlgmm_core.models", "dlgmm_core.training", "dlgmm_core.estimators", "dlgmm_core.checkpoint",
             "dlgmm_core.evaluation", "dlgmm_core.data", "dlgmm_core.params.stage", "dlgmm_core.layout",
             "dlgmm_core.registry", "dlgmm_core.runtime", "dlgmm_core.io")
    return {name.rsplit(".", 1)[1]: importlib.import_module(name) for name in names}


def device_info(device) -> dict:
    """The device, driver and torch build."""
    import torch

    if device.type != "cuda":
        return {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
                "cpu_count": os.cpu_count(), "note": "no GPU: the check's code tried on the CPU, timings mean nothing"}
    props = torch.cuda.get_device_properties(0)
    info = {"gpu": torch.cuda.get_device_name(0), "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count, "capability": f"{props.major}.{props.minor}",
            "torch": torch.__version__, "cuda_build": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "python": platform.python_version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cpu_count": os.cpu_count(),
            "absent_packages": [name for name in ABSENT_THERE if not module_available(name)]}
    info["driver"] = _driver_version()
    with contextlib.suppress(ImportError):
        import triton

        info["triton"] = triton.__version__
    return info


def _driver_version() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


# --------------------------------------------------------------------------
# data and models
# --------------------------------------------------------------------------
def load_data(path: Path) -> tuple[dict, dict]:
    """``(arrays, info)``: the prepared dataset at ``path`` when it is there, else synthetic binary images of
    MNIST's shape and split sizes with random labels (step times do not depend on pixel values)."""
    import numpy as np

    from dlgmm_core.data import load_prepared

    if path.is_file():
        return load_prepared(path), {"source": "prepared", "note": str(path.relative_to(ROOT)
                                                                          if path.is_relative_to(ROOT) else path)}
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in SYNTHETIC_SPLITS.items():
        arrays[f"x_{split}"] = (rng.random((n, 784), dtype=np.float32) < PIXEL_DENSITY).astype(np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 10, n).astype(np.int64)
    note = (f"{path} not found: synthetic binary images ({PIXEL_DENSITY:.0%} ones, random labels), MNIST's "
            f"shape and split sizes; ELBO and -log p(x) values mean nothing, timings do")
    return arrays, {"source": "synthetic", "note": note}


def prepared_meta(arrays: dict, info: dict, path: Path) -> dict:
    """The metadata json of the prepared data: the real one beside a prepared npz, else one describing ``arrays``."""
    from dlgmm_core.data import has_labels
    from dlgmm_core.data.contract import summarize

    meta_path = path.with_suffix(".json")
    if info["source"] == "prepared" and meta_path.is_file():
        return json.loads(meta_path.read_text())
    return {"dataset": DATASET, "source": info["source"], "labels": has_labels(arrays), **summarize(arrays)}


def report_view() -> Any:
    """The committed report stage view (``data/params/report.json``): the protocols and the seeds the pipeline runs."""
    from dlgmm_core import layout
    from dlgmm_core.params.stage import load_stage_params

    return load_stage_params(layout.report_stage(), ROOT)


def headline_protocol() -> str:
    """The report's headline protocol (the first of the committed report view's ``protocols``)."""
    return report_view().protocols[0]


def headline_seed() -> int:
    """The seed of the run the check reads where it reads one (its training views, its stage check): the first
    of the committed report view's ``seeds``, the one the report's single-run figures show."""
    return report_view().seeds[0]


def model_keys() -> tuple[str, ...]:
    """The model keys trained on MNIST (every evaluated model and the qualitative one)."""
    from dlgmm_core import registry

    return registry.trained_keys(DATASET)


def timing_order() -> list[str]:
    """:func:`model_keys` by the CPU hours their logged trainings took, most first: the steps that weigh most
    in the paper budget are timed first, in case the time budget cuts the rest."""
    hours: dict[str, float] = {}
    for row in logged_trainings(ROOT):
        hours[row["model"]] = hours.get(row["model"], 0.0) + row["cpu_seconds"]
    return sorted(model_keys(), key=lambda key: -hours.get(key, 0.0))


def train_view(protocol: str, seed: int, key: str) -> Any:
    """The committed training stage view of ``key`` in the run ``(protocol, seed)`` (``data/params/<stage>.json``:
    paper sizes, ``train``)."""
    from dlgmm_core import layout
    from dlgmm_core.params.stage import load_stage_params

    return load_stage_params(layout.train_stage(protocol, seed, DATASET, key), ROOT)


def build(protocol: str, seed: int, key: str):
    """The model ``key`` at the sizes of the committed training view of the run ``(protocol, seed)``, initialised
    from the view's seed (as the training stage initialises it)."""
    from dlgmm_core import registry
    from dlgmm_core.params.sections import stage_model_config
    from dlgmm_core.runtime import seed_everything

    params = train_view(protocol, seed, key)
    config = stage_model_config(params, key)
    seed_everything(params.seed)
    return registry.build(config)


# --------------------------------------------------------------------------
# the training step, as the training loop runs it
# --------------------------------------------------------------------------
def synchronize(device) -> None:
    """Wait for ``device``'s queued work (nothing to wait for on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device) -> float | None:
    """The most memory allocated on ``device`` since :func:`reset_peak_memory` (MiB); None on the CPU."""
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def step_function(model, device, mode: str):
    """``(elbo_fn, marks_steps)`` of the training step in ``mode`` (:data:`STEP_MODES`): the library's own
    :func:`dlgmm_core.training.step_elbo` (compiled with ``torch.compile``'s default mode, or
    ``reduce-overhead``: CUDA graphs, each step then marked), or ``None`` (eager)."""
    import torch

    from dlgmm_core import training

    if mode == "eager":
        return None, False
    torch._dynamo.reset()  # each model compiles afresh (the disk caches stay): no recompile limit is reached
    with contextlib.suppress(ImportError):
        from torch._dynamo.utils import counters

        counters.clear()
    elbo_fn, compiled = training.step_elbo(model, True, device, mode=None if mode == "compiled" else mode)
    if not compiled:
        raise RuntimeError("torch.compile is unavailable here (see the notice above)")
    return elbo_fn, mode == "reduce-overhead"


def compile_counters() -> dict:
    """Graph breaks and CUDA-graph skips counted by torch.compile since :func:`step_function` (information)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return {"graph_breaks": sum(counters["graph_break"].values()),
            "cudagraph_skips": sum(v for k, v in counters["inductor"].items() if "cudagraph" in k and "skip" in k)}


class Steps:
    """Training steps of ``model`` on ``x`` as the training loop runs them: batches drawn by a device
    permutation, :func:`dlgmm_core.training.train_step` with :func:`~dlgmm_core.training.make_optimizer`'s Adam,
    a device sync every :data:`dlgmm_core.training.SYNC_EVERY` steps (the loop's NaN check)."""

    def __init__(self, model, x, device, lr: float, batch_size: int, elbo_fn=None, marks_steps: bool = False):
        import torch

        from dlgmm_core import training

        self.training, self.torch = training, torch
        self.model, self.x, self.batch_size = model.to(device).train(), x, batch_size
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = training.make_optimizer(self.params, lr, device)
        self.elbo_fn, self.marks_steps = elbo_fn, marks_steps
        self.shuffle = torch.Generator(device=device)
        self.shuffle.manual_seed(0)
        self.perm, self.cursor, self.elbo_sum = None, 0, 0.0

    def run(self, steps: int) -> None:
        """``steps`` steps; a ValueError when an ELBO or gradient norm is not finite."""
        torch, n = self.torch, self.x.shape[0]
        sums = torch.zeros(steps, dtype=torch.float64, device=self.x.device)
        norms = torch.zeros(steps, dtype=torch.float32, device=self.x.device)
        for step in range(steps):
            if self.perm is None or self.cursor + self.batch_size > n:
                self.perm, self.cursor = torch.randperm(n, generator=self.shuffle, device=self.x.device), 0
            x_batch = self.x.index_select(0, self.perm[self.cursor:self.cursor + self.batch_size])
            self.cursor += self.batch_size
            if self.marks_steps:
                torch.compiler.cudagraph_mark_step_begin()
            sums[step], norms[step] = self.training.train_step(self.model, self.optimizer, self.params, x_batch,
                                                               "float32", self.elbo_fn)
            if (step + 1) % self.training.SYNC_EVERY == 0 or step + 1 == steps:
                total, finite = torch.stack([sums[:step + 1].sum(), torch.isfinite(norms[:step + 1]).all().double()]
                                            ).tolist()
                if not math.isfinite(total) or finite != 1.0:
                    raise ValueError(f"non-finite ELBO or gradient within the first {step + 1} steps")
        self.elbo_sum = float(sums.sum())

    def timed(self, steps: int) -> dict:
        """Time ``steps`` steps: milliseconds per step between CUDA events (wall time on the CPU) and by the
        wall clock, examples per second, peak memory."""
        torch, device = self.torch, self.x.device
        synchronize(device)
        reset_peak_memory(device)
        events = [torch.cuda.Event(enable_timing=True) for _ in range(2)] if device.type == "cuda" else None
        wall = time.perf_counter()
        if events:
            events[0].record()
        self.run(steps)
        if events:
            events[1].record()
        synchronize(device)
        wall_ms = (time.perf_counter() - wall) * 1e3 / steps
        ms = events[0].elapsed_time(events[1]) / steps if events else wall_ms
        return {"ms_per_step": round(ms, 4), "wall_ms_per_step": round(wall_ms, 4),
                "examples_per_second": round(self.batch_size * 1e3 / ms, 1), "peak_mib": peak_mib(device),
                "mean_train_elbo": round(self.elbo_sum / (steps * self.batch_size), 3)}

    def busy_fraction(self, steps: int = 20) -> float | None:
        """Share of the wall time of ``steps`` steps that the GPU spent in kernels (torch.profiler); None if the
        profiler cannot read the GPU (or on the CPU)."""
        from torch.profiler import ProfilerActivity, profile

        device = self.x.device
        if device.type != "cuda":
            return None
        synchronize(device)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            wall = time.perf_counter()
            self.run(steps)
            synchronize(device)
            wall = time.perf_counter() - wall
        from torch.autograd import DeviceType

        # the GPU's own events (kernels, copies, one stream: they never overlap), not the CPU ops that launch them
        kernel_us = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
        return round(kernel_us / 1e6 / wall, 3) if kernel_us else None

    def for_seconds(self, seconds: float) -> dict:
        """Steps for about ``seconds`` of wall time (whole sync blocks); wall milliseconds per step."""
        block = self.training.SYNC_EVERY
        synchronize(self.x.device)
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            self.run(block)
            steps += block
        synchronize(self.x.device)
        ms = (time.perf_counter() - start) * 1e3 / steps
        return {"steps": steps, "ms_per_step": round(ms, 4),
                "examples_per_second": round(self.batch_size * 1e3 / ms, 1)}


def time_model(protocol: str, seed: int, key: str, x, device, mode: str, steps: int) -> dict:
    """One model's training step in ``mode``: compile (or warm-up) seconds, then :meth:`Steps.timed`; eager
    also at batch :data:`LARGE_BATCH` and the GPU's busy share of batch 100."""
    params = train_view(protocol, seed, key)
    model = build(protocol, seed, key)
    elbo_fn, marks = step_function(model, device, mode)
    steps_runner = Steps(model, x, device, params.train["lr"], params.train["batch_size"], elbo_fn, marks)
    start = time.perf_counter()
    steps_runner.run(WARMUP_STEPS)
    row = {"model": key, "mode": mode, "warmup_seconds": round(time.perf_counter() - start, 2),
           **steps_runner.timed(steps)}
    if mode != "eager":
        return {**row, **compile_counters()}
    with contextlib.suppress(Exception):  # the profiler is information only
        row["gpu_busy"] = steps_runner.busy_fraction()
    large = Steps(build(protocol, seed, key), x, device, params.train["lr"], LARGE_BATCH)
    large.run(5)
    row[f"ms_per_step_batch_{LARGE_BATCH}"] = large.timed(max(1, steps // 8))["ms_per_step"]
    row["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return row


# --------------------------------------------------------------------------
# parts
# --------------------------------------------------------------------------
def part_tests(deadline: Deadline) -> dict:
    """The CUDA-marked tests (pytest, ``-m cuda``) in a child process."""
    if not module_available("pytest"):
        return {"status": "skipped", "note": "pytest is not installed here"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(1.0, deadline.left()))
    except subprocess.TimeoutExpired:
        return {"status": "failed", "note": f"the CUDA tests did not finish within {deadline.left():.0f} s"}
    tail = (done.stdout + done.stderr).strip().splitlines()
    return {"status": "ok" if done.returncode == 0 else "failed", "pytest_exit": done.returncode,
            "note": tail[-1] if tail else "", "output_tail": tail[-30:]}


class StepsPart:
    """Parts ``steps`` (eager and compiled) and ``graphs`` (CUDA graphs), their rows kept for the later parts."""

    def __init__(self, protocol: str, seed: int, x_train, device, steps: int = TIMED_STEPS):
        self.protocol, self.seed, self.x, self.device, self.steps = protocol, seed, x_train, device, steps
        self.rows: list[dict] = []
        self.weights: dict[str, dict] = {}

    def measure(self, deadline: Deadline, modes: tuple[str, ...]) -> dict:
        skipped, longest = [], 0.0
        for mode in modes:
            for key in timing_order():
                if not deadline.allows(max(10.0, 1.2 * longest)):
                    skipped.append(f"{key} {mode}")
                    continue
                start = time.perf_counter()
                try:
                    row = time_model(self.protocol, self.seed, key, self.x, self.device, mode, self.steps)
                except Exception as err:  # noqa: BLE001 - one mode failing (a compile error) is a result
                    row = {"model": key, "mode": mode, "error": f"{type(err).__name__}: {_first_line(err)}"}
                weights = row.pop("state_dict", None)
                if weights is not None:
                    self.weights[key] = weights
                longest = max(longest, time.perf_counter() - start)
                self.rows.append(row)
                print(f"   {key} {mode}: " + (row.get("error") or f"{row['ms_per_step']:.3f} ms/step, "
                                               f"{row['examples_per_second']:.0f} ex/s, peak {row['peak_mib']} MiB"),
                      flush=True)
        rows = [r for r in self.rows if r["mode"] in modes]
        failed = [f"{r['model']} {r['mode']}" for r in rows if "error" in r]
        note = "; ".join(filter(None, [f"errors: {', '.join(failed)}" if failed else "",
                                       f"skipped for time: {', '.join(skipped)}" if skipped else ""]))
        return {"status": "failed" if failed else "ok", "note": note, "rows": rows}

    def step_ms(self) -> dict[str, dict[str, float]]:
        """``{model: {mode: ms per step}}`` of every step measured."""
        out: dict[str, dict[str, float]] = {}
        for row in self.rows:
            if "ms_per_step" in row:
                out.setdefault(row["model"], {})[row["mode"]] = row["ms_per_step"]
        return out


def shared_noise(seed: int):
    """A torch function mode in which every random draw the models make (``randn``, ``rand``, ``normal``, their
    ``_like`` forms, ``normal_``, ``uniform_``, ``exponential_``) comes from one seeded CPU generator, drawn in
    float32 and then cast and copied to the dtype and device asked for: a CPU and a CUDA copy of a model (or a
    float64 one) then see the same noise."""
    import torch
    from torch.overrides import TorchFunctionMode

    generator = torch.Generator().manual_seed(seed)

    def draw(kind: str, shape, dtype, device, *params) -> torch.Tensor:
        noise = torch.empty(tuple(shape), dtype=torch.float32)
        getattr(noise, f"{kind}_")(*params, generator=generator)
        return noise.to(device=device, dtype=dtype)

    def factory(kind: str):
        def make(*size, dtype=None, device=None, **_):
            shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
            return draw(kind, shape, dtype or torch.get_default_dtype(), device or "cpu")
        return make

    def like(kind: str):
        def make(t, dtype=None, device=None, **_):
            return draw(kind, t.shape, dtype or t.dtype, device or t.device)
        return make

    def in_place(kind: str):
        def fill(t, *params, **kwargs):
            kwargs.pop("generator", None)
            with torch.no_grad():
                return t.copy_(draw(kind, t.shape, t.dtype, t.device, *params, *kwargs.values()))
        return fill

    def normal(mean, std=1.0, *size, **kwargs):
        if not isinstance(mean, torch.Tensor) and not isinstance(std, torch.Tensor):
            return factory("normal")(*(size or (kwargs.pop("size"),)), **kwargs) * std + mean
        like_t = mean if isinstance(mean, torch.Tensor) else std
        shape = torch.broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ()))
        return mean + std * draw("normal", shape, like_t.dtype, like_t.device)

    handlers = {torch.randn: factory("normal"), torch.rand: factory("uniform"), torch.randn_like: like("normal"),
                torch.rand_like: like("uniform"), torch.normal: normal, torch.Tensor.normal_: in_place("normal"),
                torch.Tensor.uniform_: in_place("uniform"), torch.Tensor.exponential_: in_place("exponential")}

    class SharedNoise(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            handler = handlers.get(func)
            return handler(*args, **(kwargs or {})) if handler else func(*args, **(kwargs or {}))

    return SharedNoise()


def elbo_under_shared_noise(model, x, seed: int):
    """Per-example ELBO of ``x`` (moved to the model's device) under :func:`shared_noise` ``(seed)``, float64 on CPU."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad(), shared_noise(seed):
        return model.elbo(x.to(device)).double().cpu()


def compare_devices(cpu_values, cuda_values) -> dict:
    """The CPU/CUDA difference of per-example values and whether it is within the stated tolerance."""
    import torch

    diff = (cuda_values - cpu_values).abs()
    bound = ELBO_ATOL + ELBO_RTOL * cpu_values.abs()
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "within_tolerance": bool((diff <= bound).all()), "finite": bool(torch.isfinite(cuda_values).all())}


def part_elbo(deadline: Deadline, protocol: str, seed: int, x_test, device, weights: dict[str, dict]) -> dict:
    """Per model: the ELBO of the same weights (those the ``steps`` part trained, else fresh ones) and batch on
    CPU, on CUDA and in float64 on CPU, under the same noise; a second CPU run after reseeding torch's global
    generator must give the same values (no draw escaped the shared noise)."""
    import torch

    from dlgmm_core.runtime import as_float_tensor

    rows, x = [], as_float_tensor(x_test[:1000], torch.device("cpu"))
    for key in model_keys():
        if not deadline.allows(3.0):
            rows.append({"model": key, "error": "skipped for time"})
            continue
        cpu = build(protocol, seed, key).eval()
        if key in weights:
            cpu.load_state_dict(weights[key])
        cuda = copy.deepcopy(cpu).to(device)
        on_cpu = elbo_under_shared_noise(cpu, x, seed=1)
        torch.manual_seed(12345)  # another global stream: the same values only if no draw escaped the mode
        row = {"model": key, "trained_weights": key in weights, "examples": int(x.shape[0]),
               "noise_shared": bool(torch.equal(on_cpu, elbo_under_shared_noise(cpu, x, seed=1))),
               "mean_elbo_cpu": round(float(on_cpu.mean()), 4),
               **compare_devices(on_cpu, elbo_under_shared_noise(cuda, x, seed=1)),
               "cpu_float32_vs_float64": _float64_gap(cpu, x, on_cpu, seed=1)}
        rows.append(row)
    bad = [r["model"] for r in rows if not (r.get("within_tolerance") and r.get("noise_shared"))]
    note = (f"tolerance |cuda - cpu| <= {ELBO_ATOL} + {ELBO_RTOL} |cpu| per example"
            + (f"; outside it or not comparable: {', '.join(bad)}" if bad else ""))
    return {"status": "failed" if bad else "ok", "note": note, "rows": rows}


def _float64_gap(model, x, values, seed: int) -> float | None:
    """max |float32 - float64| of the CPU ELBOs ``values`` and those of a float64 copy under the same noise
    (``seed``): the rounding a device difference compares with; None when the model does not run in float64."""
    try:
        reference = elbo_under_shared_noise(copy.deepcopy(model).double(), x.double(), seed=seed)
    except Exception:  # noqa: BLE001 - information only
        return None
    return float((values - reference).abs().max())


def committed_view(stage: str) -> dict:
    """A committed stage view (``data/params/<stage>.json``) as a dict."""
    from dlgmm_core import layout

    return json.loads(layout.stage_params(stage, ROOT).read_text())


def part_estimator(deadline: Deadline, protocol: str, seed: int, x_test, device, weights: dict[str, dict],
                   chunks: tuple[int, ...] | None = None) -> dict:
    """The marginal-likelihood stage's estimator (:func:`dlgmm_core.evaluation.marginal_likelihood`) on
    :data:`ESTIMATOR_EXAMPLES` test images at S = :data:`ESTIMATOR_SAMPLES`, at the evaluation's ``batch_size``
    (rows per decoder call) and :data:`LARGER_CHUNK` times it: seconds, peak memory, the estimate."""
    from dlgmm_core import layout, registry

    section = committed_view(layout.nll_stage(protocol, seed, DATASET, STAGE_MODEL))["eval"]["marginal_likelihood"]
    chunks = chunks or (section["batch_size"], LARGER_CHUNK * section["batch_size"])
    x, rows = x_test[:ESTIMATOR_EXAMPLES], []
    for key in registry.evaluated_keys():
        for chunk in chunks:
            if not deadline.allows(5.0):
                rows.append({"model": key, "chunk": chunk, "error": "skipped for time"})
                continue
            model = build(protocol, seed, key).eval()
            if key in weights:
                model.load_state_dict(weights[key])
            try:  # a chunk too large for the device's memory is a result, not the end of the part
                rows.append({"model": key, "chunk": chunk, **_estimate(model.to(device), x, chunk, section, device)})
            except (RuntimeError, MemoryError) as err:
                rows.append({"model": key, "chunk": chunk, "error": f"{type(err).__name__}: {_first_line(err)}"})
    return {"samples": ESTIMATOR_SAMPLES, "examples": int(x.shape[0]), "rows": rows,
            "status": "failed" if any("error" in r and r["error"] != "skipped for time" for r in rows) else "ok"}


def _estimate(model, x, chunk: int, section: dict, device) -> dict:
    """One timed :func:`dlgmm_core.evaluation.marginal_likelihood` at ``chunk`` rows per decoder call."""
    from dlgmm_core.evaluation import marginal_likelihood
    from dlgmm_core.runtime import seed_everything

    seed_everything(0)
    synchronize(device)
    reset_peak_memory(device)
    start = time.perf_counter()
    result = marginal_likelihood(model, x, ESTIMATOR_SAMPLES, section["bounds_at"], chunk, device, progress=False,
                                 authors_samples=section["authors_samples"], headline=section["headline"])
    synchronize(device)
    return {"seconds": round(time.perf_counter() - start, 2), "peak_mib": peak_mib(device),
            "nll_ours": round(result["ours"]["nll"], 4), "nll_se": round(result["ours"]["nll_se"], 4),
            "nll_authors": round(result["authors"]["nll"], 4)}


# --------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------
class Child:
    """A child process whose output lines are read by a thread (so waits can time out)."""

    def __init__(self, cmd: list[str], cwd: Path, run: Run | None = None, stdin: bool = False):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True)
        if run is not None:
            run.children.append(self.proc)
        self.lines: list[str] = []
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def next_line(self, timeout: float) -> str | None:
        """The next output line, None at the end of the output; TimeoutError after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=max(0.01, timeout))
        except queue.Empty:
            raise TimeoutError(f"no output for {timeout:.0f} s") from None

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=max(0.01, timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TimeoutError(f"still running after {timeout:.0f} s; killed") from None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def child_steps(argv: list[str]) -> None:
    """Child: one training's steps for the ``parallel`` part. Prints ``ready`` once warmed up, waits for a
    line on stdin, then times steps for the given seconds and prints the result as one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--model", required=True)
    parser.add_argument("--mode", choices=STEP_MODES, default="eager")
    parser.add_argument("--seconds", type=float, default=PARALLEL_SECONDS)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    device = torch.device(args.device)
    params = train_view(args.protocol, args.seed, args.model)
    x = torch.from_numpy((np.random.default_rng(0).random((20_000, 784)) < PIXEL_DENSITY).astype(np.float32))
    model = build(args.protocol, args.seed, args.model)
    elbo_fn, marks = step_function(model, device, args.mode)
    steps = Steps(model, x.to(device), device, params.train["lr"], params.train["batch_size"], elbo_fn, marks)
    steps.run(WARMUP_STEPS)
    synchronize(device)
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps({"model": args.model, **steps.for_seconds(args.seconds)}), flush=True)


def part_parallel(deadline: Deadline, run: Run, protocol: str, seed: int, device,
                  solo_ms: dict[str, dict[str, float]], jobs: tuple[int, ...] = PARALLEL_JOBS,
                  modes: tuple[str, ...] = ("eager", "compiled")) -> dict:
    """Several trainings side by side on the GPU, one process each, the models taken in turn: each one's
    milliseconds per step, and the throughput factor sum(solo ms / side-by-side ms) (1: no gain)."""
    rows = []
    for mode in modes:
        for n in jobs:
            if not deadline.allows(25.0):
                rows.append({"mode": mode, "jobs": n, "error": "skipped for time"})
                continue
            rows.append(_side_by_side(deadline, run, protocol, seed, device, solo_ms, mode, n))
            print(f"   {n} x {mode}: " + (rows[-1].get("error") or f"factor {rows[-1]['throughput_factor']}"),
                  flush=True)
    failed = [r for r in rows if "error" in r and r["error"] != "skipped for time"]
    return {"status": "failed" if failed else "ok", "rows": rows}


def _side_by_side(deadline: Deadline, run: Run, protocol: str, seed: int, device, solo_ms: dict, mode: str,
                  n: int) -> dict:
    keys = [model_keys()[i % len(model_keys())] for i in range(n)]
    children = [Child([sys.executable, str(Path(__file__).resolve()), "--child", "steps", "--protocol", protocol,
                       "--seed", str(seed), "--model", key, "--mode", mode, "--seconds", str(PARALLEL_SECONDS),
                       "--device", device.type],
                      ROOT, run, stdin=True)
                for key in keys]
    try:
        for child in children:  # all warmed up (compiled) before any is timed
            while (line := child.next_line(deadline.left() - PARALLEL_SECONDS - 5)) != "ready":
                if line is None:
                    raise RuntimeError("a child ended before it was ready: " + " | ".join(child.lines[-3:]))
        for child in children:
            child.proc.stdin.write("go\n")
            child.proc.stdin.flush()
        results = []
        for child in children:
            child.wait(PARALLEL_SECONDS + 30)
            results.append(json.loads(next(line for line in reversed(child.lines) if line.startswith("{"))))
    except (RuntimeError, TimeoutError, StopIteration, json.JSONDecodeError, OSError) as err:
        for child in children:
            child.kill()
        return {"mode": mode, "jobs": n, "error": f"{type(err).__name__}: {_first_line(err)}"}
    factor = [solo_ms.get(r["model"], {}).get(mode, math.nan) / r["ms_per_step"] for r in results]
    return {"mode": mode, "jobs": n, "models": ",".join(keys),
            "ms_per_step": ",".join(f"{r['ms_per_step']:.2f}" for r in results),
            "examples_per_second_total": round(sum(r["examples_per_second"] for r in results)),
            "throughput_factor": round(sum(factor), 2) if all(math.isfinite(f) for f in factor) else None}


# --------------------------------------------------------------------------
# the stages' own code paths
# --------------------------------------------------------------------------
class HistoryLog:
    """Stands in for :class:`dlgmm_core.history.HistoryWriter` where dvclive is absent: the same ``metrics.json``
    summary (:func:`dlgmm_core.history.summarize`), without dvclive's per-epoch ``plots/`` files."""

    def __init__(self, log_dir, history=()):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def append(self, row: dict) -> None:
        pass

    def finish(self, history: list[dict]) -> None:
        from dlgmm_core.history import summarize

        summary = summarize(history)
        if history:
            summary["step"] = int(history[-1]["epoch"])
        (self.log_dir / "metrics.json").write_text(json.dumps(summary, indent=4) + "\n")


def child_stage(argv: list[str]) -> None:
    """Child: ``stages/<stage>.py`` run as the pipeline runs it, in this process, from the current folder;
    where dvclive is absent the training logs are :class:`HistoryLog`'s."""
    stage, stage_args = argv[0], argv[1:]
    if stage == "train" and not module_available("dvclive"):
        from dlgmm_core import training

        training.HistoryWriter = HistoryLog
        print("notice: dvclive is absent: the training logs are metrics.json alone", flush=True)
    sys.argv = [str(ROOT / "stages" / f"{stage}.py"), *stage_args]
    runpy.run_path(sys.argv[0], run_name="__main__")


def make_workspace(folder: Path, data_path: Path, arrays: dict, info: dict, views: dict[str, dict]) -> Path:
    """A scratch project folder for the stages: the prepared data (a link to ``data_path``; synthetic data are
    written there first), its metadata, and the stage views ``views`` under ``data/params``."""
    import numpy as np

    from dlgmm_core import layout

    npz, meta = layout.prepared(DATASET, folder)
    npz.parent.mkdir(parents=True, exist_ok=True)
    if info["source"] != "prepared" and not data_path.is_file():
        np.savez(data_path, **arrays)
    npz.symlink_to(data_path.resolve())
    meta.write_text(json.dumps(prepared_meta(arrays, info, data_path)))
    for stage, view in views.items():
        path = layout.stage_params(stage, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(view))
    return folder


def stage_views(protocol: str, seed: int, compile_step: bool | None, device_type: str = "cuda") -> dict[str, dict]:
    """The committed views of the training stage of :data:`STAGE_MODEL` in the run ``(protocol, seed)`` and of its
    four evaluation stages, on CUDA and cut to a few epochs and a few hundred test images."""
    from dlgmm_core import layout

    train_stage = layout.train_stage(protocol, seed, DATASET, STAGE_MODEL)
    train = committed_view(train_stage)
    train["train"].update(device=device_type, max_epochs=STAGE_EPOCHS, max_valid_examples=STAGE_VALID,
                          patience=STAGE_EPOCHS + 1)
    if compile_step is not None:
        train["train"]["compile"] = compile_step
    views = {train_stage: train}
    cuts = {"marginal_likelihood": {"max_examples": STAGE_TEST},
            "knn": {"max_test_examples": STAGE_TEST, "max_train_examples": STAGE_KNN_TRAIN},
            "tsne": {"points": STAGE_TEST}, "samples": {}}
    for section, stage in (("marginal_likelihood", layout.nll_stage(protocol, seed, DATASET, STAGE_MODEL)),
                           ("knn", layout.knn_stage(protocol, seed, DATASET, STAGE_MODEL)),
                           ("tsne", layout.tsne_stage(protocol, seed, STAGE_MODEL)),
                           ("samples", layout.samples_stage(protocol, seed, DATASET, STAGE_MODEL))):
        view = committed_view(stage)
        view["eval"]["device"] = device_type
        view["eval"][section].update(cuts[section])
        views[stage] = view
    return views


EPOCH_LINE = re.compile(r" epoch +(\d+)/\d+: .*?(\d+(?:\.\d+)?) s ")


def _stage_cmd(stage: str, protocol: str, seed: int, model: str, dataset: str | None = DATASET) -> list[str]:
    args = ["--protocol", protocol, "--seed", str(seed), "--model", model] + (["--dataset", dataset] if dataset else [])
    return [sys.executable, str(Path(__file__).resolve()), "--child", "stage", stage, *args]


def _train_to_end(ws: Path, run: Run, protocol: str, seed: int, deadline: Deadline) -> dict:
    child = Child(_stage_cmd("train", protocol, seed, STAGE_MODEL), ws, run)
    start = time.perf_counter()
    code = child.wait(deadline.left())
    return {"exit": code, "seconds": round(time.perf_counter() - start, 1), "lines": child.lines}


def _train_killed_mid_epoch(ws: Path, run: Run, protocol: str, seed: int, deadline: Deadline) -> dict:
    """Start the training, wait for epoch 1's line, SIGKILL it a third of an epoch later."""
    child = Child(_stage_cmd("train", protocol, seed, STAGE_MODEL), ws, run)
    while True:
        try:
            line = child.next_line(deadline.left())
        except TimeoutError:
            child.kill()
            return {"killed": False, "note": "no epoch 1 within the part's time", "lines": child.lines}
        if line is None:
            return {"killed": False, "note": "the training ended before epoch 1 was reported",
                    "lines": child.lines}
        match = EPOCH_LINE.search(line)
        if match and match.group(1) == "1":
            time.sleep(float(match.group(2)) / 3)
            break
    child.kill()
    time.sleep(0.5)
    finished_epoch_2 = any((m := EPOCH_LINE.search(line)) and m.group(1) == "2" for line in child.lines)
    return {"killed": True, "mid_epoch_2": not finished_epoch_2, "lines": child.lines}


def _trained(ws: Path, protocol: str, seed: int) -> tuple[dict, list[float]]:
    """The checkpoint's weights and the state's validation ELBO per epoch of the stage's training in ``ws``."""
    from dlgmm_core import layout, load_checkpoint

    model = load_checkpoint(layout.checkpoint(protocol, seed, DATASET, STAGE_MODEL, ws), map_location="cpu")
    _, extra = load_checkpoint(layout.train_state(protocol, seed, DATASET, STAGE_MODEL, ws), map_location="cpu",
                               with_extra=True)
    return model.state_dict(), [row["valid_elbo"] for row in extra["history"]]


def part_stage(deadline: Deadline, run: Run, protocol: str, seed: int, device, data_path: Path, arrays: dict,
               info: dict, compile_step: bool | None = None) -> dict:
    """The training stage's code with ``train.device=cuda`` (run to the end; and killed in epoch 2 and
    resumed, in a second folder, which must end with the same validation ELBOs), then the evaluation stages
    with ``eval.device=cuda`` on the first run's checkpoint. Not run: the ``resolve`` stage (it reads
    params.yaml with ruamel.yaml; the committed views stand in) and DVC itself."""
    import torch

    views = stage_views(protocol, seed, compile_step, device.type)
    result: dict = {"model": STAGE_MODEL, "seed": seed, "epochs": STAGE_EPOCHS,
                    "not_run": "the resolve stage (ruamel.yaml) and dvc; the committed data/params views, "
                               "edited as listed, stand in"
                               + ("; dvclive's plots (dvclive absent: metrics.json alone)"
                                  if not module_available("dvclive") else "")}
    with tempfile.TemporaryDirectory(prefix="dlgmm-gpu-check-") as tmp:
        if info["source"] != "prepared":
            data_path = Path(tmp, f"{DATASET}.npz")  # written once, linked from both folders
        ws_a = make_workspace(Path(tmp, "a"), data_path, arrays, info, views)
        ws_b = make_workspace(Path(tmp, "b"), data_path, arrays, info, views)
        whole = _train_to_end(ws_a, run, protocol, seed, deadline)
        result["uninterrupted"] = {"exit": whole["exit"], "seconds": whole["seconds"],
                                   "tail": whole["lines"][-4:]}
        if whole["exit"] != 0:
            return {**result, "status": "failed", "note": "the training stage failed on CUDA"}
        killed = _train_killed_mid_epoch(ws_b, run, protocol, seed, deadline)
        resumed = _train_to_end(ws_b, run, protocol, seed, deadline)
        weights_a, elbos_a = _trained(ws_a, protocol, seed)
        weights_b, elbos_b = (_trained(ws_b, protocol, seed) if resumed["exit"] == 0 else ({}, []))
        result["kill_and_resume"] = {
            "killed_mid_epoch_2": killed.get("mid_epoch_2"), "resume_exit": resumed["exit"],
            "resumed_after_epoch_1": any("resuming after epoch 1" in line for line in resumed["lines"]),
            "valid_elbo_uninterrupted": elbos_a, "valid_elbo_resumed": elbos_b,
            "weights_bitwise_equal": bool(weights_b) and all(torch.equal(weights_a[k], weights_b[k])
                                                             for k in weights_a),
            "max_weight_diff": max((float((weights_a[k] - weights_b[k]).abs().max()) for k in weights_b),
                                   default=None)}
        result["evaluation"] = _evaluation_stages(ws_a, run, protocol, seed, deadline)
    problems = _stage_problems(result["kill_and_resume"], killed, result["evaluation"])
    return {**result, "status": "failed" if problems else "ok", "note": "; ".join(problems)}


def _stage_problems(resume: dict, killed: dict, evaluation: list[dict]) -> list[str]:
    """What went wrong in the stage check: the kill, the resume (its validation ELBOs must equal the
    uninterrupted run's within the ELBO tolerance; bit for bit is reported, not required, on CUDA), a stage."""
    problems = [] if killed.get("killed") else [f"the training was not killed: {killed.get('note')}"]
    if resume["resume_exit"] != 0 or not resume["resumed_after_epoch_1"]:
        problems.append("the killed training did not resume after epoch 1")
    a, b = resume["valid_elbo_uninterrupted"], resume["valid_elbo_resumed"]
    if len(a) != len(b) or any(abs(x - y) > ELBO_ATOL + ELBO_RTOL * abs(x) for x, y in zip(a, b)):
        problems.append("the resumed training's validation ELBOs differ from the uninterrupted one's")
    problems += [f"stage {r['stage']}: {r.get('error') or 'exit ' + str(r.get('exit'))}" for r in evaluation
                 if r.get("exit") != 0 and r.get("error") != "skipped for time"]
    return problems


def _evaluation_stages(ws: Path, run: Run, protocol: str, seed: int, deadline: Deadline) -> list[dict]:
    rows = []
    for stage, dataset in (("marginal_likelihood", DATASET), ("knn", DATASET), ("tsne", None),
                           ("samples", DATASET)):
        if not deadline.allows(8.0):
            rows.append({"stage": stage, "error": "skipped for time"})
            continue
        child = Child(_stage_cmd(stage, protocol, seed, STAGE_MODEL, dataset), ws, run)
        start = time.perf_counter()
        try:
            code = child.wait(deadline.left())
        except TimeoutError as err:
            rows.append({"stage": stage, "error": str(err)})
            continue
        rows.append({"stage": stage, "exit": code, "seconds": round(time.perf_counter() - start, 1),
                     "last_line": child.lines[-1] if child.lines else ""})
    return rows


# --------------------------------------------------------------------------
# the paper budget, projected
# --------------------------------------------------------------------------
def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Optimizer steps of one epoch: the loop's ``ceil(examples / batch_size)``."""
    return math.ceil(examples / batch_size)


def training_set_size(root: Path, protocol: str, seed: int, dataset: str, model: str) -> int | None:
    """Training images of one logged training (of the run ``(protocol, seed)``): the prepared data's when it is
    there, else ``train_examples`` of a committed kNN result of the protocol (the same run's first: the prepared
    data do not depend on the seed; the whole training set when its view sets no cap); capped by the training
    view's ``max_train_examples``. None when neither is known."""
    from dlgmm_core import layout

    npz = layout.prepared(dataset, root)[0]
    size = None
    if npz.is_file():
        size = _prepared_train_size(npz.resolve())
    else:
        committed = sorted(int(f.name[len("seed-"):]) for f in layout.knn_dir(root).glob(f"{protocol}/seed-*")
                           if f.name[len("seed-"):].isdigit())
        for other in sorted(committed, key=lambda s: s != seed):
            knn_view = layout.stage_params(layout.knn_stage(protocol, other, dataset, STAGE_MODEL), root)
            knn_result = layout.knn_result(protocol, other, dataset, STAGE_MODEL, root)
            if knn_view.is_file() and knn_result.is_file() and \
                    json.loads(knn_view.read_text())["eval"]["knn"]["max_train_examples"] is None:
                size = int(json.loads(knn_result.read_text())["train_examples"])
                break
    cap = json.loads(layout.stage_params(layout.train_stage(protocol, seed, dataset, model), root).read_text())
    cap = cap["train"]["max_train_examples"]
    return size if cap is None or size is None else min(size, cap)


@functools.lru_cache(maxsize=None)
def _prepared_train_size(npz: Path) -> int:
    import numpy as np

    with np.load(npz) as data:
        return int(data["x_train"].shape[0])


def logged_runs(root: Path) -> list[tuple[str, int, str, str]]:
    """``(protocol, seed, dataset, model)`` of every training log in ``root``: each
    ``logs/<protocol>/seed-<seed>/<dataset>/<model>/metrics.json`` (:func:`dlgmm_core.layout.train_metrics`) there,
    in order; a file elsewhere under ``logs/`` is none of the pipeline's."""
    from dlgmm_core import layout

    runs = []
    for metrics in sorted(layout.logs_dir(root).glob("*/seed-*/*/*/metrics.json")):
        protocol, folder, dataset, model = metrics.parent.relative_to(layout.logs_dir(root)).parts
        number = folder.removeprefix("seed-")
        if number.isdigit() and layout.train_metrics(protocol, int(number), dataset, model, root) == metrics:
            runs.append((protocol, int(number), dataset, model))
    return runs


def logged_trainings(root: Path) -> list[dict]:
    """Every logged training (:func:`logged_runs`, committed: every seed of every protocol): its epochs, the CPU
    seconds it logged, and its steps per epoch."""
    from dlgmm_core import layout

    rows = []
    for protocol, seed, dataset, model in logged_runs(root):
        logged = json.loads(layout.train_metrics(protocol, seed, dataset, model, root).read_text())
        view = layout.stage_params(layout.train_stage(protocol, seed, dataset, model), root)
        examples = training_set_size(root, protocol, seed, dataset, model) if view.is_file() else None
        batch = json.loads(view.read_text())["train"]["batch_size"] if view.is_file() else None
        rows.append({"protocol": protocol, "seed": seed, "dataset": dataset, "model": model,
                     "epochs": int(logged["epochs"]),
                     "cpu_seconds": logged["epochs"] * logged["timing"]["mean_epoch_seconds"],
                     "steps_per_epoch": steps_per_epoch(examples, batch) if examples and batch else None})
    return rows


def project_budget(trainings: list[dict], step_ms: dict[str, dict[str, float]],
                   parallel: list[dict] | None = None) -> dict:
    """The paper budget's training time on this GPU: per training, epochs x steps per epoch x measured ms per
    step of its model in each mode; the totals one training at a time and, with the best measured
    side-by-side throughput factor of a mode, that many at once; each mode's total says how many trainings
    it covers (a mode not measured for every model covers fewer). Validation passes and start-up are not
    counted. Trainings without a step time or a step count are listed under ``missing``
    (``<protocol>/seed-<seed>/<dataset>/<model>``)."""
    from dlgmm_core import layout

    rows, missing = [], []
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for t in trainings:
        ms = step_ms.get(t["model"], {})
        if not ms or not t.get("steps_per_epoch"):
            missing.append((layout.run_folder(t["protocol"], t["seed"]) / t["dataset"] / t["model"]).as_posix())
            continue
        steps = t["epochs"] * t["steps_per_epoch"]
        row = {k: t[k] for k in ("protocol", "seed", "dataset", "model", "epochs")} | {
            "steps": steps, "cpu_hours": t["cpu_seconds"] / 3600}
        for mode, value in ms.items():
            row[f"{mode}_hours"] = steps * value / 1e3 / 3600
            totals[mode] = totals.get(mode, 0.0) + steps * value / 1e3
            counts[mode] = counts.get(mode, 0) + 1
        rows.append(row)
    best = {}
    for p in parallel or []:
        if p.get("throughput_factor") and p["throughput_factor"] > best.get(p["mode"], {}).get("factor", 1.0):
            best[p["mode"]] = {"jobs": p["jobs"], "factor": p["throughput_factor"]}
    summary = {mode: {"trainings": counts[mode], "one_at_a_time_hours": seconds / 3600, **({
        "side_by_side_jobs": best[mode]["jobs"], "side_by_side_hours": seconds / 3600 / best[mode]["factor"]}
        if mode in best else {})} for mode, seconds in totals.items()}
    return {"rows": rows, "totals": summary, "cpu_logged_hours": sum(t["cpu_seconds"] for t in trainings) / 3600,
            "missing": missing}


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--budget-s", type=float, default=BUDGET_S,
                        help=f"time budget of all parts (default {BUDGET_S})")
    parser.add_argument("--parts", default=",".join(name for name, _ in PARTS),
                        help="comma-separated parts to run (default: all)")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared MNIST .npz (default: data/prepared/mnist.npz; synthetic when absent)")
    parser.add_argument("--chunks", default="", help="estimator chunk sizes, comma-separated "
                        "(default: the evaluation's batch_size and ten times it)")
    parser.add_argument("--jobs", default=",".join(map(str, PARALLEL_JOBS)),
                        help="trainings side by side in the parallel part, comma-separated")
    parser.add_argument("--steps", type=int, default=TIMED_STEPS, help=f"steps timed per model and mode "
                        f"(default {TIMED_STEPS})")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cpu: run the check's code without a GPU, to try it (its timings mean nothing there)")
    parser.add_argument("--stage-compile", choices=("view", "on", "off"), default="view",
                        help="train.compile of the stage check (default: as the committed view says)")
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - {name for name, _ in PARTS}
    if unknown:
        parser.error(f"--parts: unknown part(s) {', '.join(sorted(unknown))}; known: "
                     f"{', '.join(name for name, _ in PARTS)}")
    return args


def refuse_without_cuda(device_type: str = "cuda") -> str | None:
    """One line saying why this machine cannot run the check, or None when it can. Before the GPU is looked
    for, everything the check runs of ``dlgmm_core`` is imported (:func:`load_library`)."""
    if not module_available("torch"):
        return "gpu check: torch is not installed here"
    try:
        load_library()
    except ImportError as err:
        return f"gpu check: dlgmm_core cannot be imported here ({type(err).__name__}: {_first_line(err)})"
    import torch

    if device_type == "cuda" and not torch.cuda.is_available():
        return (f"gpu check: no CUDA device here (torch {torch.__version__}, built for CUDA "
                f"{torch.version.cuda or 'none'}); run it where a GPU is lent (docs/gpu.md)")
    return None


class Inputs:
    """The data and the timed steps the parts share, loaded when a part first asks for them."""

    def __init__(self, args: argparse.Namespace, run: Run, device):
        self.path = args.data or (ROOT / "data" / "prepared" / f"{DATASET}.npz")
        self.run, self.device, self.steps_timed = run, device, args.steps
        self._arrays, self._steps = None, None

    @property
    def arrays(self) -> dict:
        if self._arrays is None:
            self._arrays, self.run.results["data"] = load_data(self.path)
            print(f"data: {self.info['source']} ({self.info['note']})", flush=True)
        return self._arrays

    @property
    def info(self) -> dict:
        return self.run.results["data"]

    @property
    def steps(self) -> StepsPart:
        if self._steps is None:
            from dlgmm_core.runtime import as_float_tensor

            x_train = as_float_tensor(self.arrays["x_train"], self.device)
            self._steps = StepsPart(headline_protocol(), headline_seed(), x_train, self.device, self.steps_timed)
        return self._steps

    def step_ms(self) -> dict[str, dict[str, float]]:
        return self._steps.step_ms() if self._steps is not None else {}

    def weights(self) -> dict[str, dict]:
        return self._steps.weights if self._steps is not None else {}


def plan(args: argparse.Namespace, run: Run, device) -> dict[str, Callable[[Deadline], dict]]:
    """What each part runs, with the options of the command line."""
    protocol, seed, inputs = headline_protocol(), headline_seed(), Inputs(args, run, device)
    chunks = tuple(int(c) for c in args.chunks.split(",") if c) or None
    jobs = tuple(int(j) for j in args.jobs.split(",") if j)
    compile_step = {"view": None, "on": True, "off": False}[args.stage_compile]
    return {
        "tests": part_tests,
        "steps": lambda d: inputs.steps.measure(d, ("eager", "compiled")),
        "elbo": lambda d: part_elbo(d, protocol, seed, inputs.arrays["x_test"], device, inputs.weights()),
        "estimator": lambda d: part_estimator(d, protocol, seed, inputs.arrays["x_test"], device, inputs.weights(),
                                              chunks),
        "parallel": lambda d: part_parallel(d, run, protocol, seed, device, inputs.step_ms(), jobs),
        "stage": lambda d: part_stage(d, run, protocol, seed, device, inputs.path, inputs.arrays, inputs.info,
                                      compile_step),
        "graphs": lambda d: inputs.steps.measure(d, ("reduce-overhead",)),
        "projection": lambda d: project_budget(logged_trainings(ROOT), inputs.step_ms(),
                                               (run.results["parts"].get("parallel") or {}).get("rows")),
    }


def run_check(args: argparse.Namespace) -> int:
    """Every part asked for, in :data:`PARTS`' order, within the budget; the summary; the exit status."""
    import torch

    # As dlgmm_core.training sets it for a CUDA training, before cuBLAS starts: deterministic cuBLAS.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    run = Run(Budget(args.budget_s), output_dir(), dict(PARTS))
    watchdog = threading.Timer(args.budget_s + HARD_MARGIN_S, run.cut_off)
    watchdog.daemon = True
    watchdog.start()
    device = torch.device(args.device)
    run.results["device"] = device_info(device)
    print("device: " + ", ".join(f"{k} {v}" for k, v in run.results["device"].items()), flush=True)
    parts, wanted = plan(args, run, device), set(args.parts.split(","))
    for name, _ in PARTS:
        if name in wanted:
            run.part(name, parts[name])
    watchdog.cancel()
    return run.finish()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # the check's own child processes, started once the device was found
        load_library()
        {"steps": child_steps, "stage": child_stage}[argv[1]](argv[2:])
        return 0
    args = parse_args(argv)
    reason = refuse_without_cuda(args.device)
    if reason:
        print(reason, file=sys.stderr)
        return EXIT_NO_CUDA
    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
