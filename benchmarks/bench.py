#!/usr/bin/env python
"""Throughput benchmark of the four models (``make bench``), in one process.

Measures, on one device (``--device auto|cpu|cuda``):

1. the matrix-multiply rate of the machine *at the models' shapes*: every GEMM
   (``aten.mm``/``addmm``/``bmm``) that a training step or a marginal-likelihood
   call runs, forward and backward, is recorded with its exact shapes, strides
   and dtype (a ``TorchDispatchMode``), then replayed alone and timed; the rate
   of a step is its GEMM FLOPs over the summed replay time (FLOP-weighted);
2. a training step of each model at the paper's sizes (batch 100, hidden 500,
   latent 25, K = 3, T = 17 for the DLDPMM, T = 25 for the SB-VAE), float32 and
   bf16 autocast, written as ``dlgmm_core.training`` runs it (autocast around
   ``model.elbo``, ``loss = -elbo.float().mean()``, ``zero_grad``, ``backward``,
   the per-step gradient norm, ``Adam.step``);
3. the same DLGMM step with the decoder called once per component in a Python
   loop (the reference implementation's approach), checked to give the same
   ELBO as the batched model for the same seed and weights;
4. marginal-likelihood throughput, ``log_marginal_likelihood`` on examples x
   importance samples, with the rows the decoder actually decodes counted
   (they must be one per importance sample, not K).

The FLOP count of a step is the GEMM FLOPs counted by
``torch.utils.flop_counter.FlopCounterMode`` (2 m n k per GEMM; elementwise
work is not counted), cross-checked against the recorded GEMMs. The fraction
column is ``FLOPs / time / rate`` with the rate measured at that step's own
GEMM shapes and dtype: the share of the step's time that the GEMMs would take
when run alone. Timings are medians over rounds that interleave all
configurations, so a background load slows them alike.

Writes the rows, the targets and machine information as JSON to ``--out``
(atomically). Exit status 1 when a correctness check fails (looped ELBO !=
batched ELBO, or decoded rows != examples x samples); with ``--strict`` also
when a performance target is missed.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dlgmm_core import build_model, log_marginal_likelihood  # noqa: E402
from dlgmm_core import registry, training  # noqa: E402
from dlgmm_core.errors import DlgmmError  # noqa: E402
from dlgmm_core.fields import as_dict  # noqa: E402
from dlgmm_core.params.load import load_params  # noqa: E402
from dlgmm_core.params.sections import stage_model_config  # noqa: E402
from dlgmm_core.io import write_json  # noqa: E402
from dlgmm_core.models import DeepLatentMixture  # noqa: E402
from dlgmm_core.runtime import compute_device, resolve_device, seed_everything  # noqa: E402

#: The paper's sizes of every evaluated model, forced whatever params.yaml says (the rest of each model's
#: configuration, e.g. priors and the KL method, comes from params.yaml).
PAPER_SIZES = {"gauss_vae": {"hidden": 500, "latent": 25}, "sb_vae": {"hidden": 500, "truncation": 25},
               "dlgmm": {"hidden": 500, "latent": 25, "components": 3},
               "dldpmm": {"hidden": 500, "latent": 25, "truncation": 17}}
BATCH = 100
#: Other processes' CPU use (cores) above which a timing phase counts as busy: its fractions are not reported.
BUSY_CORES = 0.25
#: Fraction of the measured float32 GEMM rate every float32 step should reach.
TARGET_FRACTION = 0.60
#: bf16 autocast speed-up over float32 every step should reach.
TARGET_BF16_SPEEDUP = 1.8
#: Share of binary pixels that are 1 in binarized MNIST (synthetic data: cost does not depend on values).
PIXEL_DENSITY = 0.13
GEMM_OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default}


# --------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------
def cpu_info() -> dict:
    info = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and info["model"] in ("", platform.processor() or platform.machine()):
            info["model"] = value.strip()
        if key == "flags" and not info["flags"]:
            flags = value.split()
            info["flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    return info


def machine_info(device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_info(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "mkldnn_bf16_supported": bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()
                                      and _mkldnn_bf16_supported()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _mkldnn_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - best-effort information only
        return False


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class OtherLoad:
    """CPU time that processes other than this one used while the block ran, in cores (``with OtherLoad() as l``).

    From /proc/stat (all CPUs' non-idle time) minus this process's own CPU
    time, over the block's wall time: 0 on a quiet machine, 1 when another
    process kept one core busy. ``None`` where /proc/stat is unreadable.
    """

    def __enter__(self):
        self.start = (_busy_seconds(), time.process_time(), time.perf_counter())
        self.cores = None
        return self

    def __exit__(self, *exc):
        busy, own, wall = _busy_seconds(), time.process_time(), time.perf_counter()
        if busy is not None and self.start[0] is not None:
            other = (busy - self.start[0]) - (own - self.start[1])
            self.cores = round(max(0.0, other) / max(wall - self.start[2], 1e-9), 3)


def _busy_seconds() -> float | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
def synchronizer(device: torch.device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_interleaved(fns: dict, *, warmup: int, rounds: int, round_seconds: float, sync) -> dict:
    """Median seconds per call of each ``fns[name]``, rounds interleaved across the names.

    Each function is warmed up (``warmup`` calls, fewer for one that takes over
    0.2 s), then called ``reps`` times per round, ``reps`` chosen so that a round
    lasts about ``round_seconds`` (at least one call).
    """
    reps = {}
    for name, fn in fns.items():
        sync()
        start = time.perf_counter()
        fn()
        sync()
        once = time.perf_counter() - start
        for _ in range(max(0, min(warmup, int(1.0 / max(once, 1e-9)))) - 1):
            fn()
        sync()
        start = time.perf_counter()
        fn()
        sync()
        once = max(time.perf_counter() - start, 1e-9)
        reps[name] = max(1, round(round_seconds / once))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            sync()
            times[name].append((time.perf_counter() - start) / reps[name])
    return {name: {"median": statistics.median(t), "min": min(t), "rounds": t, "calls_per_round": reps[name]}
            for name, t in times.items()}


# --------------------------------------------------------------------------
# GEMM recording and replay
# --------------------------------------------------------------------------
class GemmRecorder(TorchDispatchMode):
    """Records every GEMM run under it: op, argument shapes/strides, dtype, FLOPs."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in GEMM_OPS:
            tensors = tuple((tuple(a.shape), tuple(a.stride()), a.dtype) if isinstance(a, torch.Tensor) else a
                            for a in args)
            scalars = tuple(sorted((k, v) for k, v in kwargs.items() if not isinstance(v, torch.Tensor)))
            self.calls.append((func, tensors, scalars))
        return func(*args, **kwargs)


def gemm_flops(func, tensors) -> int:
    if func is torch.ops.aten.addmm.default:
        (m, k), (_, n) = tensors[1][0], tensors[2][0]
        return 2 * m * n * k
    if func is torch.ops.aten.mm.default:
        (m, k), (_, n) = tensors[0][0], tensors[1][0]
        return 2 * m * n * k
    (b, m, k), (_, _, n) = tensors[0][0], tensors[1][0]
    return 2 * b * m * n * k


def _is_spec(t) -> bool:
    return isinstance(t, tuple) and len(t) == 3 and isinstance(t[0], tuple)


def gemm_label(func, tensors) -> str:
    """``op[layouts] MxK @ KxN dtype`` of a recorded GEMM (T: a transposed, column-major operand)."""
    a, b = [t for t in tensors if _is_spec(t)][-2:]  # addmm's first tensor is the bias
    layout = "".join("T" if s[-2] == 1 and s[-1] != 1 else "N" for s in (a[1], b[1]))
    dtype = str(a[2]).replace("torch.", "")
    return f"{func._opname}[{layout}] {'x'.join(map(str, a[0]))} @ {'x'.join(map(str, b[0]))} {dtype}"


class GemmRates:
    """Times each distinct recorded GEMM alone (cached), on ``device``."""

    def __init__(self, device: torch.device, sync, *, min_seconds: float, rounds: int):
        self.device, self.sync, self.min_seconds, self.rounds = device, sync, min_seconds, rounds
        self.seconds: dict[tuple, float] = {}

    def _args(self, tensors):
        out = []
        for t in tensors:
            if _is_spec(t):
                shape, stride, dtype = t
                x = torch.empty_strided(shape, stride, dtype=dtype, device=self.device)
                x.normal_()
                out.append(x)
            else:
                out.append(t)
        return out

    def time(self, call) -> float:
        if call not in self.seconds:
            func, tensors, scalars = call
            args, kwargs = self._args(tensors), dict(scalars)
            fn = lambda: func(*args, **kwargs)  # noqa: E731
            for _ in range(3):
                fn()
            self.sync()
            start = time.perf_counter()
            fn()
            self.sync()
            once = max(time.perf_counter() - start, 1e-7)
            reps = max(1, min(10000, int(self.min_seconds / self.rounds / once)))
            samples = []
            for _ in range(self.rounds):
                start = time.perf_counter()
                for _ in range(reps):
                    fn()
                self.sync()
                samples.append((time.perf_counter() - start) / reps)
            self.seconds[call] = statistics.median(samples)
        return self.seconds[call]

    def summary(self, calls: list[tuple]) -> dict:
        """FLOP-weighted rate of ``calls`` (a step's GEMMs, with repeats) and a per-shape table."""
        flops = seconds = 0.0
        shapes: dict[str, dict] = {}
        for call in calls:
            f, s = gemm_flops(call[0], call[1]), self.time(call)
            flops += f
            seconds += s
            row = shapes.setdefault(gemm_label(call[0], call[1]), {"count": 0, "flops": f, "seconds": s,
                                                                  "gflops_per_s": f / s / 1e9})
            row["count"] += 1
        return {"flops": flops, "seconds": seconds, "rate": flops / seconds if seconds else float("nan"),
                "shapes": shapes}


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
class LoopedDLGMM(DeepLatentMixture):
    """The DLGMM with the reference implementation's decoder: one call per component in a Python loop.

    ``elbo`` is the batched model's (same math, same random draws); only
    :meth:`decode` differs, taking the (B*K, latent) rows component by component.
    Used for the training-step comparison only.
    """

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        k = self.components
        per_component = latent.view(-1, k, latent.shape[-1])
        logits = [self.decoder(per_component[:, j].contiguous()) for j in range(k)]
        return torch.stack(logits, dim=1).reshape(latent.shape[0], -1)


def paper_config(params, key: str) -> tuple[str, dict]:
    config = stage_model_config(params, key)
    try:  # per-component lists must fit the paper's number of components
        config = registry.make_config(config.kind, {**as_dict(config), **PAPER_SIZES[key]})
    except DlgmmError as err:
        raise SystemExit(f"bench: params.yaml model.{key} does not fit the paper's sizes {PAPER_SIZES[key]}: {err}")
    return config.kind, as_dict(config)


def make_step(model, x, precision: str, device: torch.device, elbo_fn=None):
    """A call running ``dlgmm_core.training.train_step``, the training loop's step, on ``x`` (Adam, lr 3e-4);
    ``elbo_fn``: the compiled ELBO of :func:`dlgmm_core.training.step_elbo`, or ``None`` (eager)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = training.make_optimizer(params, 3e-4, device)
    return lambda: training.train_step(model, optimizer, params, x, precision, elbo_fn)


def count_step(step) -> tuple[list, int]:
    """The GEMM calls of one step and FlopCounterMode's FLOP total for it."""
    counter = FlopCounterMode(display=False)
    recorder = GemmRecorder()
    with counter, recorder:
        step()
    return recorder.calls, int(counter.get_total_flops())


class DecodeCounter:
    """Wraps ``model.decode`` (instance attribute) to count the rows decoded."""

    def __init__(self, model):
        self.model, self.rows, self.calls = model, 0, 0
        self.inner = model.decode

    def __enter__(self):
        def counted(latent):
            self.rows += latent.shape[0]
            self.calls += 1
            return self.inner(latent)
        self.model.decode = counted
        return self

    def __exit__(self, *exc):
        del self.model.decode


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and samples (about a minute)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "benchmark.json"))
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a performance target is missed")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: params.yaml's train.threads, what training uses)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    device = resolve_device(args.device)
    sync = synchronizer(device)
    params = load_params(args.params)
    # as training runs: train.threads (unless --threads), subnormals flushed to zero (runtime.compute_device)
    compute_device(device.type, args.threads if args.threads is not None else int(params.train["threads"]))
    compile_reason = training.compiler_unavailable(device.type)
    use_compile = bool(params.train["compile"]) and compile_reason is None
    seed = params.seed
    quick = args.quick
    warmup, rounds, round_seconds = (3, 3, 0.1) if quick else (10, 7, 0.4)
    ml_examples, ml_samples = (20, 200) if quick else (100, 1000)
    ml_batch = int(params.eval["marginal_likelihood"]["batch_size"])
    rates = GemmRates(device, sync, min_seconds=0.05 if quick else 0.2, rounds=3 if quick else 5)
    load_before = load_average()
    if load_before and load_before[0] > (os.cpu_count() or 1) and device.type == "cpu":
        print(f"warning: load average {load_before[0]} on {os.cpu_count()} CPUs: other processes compete for the "
              f"cores; with {torch.get_num_threads()} OpenMP threads spinning at barriers the timings can be "
              f"many times slower (try OMP_WAIT_POLICY=PASSIVE or --threads 1, or a quiet machine)",
              file=sys.stderr, flush=True)

    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(BATCH, 784, generator=gen) < PIXEL_DENSITY).float().to(device)
    x_ml = (torch.rand(ml_examples, 784, generator=gen) < PIXEL_DENSITY).float().to(device)

    # --- models and steps ------------------------------------------------------------------
    configs = {key: paper_config(params, key) for key in PAPER_SIZES}
    models: dict[str, torch.nn.Module] = {}
    steps: dict[str, object] = {}
    meta: dict[str, dict] = {}
    for key, (kind, config) in configs.items():
        for precision in ("float32", "bf16"):
            seed_everything(seed)
            model = build_model(kind, **config).to(device).train()
            name = f"{key}/{precision}"
            models[name], steps[name] = model, make_step(model, x, precision, device)
            meta[name] = {"model": key, "kind": kind, "precision": precision, "config": config}
        if compile_reason is None:  # the same model and step through train.compile's torch.compile
            seed_everything(seed)
            model = build_model(kind, **config).to(device).train()
            name = f"{key}/float32+compile"
            elbo_fn, _ = training.step_elbo(model, True, device)
            models[name], steps[name] = model, make_step(model, x, "float32", device, elbo_fn)
            meta[name] = {"model": key, "kind": kind, "precision": "float32", "compiled": True, "config": config}
    # The DLGMM with the decoder looped over components: same weights, checked to be the same math.
    kind, config = configs["dlgmm"]
    checks: dict[str, dict] = {}
    for precision in ("float32", "bf16"):
        looped = LoopedDLGMM(registry.make_config(kind, config)).to(device).train()
        looped.load_state_dict(models[f"dlgmm/{precision}"].state_dict())
        torch.manual_seed(seed)
        batched_elbo = models[f"dlgmm/{precision}"].elbo(x).detach().double()
        torch.manual_seed(seed)
        looped_elbo = looped.elbo(x).detach().double()
        diff = float((batched_elbo - looped_elbo).abs().max())
        if precision == "float32":
            checks["looped_elbo_equals_batched"] = {
                "max_abs_diff_nats": diff, "ok": bool(torch.allclose(batched_elbo, looped_elbo, rtol=1e-5,
                                                                     atol=1e-3))}
        name = f"dlgmm_loop/{precision}"
        models[name], steps[name] = looped, make_step(looped, x, precision, device)
        meta[name] = {"model": "dlgmm_loop", "kind": "dlgmm", "precision": precision, "config": config}

    # --- FLOPs and GEMM shapes of each step (one counted step each) ------------------------
    gemm_calls: dict[str, list] = {}
    for name, step in steps.items():
        if meta[name].get("compiled"):  # inductor's kernels hide the GEMMs: the eager step's, same arithmetic
            step()  # compiles (the first call), outside the timed rounds
            eager = name.replace("+compile", "")
            gemm_calls[name], meta[name]["flops"] = gemm_calls[eager], meta[eager]["flops"]
            continue
        calls, flops = count_step(step)
        recorded = sum(gemm_flops(c[0], c[1]) for c in calls)
        if abs(recorded - flops) > 1e-3 * max(flops, 1):
            print(f"warning: {name}: FlopCounterMode counts {flops} FLOPs, the recorded GEMMs {recorded}",
                  file=sys.stderr)
        gemm_calls[name] = calls
        meta[name]["flops"] = flops

    # --- timed training steps (rounds interleaved across all configurations) ----------------
    print(f"timing {len(steps)} training steps: {warmup} warm-up, {rounds} interleaved rounds of ~{round_seconds} s "
          f"each ...", flush=True)
    with OtherLoad() as step_load:
        step_times = time_interleaved(steps, warmup=warmup, rounds=rounds, round_seconds=round_seconds, sync=sync)

    # --- marginal likelihood: examples x samples per second, decoded rows counted ----------
    print(f"timing log_marginal_likelihood: {ml_examples} examples x {ml_samples} samples ...", flush=True)
    ml_rows = {}
    ml_fns = {}
    for key, (kind, config) in configs.items():
        model = models[f"{key}/float32"]
        name = f"{key}/ml"

        def call(model=model):
            return log_marginal_likelihood(model, x_ml, ml_samples, batch_size=ml_batch)

        seed_everything(seed)
        counter = FlopCounterMode(display=False)
        recorder = GemmRecorder()
        with DecodeCounter(model) as decoded, counter, recorder:
            value = call()
        ml_rows[name] = {"decoded_rows": decoded.rows, "decoder_calls": decoded.calls,
                         "expected_rows": ml_examples * ml_samples, "finite": bool(torch.isfinite(value).all())}
        gemm_calls[name] = recorder.calls
        meta[name] = {"model": key, "kind": kind, "precision": "float32", "config": config,
                      "flops": int(counter.get_total_flops())}
        ml_fns[name] = call
    with OtherLoad() as ml_load:
        ml_times = time_interleaved(ml_fns, warmup=1, rounds=2 if quick else 3, round_seconds=0.0, sync=sync)

    # --- matmul rates at the recorded shapes -------------------------------------------------
    print("timing the recorded GEMMs alone ...", flush=True)
    with OtherLoad() as gemm_load:
        gemm = {name: rates.summary(calls) for name, calls in gemm_calls.items()}
    fp32_steps = [n for n in steps if n.endswith("/float32") and not n.startswith("dlgmm_loop")]
    bf16_steps = [n for n in steps if n.endswith("/bf16") and not n.startswith("dlgmm_loop")]
    machine_rate = {
        "float32": sum(gemm[n]["flops"] for n in fp32_steps) / sum(gemm[n]["seconds"] for n in fp32_steps),
        "bf16": sum(gemm[n]["flops"] for n in bf16_steps) / sum(gemm[n]["seconds"] for n in bf16_steps),
    }
    square = {}
    for dtype in (torch.float32, torch.bfloat16):
        t = (((1024, 1024), (1024, 1), dtype), ((1024, 1024), (1024, 1), dtype))
        call = (torch.ops.aten.mm.default, t, ())
        square[str(dtype).replace("torch.", "")] = gemm_flops(call[0], t) / rates.time(call)

    # --- rows ------------------------------------------------------------------------------
    rows = []
    for name, timing in {**step_times, **ml_times}.items():
        info, g = meta[name], gemm[name]
        seconds = timing["median"]
        is_ml = name.endswith("/ml")
        loads = [load.cores for load in ((ml_load if is_ml else step_load), gemm_load)]
        busy = any(load is None or load > BUSY_CORES for load in loads)
        units = ml_examples * ml_samples if is_ml else BATCH
        achieved = info["flops"] / seconds
        row = {
            "name": name, "model": info["model"], "kind": info["kind"], "precision": info["precision"],
            "phase": "marginal_likelihood" if is_ml else "train_step",
            "seconds": seconds, "seconds_min": timing["min"], "seconds_rounds": timing["rounds"],
            "calls_per_round": timing["calls_per_round"],
            "units_per_second": units / seconds,
            "units": "examples x samples" if is_ml else "examples",
            "flops": info["flops"], "achieved_flops_per_s": achieved,
            "compiled": bool(info.get("compiled")),
            "other_load_cores": {"timing": loads[0], "matmul_rate": loads[1]}, "busy": busy,
            "matmul_rate_flops_per_s": g["rate"],
            "fraction_of_matmul_rate": None if busy else achieved / g["rate"],
            "fraction_of_machine_float32_rate": None if busy else achieved / machine_rate["float32"],
            "gemm_seconds_alone": g["seconds"], "gemm_shapes": g["shapes"],
        }
        if is_ml:
            row.update(examples=ml_examples, samples=ml_samples, batch_size=ml_batch, **ml_rows[name])
        rows.append(row)
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        if r["phase"] == "train_step" and r["precision"] == "bf16":
            r["speedup_vs_float32"] = by_name[r["name"].replace("/bf16", "/float32")]["seconds"] / r["seconds"]
        if r["compiled"]:
            r["speedup_vs_eager"] = by_name[r["name"].replace("+compile", "")]["seconds"] / r["seconds"]

    # --- targets ---------------------------------------------------------------------------
    targets = []
    trained_as = "float32+compile" if use_compile else "float32"  # the step training runs (train.compile)
    for key in PAPER_SIZES:
        r = by_name[f"{key}/{trained_as}"]
        fraction = r["fraction_of_matmul_rate"]
        targets.append({"target": f"{key}: {trained_as} step at {torch.get_num_threads()} thread(s) >= "
                                  f"{TARGET_FRACTION:.0%} of the float32 matmul rate",
                        "value": (f"not measured: other processes used {r['other_load_cores']['timing']} cores "
                                  f"while it was timed, {r['other_load_cores']['matmul_rate']} during the "
                                  f"matmul rate"
                                  if fraction is None else round(fraction, 3)),
                        "met": None if fraction is None else fraction >= TARGET_FRACTION, "kind": "performance"})
    for precision in ("float32", "bf16"):
        b, lp = by_name[f"dlgmm/{precision}"]["seconds"], by_name[f"dlgmm_loop/{precision}"]["seconds"]
        targets.append({"target": f"dlgmm {precision}: batched step faster than the per-component loop",
                        "value": round(lp / b, 3), "met": b < lp, "kind": "performance"})
    for key in PAPER_SIZES:
        m = ml_rows[f"{key}/ml"]
        targets.append({"target": f"{key}: marginal likelihood decodes one row per importance sample",
                        "value": f"{m['decoded_rows']} rows / {m['expected_rows']} expected",
                        "met": m["decoded_rows"] == m["expected_rows"] and m["finite"], "kind": "correctness"})
    targets.append({"target": "looped DLGMM ELBO equals the batched ELBO (same seed, same weights)",
                    "value": f"max |diff| {checks['looped_elbo_equals_batched']['max_abs_diff_nats']:.2e} nats",
                    "met": checks["looped_elbo_equals_batched"]["ok"], "kind": "correctness"})
    info = machine_info(device)
    native_bf16 = device.type == "cuda" or info["mkldnn_bf16_supported"]
    for key in PAPER_SIZES:  # bf16 is opt-in (train.precision): a target only where the hardware has bf16 units
        s = by_name[f"{key}/bf16"]["speedup_vs_float32"]
        targets.append({"target": f"{key}: bf16 step >= {TARGET_BF16_SPEEDUP}x faster than float32",
                        "value": round(s, 3) if native_bf16 else f"{s:.3f} (n/a: no native bf16 on this CPU)",
                        "met": (s >= TARGET_BF16_SPEEDUP) if native_bf16 else None, "kind": "performance"})

    load_after = load_average()
    info.update(load_average_before=load_before, load_average_after=load_after,
                other_load_cores={"steps": step_load.cores, "marginal_likelihood": ml_load.cores,
                                  "matmul_rate": gemm_load.cores},
                compile={"train.compile": bool(params.train["compile"]), "unavailable": compile_reason})
    elapsed = time.perf_counter() - started
    report = {
        "machine": info, "quick": quick, "seed": seed, "batch": BATCH, "paper_sizes": PAPER_SIZES,
        "timing": {"warmup_steps": warmup, "rounds": rounds, "round_seconds": round_seconds, "statistic": "median",
                   "calls_per_round": {r["name"]: r["calls_per_round"] for r in rows}},
        "flop_count": "GEMM FLOPs (2mnk) of the step, forward and backward, by torch.utils.flop_counter."
                      "FlopCounterMode; elementwise work not counted",
        "matmul_rate": {"definition": "GEMM FLOPs / summed time of the same GEMMs (shapes, strides, dtype) "
                                      "replayed alone; per row at its own GEMMs, machine-wide over the four "
                                      "models' steps",
                        "machine_flops_per_s": machine_rate, "square_1024_flops_per_s": square},
        "data": f"synthetic binary images (pixel density {PIXEL_DENSITY}); costs do not depend on the values",
        "rows": rows, "checks": checks, "targets": targets, "seconds_total": elapsed,
    }
    write_json(args.out, report)
    print_report(report)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")
    busy = load_before and load_before[0] > (os.cpu_count() or 1)
    if busy and device.type == "cpu":
        print(f"note: the load average was {load_before[0]} on {os.cpu_count()} CPUs when the benchmark started: "
              f"other processes competed for the cores", file=sys.stderr)
    failed_correctness = [t for t in targets if t["kind"] == "correctness" and not t["met"]]
    # --strict: a missed target fails, and so does one not measured because the machine was busy
    failed_performance = [t for t in targets if t["kind"] == "performance" and (
        t["met"] is False or (t["met"] is None and str(t["value"]).startswith("not measured")))]
    return 1 if failed_correctness or (args.strict and failed_performance) else 0


