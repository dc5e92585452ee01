"""Where the committed run stands, on any clone: ``python tools/run_status.py [--verbose]``.

``dvc status`` answers "is the run up to date?" only on the machine whose DVC cache holds every checkpoint. On any
other clone (a user's, or a machine that continued the run without the first one's cache) the checkpoints and the
prepared data are missing, so it lists every training and every evaluation that reads a checkpoint. This tool reads
``dvc status --json`` and ``dvc.lock`` and sorts the stages into:

- **done**: every difference DVC reports is a cached output absent from this machine's cache ("not in cache"), or
  a missing dependency that ``dvc.lock`` records with the very hash that its producing stage's entry records as
  output (the checkpoint an evaluation read is the checkpoint the committed training wrote). Every git-tracked
  result, log and figure of such a stage, and all its code and parameters, are what ``dvc.lock`` records;
- **to run**: anything else: a changed dependency (code, parameters, an upstream result), a git-tracked output
  that differs from ``dvc.lock`` or is missing, a stage never run.

It prints one line per group (``--verbose``: each stage to run with what changed) and exits 1 when a stage is to
run, 0 when the committed run is complete. DVC decides what changed; this only reads its answer.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.errors import DlgmmError, run_stage  # noqa: E402

#: What ``dvc status`` says of an output absent from this machine's cache while ``dvc.lock`` records it.
NOT_IN_CACHE = "not in cache"


def lock_hashes(lock: dict) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """From a parsed ``dvc.lock``: each stage's recorded dependency hashes (path -> md5), and the md5 that the stage
    producing each output path records for it."""
    deps: dict[str, dict[str, str]] = {}
    produced: dict[str, str] = {}
    for name, entry in (lock.get("stages") or {}).items():
        deps[name] = {dep["path"]: dep.get("md5") for dep in entry.get("deps") or []}
        for out in entry.get("outs") or []:
            produced[out["path"]] = out.get("md5")
    return deps, produced


def _why_not_done(name: str, changes: list, deps: dict[str, dict[str, str]], produced: dict[str, str]) -> list[str]:
    """What makes stage ``name`` one to run, from its ``dvc status --json`` entry; empty when it is done."""
    reasons = []
    for change in changes:
        if not isinstance(change, dict):  # e.g. "always changed", "changed command"
            reasons.append(str(change))
            continue
        for kind, paths in change.items():
            if not isinstance(paths, dict):
                reasons.append(kind)
                continue
            for path, state in paths.items():
                if kind == "changed outs" and state == NOT_IN_CACHE:
                    continue
                recorded = deps.get(name, {}).get(path)
                if (kind == "changed deps" and state == "deleted" and recorded is not None
                        and produced.get(path) == recorded):
                    continue
                reasons.append(f"{path} {state}")
    return reasons


def classify(status: dict, lock: dict, stages: list[str]) -> tuple[list[str], dict[str, list[str]], int]:
    """Sort ``stages`` (every stage of the pipeline) by ``status`` (``dvc status --json``) and ``lock``: the stages
    done, the stages to run with their reasons, and the number of cached outputs absent here."""
    deps, produced = lock_hashes(lock)
    done, to_run, absent = [], {}, 0
    for name in stages:
        changes = status.get(name, [])
        reasons = _why_not_done(name, changes, deps, produced)
        if name not in deps:
            reasons = reasons or ["never run"]
        if reasons:
            to_run[name] = reasons
        else:
            done.append(name)
            absent += sum(1 for change in changes if isinstance(change, dict)
                          for state in (change.get("changed outs") or {}).values() if state == NOT_IN_CACHE)
    return done, to_run, absent


def _dvc(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DlgmmError(f"dvc {' '.join(args)} failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list each stage to run with what changed")
    args = parser.parse_args(argv)
    if not Path("dvc.lock").is_file():
        raise DlgmmError("dvc.lock: not found (run this in the repository's root after a run)")
    lock = yaml.safe_load(Path("dvc.lock").read_text())
    stages = [line.split()[0] for line in _dvc("stage", "list").splitlines() if line.strip()]
    status = json.loads(_dvc("status", "--json") or "{}")
    done, to_run, absent = classify(status, lock, stages)
    print(f"done: {len(done)} of {len(stages)} stages (their git-tracked results, code and parameters are what "
          f"dvc.lock records; {absent} cached outputs are not in this machine's cache)")
    trainings = [name for name in to_run if name.startswith("train")]
    print(f"to run: {len(to_run)} stages, {len(trainings)} of them trainings" + (": " + ", ".join(trainings)
                                                                                if trainings else ""))
    if args.verbose:
        for name, reasons in to_run.items():
            print(f"  {name}: {'; '.join(reasons[:3])}" + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""))
    return 1 if to_run else 0


if __name__ == "__main__":
    run_stage(lambda: sys.exit(main()))
