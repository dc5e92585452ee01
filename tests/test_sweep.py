"""Sweeps as README's "Sweeps" section documents them, on a fresh clone of a committed tiny pipeline.

The clone (``tests/fixtures_pipeline.py``) has what a user's ``git clone`` has: every committed result, log and
figure, no DVC cache, no checkpoint, no prepared data. README's commands, run there exactly as written, prepare the
data once and then run only the DLGMM's training and evaluation stages and the report, for a temporary experiment
and for queued ones; the experiments compare against the committed baseline, and their report carries the DLGMM's
new numbers beside the committed others. A sweep that fails (a missing input, a bad value) or is interrupted
(SIGINT or SIGKILL of its process group while a training runs), the documented ways, leaves every git-tracked file
byte-identical.

Stage names come from the clone's ``dvc.lock`` (a stage's command names its script and model), not from a list
written here.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlgmm_core import layout
from dlgmm_core.claims import CLAIMS
from fixtures_pipeline import (DVC, ROOT, _env, _queued, _run, _stages_run, _start_queue, _trainings_from_scratch,
                               _wait_for_queue, fresh_clone)

#: The model a sweep of ``k`` changes: the only one whose resolved parameters hold ``k``.
SWEPT = "dlgmm"

def readme_sweep_commands() -> list[str]:
    """The commands of the fenced block of README's "Sweeps" section, in order, without their comments."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Sweeps\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _dvc_args(command: str, **placeholders: str) -> list[str]:
    """A README ``dvc ...`` line as this interpreter's DVC runs it, ``<name>`` placeholders filled in."""
    words = shlex.split(command)
    assert words[0] == "dvc", command
    return [*DVC, *[placeholders.get(word.strip("<>"), word) if word.startswith("<") else word
                    for word in words[1:]]]


def _lock_stages(work: Path) -> dict[str, str]:
    """Every stage of the committed ``dvc.lock``, with its command."""
    return {name: entry["cmd"] for name, entry in yaml.safe_load((work / "dvc.lock").read_text())["stages"].items()}


def _preparation(work: Path) -> set[str]:
    return {name for name, cmd in _lock_stages(work).items() if str(layout.script("prepare")) in cmd}


def _swept_stages(work: Path) -> set[str]:
    """The stages a sweep of ``k`` may run: the swept model's, ``resolve`` (params.yaml changed) and ``report``."""
    swept = {name for name, cmd in _lock_stages(work).items() if f"--model {SWEPT} " in f"{cmd} "}
    return swept | {layout.resolve_stage(), layout.report_stage()}


def _swept_trainings(work: Path) -> set[str]:
    return {name for name, cmd in _lock_stages(work).items()
            if str(layout.script("train")) in cmd and f"--model {SWEPT} " in f"{cmd} "}


