"""``benchmarks/gpu_check.py`` where no GPU is: its arithmetic, its summary, its time budget, its one-line
refusal, and its imports on a machine without DVC, dvclive and ruamel.yaml (as the lent GPU machines are)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dlgmm_core import build_model, layout
from dlgmm_core.runtime import seed_everything
from dlgmm_core.history import summarize as summarize_history

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
#: A machine where torch sees no GPU, whether or not this one has one.
NO_GPU = {"CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
#: A sitecustomize that makes importing dvc, dvclive and ruamel fail, as on the lent GPU machines.
WITHOUT_DVC = textwrap.dedent('''
    import sys

    class _Absent:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("dvc", "dvclive", "ruamel"):
                raise ImportError(f"No module named {name!r} (absent on the GPU machine)")
            return None

    sys.meta_path.insert(0, _Absent())
''')


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args: list[str], env: dict, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------
# the paper budget's projection
# --------------------------------------------------------------------------
def test_steps_per_epoch_rounds_the_last_batch_up(check):
    assert check.steps_per_epoch(50_000, 100) == 500
    assert check.steps_per_epoch(3388, 100) == 34
    assert check.steps_per_epoch(1, 100) == 1


def test_the_projection_multiplies_epochs_steps_and_step_times(check):
    trainings = [
        {"protocol": "authors", "seed": 1234, "dataset": "mnist", "model": "gauss_vae", "epochs": 10,
         "cpu_seconds": 3600.0, "steps_per_epoch": 500},
        {"protocol": "authors", "seed": 1235, "dataset": "omniglot", "model": "dlgmm", "epochs": 3,
         "cpu_seconds": 360.0, "steps_per_epoch": 34},
        {"protocol": "authors", "seed": 1234, "dataset": "mnist", "model": "sb_vae", "epochs": 5,
         "cpu_seconds": 36.0, "steps_per_epoch": 500},
        {"protocol": "corrected", "seed": 1236, "dataset": "mnist", "model": "dlgmm", "epochs": 5,
         "cpu_seconds": 36.0, "steps_per_epoch": None},
    ]
    step_ms = {"gauss_vae": {"eager": 2.0, "compiled": 1.0}, "dlgmm": {"eager": 4.0}}
    parallel = [{"mode": "eager", "jobs": 4, "throughput_factor": 2.5},
                {"mode": "eager", "jobs": 8, "throughput_factor": 3.0},
                {"mode": "compiled", "jobs": 4, "throughput_factor": 0.9},
                {"mode": "compiled", "jobs": 8, "error": "skipped for time"}]
    projected = check.project_budget(trainings, step_ms, parallel)

    gauss, dlgmm = projected["rows"]
    assert (gauss["seed"], dlgmm["seed"]) == (1234, 1235)  # one row per training: each seed's its own
    assert gauss["steps"] == 5000 and gauss["eager_hours"] == pytest.approx(5000 * 2.0 / 1e3 / 3600)
    assert gauss["compiled_hours"] == pytest.approx(5000 * 1.0 / 1e3 / 3600) and gauss["cpu_hours"] == 1.0
    assert dlgmm["steps"] == 102 and dlgmm["eager_hours"] == pytest.approx(102 * 4.0 / 1e3 / 3600)
    assert "compiled_hours" not in dlgmm
    eager_s = 5000 * 2.0 / 1e3 + 102 * 4.0 / 1e3
    totals = projected["totals"]
    assert totals["eager"]["one_at_a_time_hours"] == pytest.approx(eager_s / 3600) and totals["eager"]["trainings"] == 2
    assert totals["eager"]["side_by_side_jobs"] == 8
    assert totals["eager"]["side_by_side_hours"] == pytest.approx(eager_s / 3600 / 3.0)
    # side by side only where it measured a gain
    assert totals["compiled"] == {"trainings": 1, "one_at_a_time_hours": pytest.approx(5000 * 1.0 / 1e3 / 3600)}
    assert projected["missing"] == ["authors/seed-1234/mnist/sb_vae", "corrected/seed-1236/mnist/dlgmm"]
    assert projected["cpu_logged_hours"] == pytest.approx((3600 + 360 + 36 + 36) / 3600)


def _logged_project(root: Path, protocol: str, seed: int, dataset: str, model: str, *, train_examples: int,
                    max_train_examples: int | None = None, knn_cap: int | None = None, epochs: int = 7) -> None:
    """A project folder holding what the projection reads of one training: its log, its view, the kNN result."""
    metrics = layout.train_metrics(protocol, seed, dataset, model, root)
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"epochs": epochs, "timing": {"mean_epoch_seconds": 10.0}}))
    views = {layout.train_stage(protocol, seed, dataset, model): {"train": {"batch_size": 100,
                                                                            "max_train_examples": max_train_examples}},
             layout.knn_stage(protocol, seed, dataset, "dlgmm"): {"eval": {"knn": {"max_train_examples": knn_cap}}}}
    for stage, view in views.items():
        layout.stage_params(stage, root).parent.mkdir(parents=True, exist_ok=True)
        layout.stage_params(stage, root).write_text(json.dumps(view))
    result = layout.knn_result(protocol, seed, dataset, "dlgmm", root)
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps({"train_examples": train_examples}))


def test_the_logged_trainings_give_epochs_and_steps_per_epoch(check, tmp_path):
    _logged_project(tmp_path, "authors", 1234, "omniglot", "gauss_vae", train_examples=3388)
    _logged_project(tmp_path, "corrected", 1234, "mnist", "sb_vae", train_examples=50_000, max_train_examples=1000)
    rows = {r["protocol"]: r for r in check.logged_trainings(tmp_path)}
    assert rows["authors"] == {"protocol": "authors", "seed": 1234, "dataset": "omniglot", "model": "gauss_vae",
                               "epochs": 7, "cpu_seconds": 70.0, "steps_per_epoch": 34}
    assert rows["corrected"]["steps_per_epoch"] == 10  # the view's max_train_examples caps the training set


def test_each_seed_of_a_training_is_a_logged_training_of_its_own(check, tmp_path):
    """Every seed's log is read, with its own run's views and kNN result; a folder that is not one of the
    layout's runs (no ``seed-<n>`` below the protocol) is none of the pipeline's trainings."""
    _logged_project(tmp_path, "authors", 1234, "omniglot", "gauss_vae", train_examples=3388)
    _logged_project(tmp_path, "authors", 1235, "omniglot", "gauss_vae", train_examples=3388, knn_cap=500, epochs=9)
    stray = tmp_path / "logs" / "authors" / "omniglot" / "gauss_vae" / "metrics.json"
    stray.parent.mkdir(parents=True)
    stray.write_text(json.dumps({"epochs": 1, "timing": {"mean_epoch_seconds": 1.0}}))
    assert check.logged_runs(tmp_path) == [("authors", 1234, "omniglot", "gauss_vae"),
                                           ("authors", 1235, "omniglot", "gauss_vae")]
    rows = {r["seed"]: r for r in check.logged_trainings(tmp_path)}
    assert sorted(rows) == [1234, 1235]
    assert (rows[1234]["epochs"], rows[1235]["epochs"]) == (7, 9)
    # seed 1235's own kNN result is capped, so its training-set size comes from seed 1234's (the prepared data
    # do not depend on the seed)
    assert rows[1234]["steps_per_epoch"] == 34 and rows[1235]["steps_per_epoch"] == 34


def test_a_capped_knn_result_tells_no_training_set_size(check, tmp_path):
    _logged_project(tmp_path, "authors", 1234, "mnist", "gauss_vae", train_examples=500, knn_cap=500)
    assert check.logged_trainings(tmp_path)[0]["steps_per_epoch"] is None


def test_every_committed_training_log_is_projected(check):
    rows = check.logged_trainings(ROOT)
    assert len(rows) == len(list(layout.logs_dir(ROOT).glob("*/*/*/*/metrics.json"))) > 0
    assert all(row["epochs"] > 0 and row["steps_per_epoch"] for row in rows)
    assert {row["steps_per_epoch"] for row in rows if row["dataset"] == "mnist"} == {500}  # 50,000 images
    assert {row["seed"] for row in rows} <= set(check.report_view().seeds)
    assert check.headline_seed() in {row["seed"] for row in rows}  # the run the check reads is logged


# --------------------------------------------------------------------------
# the summary and the time budget
# --------------------------------------------------------------------------
RESULTS = {
    "started": "2026-12-06T07:00:00+00:00", "budget_s": 420, "exit_status": 1,
    "device": {"gpu": "NVIDIA H100 80GB HBM3", "driver": "580.159.04", "torch": "2.11.0+cu130"},
    "data": {"source": "synthetic", "note": "data/prepared/mnist.npz not found"},
    "parts": {
        "steps": {"status": "ok", "seconds": 101.5, "note": "",
                  "rows": [{"model": "gauss_vae", "mode": "eager", "ms_per_step": 1.25, "peak_mib": 310.2},
                           {"model": "dlgmm", "mode": "compiled", "error": "BackendCompilerFailed: boom"}]},
        "stage": {"status": "failed", "seconds": 40.0, "kill_and_resume": {"resume_exit": 0},
                  "missing": ["authors/seed-1234/mnist/sb_vae"]},
        "graphs": {"status": "skipped", "seconds": 0.0,
                   "note": "time budget spent (3 s left); rerun with --parts graphs"},
        "tests": {"status": "error", "seconds": 2.0, "note": "OSError: x", "traceback": ["Traceback", "OSError: x"]},
    },
}


def test_the_summary_is_written_as_json_and_markdown(check, tmp_path):
    json_path, md_path = check.write_summary(RESULTS, tmp_path / "out")
    assert json.loads(json_path.read_text()) == RESULTS
    text = md_path.read_text()
    assert text.startswith("# GPU check, 2026-12-06T07:00:00+00:00")
    assert "- gpu: NVIDIA H100 80GB HBM3" in text and "- data: synthetic (data/prepared/mnist.npz not found)" in text
    assert "## steps: ok (101.5 s)" in text and "## graphs: skipped (0 s)" in text
    assert "| model | mode | ms_per_step | peak_mib | error |" in text
    assert "| gauss_vae | eager | 1.25 | 310.2 | - |" in text
    assert "| dlgmm | compiled | - | - | BackendCompilerFailed: boom |" in text
    assert 'kill_and_resume: `{"resume_exit": 0}`' in text and "missing: authors/seed-1234/mnist/sb_vae" in text
    assert "time budget spent (3 s left); rerun with --parts graphs" in text
    assert "```\nTraceback\nOSError: x\n```" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu_check.json", "gpu_check.md"]


def test_the_summary_goes_to_out_when_it_is_set(check, monkeypatch, tmp_path):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert check.output_dir() == tmp_path
    monkeypatch.delenv("OUT")
    assert check.output_dir() == ROOT / "reports"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_parts_run_within_the_budget_and_are_skipped_once_it_is_spent(check, tmp_path):
    clock = Clock()
    run = check.Run(check.Budget(100, clock), tmp_path, {"a": 60, "b": 60, "c": 60, "d": 60})
    seen = {}

    def part_a(deadline):
        seen["a"] = deadline.left()
        clock.now += 70
        return {"rows": []}

    def part_b(deadline):
        seen["b"] = deadline.left()
        raise RuntimeError("compile failed\nsecond line")

    run.part("a", part_a)
    run.part("b", part_b)
    clock.now += 25
    run.part("c", lambda deadline: pytest.fail("a part started with the budget spent"))
    assert seen == {"a": 60, "b": 30}  # capped by the part's cap, then by what is left of the budget
    parts = run.results["parts"]
    assert parts["a"]["status"] == "ok"
    assert parts["b"]["status"] == "error" and parts["b"]["note"] == "RuntimeError: compile failed"
    assert parts["c"] == {"status": "skipped", "seconds": 0.0,
                          "note": "time budget spent (5 s left); rerun with --parts c"}
    assert run.finish() == check.EXIT_FAILED
    assert json.loads((tmp_path / "gpu_check.json").read_text())["exit_status"] == check.EXIT_FAILED


# --------------------------------------------------------------------------
# pieces of the parts that run on the CPU
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind,config", [
    ("gauss_vae", {"input_dim": 784, "hidden": 16, "latent": 2}),
    ("dldpmm", {"input_dim": 784, "hidden": 16, "latent": 2, "prior_means": [0.0], "prior_scales": [1.0],
                "kl_method": "quadrature", "taylor_terms": 10, "truncation": 3, "alpha0": 1.0}),
])
def test_shared_noise_makes_every_draw_and_reaches_a_float64_copy(check, kind, config):
    """The CPU/CUDA comparison sees the same noise on both sides: no draw escapes to the global generator
    (another global seed changes nothing), and a float64 copy differs by float32 rounding alone."""
    seed_everything(0)
    model = build_model(kind, **config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = (torch.rand(30, 784, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    first = check.elbo_under_shared_noise(model, x, seed=4)
    torch.manual_seed(123)
    assert torch.equal(first, check.elbo_under_shared_noise(model, x, seed=4))
    assert not torch.equal(first, check.elbo_under_shared_noise(model, x, seed=5))
    with check.shared_noise(4):
        weights = model.log_importance_weights(x[:3], 6)
    torch.manual_seed(321)
    with check.shared_noise(4):
        assert torch.equal(weights, model.log_importance_weights(x[:3], 6))
    gap = check._float64_gap(model, x, first, seed=4)
    assert gap is not None and gap < check.ELBO_ATOL
    assert check.compare_devices(first, first + 0.5 * check.ELBO_ATOL)["within_tolerance"]
    assert not check.compare_devices(first, first + 2 * check.ELBO_ATOL + check.ELBO_RTOL * first.abs())[
        "within_tolerance"]


def test_the_stand_in_training_log_writes_the_same_summary(check, tmp_path):
    history = [{"epoch": 1, "train_elbo": -200.0, "valid_elbo": -190.0, "seconds": 2.0, "examples_per_second": 9.0},
               {"epoch": 2, "train_elbo": -180.0, "valid_elbo": -185.0, "seconds": 1.0, "examples_per_second": 11.0}]
    log = check.HistoryLog(tmp_path / "logs", history[:1])
    log.append(history[1])
    log.finish(history)
    assert json.loads((tmp_path / "logs" / "metrics.json").read_text()) == {**summarize_history(history), "step": 2}


def test_the_stage_views_ask_for_the_device_and_a_short_run(check):
    seed = check.headline_seed()
    views = check.stage_views("authors", seed, None)
    assert len(views) == 5 and all(view["seed"] == seed for view in views.values())  # one run's stages
    train = views[layout.train_stage("authors", seed, "mnist", check.STAGE_MODEL)]["train"]
    assert train["device"] == "cuda" and train["max_epochs"] == check.STAGE_EPOCHS and train["compile"] is True
    assert train["patience"] > check.STAGE_EPOCHS
    evals = [view for stage, view in views.items() if "eval" in view]
    assert len(evals) == 4 and all(view["eval"]["device"] == "cuda" for view in evals)
    assert views[layout.nll_stage("authors", seed, "mnist", check.STAGE_MODEL)]["eval"]["marginal_likelihood"][
        "max_examples"] == check.STAGE_TEST
    assert check.stage_views("authors", seed, False, "cpu")[
        layout.train_stage("authors", seed, "mnist", check.STAGE_MODEL)]["train"]["compile"] is False


def test_the_check_reads_the_first_seed_of_the_committed_report_view(check):
    """Where the check reads one run (the training views it builds the models from, the stage check), it is the
    headline protocol with the first of the seeds the committed report view lists; the stages it starts are
    told that seed."""
    report = json.loads(layout.stage_params(layout.report_stage(), ROOT).read_text())
    assert check.headline_seed() == report["seeds"][0] and check.headline_protocol() == report["protocols"][0]
    view = check.train_view(check.headline_protocol(), check.headline_seed(), check.STAGE_MODEL)
    assert view.seed == report["seeds"][0] and view.protocol == report["protocols"][0]
    command = check._stage_cmd("tsne", "authors", 1236, check.STAGE_MODEL, None)
    assert command[command.index("--seed") + 1] == "1236" and "--dataset" not in command


def test_the_epoch_line_gives_the_epoch_and_its_seconds(check):
    line = ("mnist/dlgmm epoch   1/2: train ELBO -505.4401  valid ELBO -375.5040  best -375.5040 @ 1 *     3.4 s"
            "       893 ex/s")
    assert check.EPOCH_LINE.search(line).groups() == ("1", "3.4")


# --------------------------------------------------------------------------
# the command where no GPU is
# --------------------------------------------------------------------------
def _one_line_refusal(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu check: no CUDA device here"), result.stderr


def test_without_cuda_it_says_so_in_one_line(tmp_path):
    _one_line_refusal(_run([], {**NO_GPU, "OUT": str(tmp_path)}))
    assert not list(tmp_path.iterdir())


def test_without_dvc_dvclive_and_ruamel_it_gets_as_far_as_the_missing_gpu(tmp_path):
    """As on a lent GPU machine: every dlgmm_core module the check runs imports (before the GPU is looked
    for), and the check's driver runs its CPU-only part to the end."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(WITHOUT_DVC)
    env = {**NO_GPU, "PYTHONPATH": os.pathsep.join([str(shim), str(ROOT)])}
    for name in ("dvc", "dvclive", "ruamel.yaml"):
        absent = subprocess.run([sys.executable, "-c", f"import {name}"], env={**os.environ, **env},
                                capture_output=True, text=True)
        assert absent.returncode != 0 and "absent on the GPU machine" in absent.stderr
    _one_line_refusal(_run([], env))
    out = tmp_path / "out"
    result = _run(["--device", "cpu", "--parts", "projection"], {**env, "OUT": str(out)})
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "gpu_check.json").read_text())
    projection = summary["parts"]["projection"]
    assert projection["status"] == "ok" and projection["cpu_logged_hours"] > 0
    assert summary["data"] == {} and math.isfinite(summary["budget_s"])  # no part that needs data ran


