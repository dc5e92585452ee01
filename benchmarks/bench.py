#!/usr/bin/env python
"""Throughput benchmark of the four models (``make bench``), in one process.

Measures, on one device (``--device auto|cpu|cuda``):

1. the matrix-multiply rate of the machine *at the models' shapes* (:mod:`bench_gemm`): every GEMM a training step
   or a marginal-likelihood call runs, forward and backward, recorded with its shapes, strides and dtype, replayed
   alone and timed; the rate of a step is its GEMM FLOPs over the summed replay time;
2. a training step of each model at the paper's sizes (batch 100, hidden 500, latent 25, K = 3, T = 17 for the
   DLDPMM, T = 25 for the SB-VAE), float32 and bf16 autocast (and float32 through ``torch.compile``), as
   ``dlgmm_core.training.train_step`` runs it;
3. the same DLGMM step with the decoder called once per component in a Python loop (the reference
   implementation's approach; ``tests/test_training.py`` checks that it gives the batched model's ELBO);
4. marginal-likelihood throughput, ``log_marginal_likelihood`` on examples x importance samples, with the rows the
   decoder decodes counted (one per importance sample, not K).

The fraction column is ``FLOPs / time / rate`` with the rate measured at that step's own GEMM shapes and dtype.
Timings are medians over rounds that interleave all configurations; other processes' CPU use while each phase is
timed is measured (:mod:`bench_machine`), and a busy phase's fractions are not reported. Writes the rows, the
targets and machine information as JSON to ``--out`` (atomically). Exit status 1 when a correctness check fails
(decoded rows != examples x samples); with ``--strict`` also when a performance target is missed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from bench_gemm import GemmRates, GemmRecorder, count_step, gemm_flops, square_rates  # noqa: E402
from bench_machine import OtherLoad, load_average, machine_info, synchronizer, time_interleaved  # noqa: E402
from dlgmm_core import build_model, log_marginal_likelihood, registry, training  # noqa: E402
from dlgmm_core.errors import DlgmmError  # noqa: E402
from dlgmm_core.fields import as_dict  # noqa: E402
from dlgmm_core.params.load import load_params  # noqa: E402
from dlgmm_core.params.sections import stage_model_config  # noqa: E402
from dlgmm_core.io import write_json  # noqa: E402
from dlgmm_core.models import DeepLatentMixture  # noqa: E402
from dlgmm_core.report.paper import MODELS, registered_models  # noqa: E402
from dlgmm_core.runtime import compute_device, resolve_device, seed_everything  # noqa: E402

#: The paper's sizes of every evaluated model (the report's table of the paper's models), forced whatever
#: params.yaml says (the rest of each model's configuration, e.g. priors and the KL method, comes from params.yaml).
PAPER_SIZES = {key: dict(MODELS[key].paper_sizes) for key in registered_models()
               if key in MODELS and MODELS[key].paper_sizes is not None}
BATCH = 100
#: Other processes' CPU use (cores) above which a timing phase counts as busy: its fractions are not reported.
BUSY_CORES = 0.25
#: Fraction of the measured float32 GEMM rate every float32 step should reach.
TARGET_FRACTION = 0.60
#: bf16 autocast speed-up over float32 every step should reach.
TARGET_BF16_SPEEDUP = 1.8
#: Share of binary pixels that are 1 in binarized MNIST (synthetic data: cost does not depend on values).
PIXEL_DENSITY = 0.13


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


class Run:
    """One benchmark run: its settings, the inputs, and what each phase adds (keyed ``<model>/<precision>`` for
    the steps, ``<model>/ml`` for the marginal likelihood)."""

    def __init__(self, device: torch.device, params, quick: bool):
        self.device, self.params, self.quick = device, params, quick
        self.models, self.steps, self.meta, self.gemm_calls, self.ml_rows, self.loads = {}, {}, {}, {}, {}, {}
        self.sync = synchronizer(self.device)
        self.seed = self.params.seeds[0]  # the first of params.yaml's seeds, the run the report's figures show
        self.warmup, self.rounds, self.round_seconds = (3, 3, 0.1) if self.quick else (10, 7, 0.4)
        self.ml_examples, self.ml_samples = (20, 200) if self.quick else (100, 1000)
        self.ml_batch = int(self.params.eval["marginal_likelihood"]["batch_size"])
        self.compile_reason = training.compiler_unavailable(self.device.type)
        self.configs = {key: paper_config(self.params, key) for key in PAPER_SIZES}
        seed_everything(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.x = (torch.rand(BATCH, 784, generator=gen) < PIXEL_DENSITY).float().to(self.device)
        self.x_ml = (torch.rand(self.ml_examples, 784, generator=gen) < PIXEL_DENSITY).float().to(self.device)

    def add_step(self, name: str, model, precision: str, info: dict, elbo_fn=None) -> None:
        self.models[name] = model
        self.steps[name] = make_step(model, self.x, precision, self.device, elbo_fn)
        self.meta[name] = {"precision": precision, **info}


def build_steps(run: Run) -> None:
    """Phase 1: every model at the paper's sizes, float32, bf16 and compiled, and the looped DLGMM (the batched
    DLGMM's weights)."""
    for key, (kind, config) in run.configs.items():
        info = {"model": key, "kind": kind, "config": config}
        for precision in ("float32", "bf16"):
            seed_everything(run.seed)
            run.add_step(f"{key}/{precision}", build_model(kind, **config).to(run.device).train(), precision, info)
        if run.compile_reason is None:  # the same model and step through train.compile's torch.compile
            seed_everything(run.seed)
            model = build_model(kind, **config).to(run.device).train()
            elbo_fn, _ = training.step_elbo(model, True, run.device)
            run.add_step(f"{key}/float32+compile", model, "float32", {**info, "compiled": True}, elbo_fn)
    kind, config = run.configs["dlgmm"]
    for precision in ("float32", "bf16"):
        looped = LoopedDLGMM(registry.make_config(kind, config)).to(run.device).train()
        looped.load_state_dict(run.models[f"dlgmm/{precision}"].state_dict())
        run.add_step(f"dlgmm_loop/{precision}", looped, precision, {"model": "dlgmm_loop", "kind": "dlgmm",
                                                                     "config": config})


