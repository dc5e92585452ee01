"""Sweeps that fail or are interrupted, on a fresh clone of a committed tiny pipeline (``tests/fixtures_pipeline.py``),
with README's "Sweeps" commands: a missing input (the data not prepared, run at once and queued), a bad value, SIGINT
or SIGKILL of the sweep's process group while a training runs. Each leaves every git-tracked file byte-identical,
and DVC still works in the workspace afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dlgmm_core import layout
from fixtures_pipeline import DVC, _env, _queued, _run, _stages_run, _start_queue, _wait_for_queue, fresh_clone
from fixtures_sweep import _assert_nothing_committed_changed, _dvc, _dvc_args, _preparation, _tracked, sweep_commands

#: What makes the interrupted sweeps' trainings last (minutes of tiny epochs, no early stop), so that the signal
#: sent after a training's first epoch always lands while it trains, however loaded the machine.
LONG_TRAINING = ["-S", "protocol.authors.train.max_epochs=100000", "-S", "protocol.authors.train.patience=100000"]

#: Runs its arguments with SIGINT's default action, as from a terminal: a test run started in the background of a
#: shell inherits SIGINT ignored, and so would every process of the sweep (Python keeps an ignored SIGINT).
WITH_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                                     "os.execvp(sys.argv[1], sys.argv[1:])"]


def _interrupted(args: list[str], work: Path, sig: int) -> str:
    """Run ``args`` in a process group of its own and send ``sig`` to the group once a training has logged its
    first epoch (``args`` keep it training, :data:`LONG_TRAINING`)."""
    env = {**_env(work), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([*WITH_SIGINT, *args], cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if " epoch " in line and "ELBO" in line:
            assert process.poll() is None, "".join(lines)
            os.killpg(process.pid, sig)
            break
    else:
        pytest.fail(f"no training started:\n{''.join(lines)[-3000:]}")
    rest, _ = process.communicate(timeout=120)
    assert process.returncode != 0, "".join(lines) + rest
    if sig == signal.SIGINT:
        assert "error: interrupted" in rest, "".join(lines) + rest
    return "".join(lines) + rest


def test_a_failed_or_interrupted_sweep_changes_no_committed_file(tmp_path_factory):
    commands = sweep_commands()
    clone = fresh_clone(tmp_path_factory, "failed_sweep")
    before = _tracked(clone)
    head = _run(["git", "rev-parse", "HEAD"], clone)
    prepare = next(command for command in commands if command.startswith("dvc repro"))
    temporary = next(command for command in commands if command.startswith("dvc exp run") and "--temp" in command)
    queue = next(command for command in commands if command.startswith("dvc exp run") and "--queue" in command)
    sweep = _dvc_args(temporary.replace("k=10", "k=6"))
    assert sweep != _dvc_args(temporary)

    # A missing input: the data not prepared. The sweep stops at a training, naming the prepared file.
    result = _dvc(sweep, clone)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert any(str(layout.prepared(dataset)[0]) in output for dataset in ("mnist", "omniglot")), output[-3000:]
    _assert_nothing_committed_changed(clone, before, "a sweep without prepared data")
    # ... and the same queued.
    queued = _queued(_run(_dvc_args(queue.replace("'k=5,10'", "k=6")), clone))
    _start_queue(_dvc_args(next(command for command in commands if command.startswith("dvc queue start"))), clone)
    assert set(_wait_for_queue(list(queued), clone).values()) == {"Failed"}
    _assert_nothing_committed_changed(clone, before, "a queued sweep without prepared data")

    _run(_dvc_args(prepare), clone)
    # A bad value: refused by `resolve`, one line naming the key.
    result = _dvc(_dvc_args(temporary.replace("k=10", "k=0")), clone)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0 and len(errors) == 1 and " k " in f" {errors[0]} ", output[-3000:]
    _assert_nothing_committed_changed(clone, before, "a sweep with k=0")
    # Ctrl-C and a kill of the whole process group while a training runs.
    for sig in (signal.SIGINT, signal.SIGKILL):
        output = _interrupted(sweep + LONG_TRAINING, clone, sig)
        _assert_nothing_committed_changed(clone, before, f"a sweep interrupted by {sig.name}:\n{output[-2000:]}")

    assert _run(["git", "rev-parse", "HEAD"], clone) == head
    # Nothing is left locked: DVC still works in the workspace, and the prepared data is intact.
    assert not _stages_run(_run(_dvc_args(prepare), clone))
    assert json.loads(_run([*DVC, "status", "--json", *_preparation(clone)], clone)) == {}