def _tracked(work: Path) -> dict[str, bytes | None]:
    """Every git-tracked file's bytes (None: missing)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=work, capture_output=True, check=True).stdout
    return {name: (work / name).read_bytes() if (work / name).is_file() else None
            for name in names.decode().split("\0") if name}


def _assert_nothing_committed_changed(work: Path, before: dict[str, bytes | None], what: str) -> None:
    after = _tracked(work)
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert not changed and set(after) == set(before), f"{what} changed committed files: {changed[:20]}"
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], work)
    assert not status.strip(), f"{what}:\n{status}"


def _dvc(args: list[str], work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=work, env=_env(work), capture_output=True, text=True)


def _of_swept_model(key: str) -> bool:
    """Whether a metric of reports/metrics.json may change when only the swept model changes: one of its own
    (``.dlgmm.``), or a claim that compares it with another model (``claims.<claim>...``)."""
    on_swept = {claim.key for claim in CLAIMS if any(SWEPT in (case.better, case.than) for case in claim.cases)}
    return f".{SWEPT}." in key or (key.startswith("claims.") and key.split(".")[1] in on_swept)


def _experiment_file(work: Path, name: str, path: str) -> bytes:
    """A file as experiment ``name`` committed it."""
    refs = _run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], work).split()
    ref = next(ref for ref in refs if ref.endswith(f"/{name}"))
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=work, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def commands() -> list[str]:
    commands = readme_sweep_commands()
    assert commands[0] == "source .venv/bin/activate", commands
    return commands[1:]


def test_readme_sweep_runs_only_the_swept_stages_on_a_fresh_clone(tmp_path_factory, commands):
    clone = fresh_clone(tmp_path_factory, "sweep")
    before = _tracked(clone)
    assert not list(layout.prepared_dir(clone).glob("*.npz")) and not list((clone / "models").rglob("*.pt"))
    metrics_path = str(layout.report_metrics())
    baseline = json.loads(before[metrics_path])
    swept, trainings = _swept_stages(clone), _swept_trainings(clone)
    assert trainings and trainings < swept and len(swept) < len(_lock_stages(clone)) / 2

    temporary, overrides, queued, seen = None, None, {}, set()
    for command in commands:
        words = shlex.split(command)
        args = _dvc_args(command, experiment=temporary or "")
        output = "" if words[1:3] == ["queue", "start"] else _run(args, clone)
        if words[1] == "repro":  # the one-time preparation
            assert _stages_run(output) == _preparation(clone), output
            _assert_nothing_committed_changed(clone, before, command)  # the prepared data has dvc.lock's hashes
        elif words[1:3] == ["exp", "run"] and "--temp" in words:
            assert _stages_run(output) == swept, output
            assert len(_trainings_from_scratch(output)) == len(trainings), output
            temporary = output.split("Ran experiment(s): ")[1].split()[0].strip(",")
            overrides = sorted(words[i + 1] for i, word in enumerate(words) if word == "-S")
        elif words[1:3] == ["exp", "run"] and "--queue" in words:
            queued.update(_queued(output))
        elif words[1:3] == ["queue", "start"]:
            assert queued, "README starts the queue before it queues anything"
            _start_queue(args, clone)
            states = _wait_for_queue(list(queued), clone)
            for name, state in states.items():
                log = _run([*DVC, "queue", "logs", name], clone)
                assert state == "Success", f"{name}: {state}\n{log[-3000:]}"
                ran = _stages_run(log)
                assert trainings <= ran <= swept, f"{name} ran {sorted(ran - swept)}"
                # a setting the temporary experiment ran is restored from DVC's run cache, not trained again
                again = temporary is not None and queued[name] == overrides
                assert len(_trainings_from_scratch(log)) == (0 if again else len(trainings)), log
            assert any(value == overrides for value in queued.values()), "README queues no setting run before"
        elif words[1:3] == ["exp", "show"]:
            assert temporary and all(name in output for name in [temporary, *queued]), output
        elif words[1:3] == ["metrics", "diff"]:
            assert temporary in output, output
            diff = json.loads(_run([*args, "--json"], clone))
            changed = {key for key, change in diff.get(metrics_path, {}).items() if change.get("diff")}
            assert changed and all(map(_of_swept_model, changed)), changed
        else:
            pytest.fail(f"README's sweep block has a command this test does not know: {command}")
        seen.add(" ".join(words[1:3]))
    assert {"repro prepare", "exp run", "queue start", "exp show", "metrics diff"} <= seen, seen

    # The experiment's report: the swept model's new numbers beside the committed others.
    metrics = json.loads(_experiment_file(clone, temporary, metrics_path))
    assert set(metrics) == set(baseline)
    assert all(map(_of_swept_model, {key for key in baseline if metrics[key] != baseline[key]}))
    nll = [key for key in baseline if f".{SWEPT}." in key and key.endswith(".nll")]
    assert nll and all(metrics[key] != baseline[key] for key in nll)
    report = _experiment_file(clone, temporary, str(layout.report_readme())).decode()
    for key in nll:
        assert f"{metrics[key]:.2f}" in report, key
    for key in (key for key in baseline if key.endswith(".nll") and f".{SWEPT}." not in key):
        assert f"{baseline[key]:.2f}" in report, key
    _assert_nothing_committed_changed(clone, before, "the sweeps")


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


def test_a_failed_or_interrupted_sweep_changes_no_committed_file(tmp_path_factory, commands):
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
