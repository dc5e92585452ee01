"""benchmarks/bench.py's reference model: the DLGMM with its decoder looped over components is the same model."""
from __future__ import annotations

from pathlib import Path

import torch

from dlgmm_core import build_model, registry
from dlgmm_core.params.load import load_params
from dlgmm_core.runtime import seed_everything
from test_training import _load_bench  # the benchmark script, loaded as a module

ROOT = Path(__file__).resolve().parents[1]


def test_the_looped_dlgmm_gives_the_batched_elbo():
    """Same seed, same weights, the paper's sizes: the per-component decoder loop the benchmark times against the
    batched decoder computes the same ELBO (the reference implementation's approach is a speed, not a model,
    difference)."""
    bench = _load_bench()
    kind, config = bench.paper_config(load_params(ROOT / "params.yaml"), "dlgmm")
    seed_everything(0)
    batched = build_model(kind, **config).train()
    looped = bench.LoopedDLGMM(registry.make_config(kind, config)).train()
    looped.load_state_dict(batched.state_dict())
    x = (torch.rand(20, 784, generator=torch.Generator().manual_seed(1)) < bench.PIXEL_DENSITY).float()
    calls = []
    looped.decoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    torch.manual_seed(3)
    batched_elbo = batched.elbo(x).detach().double()
    torch.manual_seed(3)
    looped_elbo = looped.elbo(x).detach().double()
    assert calls == [20] * config["components"]  # one decoder call per component
    assert torch.allclose(batched_elbo, looped_elbo, rtol=1e-5, atol=1e-3), \
        float((batched_elbo - looped_elbo).abs().max())


def test_the_benchmark_draws_its_inputs_from_the_first_seed():
    """A whole params.yaml lists ``seeds``: the benchmark seeds itself, and its synthetic batch, with the first
    (the run the report's single-run figures show), and records it."""
    bench = _load_bench()
    params = load_params(ROOT / "params.yaml")
    run = bench.Run(torch.device("cpu"), params, quick=True)
    assert run.seed == params.seeds[0]
    generator = torch.Generator().manual_seed(params.seeds[0])
    assert torch.equal(run.x, (torch.rand(bench.BATCH, 784, generator=generator) < bench.PIXEL_DENSITY).float())
