"""The training loop: early stopping, determinism, SIGKILL-and-resume, NaN handling, logs, the training
step (shared with the benchmark), the training state, the stage CLI.

Tiny models (hidden 16, latent 2) on random binary data, CPU, one thread.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dlgmm_core import build_model, layout, load_checkpoint, training
from dlgmm_core.errors import DlgmmError
from dlgmm_core.io import save_npz
from dlgmm_core.params.editor import set_params
from dlgmm_core.params.views import resolve
from dlgmm_core.resume import STATE_FORMAT, TrainState
from dlgmm_core.runtime import seed_everything
from dlgmm_core.training import TrainConfig, train_model, validation_elbo

ROOT = Path(__file__).resolve().parents[1]
SEED = 5
MODEL = {"input_dim": 784, "hidden": 16, "latent": 2}
STICKS = {"kl_method": "quadrature", "taylor_terms": 10}
MIXTURE = {**MODEL, "prior_means": [0.0], "prior_scales": [1.0], **STICKS}
TINY = {
    "gauss_vae": MODEL,
    "sb_vae": {"input_dim": 784, "hidden": 16, "truncation": 3, "alpha0": 5.0, **STICKS},
    "dlgmm": {**MIXTURE, "components": 3, "alpha": 1.0},
    "dldpmm": {**MIXTURE, "truncation": 3, "alpha0": 1.0},
}
TRAIN = {"lr": 1e-3, "batch_size": 100, "patience": 100, "max_epochs": 3, "max_train_examples": None,
         "max_valid_examples": None, "device": "cpu", "precision": "float32"}
# Subprocesses: one thread (bitwise reproducible and fast on a busy 2-core machine), no tty.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def binary(n: int, seed: int, p: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 784)) < p).astype(np.uint8)


def tiny_model(kind: str = "gauss_vae"):
    seed_everything(SEED)
    return build_model(kind, **TINY[kind])


def run(tmp: Path, config: dict | None = None, model=None, x_train=None, x_valid=None, seed: int = SEED):
    model = tiny_model() if model is None else model
    summary = train_model(model, binary(300, 1) if x_train is None else x_train,
                          binary(100, 2) if x_valid is None else x_valid, TrainConfig(**{**TRAIN, **(config or {})}),
                          seed=seed, state_path=tmp / "m.state.pt", checkpoint_path=tmp / "m.pt",
                          log_dir=tmp / "logs", metadata={"dataset": "mnist", "model": "gauss_vae"}, progress=False)
    return model, summary


def weights(path: Path) -> dict:
    return load_checkpoint(path).state_dict()


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def elbos(history: list[dict]) -> list[tuple]:
    return [(row["epoch"], row["train_elbo"], row["valid_elbo"]) for row in history]


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------
def test_early_stopping_keeps_the_best_epoch(tmp_path):
    # A large step size on 300 random images: validation soon stops improving.
    model, summary = run(tmp_path, {"lr": 0.03, "patience": 2, "max_epochs": 60})
    history = summary["history"]
    assert summary["stop_reason"] == "early_stopping"
    assert summary["epochs"] == summary["best_epoch"] + 2 < 60
    valid = [row["valid_elbo"] for row in history]
    assert summary["best_valid_elbo"] == max(valid) == valid[summary["best_epoch"] - 1]
    assert all(v <= summary["best_valid_elbo"] for v in valid[summary["best_epoch"]:])
    # The checkpoint holds the best epoch's weights: the seeded validation pass reproduces its value.
    best = load_checkpoint(tmp_path / "m.pt")
    xv = torch.from_numpy(binary(100, 2)).float()
    assert validation_elbo(best, xv, seed=SEED, epoch=summary["best_epoch"]) == summary["best_valid_elbo"]
    assert_same_weights(best.state_dict(), model.state_dict())
    _, extra = load_checkpoint(tmp_path / "m.state.pt", with_extra=True)
    assert extra["format"] == STATE_FORMAT and extra["finished"] and extra["epoch"] == summary["epochs"]


def test_same_seed_same_weights_and_history(tmp_path):
    _, first = run(tmp_path / "a")
    _, second = run(tmp_path / "b")
    assert_same_weights(weights(tmp_path / "a" / "m.pt"), weights(tmp_path / "b" / "m.pt"))
    assert elbos(first["history"]) == elbos(second["history"])
    _, other = run(tmp_path / "c", seed=SEED + 1)
    assert elbos(other["history"]) != elbos(first["history"])


def test_logs_one_row_per_epoch_and_nothing_else(tmp_path):
    _, summary = run(tmp_path, {"max_epochs": 3})
    plots = tmp_path / "logs" / "plots" / "metrics"
    for name in ("train/elbo", "valid/elbo", "epoch_seconds", "examples_per_second"):
        rows = read_tsv(plots / f"{name}.tsv")
        assert rows[0] == ["step", name.split("/")[-1]] and [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert [float(r[1]) for r in read_tsv(plots / "valid/elbo.tsv")[1:]] == [r["valid_elbo"] for r in summary["history"]]
    metrics = json.loads((tmp_path / "logs" / "metrics.json").read_text())
    assert metrics["best_valid_elbo"] == summary["best_valid_elbo"]
    assert (metrics["best_epoch"], metrics["epochs"], metrics["step"]) == (summary["best_epoch"], 3, 3)
    assert set(metrics["timing"]) == {"mean_epoch_seconds", "examples_per_second"}
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["logs/metrics.json", "logs/plots/metrics/epoch_seconds.tsv",
                     "logs/plots/metrics/examples_per_second.tsv", "logs/plots/metrics/train/elbo.tsv",
                     "logs/plots/metrics/valid/elbo.tsv", "m.pt", "m.state.pt"]


def test_bf16_autocast_trains(tmp_path):
    _, summary = run(tmp_path, {"precision": "bf16", "max_epochs": 1})
    assert np.isfinite(summary["best_valid_elbo"]) and summary["epochs"] == 1


def _poison(model, at_call: int, gradient_only: bool = False):
    """Make the ``at_call``-th training call of ``model.elbo`` non-finite (in value or in gradient)."""
    original, calls = model.elbo, [0]

    def elbo(x):
        out = original(x)
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == at_call:
                if not gradient_only:
                    return out * float("nan")
                # finite value, NaN gradient: 0 * d sqrt(u)/du at u = 0
                first = next(model.parameters())
                return out + 0.0 * torch.sqrt(first.sum() * 0.0)
        return out

    model.elbo = elbo
    return model


@pytest.mark.parametrize("gradient_only", [False, True])
def test_non_finite_stops_with_epoch_and_step_and_keeps_last_state(tmp_path, gradient_only):
    # 3 steps per epoch: the 5th training call is epoch 2, step 2.
    model = _poison(tiny_model(), at_call=5, gradient_only=gradient_only)
    with pytest.raises(DlgmmError) as err:
        run(tmp_path, {"max_epochs": 4}, model=model)
    what = "gradient" if gradient_only else "ELBO"
    assert f"non-finite {what} at epoch 2, step 2 (batch of 100 examples" in str(err.value)
    _, extra = load_checkpoint(tmp_path / "m.state.pt", with_extra=True)
    assert extra["epoch"] == 1 and not extra["finished"] and len(extra["history"]) == 1
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "m.pt").values())
    assert len(read_tsv(tmp_path / "logs" / "plots" / "metrics" / "valid" / "elbo.tsv")) == 2


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("kind", list(TINY))
def test_interrupted_and_resumed_equals_uninterrupted_for_every_kind(tmp_path, kind):
    config = {"max_epochs": 3, "max_train_examples": 200}
    model, reference = run(tmp_path / "ref", config, model=tiny_model(kind))
    # Interrupted in epoch 2, step 1 (2 steps per epoch: the 3rd training call).
    broken = tiny_model(kind)
    original, calls = broken.elbo, [0]

    def elbo(x):
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == 3:
                raise Interrupt
        return original(x)

    broken.elbo = elbo
    with pytest.raises(Interrupt):
        run(tmp_path / "work", config, model=broken)
    (tmp_path / "work" / "m.pt").unlink()
    resumed, summary = run(tmp_path / "work", config, model=tiny_model(kind))
    assert summary["resumed_from"] == 1 and summary["epochs_trained"] == 2
    assert elbos(summary["history"]) == elbos(reference["history"])
    assert_same_weights(weights(tmp_path / "work" / "m.pt"), weights(tmp_path / "ref" / "m.pt"))
    assert_same_weights(resumed.state_dict(), model.state_dict())


# --------------------------------------------------------------------------
# the training step and the training state
# --------------------------------------------------------------------------
def _reference_step(model, optimizer, params, x, precision):
    """The training step written out op by op: the arithmetic train_step must keep."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with autocast:
        elbo = model.elbo(x)
    elbo = elbo.float()
    loss = -elbo.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    optimizer.step()
    return elbo.detach().sum(), norm


