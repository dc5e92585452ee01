"""The GEMM meter of the benchmark: every matrix multiply a step runs, recorded with its shapes, strides and dtype
(:class:`GemmRecorder`), counted in FLOPs (2 m n k), then replayed alone and timed (:class:`GemmRates`): the rate the
machine reaches at the models' own shapes."""
from __future__ import annotations

import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

GEMM_OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default}


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


def count_step(step) -> tuple[list, int]:
    """The GEMM calls of one step and FlopCounterMode's FLOP total for it."""
    counter = FlopCounterMode(display=False)
    recorder = GemmRecorder()
    with counter, recorder:
        step()
    return recorder.calls, int(counter.get_total_flops())


def square_rates(rates: GemmRates) -> dict[str, float]:
    """FLOP/s of a square 1024 x 1024 matrix multiply, float32 and bf16 (a reference beside the models' shapes)."""
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        t = (((1024, 1024), (1024, 1), dtype), ((1024, 1024), (1024, 1), dtype))
        call = (torch.ops.aten.mm.default, t, ())
        out[str(dtype).replace("torch.", "")] = gemm_flops(call[0], t) / rates.time(call)
    return out
