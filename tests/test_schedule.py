"""tools/schedule.py: dependency order, at most ``jobs`` at a time, costliest first (the times the stages logged),
failures stop only downstream."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dlgmm_core import layout

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("schedule", ROOT / "tools" / "schedule.py")
schedule = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(schedule)


def logged_cost(stage: str) -> float:
    """The cost of ``stage`` from the committed paper-budget run's outputs (its training log or its result)."""
    family, _, item = stage.partition("@")
    protocol, seed, dataset, *model = item.split("-")
    if family.startswith("train"):
        model = model or [family.partition("_")[2]]
        return schedule.stage_cost([layout.train_metrics(protocol, int(seed), dataset, model[0], ROOT)])
    result = {"marginal_likelihood": layout.nll_result, "knn": layout.knn_result}[family]
    return schedule.stage_cost([result(protocol, int(seed), dataset, model[0], ROOT)])


class FakeStage:
    """A stage that finishes after ``steps`` polls with ``status``."""

    def __init__(self, log: list, name: str, steps: int, status: int):
        self.log, self.name, self.steps, self.status = log, name, steps, status

    def poll(self):
        self.steps -= 1
        if self.steps > 0:
            return None
        self.log.append(("end", self.name))
        return self.status


def _run(upstream, *, jobs, fail=(), steps=None, protocols=(), costs=None):
    log: list = []
    running: set = set()
    peak = [0]

    def start(name):
        assert all(("end", dep) in log for dep in upstream[name]), f"{name} started before its dependencies"
        log.append(("start", name))
        running.add(name)
        peak[0] = max(peak[0], sum(1 for n in running if ("end", n) not in log))
        return FakeStage(log, name, (steps or {}).get(name, 2), 1 if name in fail else 0)

    schedule._POLL = 0
    failed = schedule.run_graph(upstream, start, jobs=jobs, report=lambda line: None, protocols=protocols,
                                costs=costs)
    return log, failed, peak[0]


PIPELINE = {
    "resolve": set(), "prepare@mnist": {"resolve"},
    "train@authors-1234-mnist-gauss_vae": {"resolve", "prepare@mnist"},
    "train@authors-1234-mnist-dldpmm": {"resolve", "prepare@mnist"},
    "train@authors-1234-mnist-dlgmm": {"resolve", "prepare@mnist"},
    "marginal_likelihood@authors-1234-mnist-dldpmm": {"train@authors-1234-mnist-dldpmm"},
    "report": {"marginal_likelihood@authors-1234-mnist-dldpmm", "train@authors-1234-mnist-gauss_vae",
               "train@authors-1234-mnist-dlgmm"},
}


def test_every_stage_runs_once_after_its_dependencies_at_most_jobs_at_a_time():
    log, failed, peak = _run(PIPELINE, jobs=2)
    assert failed == []
    assert sorted(n for kind, n in log if kind == "start") == sorted(PIPELINE)
    assert peak == 2


def test_one_job_runs_one_stage_at_a_time():
    _, failed, peak = _run(PIPELINE, jobs=1)
    assert failed == [] and peak == 1


def test_the_costliest_ready_stage_starts_first():
    costs = {name: logged_cost(name) for name in PIPELINE if name.startswith("train")}
    log, _, _ = _run(PIPELINE, jobs=1, costs=costs)
    starts = [n for kind, n in log if kind == "start"]
    trainings = [n for n in starts if n.startswith("train")]
    assert trainings == ["train@authors-1234-mnist-dldpmm", "train@authors-1234-mnist-dlgmm", "train@authors-1234-mnist-gauss_vae"]


TWO_PROTOCOLS = {
    "resolve": set(), "prepare@mnist": {"resolve"},
    "train@authors-1234-mnist-dldpmm": {"prepare@mnist"}, "train@authors-1234-mnist-gauss_vae": {"prepare@mnist"},
    "marginal_likelihood@authors-1234-mnist-gauss_vae": {"train@authors-1234-mnist-gauss_vae"},
    "train@corrected-1234-mnist-dldpmm": {"prepare@mnist"}, "train@corrected-1234-mnist-gauss_vae": {"prepare@mnist"},
    "report": {"train@authors-1234-mnist-dldpmm", "marginal_likelihood@authors-1234-mnist-gauss_vae",
               "train@corrected-1234-mnist-dldpmm", "train@corrected-1234-mnist-gauss_vae"},
}


def test_the_headline_protocol_goes_first_and_the_next_fills_an_idle_core():
    """The corrected DLDPMM, the costliest stage, waits for every ready authors stage; it then runs
    beside the long authors DLDPMM instead of leaving that core idle."""
    steps = {"train@authors-1234-mnist-dldpmm": 40}
    log, failed, _ = _run(TWO_PROTOCOLS, jobs=2, steps=steps, protocols=("authors", "corrected"))
    starts = [n for kind, n in log if kind == "start"]
    assert failed == []
    assert starts[2:5] == ["train@authors-1234-mnist-dldpmm", "train@authors-1234-mnist-gauss_vae",
                           "marginal_likelihood@authors-1234-mnist-gauss_vae"]
    assert starts[5:7] == ["train@corrected-1234-mnist-dldpmm", "train@corrected-1234-mnist-gauss_vae"]
    assert log.index(("start", "train@corrected-1234-mnist-dldpmm")) < log.index(("end", "train@authors-1234-mnist-dldpmm"))
    # Listed the other way round, the corrected protocol is the headline.
    log, _, _ = _run(TWO_PROTOCOLS, jobs=2, steps=steps, protocols=("corrected", "authors"))
    assert [n for kind, n in log if kind == "start"][2:4] == ["train@corrected-1234-mnist-dldpmm",
                                                              "train@corrected-1234-mnist-gauss_vae"]


