"""The committed results agree with the committed ``dvc.lock``: every output that ``dvc.lock`` records and git tracks
(a result, a log, a figure, the report) holds the hash ``dvc.lock`` records for it.

This is the part of ``dvc status`` that a clone without the run's DVC cache can check on its own (the checkpoints are
absent there; ``tools/run_status.py`` sorts out the rest). It fails when a results commit took a ``dvc.lock`` written
by a stage whose outputs it did not commit, or when a committed result was edited, or rebuilt, without its stage's
entry being recorded again."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc_data.hashfile.tree import Tree

ROOT = Path(__file__).resolve().parents[1]


def _tracked() -> list[str]:
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in result.stdout.split("\0") if name]


def _md5(name: str) -> str:
    return hashlib.md5((ROOT / name).read_bytes()).hexdigest()


def dvc_hash(path: str, tracked: list[str]) -> str | None:
    """DVC's md5 of the git-tracked file ``path``, or of the folder ``path`` from the files git tracks in it (the
    ``.dir`` hash, by DVC's own tree code); None where git tracks nothing there (a cached output)."""
    if path in tracked:
        return _md5(path)
    inside = [name for name in tracked if name.startswith(path + "/")]
    if not inside:
        return None
    tree = Tree.from_list([{"md5": _md5(name), "relpath": name[len(path) + 1:]} for name in inside], hash_name="md5")
    tree.digest()
    return tree.hash_info.value


def test_every_git_tracked_output_holds_the_hash_dvc_lock_records():
    tracked = _tracked()
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    checked, mismatched = {}, []
    for stage, entry in lock.items():
        for out in entry.get("outs") or []:
            assert out.get("hash") == "md5", f"dvc.lock: {stage}'s {out['path']} has no plain md5"
            actual = dvc_hash(out["path"], tracked)
            if actual is None:
                continue
            checked.setdefault(stage, []).append(out["path"])
            if actual != out["md5"]:
                mismatched.append(f"{stage}: {out['path']} is {actual}, dvc.lock records {out['md5']}")
    assert not mismatched, f"{len(mismatched)} outputs disagree with dvc.lock:\n" + "\n".join(mismatched[:20])
    # not vacuous: the report and every training's log are among the outputs checked
    assert sorted(checked["report"]) == ["reports/README.md", "reports/figures/training", "reports/metrics.json"]
    trainings = [stage for stage in lock if stage.startswith("train")]
    assert trainings and all(any(p.startswith("logs/") for p in checked[stage]) for stage in trainings)