def count_flops(run: Run) -> None:
    """Phase 2: the FLOPs and GEMM shapes of each step (one counted step each)."""
    for name, step in run.steps.items():
        if run.meta[name].get("compiled"):  # inductor's kernels hide the GEMMs: the eager step's, same arithmetic
            step()  # compiles (the first call), outside the timed rounds
            eager = name.replace("+compile", "")
            run.gemm_calls[name], run.meta[name]["flops"] = run.gemm_calls[eager], run.meta[eager]["flops"]
            continue
        calls, flops = count_step(step)
        recorded = sum(gemm_flops(c[0], c[1]) for c in calls)
        if abs(recorded - flops) > 1e-3 * max(flops, 1):
            print(f"warning: {name}: FlopCounterMode counts {flops} FLOPs, the recorded GEMMs {recorded}",
                  file=sys.stderr)
        run.gemm_calls[name], run.meta[name]["flops"] = calls, flops


def time_steps(run: Run) -> dict:
    """Phase 3: the training steps, rounds interleaved across all configurations."""
    print(f"timing {len(run.steps)} training steps: {run.warmup} warm-up, {run.rounds} interleaved rounds of "
          f"~{run.round_seconds} s each ...", flush=True)
    with OtherLoad() as load:
        times = time_interleaved(run.steps, warmup=run.warmup, rounds=run.rounds, round_seconds=run.round_seconds,
                                 sync=run.sync)
    run.loads["steps"] = load.cores
    return times


def time_marginal_likelihood(run: Run) -> dict:
    """Phase 4: examples x samples per second of ``log_marginal_likelihood``, the decoded rows counted."""
    print(f"timing log_marginal_likelihood: {run.ml_examples} examples x {run.ml_samples} samples ...", flush=True)
    fns = {}
    for key, (kind, config) in run.configs.items():
        model, name = run.models[f"{key}/float32"], f"{key}/ml"

        def call(model=model):
            return log_marginal_likelihood(model, run.x_ml, run.ml_samples, batch_size=run.ml_batch)

        seed_everything(run.seed)
        counter, recorder = FlopCounterMode(display=False), GemmRecorder()
        with DecodeCounter(model) as decoded, counter, recorder:
            value = call()
        run.ml_rows[name] = {"decoded_rows": decoded.rows, "decoder_calls": decoded.calls,
                             "expected_rows": run.ml_examples * run.ml_samples,
                             "finite": bool(torch.isfinite(value).all())}
        run.gemm_calls[name] = recorder.calls
        run.meta[name] = {"model": key, "kind": kind, "precision": "float32", "config": config,
                          "flops": int(counter.get_total_flops())}
        fns[name] = call
    with OtherLoad() as load:
        times = time_interleaved(fns, warmup=1, rounds=2 if run.quick else 3, round_seconds=0.0, sync=run.sync)
    run.loads["marginal_likelihood"] = load.cores
    return times