def _trainable(model, lr=1e-3):
    params = [p for p in model.parameters() if p.requires_grad]
    return params, training.make_optimizer(params, lr, torch.device("cpu"))


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_train_step_is_the_reference_step(precision):
    x = torch.from_numpy(binary(100, 3)).float()
    results, models = [], []
    for step in (_reference_step, training.train_step):
        model = tiny_model("dlgmm")
        params, optimizer = _trainable(model)
        torch.manual_seed(11)
        results.append([tuple(step(model, optimizer, params, x, precision)) for _ in range(3)])
        models.append(model)
    for (ref_sum, ref_norm), (got_sum, got_norm) in zip(*results):
        assert got_sum.dtype == torch.float32 and torch.equal(got_sum, ref_sum) and torch.equal(got_norm, ref_norm)
    assert_same_weights(models[1].state_dict(), models[0].state_dict())


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_benchmark_step_is_the_training_loops_step():
    # One epoch of the loop (3 steps in a permutation) against the benchmark's step fed the same batches.
    x = torch.from_numpy(binary(300, 3)).float()
    loop_model = tiny_model()
    params, optimizer = _trainable(loop_model, lr=3e-4)
    torch.manual_seed(11)
    loop_elbo = training._run_epoch(loop_model, optimizer, params, x, torch.Generator().manual_seed(4),
                                    batch_size=100, precision="float32", epoch=1, progress=False)
    bench_model = tiny_model()
    batch = torch.empty(100, 784)
    step = _load_bench().make_step(bench_model, batch, "float32", torch.device("cpu"))
    perm = torch.randperm(300, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(11)
    sums = []
    for start in range(0, 300, 100):
        batch.copy_(x.index_select(0, perm[start:start + 100]))
        elbo_sum, grad_norm = step()
        sums.append(float(elbo_sum))
        assert math.isfinite(float(grad_norm))
    assert_same_weights(bench_model.state_dict(), loop_model.state_dict())
    assert loop_elbo == float(torch.tensor(sums, dtype=torch.float64).sum()) / 300


def test_the_loop_trains_with_train_step(tmp_path, monkeypatch):
    calls, step = [], training.train_step

    def counted(model, optimizer, params, x_batch, precision, elbo_fn=None):
        calls.append(tuple(x_batch.shape))
        return step(model, optimizer, params, x_batch, precision, elbo_fn)

    monkeypatch.setattr(training, "train_step", counted)
    run(tmp_path, {"max_epochs": 2})
    assert calls == [(100, 784)] * 6  # 300 examples, batches of 100, 2 epochs


def _assert_same_tree(a, b, where="extra"):
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_same_tree(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{index}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, where


def test_train_state_round_trip_keeps_the_stored_layout(tmp_path):
    _, summary = run(tmp_path, {"max_epochs": 2})
    _, extra = load_checkpoint(tmp_path / "m.state.pt", with_extra=True)
    assert list(extra) == ["format", "fingerprint", "fingerprint_parts", "epoch", "finished", "stop_reason",
                           "best_valid_elbo", "best_epoch", "bad_epochs", "history", "optimizer", "rng",
                           "best_state_dict"]
    state = TrainState.from_dict(extra)
    assert (state.epoch, state.finished, state.stop_reason, state.best_epoch) == (2, True, "max_epochs", 2)
    assert state.best_valid_elbo == summary["best_valid_elbo"] and state.history == summary["history"]
    assert state.history is not extra["history"]
    _assert_same_tree(state.to_dict(), extra)
    _assert_same_tree(TrainState.from_dict(state.to_dict()).to_dict(), extra)
    fresh = TrainState(fingerprint="f", fingerprint_parts={"seed": 1})
    assert fresh.to_dict() == {"format": STATE_FORMAT, "fingerprint": "f", "fingerprint_parts": {"seed": 1},
                               "epoch": 0, "finished": False, "stop_reason": None, "best_valid_elbo": None,
                               "best_epoch": 0, "bad_epochs": 0, "history": [], "optimizer": None, "rng": None,
                               "best_state_dict": None}


def test_train_state_keeps_a_copy_of_the_best_weights_and_counts_patience():
    model = tiny_model()
    state = TrainState(fingerprint="f", fingerprint_parts={})
    for epoch, valid in enumerate([-5.0, -4.0, -4.0, -4.5], start=1):
        improved = state.record_validation(epoch, valid, model)
        state.complete_epoch({"epoch": epoch}, patience=2, max_epochs=10, optimizer={}, rng={})
        assert improved == (epoch <= 2) and state.finished == (epoch == 4)
        if epoch == 2:
            best = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():  # the live weights move on after every epoch
            for p in model.parameters():
                p.add_(1.0)
    assert (state.best_epoch, state.best_valid_elbo, state.bad_epochs, state.stop_reason, state.epoch) == (
        2, -4.0, 2, "early_stopping", 4)
    assert_same_weights(state.best_state_dict, best)
    state = TrainState(fingerprint="f", fingerprint_parts={})
    state.complete_epoch({"epoch": 3}, patience=5, max_epochs=3, optimizer={}, rng={})
    assert state.finished and state.stop_reason == "max_epochs"


# --------------------------------------------------------------------------
# the stage, as DVC runs it
# --------------------------------------------------------------------------
def make_workspace(path: Path, **train) -> Path:
    """params.yaml (tiny gauss_vae, CPU) and data/prepared/mnist.npz in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    settings = {"budget": "paper", "seeds": [SEED], "model.gauss_vae.hidden": 16, "model.gauss_vae.latent": 2,
                "train.device": "cpu", "train.precision": "float32", "train.lr": 1e-3, "protocol.authors.train.patience": 100, **train}
    set_params(path / "params.yaml", [f"{k}={json.dumps(v)}" for k, v in settings.items()])
    resolve(path / "params.yaml", path)
    labels = {f"y_{s}": np.arange(n) % 10 for s, n in (("train", 3000), ("valid", 300), ("test", 10))}
    save_npz(path / "data" / "prepared" / "mnist.npz", x_train=binary(3000, 1), x_valid=binary(300, 2),
             x_test=binary(10, 3), **labels)
    return path


def stage(cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py"), "--protocol", "authors",
                             "--seed", str(SEED), "--dataset", "mnist", "--model", "gauss_vae"], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stage_here(cwd: Path, monkeypatch, capsys) -> str:
    """The stage's main in this process (as a subprocess would run it, minus the start-up cost)."""
    import runpy

    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(sys, "argv", ["train.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "gauss_vae"])
        runpy.run_path(str(ROOT / "stages" / "train.py"), run_name="__main__")
    return capsys.readouterr().out


def outputs(cwd: Path) -> tuple[dict, list, dict]:
    _, extra = load_checkpoint(layout.train_state("authors", SEED, "mnist", "gauss_vae", cwd), with_extra=True)
    return weights(layout.checkpoint("authors", SEED, "mnist", "gauss_vae", cwd)), elbos(extra["history"]), extra


def test_stage_sigkill_and_resume_is_bitwise_identical(tmp_path, monkeypatch, capsys):
    epochs = 8
    ref = make_workspace(tmp_path / "ref", **{"protocol.authors.train.max_epochs": epochs})
    out = stage_here(ref, monkeypatch, capsys)
    ref_weights, ref_history, _ = outputs(ref)
    assert len(ref_history) == epochs and "from scratch" in out

    # The stage in a subprocess, SIGKILLed in the epoch after the second one completed.
    work = make_workspace(tmp_path / "work", **{"protocol.authors.train.max_epochs": epochs})
    proc = stage(work)
    if not any(f"epoch   2/{epochs}" in line for line in proc.stdout):
        pytest.fail(f"the stage ended before epoch 2: {proc.communicate()[1]}")
    time.sleep(0.02)  # an epoch takes about 0.1 s: the kill lands in epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    _, extra = load_checkpoint(layout.train_state("authors", SEED, "mnist", "gauss_vae", work), with_extra=True)
    assert 2 <= extra["epoch"] < epochs and not extra["finished"]
    # DVC deletes the non-persistent outputs before running the stage again.
    layout.checkpoint("authors", SEED, "mnist", "gauss_vae", work).unlink(missing_ok=True)
    shutil.rmtree(work / "logs")
    out = stage_here(work, monkeypatch, capsys)
    assert f"resuming after epoch {extra['epoch']}" in out
    got_weights, got_history, _ = outputs(work)
    assert_same_weights(got_weights, ref_weights)
    assert got_history == ref_history
    logs, ref_logs = (layout.train_logs("authors", SEED, "mnist", "gauss_vae", d) for d in (work, ref))
    for name in ("train/elbo", "valid/elbo"):
        assert read_tsv(logs / f"plots/metrics/{name}.tsv") == read_tsv(ref_logs / f"plots/metrics/{name}.tsv")
    metrics, ref_metrics = (json.loads((d / "metrics.json").read_text()) for d in (logs, ref_logs))
    assert {k: v for k, v in metrics.items() if k != "timing"} == {k: v for k, v in ref_metrics.items() if k != "timing"}

    # Finished: a rerun rewrites the deleted outputs without training.
    layout.checkpoint("authors", SEED, "mnist", "gauss_vae", work).unlink()
    shutil.rmtree(work / "logs")
    out = stage_here(work, monkeypatch, capsys)
    assert "already trained" in out and "epoch   1/" not in out
    assert_same_weights(outputs(work)[0], ref_weights)
    assert read_tsv(logs / "plots/metrics/valid/elbo.tsv") == read_tsv(ref_logs / "plots/metrics/valid/elbo.tsv")

    # Another configuration (lr): the state is discarded, not resumed.
    set_params(work / "params.yaml", ["train.lr=0.002", "protocol.authors.train.max_epochs=1"])
    resolve(work / "params.yaml", work)
    out = stage_here(work, monkeypatch, capsys)
    assert "written by another configuration (train differ); discarded" in out and "from scratch" in out
    assert len(outputs(work)[1]) == 1


def test_stage_invalid_params_exit_2_one_line(tmp_path):
    """The resolve stage refuses a bad value with one line and leaves the stages' parameters as they were."""
    work = make_workspace(tmp_path)
    before = {p.name: p.read_bytes() for p in layout.stage_params_dir(work).iterdir()}
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["lr"] = 0
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "resolve.py")], cwd=work, env=ENV, text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.lr" in lines[0] and "Traceback" not in proc.stderr
    assert {p.name: p.read_bytes() for p in layout.stage_params_dir(work).iterdir()} == before
    assert not (work / "models").exists()


# --------------------------------------------------------------------------
# train.compile
# --------------------------------------------------------------------------
def test_compiled_training_resumes_bitwise_and_stays_near_eager(tmp_path, monkeypatch):
    """A compiled run killed after epoch 1 and resumed (compiling again) equals the uninterrupted compiled run
    bitwise; compiled and eager draw the same noise, so their ELBOs differ only by float rounding."""
    config = {"max_epochs": 2, "max_train_examples": 200, "compile": True}
    model, reference = run(tmp_path / "ref", config, model=tiny_model("dlgmm"))
    _, eager = run(tmp_path / "eager", {**config, "compile": False}, model=tiny_model("dlgmm"))
    for (_, c_train, c_valid), (_, e_train, e_valid) in zip(elbos(reference["history"]), elbos(eager["history"])):
        assert c_train == pytest.approx(e_train, rel=1e-4) and c_valid == pytest.approx(e_valid, rel=1e-4)

    original, calls = training._run_epoch, [0]

    def run_epoch(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "_run_epoch", run_epoch)
    with pytest.raises(Interrupt):
        run(tmp_path / "work", config, model=tiny_model("dlgmm"))
    monkeypatch.setattr(training, "_run_epoch", original)
    torch._dynamo.reset()  # the resumed run compiles afresh, as a new process would
    resumed, summary = run(tmp_path / "work", config, model=tiny_model("dlgmm"))
    assert summary["resumed_from"] == 1 and summary["epochs_trained"] == 1
    assert elbos(summary["history"]) == elbos(reference["history"])
    assert_same_weights(resumed.state_dict(), model.state_dict())


def test_compile_unavailable_trains_eager_with_a_notice(tmp_path, monkeypatch, capsys):
    config = {"max_epochs": 1, "max_train_examples": 200}
    _, eager = run(tmp_path / "eager", config)
    monkeypatch.setattr(training, "compiler_unavailable", lambda device_type: "CppCompileError: no C++ compiler")
    _, fallback = run(tmp_path / "fallback", {**config, "compile": True})
    assert "notice: train.compile: torch.compile is unavailable here (CppCompileError: no C++ compiler); " \
           "training eager" in capsys.readouterr().out
    assert elbos(fallback["history"]) == elbos(eager["history"])
    extra = load_checkpoint(tmp_path / "fallback" / "m.state.pt", with_extra=True)[1]
    assert extra["fingerprint_parts"]["compiled"] is False and extra["fingerprint_parts"]["train"]["compile"] is True


def test_train_compile_must_be_a_boolean():
    with pytest.raises(DlgmmError, match=r"^TrainConfig.compile must be a bool \(got 'yes'\)$"):
        TrainConfig(**{**TRAIN, "compile": "yes"})


def test_benchmark_counts_other_processes_cpu_as_load():
    """bench.OtherLoad sees another process keeping a core busy (the benchmark then reports no fraction)."""
    bench = _load_bench()
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)  # the child is running
        with bench.OtherLoad() as load:
            time.sleep(0.8)
    finally:
        spinner.wait()
    assert load.cores is not None and load.cores > bench.BUSY_CORES


def test_compute_device_flushes_subnormals_on_cpu():
    from dlgmm_core.runtime import compute_device

    subnormal = torch.tensor([1e-40], dtype=torch.float32)
    assert float(subnormal * 1.0) != 0.0
    assert compute_device("cpu", 1).type == "cpu" and torch.get_num_threads() == 1
    assert float(subnormal * 1.0) == 0.0
