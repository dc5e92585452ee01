"""Sweeps as README's "Sweeps" section documents them, on a fresh clone of a committed tiny pipeline.

The clone (``tests/fixtures_pipeline.py``) has what a user's ``git clone`` has: every committed result, log and
figure, no DVC cache, no checkpoint, no prepared data. README's commands, run there exactly as written, prepare the
data once and then run only the DLGMM's training and evaluation stages and the report, for a temporary experiment
and for queued ones; the experiments compare against the committed baseline, and their report carries the DLGMM's
new numbers beside the committed others. Sweeps that fail or are interrupted are in ``tests/test_sweep_failures.py``.
"""
from __future__ import annotations

import json
import shlex

import pytest

from dlgmm_core import layout
from fixtures_pipeline import (DVC, _queued, _run, _stages_run, _start_queue, _trainings_from_scratch,
                               _wait_for_queue, fresh_clone)
from fixtures_sweep import (SWEPT, _assert_nothing_committed_changed, _dvc_args, _experiment_file, _lock_stages,
                            _of_swept_model, _preparation, _swept_stages, _swept_trainings, _tracked, sweep_commands)


def test_readme_sweep_runs_only_the_swept_stages_on_a_fresh_clone(tmp_path_factory):
    commands = sweep_commands()
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

