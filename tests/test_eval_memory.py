"""Evaluation loops keep no per-chunk tensor alive: the memory they hold does not grow with the test set.

Tiny tensors kept one per chunk (a list to concatenate at the end) pin the heap between the importance
sampler's large temporaries, which glibc then can neither reuse nor return: the marginal likelihood of a
loaded 5-component model at S = 5,000 grew to 6.4 GB resident over 2,000 MNIST test images, and was killed
at 23 GB on the full test set (``benchmarks/eval_memory.py`` measures the peak on a trained checkpoint).
These tests check the property itself: when chunk ``i`` is computed, what chunk ``i - 2`` returned is gone;
the last one, which trained checkpoint that benchmark measures.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from dlgmm_core import layout
from dlgmm_core.evaluation import batched, marginal_likelihood

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


class ChunkTracker:
    """Records a weak reference to the storage of every tensor a chunk function returns (a detached view or
    ``.to()`` of it shares that storage, so a copy kept anywhere keeps it alive), and how many of those of
    chunks before the previous one were still alive when each later chunk began."""

    def __init__(self):
        self.returned: list[list[weakref.ref]] = []
        self.alive_then: list[int] = []

    def begin(self) -> None:
        gc.collect()
        self.alive_then.append(sum(ref() is not None for refs in self.returned[:-1] for ref in refs))

    def keep(self, *tensors: torch.Tensor) -> None:
        self.returned.append([weakref.ref(t.untyped_storage()) for t in tensors])


class StandIn(torch.nn.Module):
    def elbo(self, x):
        return -x.sum(1)


@pytest.mark.parametrize("chunk_examples", [1, 3])
def test_marginal_likelihood_keeps_no_chunk_result(chunk_examples):
    tracker = ChunkTracker()

    def bounds(model, x, samples, at, batch_size):
        tracker.begin()
        out = {s: -x.sum(1).double() - 1.0 / s for s in (*at, samples)}
        tracker.keep(*out.values())
        return out

    samples = 4
    x = (np.random.default_rng(0).random((12, 784)) < 0.2).astype(np.uint8)
    result = marginal_likelihood(StandIn(), x, samples, [1, 2], samples * chunk_examples, CPU, progress=False,
                                 bounds_fn=bounds,
                                 weights_fn=lambda m, xb, d, component, batch_size: -xb.sum(1).double().expand(d, -1))
    assert len(tracker.alive_then) == 12 // chunk_examples
    assert tracker.alive_then == [0] * len(tracker.alive_then)
    assert result["ours"]["nll"] == pytest.approx(float(x.sum(1).mean()) + 1 / samples)


def test_batched_keeps_no_batch_result():
    tracker = ChunkTracker()

    def fn(xb):
        tracker.begin()
        out = xb.sum(1, keepdim=True).double().expand(-1, 2)
        tracker.keep(out)
        return out

    x = np.arange(20 * 3, dtype=np.uint8).reshape(20, 3)
    values = batched(fn, x, CPU, batch_size=3, progress=False)
    assert tracker.alive_then == [0] * 7
    np.testing.assert_array_equal(values, np.repeat(x.sum(1, keepdims=True), 2, axis=1).astype(np.float64))


def _load_eval_memory():
    spec = importlib.util.spec_from_file_location("eval_memory", ROOT / "benchmarks" / "eval_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_measured_checkpoint_is_of_the_run_of_the_seed_asked_for(tmp_path):
    """``benchmarks/eval_memory.py`` measures, by default, an MNIST mixture checkpoint of the run of its seed
    (params.yaml's first, as the committed report view lists them, unless ``--seed`` says otherwise): the
    corrected protocol's before the authors', the DLGMM before the qualitative model; another seed's checkpoint
    is not that run's."""
    eval_memory = _load_eval_memory()
    for protocol, model in (("authors", "dlgmm"), ("corrected", "qualitative"), ("authors", "qualitative")):
        path = layout.checkpoint(protocol, 1235, "mnist", model, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    expected = tmp_path / "models" / "corrected" / "seed-1235" / "mnist" / "qualitative.pt"
    assert eval_memory.default_checkpoint(1235, tmp_path) == expected
    assert eval_memory.default_checkpoint(1234, tmp_path) is None
    report = json.loads(layout.stage_params(layout.report_stage(), ROOT).read_text())
    assert eval_memory.first_seed() == report["seeds"][0]
