"""tools/run_status.py: on a clone without the run's DVC cache, a complete committed run reads as done, and a stage
whose committed result, code or upstream checkpoint differs from dvc.lock reads as one to run."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from fixtures_pipeline import _env, fresh_clone

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "run_status.py"

spec = importlib.util.spec_from_file_location("run_status", TOOL)
run_status = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_status)

LOCK = {"stages": {
    "train": {"deps": [{"path": "code.py", "md5": "c1"}], "outs": [{"path": "model.pt", "md5": "m1"},
                                                                  {"path": "log.json", "md5": "l1"}]},
    "evaluate": {"deps": [{"path": "model.pt", "md5": "m1"}], "outs": [{"path": "result.json", "md5": "r1"}]},
}}


def test_missing_cached_outputs_and_the_checkpoint_the_lock_names_are_done():
    status = {"train": [{"changed outs": {"model.pt": "not in cache"}}],
              "evaluate": [{"changed deps": {"model.pt": "deleted"}}]}
    done, to_run, absent = run_status.classify(status, LOCK, ["train", "evaluate"])
    assert (done, to_run, absent) == (["train", "evaluate"], {}, 1)


def test_an_evaluation_of_another_checkpoint_than_the_committed_training_wrote_is_to_run():
    lock = json.loads(json.dumps(LOCK))
    lock["stages"]["evaluate"]["deps"][0]["md5"] = "m0"  # evaluated an earlier training's checkpoint
    status = {"train": [{"changed outs": {"model.pt": "not in cache"}}],
              "evaluate": [{"changed deps": {"model.pt": "deleted"}}]}
    done, to_run, _ = run_status.classify(status, lock, ["train", "evaluate"])
    assert done == ["train"] and to_run == {"evaluate": ["model.pt deleted"]}


def test_changed_code_a_changed_or_lost_result_and_a_stage_never_run_are_to_run():
    status = {"train": [{"changed deps": {"code.py": "modified"}, "changed outs": {"log.json": "deleted"}}],
              "evaluate": [{"changed outs": {"result.json": "modified"}}],
              "report": ["changed command"]}
    done, to_run, absent = run_status.classify(status, LOCK, ["train", "evaluate", "report", "plot"])
    assert done == [] and absent == 0
    assert to_run == {"train": ["code.py modified", "log.json deleted"], "evaluate": ["result.json modified"],
                      "report": ["changed command"], "plot": ["never run"]}


def _tool(clone: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--verbose"], cwd=clone, env=_env(clone),
                          capture_output=True, text=True)


def test_a_fresh_clone_of_a_complete_run_is_done_until_a_committed_result_changes(tmp_path_factory):
    clone = fresh_clone(tmp_path_factory, "run_status")
    assert not list((clone / "models").rglob("*.pt"))
    result = _tool(clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "to run: 0 stages" in result.stdout and "cached outputs are not in this machine's cache" in result.stdout

    nll = sorted((clone / "reports" / "nll").rglob("*.json"))[0]
    nll.write_text(nll.read_text() + "\n")
    result = _tool(clone)
    assert result.returncode == 1, result.stdout + result.stderr
    edited = str(nll.relative_to(clone))
    assert any(line.strip().startswith("marginal_likelihood@") and f"{edited} modified" in line
               for line in result.stdout.splitlines()), result.stdout


def test_make_repro_allow_missing_continues_a_committed_run_without_retraining_it(tmp_path_factory):
    """`make repro ALLOW_MISSING=1`'s two commands on a fresh clone of a complete run: the data is prepared with
    dvc.lock's hashes, every other stage is skipped (its only change is a checkpoint missing here), nothing committed
    changes."""
    clone = fresh_clone(tmp_path_factory, "continue")
    dvc = str(Path(sys.executable).parent / "dvc")
    for args in ([dvc, "repro", "prepare"],
                 [sys.executable, str(ROOT / "tools" / "schedule.py"), "--jobs", "2", "--dvc", dvc, "--allow-missing"]):
        result = subprocess.run(args, cwd=clone, env=_env(clone), capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "stages up to date" in result.stdout, result.stdout
    ran = [log.stem for log in (clone / ".dlgmm" / "logs").glob("*.log") if "Running stage" in log.read_text()]
    assert ran == [] and not list((clone / "models").rglob("*.pt")), ran
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert changed == "", changed
    assert _tool(clone).returncode == 0