def matmul_rates(run: Run) -> tuple[dict, dict, dict]:
    """Phase 5: the recorded GEMMs replayed alone: per row, machine-wide (float32 and bf16 over the models' steps)
    and for a square 1024 matrix multiply."""
    print("timing the recorded GEMMs alone ...", flush=True)
    rates = GemmRates(run.device, run.sync, min_seconds=0.05 if run.quick else 0.2, rounds=3 if run.quick else 5)
    with OtherLoad() as load:
        gemm = {name: rates.summary(calls) for name, calls in run.gemm_calls.items()}
    run.loads["matmul_rate"] = load.cores
    machine = {}
    for precision in ("float32", "bf16"):
        names = [n for n in run.steps if n.endswith(f"/{precision}") and not n.startswith("dlgmm_loop")]
        machine[precision] = sum(gemm[n]["flops"] for n in names) / sum(gemm[n]["seconds"] for n in names)
    return gemm, machine, square_rates(rates)


def make_row(run: Run, name: str, timing: dict, g: dict, float32_rate: float) -> dict:
    """One row of the report: a step's or a marginal-likelihood call's time, throughput and share of the rate."""
    info, seconds, is_ml = run.meta[name], timing["median"], name.endswith("/ml")
    loads = [run.loads["marginal_likelihood" if is_ml else "steps"], run.loads["matmul_rate"]]
    busy = any(load is None or load > BUSY_CORES for load in loads)
    achieved = info["flops"] / seconds
    row = {"name": name, "model": info["model"], "kind": info["kind"], "precision": info["precision"],
           "phase": "marginal_likelihood" if is_ml else "train_step",
           "seconds": seconds, "seconds_min": timing["min"], "seconds_rounds": timing["rounds"],
           "calls_per_round": timing["calls_per_round"],
           "units_per_second": (run.ml_examples * run.ml_samples if is_ml else BATCH) / seconds,
           "units": "examples x samples" if is_ml else "examples",
           "flops": info["flops"], "achieved_flops_per_s": achieved, "compiled": bool(info.get("compiled")),
           "other_load_cores": {"timing": loads[0], "matmul_rate": loads[1]}, "busy": busy,
           "matmul_rate_flops_per_s": g["rate"],
           "fraction_of_matmul_rate": None if busy else achieved / g["rate"],
           "fraction_of_machine_float32_rate": None if busy else achieved / float32_rate,
           "gemm_seconds_alone": g["seconds"], "gemm_shapes": g["shapes"]}
    if is_ml:
        row.update(examples=run.ml_examples, samples=run.ml_samples, batch_size=run.ml_batch, **run.ml_rows[name])
    return row


def add_speedups(rows: list[dict]) -> dict[str, dict]:
    """bf16 over float32 and compiled over eager, on each row where they apply; the rows by name."""
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        if r["phase"] == "train_step" and r["precision"] == "bf16":
            r["speedup_vs_float32"] = by_name[r["name"].replace("/bf16", "/float32")]["seconds"] / r["seconds"]
        if r["compiled"]:
            r["speedup_vs_eager"] = by_name[r["name"].replace("+compile", "")]["seconds"] / r["seconds"]
    return by_name


