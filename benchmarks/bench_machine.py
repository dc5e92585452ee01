"""The machine and its load, for the benchmark: CPU and torch information, other processes' CPU use while a block
runs (:class:`OtherLoad`), and interleaved timing of several functions (:func:`time_interleaved`)."""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch


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