def test_within_a_protocol_mnist_goes_before_omniglot():
    """The Omniglot DLDPMM costs more than the MNIST DLGMM, but the paper's tables are MNIST's first."""
    upstream = {"resolve": set(), "prepare@mnist": {"resolve"}, "prepare@omniglot": {"resolve"},
                "train@corrected-1234-omniglot-dldpmm": {"prepare@omniglot"},
                "train@corrected-1234-mnist-dlgmm": {"prepare@mnist"},
                "train@corrected-1234-mnist-gauss_vae": {"prepare@mnist"},
                "train@authors-1234-omniglot-gauss_vae": {"prepare@omniglot"}}
    costs = {"train@corrected-1234-omniglot-dldpmm": 900.0, "train@corrected-1234-mnist-dlgmm": 800.0,
             "train@corrected-1234-mnist-gauss_vae": 500.0, "train@authors-1234-omniglot-gauss_vae": 60.0}
    log, _, _ = _run(upstream, jobs=1, protocols=("authors", "corrected"), costs=costs)
    trainings = [n for kind, n in log if kind == "start" and n.startswith("train")]
    assert trainings == ["train@authors-1234-omniglot-gauss_vae", "train@corrected-1234-mnist-dlgmm",
                         "train@corrected-1234-mnist-gauss_vae", "train@corrected-1234-omniglot-dldpmm"]
    assert [schedule.dataset_rank(n) for n in ("prepare@omniglot", "train@authors-1234-omniglot-sb_vae",
                                               "tsne@corrected-1234-dlgmm", "train_qualitative@corrected",
                                               "knn@authors-1234-mnist-dlgmm", "report")] == [1, 1, 0, 0, 0, 0]


def test_protocol_rank():
    protocols = ("authors", "corrected")
    assert [schedule.protocol_rank(n, protocols) for n in
            ("train@corrected-1234-mnist-dlgmm", "train_qualitative@corrected", "train@authors-1234-mnist-dlgmm",
             "prepare@mnist", "resolve", "report")] == [1, 1, 0, 0, 0, 0]


def test_a_failure_stops_only_what_is_downstream_of_it():
    log, failed, _ = _run(PIPELINE, jobs=2, fail={"train@authors-1234-mnist-dldpmm"})
    started = {n for kind, n in log if kind == "start"}
    assert failed == ["train@authors-1234-mnist-dldpmm"]
    assert "marginal_likelihood@authors-1234-mnist-dldpmm" not in started and "report" not in started
    assert {"train@authors-1234-mnist-gauss_vae", "train@authors-1234-mnist-dlgmm"} <= started


@pytest.mark.parametrize("name, cheaper", [("train@authors-1234-mnist-dldpmm", "train@authors-1234-omniglot-dldpmm"),
                                           ("train_qualitative@authors-1234-mnist", "train@authors-1234-mnist-gauss_vae"),
                                           ("marginal_likelihood@authors-1234-mnist-dlgmm", "knn@authors-1234-mnist-dlgmm"),
                                           ("train@authors-1234-mnist-gauss_vae", "knn@authors-1234-mnist-dldpmm")])
def test_stage_cost_orders_as_logged(name, cheaper):
    assert logged_cost(name) > logged_cost(cheaper)


def test_a_stage_cost_is_its_logged_time_else_a_default(tmp_path):
    log = tmp_path / "metrics.json"
    log.write_text(json.dumps({"epochs": 10, "timing": {"mean_epoch_seconds": 2.5}}))
    assert schedule.stage_cost([tmp_path / "model.pt", log]) == 25.0
    log.write_text(json.dumps({"step": 4, "timing": {"mean_epoch_seconds": 2.5}}))  # a training under way
    assert schedule.stage_cost([log]) == 10.0
    log.write_text(json.dumps({"nll": 90.0, "seconds": 12.5}))
    assert schedule.stage_cost([log]) == 12.5
    assert schedule.stage_cost([tmp_path / "missing.json"]) == schedule.DEFAULT_SECONDS["other"]
    assert schedule.stage_cost([Path("metrics.json")], (tmp_path / "nothing", tmp_path)) == 12.5  # a further root
    assert schedule.stage_cost([Path("logs/authors/seed-1234/mnist/new_model/metrics.json")]) == \
        schedule.DEFAULT_SECONDS["training"]
    log.write_text(json.dumps({"epochs": 4, "timing": {"mean_epoch_seconds": 1002.5}}))  # paused an hour once
    (tmp_path / "plots" / "metrics").mkdir(parents=True)
    (tmp_path / "plots" / "metrics" / "epoch_seconds.tsv").write_text("step\tepoch_seconds\n1\t3.0\n2\t4000.0\n"
                                                                     "3\t2.0\n4\t5.0\n")
    assert schedule.stage_cost([log]) == 16.0  # the median epoch (4 s) four times, not the paused mean


def test_jobs_below_one_is_refused(capsys):
    assert schedule.main(["--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_first_moves_a_protocol_ahead_of_the_headline():
    assert schedule.first_protocol(("authors", "corrected"), "corrected") == ("corrected", "authors")
    assert schedule.first_protocol(("authors", "corrected"), None) == ("authors", "corrected")
    with pytest.raises(schedule.DlgmmError, match="--first typo: not one of"):
        schedule.first_protocol(("authors", "corrected"), "typo")


def test_first_with_one_job_is_refused(capsys):
    assert schedule.main(["--jobs", "1", "--first", "corrected"]) == 2
    assert "--first" in capsys.readouterr().err