def make_targets(run: Run, by_name: dict[str, dict], native_bf16: bool) -> list[dict]:
    """The performance targets (fraction of the matmul rate, batched vs looped, bf16 speed-up) and the correctness
    checks (one decoded row per importance sample), each met, missed or not measured (``met`` None)."""
    targets = []
    trained_as = "float32+compile" if run.params.train["compile"] and run.compile_reason is None else "float32"
    for key in PAPER_SIZES:
        r = by_name[f"{key}/{trained_as}"]
        fraction, load = r["fraction_of_matmul_rate"], r["other_load_cores"]
        targets.append({"target": f"{key}: {trained_as} step at {torch.get_num_threads()} thread(s) >= "
                                  f"{TARGET_FRACTION:.0%} of the float32 matmul rate",
                        "value": (f"not measured: other processes used {load['timing']} cores while it was timed, "
                                  f"{load['matmul_rate']} during the matmul rate"
                                  if fraction is None else round(fraction, 3)),
                        "met": None if fraction is None else fraction >= TARGET_FRACTION, "kind": "performance"})
    for precision in ("float32", "bf16"):
        b, lp = by_name[f"dlgmm/{precision}"]["seconds"], by_name[f"dlgmm_loop/{precision}"]["seconds"]
        targets.append({"target": f"dlgmm {precision}: batched step faster than the per-component loop",
                        "value": round(lp / b, 3), "met": b < lp, "kind": "performance"})
    for key in PAPER_SIZES:
        m = run.ml_rows[f"{key}/ml"]
        targets.append({"target": f"{key}: marginal likelihood decodes one row per importance sample",
                        "value": f"{m['decoded_rows']} rows / {m['expected_rows']} expected",
                        "met": m["decoded_rows"] == m["expected_rows"] and m["finite"], "kind": "correctness"})
    for key in PAPER_SIZES:  # bf16 is opt-in (train.precision): a target only where the hardware has bf16 units
        s = by_name[f"{key}/bf16"]["speedup_vs_float32"]
        targets.append({"target": f"{key}: bf16 step >= {TARGET_BF16_SPEEDUP}x faster than float32",
                        "value": round(s, 3) if native_bf16 else f"{s:.3f} (n/a: no native bf16 on this CPU)",
                        "met": (s >= TARGET_BF16_SPEEDUP) if native_bf16 else None, "kind": "performance"})
    return targets


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and samples (about a minute)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "benchmark.json"))
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a performance target is missed")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: params.yaml's train.threads, what training uses)")
    return parser.parse_args(argv)


def _warn_if_loaded(load: list[float] | None, device: torch.device) -> None:
    if load and load[0] > (os.cpu_count() or 1) and device.type == "cpu":
        print(f"warning: load average {load[0]} on {os.cpu_count()} CPUs: other processes compete for the cores; "
              f"with {torch.get_num_threads()} OpenMP threads spinning at barriers the timings can be many times "
              f"slower (try OMP_WAIT_POLICY=PASSIVE or --threads 1, or a quiet machine)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.perf_counter()
    device = resolve_device(args.device)
    params = load_params(args.params)
    # as training runs: train.threads (unless --threads), subnormals flushed to zero (runtime.compute_device)
    compute_device(device.type, args.threads if args.threads is not None else int(params.train["threads"]))
    load_before = load_average()
    _warn_if_loaded(load_before, device)
    run = Run(device, params, args.quick)
    build_steps(run)
    count_flops(run)
    times = {**time_steps(run), **time_marginal_likelihood(run)}
    gemm, machine_rate, square = matmul_rates(run)
    rows = [make_row(run, name, timing, gemm[name], machine_rate["float32"]) for name, timing in times.items()]
    info = machine_info(device)
    targets = make_targets(run, add_speedups(rows), device.type == "cuda" or info["mkldnn_bf16_supported"])
    info.update(load_average_before=load_before, load_average_after=load_average(), other_load_cores=run.loads,
                compile={"train.compile": bool(params.train["compile"]), "unavailable": run.compile_reason})
    elapsed = time.perf_counter() - started
    report = {
        "machine": info, "quick": run.quick, "seed": run.seed, "batch": BATCH, "paper_sizes": PAPER_SIZES,
        "timing": {"warmup_steps": run.warmup, "rounds": run.rounds, "round_seconds": run.round_seconds,
                   "statistic": "median", "calls_per_round": {r["name"]: r["calls_per_round"] for r in rows}},
        "flop_count": "GEMM FLOPs (2mnk) of the step, forward and backward, by torch.utils.flop_counter."
                      "FlopCounterMode; elementwise work not counted",
        "matmul_rate": {"definition": "GEMM FLOPs / summed time of the same GEMMs (shapes, strides, dtype) "
                                      "replayed alone; per row at its own GEMMs, machine-wide over the four "
                                      "models' steps",
                        "machine_flops_per_s": machine_rate, "square_1024_flops_per_s": square},
        "data": f"synthetic binary images (pixel density {PIXEL_DENSITY}); costs do not depend on the values",
        "rows": rows, "targets": targets, "seconds_total": elapsed,
    }
    write_json(args.out, report)
    print_report(report)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")
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