def test_the_hard_deadline_writes_the_summary_and_stops_the_children(check, tmp_path, monkeypatch):
    run = check.Run(check.Budget(100), tmp_path, {"steps": 60})
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run.children.append(child)
    run.current = "steps"
    monkeypatch.setattr(check.os, "_exit", lambda status: (_ for _ in ()).throw(SystemExit(status)))
    with pytest.raises(SystemExit) as stopped:
        run.cut_off()
    assert stopped.value.code == 3 and child.wait(timeout=10) != 0
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["exit_status"] == 3 and summary["parts"]["steps"]["status"] == "cut off"


def test_the_stage_check_names_what_went_wrong(check):
    good = {"resume_exit": 0, "resumed_after_epoch_1": True, "valid_elbo_uninterrupted": [-120.0, -110.0],
            "valid_elbo_resumed": [-120.0, -110.0 + 0.5 * check.ELBO_ATOL]}
    stages = [{"stage": "knn", "exit": 0}, {"stage": "tsne", "error": "skipped for time"}]
    assert check._stage_problems(good, {"killed": True}, stages) == []
    drifted = {**good, "valid_elbo_resumed": [-120.0, -109.0]}
    assert check._stage_problems(drifted, {"killed": True}, stages) == [
        "the resumed training's validation ELBOs differ from the uninterrupted one's"]
    assert check._stage_problems({**good, "resumed_after_epoch_1": False}, {"killed": False, "note": "no epoch 1"},
                                 [{"stage": "samples", "exit": 2}]) == [
        "the training was not killed: no epoch 1", "the killed training did not resume after epoch 1",
        "stage samples: exit 2"]