def print_report(report: dict) -> None:
    m = report["machine"]
    print(f"\ndlgmm benchmark: torch {m['torch']}, {m['device']}"
          f"{' (' + m['gpu'] + ')' if 'gpu' in m else ''}, {m['cpu']['model']}, {m['threads']} threads, "
          f"CPU capability {m['cpu_capability']}, load average {m['load_average_before']}")
    rate = report["matmul_rate"]
    if m["device"] == "cpu" and not m["mkldnn_bf16_supported"]:
        print("note: this CPU has no native bf16 matrix instructions (no avx512_bf16/amx): bf16 GEMMs are emulated")
    print(f"matmul rate at the models' shapes: float32 {rate['machine_flops_per_s']['float32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {rate['machine_flops_per_s']['bf16'] / 1e9:.1f} GFLOP/s "
          f"(square 1024: float32 {rate['square_1024_flops_per_s']['float32'] / 1e9:.1f}, "
          f"bf16 {rate['square_1024_flops_per_s']['bfloat16'] / 1e9:.1f})\n")
    header = (f"{'benchmark':<20} {'prec':<10} {'ms/call':>9} {'units/s':>11} {'GFLOP':>8} {'GFLOP/s':>8} "
              f"{'mm rate':>8} {'frac':>6} {'bf16 x':>7} {'load':>6}")
    print(header)
    print("-" * len(header))
    for r in report["rows"]:
        label = r["model"] + (" ML" if r["phase"] == "marginal_likelihood" else " step")
        speedup = (f"{r['speedup_vs_float32']:.2f}" if "speedup_vs_float32" in r
                   else f"{r['speedup_vs_eager']:.2f}c" if "speedup_vs_eager" in r else "")
        fraction = "busy" if r["fraction_of_matmul_rate"] is None else f"{r['fraction_of_matmul_rate']:.2f}"
        precision = r["precision"] + ("+c" if r["compiled"] else "")
        print(f"{label:<20} {precision:<10} {r['seconds'] * 1e3:9.2f} {r['units_per_second']:11.0f} "
              f"{r['flops'] / 1e9:8.3f} {r['achieved_flops_per_s'] / 1e9:8.1f} "
              f"{r['matmul_rate_flops_per_s'] / 1e9:8.1f} {fraction:>6} {speedup:>7} "
              f"{r['other_load_cores']['timing']:>6}")
    print("units/s: examples/s for steps, examples x importance samples/s for ML; mm rate: GFLOP/s of the "
          "same GEMMs alone; frac = GFLOP/s / mm rate; +c: torch.compile (train.compile), its speed-up over eager "
          "marked c; load: cores other "
          f"processes used while it was timed (frac is 'busy', not reported, above {BUSY_CORES})")
    print("\ntargets:")
    for t in report["targets"]:
        mark = "n/a " if t["met"] is None else "met " if t["met"] else "MISS"
        print(f"  [{mark}] {t['target']}: {t['value']}")


if __name__ == "__main__":
    sys.exit(main())
