"""What only a CUDA device can check: model, data, optimizer and estimators on the device; checkpoints
moving between CUDA and the CPU; evaluation on a CPU copy agreeing with the CUDA model.

Every test here is marked ``cuda`` and skipped where torch sees no CUDA device (tests/conftest.py);
``benchmarks/gpu_check.py`` runs them where a GPU is lent. They need neither DVC nor dvclive.
"""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dlgmm_core import build_model, importance_bounds, load_checkpoint, save_checkpoint, training
from dlgmm_core.data import load_prepared
from dlgmm_core.estimators import authors_log_marginal_likelihood, log_weight_table
from dlgmm_core.evaluation import batched, marginal_likelihood
from dlgmm_core.io import save_npz
from dlgmm_core.runtime import as_float_tensor, seed_everything
from test_training import TINY  # the tiny models of every kind, as the CPU tests build them

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[1]
DEVICE = torch.device("cuda")
MIXTURES = ("dlgmm", "dldpmm")


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def binary(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 784)) < 0.3).astype(np.uint8)


def tiny_model(kind: str, spread: float = 0.0):
    """A tiny model of ``kind``; ``spread`` adds N(0, spread^2) to every weight (values away from the
    near-constant output of the 0.01-scale initialisation)."""
    seed_everything(3)
    model = build_model(kind, **TINY[kind])
    if spread:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(spread * torch.randn_like(p))
    return model


def on_device(tensor: torch.Tensor) -> bool:
    return tensor.device.type == DEVICE.type


@pytest.mark.parametrize("kind", list(TINY))
def test_a_training_step_runs_on_the_device(kind):
    """The loop's data transfer, fused Adam and step: every tensor on the device, the weights moved."""
    model = tiny_model(kind).to(DEVICE)
    x = as_float_tensor(binary(100), DEVICE)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = training.make_optimizer(params, 1e-3, DEVICE)
    before = [p.detach().clone() for p in params]
    elbo_sum, grad_norm = training.train_step(model, optimizer, params, x, "float32")
    assert on_device(x) and on_device(elbo_sum) and on_device(grad_norm)
    assert torch.isfinite(elbo_sum) and torch.isfinite(grad_norm) and float(grad_norm) > 0
    assert all(on_device(p) and on_device(p.grad) for p in params)
    assert all(on_device(value) for state in optimizer.state.values() for value in state.values()
               if isinstance(value, torch.Tensor) and value.dim() > 0)
    assert any(not torch.equal(a, b) for a, b in zip(before, params))


def test_prepared_data_and_the_validation_pass_on_the_device(tmp_path):
    arrays = {f"x_{s}": binary(n, i) for i, (s, n) in enumerate((("train", 200), ("valid", 50), ("test", 50)))}
    arrays |= {f"y_{s}": np.zeros(len(arrays[f"x_{s}"]), dtype=np.int64) for s in ("train", "valid", "test")}
    save_npz(tmp_path / "mnist.npz", **arrays)
    data = load_prepared(tmp_path / "mnist.npz")
    x = as_float_tensor(data["x_valid"], DEVICE)
    assert on_device(x) and x.dtype == torch.float32
    assert torch.equal(x.cpu(), torch.from_numpy(arrays["x_valid"]).float())
    model = tiny_model("dlgmm").to(DEVICE)
    first = training.validation_elbo(model, x, seed=1, epoch=1)
    assert np.isfinite(first) and first == training.validation_elbo(model, x, seed=1, epoch=1)
    seen = []
    rows = batched(lambda xb: seen.append(xb.device.type) or xb.sum(dim=1), data["x_test"], DEVICE, batch_size=20)
    assert set(seen) == {DEVICE.type} and np.array_equal(rows, arrays["x_test"].sum(axis=1).astype(np.float64))


@pytest.mark.parametrize("kind", list(TINY))
def test_the_estimators_run_on_the_device(kind):
    model = tiny_model(kind, spread=0.1).to(DEVICE).eval()
    x = as_float_tensor(binary(7), DEVICE)
    bounds = importance_bounds(model, x, 30, at=(1, 10), batch_size=64)
    assert sorted(bounds) == [1, 10, 30]
    assert all(on_device(v) and v.dtype == torch.float64 and bool(torch.isfinite(v).all()) for v in bounds.values())
    components = ("summed", "sampled") if kind in MIXTURES else ("summed",)
    for component in components:
        table = log_weight_table(model, x, 12, component=component, batch_size=50)
        assert on_device(table) and table.shape == (12, 7) and bool(torch.isfinite(table).all())
    log_px, dropped = authors_log_marginal_likelihood(model, x, draws=8, batch_size=50)
    assert log_px.shape == (7,) and dropped == 0 and bool(torch.isfinite(log_px).all())


@pytest.mark.parametrize("kind", ["gauss_vae", "dlgmm"])
def test_a_checkpoint_written_on_cuda_loads_on_the_cpu_and_back(tmp_path, kind):
    on_gpu = tiny_model(kind, spread=0.1).to(DEVICE)
    save_checkpoint(tmp_path / "gpu.pt", on_gpu, metadata={"written_on": "cuda"})
    on_cpu = load_checkpoint(tmp_path / "gpu.pt", map_location="cpu")
    weights = on_gpu.state_dict()
    assert all(v.device.type == "cpu" and torch.equal(v, weights[k].cpu()) for k, v in on_cpu.state_dict().items())

    save_checkpoint(tmp_path / "cpu.pt", on_cpu)
    for location in ("cuda", DEVICE):
        back = load_checkpoint(tmp_path / "cpu.pt", map_location=location)
        assert all(on_device(v) and torch.equal(v.cpu(), on_cpu.state_dict()[k]) for k, v in back.state_dict().items())


@pytest.mark.parametrize("kind", list(TINY))
def test_evaluation_on_a_cpu_copy_agrees_with_the_cuda_model(kind):
    """The marginal-likelihood evaluation (ours, the authors', the IWAE bounds, the ELBO) of the same weights
    and noise on the CPU and on CUDA agree within gpu_check's stated tolerance, per example for the ELBO."""
    check = gpu_check()
    cpu = tiny_model(kind, spread=0.1).eval()
    cuda = copy.deepcopy(cpu).to(DEVICE)
    x = binary(20, 5)
    results = []
    for model, device in ((cpu, torch.device("cpu")), (cuda, DEVICE)):
        with check.shared_noise(7):
            results.append(marginal_likelihood(model, x, 40, [1, 10], 400, device, progress=False,
                                               authors_samples=10, headline="ours"))
    on_cpu, on_cuda = results
    pairs = [(on_cpu["nll"], on_cuda["nll"]), (on_cpu["elbo"], on_cuda["elbo"]),
             (on_cpu["authors"]["nll"], on_cuda["authors"]["nll"])]
    pairs += [(on_cpu["bounds"][s], on_cuda["bounds"][s]) for s in on_cpu["bounds"]]
    assert all(abs(b - a) <= check.ELBO_ATOL + check.ELBO_RTOL * abs(a) for a, b in pairs), pairs
    per_example = check.compare_devices(check.elbo_under_shared_noise(cpu, torch.from_numpy(x).float(), seed=2),
                                        check.elbo_under_shared_noise(cuda, torch.from_numpy(x).float(), seed=2))
    assert per_example["within_tolerance"] and per_example["finite"], per_example
