"""The whole DVC pipeline on tiny offline data: repeatable, cached, and `-S k=...` touches only the DLGMM.

A copy of the project (dvc.yaml, params.yaml with tiny sizes, stages/,
dlgmm_core/, .gitignore, .dvcignore) is made in a temporary git + DVC
repository, with a tiny fake MNIST wheel placed in the download cache and a
tiny ``chardata.mat`` as the local Omniglot folder (``tests/fixtures_pipeline.py``). Two such copies run
``dvc repro`` from scratch (one is shared with ``tests/test_dvc_mechanics.py``); their ``reports/metrics.json`` must be
identical, a second ``dvc repro`` must do nothing, ``dvc exp run -S k=3`` (temporary, queued, in the
workspace) must run the DLGMM's stages alone and change its metrics and no other model's, and adding a
protocol or a seed must leave every stage of the others up to date.

The DVC-generated .gitignore files are committed: a run leaves none new or changed.
Rejected values and a DVC remote are in ``tests/test_dvc_mechanics.py``, sweeps on a fresh clone in
``tests/test_sweep.py``; the tiny project and the session's shared run in ``tests/fixtures_pipeline.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlgmm_core import layout, load_checkpoint
from dlgmm_core.claims import CLAIMS
from dlgmm_core.params.editor import set_params
from dlgmm_core.results import cluster_result
from fixtures_pipeline import (DVC, DVC_GITIGNORES, TINY_SEED, _env, _project, _queued, _repro_two_at_a_time, _run,
                               _stages_run, _start_queue, _trainings_from_scratch, _wait_for_queue, finished_project)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny projects run from scratch: the session's shared run (one ``dvc repro``, usually made meanwhile by
    the other xdist worker, for tests/test_dvc_mechanics.py), and one of this module's own, run two stages at a
    time by tools/schedule.py."""
    second = _project(tmp_path_factory.mktemp("run_b"))
    process = _repro_two_at_a_time(second)
    output, _ = process.communicate()
    assert process.returncode == 0, f"two-at-a-time repro failed in {second}:\n{output[-5000:]}"
    return finished_project(tmp_path_factory, "run_a"), second


def test_every_declared_output_is_produced(two_runs):
    work, _ = two_runs
    report = (work / "reports" / "README.md").read_text()
    assert "Figure 3a" in report and "Figure 3b" in report and "| 96.50 |" in report
    assert "Where the published numbers come from" in report
    metrics = json.loads((work / "reports" / "metrics.json").read_text())
    for dataset in ("mnist", "omniglot"):
        for model in ("gauss_vae", "sb_vae", "dlgmm", "dldpmm"):
            assert np.isfinite(metrics[f"authors.{dataset}.{model}.nll"])
            assert np.isfinite(metrics[f"authors.{dataset}.{model}.nll_ours"])
            assert layout.samples_figure("authors", TINY_SEED, dataset, model, work).stat().st_size > 0
    for model in ("gauss_vae", "sb_vae", "dlgmm", "dldpmm"):
        assert layout.tsne_figure("authors", TINY_SEED, "mnist", model, work).exists()
    assert sorted(p.name for p in layout.qualitative_dir("authors", TINY_SEED, work).glob("*.png")) == [
        f"component_{i}.png" for i in range(1, 6)]
    assert list(layout.training_figures_dir(work).rglob("*.png"))
    assert load_checkpoint(layout.checkpoint("authors", TINY_SEED, "mnist", "dlgmm", work)).checkpoint_metadata["protocol"] \
        == "authors"


def test_every_figure_is_committed_to_git(two_runs):
    """The figures are `cache: false` outputs: committed with the results, a clone shows the whole report."""
    work, _ = two_runs  # the run whose results were committed with `git add -A`
    on_disk = sorted(str(p.relative_to(work)) for p in (work / "reports" / "figures").rglob("*.png"))
    tracked = _run(["git", "ls-files", "reports/figures"], work).split()
    assert on_disk and sorted(name for name in tracked if name.endswith(".png")) == on_disk
    ignored = subprocess.run(["git", "check-ignore", *on_disk], cwd=work, env=_env(work), capture_output=True,
                             text=True)
    assert ignored.returncode == 1 and not ignored.stdout, ignored.stdout  # exit 1: none of them is ignored


def test_two_runs_from_scratch_give_identical_metrics(two_runs):
    """Sequential and two-at-a-time runs give bitwise the same checkpoints and metrics, and the same dvc.lock
    entries for them."""
    first, second = two_runs
    assert (first / "reports" / "metrics.json").read_bytes() == (second / "reports" / "metrics.json").read_bytes()
    checkpoints = sorted(p.relative_to(first) for p in (first / "models").rglob("*.pt"))
    assert len(checkpoints) == 9  # 5 MNIST (the qualitative model too) + 4 Omniglot
    for path in checkpoints:
        assert (first / path).read_bytes() == (second / path).read_bytes(), path
    locks = [yaml.safe_load((work / "dvc.lock").read_text())["stages"] for work in two_runs]
    assert sorted(locks[0]) == sorted(locks[1])
    for stage in locks[0]:
        # The trainings read the same inputs (each project's fake wheel has its own zip timestamps, so the
        # downloads and their records differ, the binarized arrays not) and wrote the same checkpoints
        # (the logs hold wall times).
        if stage.startswith("train"):
            assert locks[0][stage]["deps"] == locks[1][stage]["deps"], stage
        outs = [[o for o in lock[stage].get("outs", []) if o["path"].endswith(".pt")] for lock in locks]
        assert outs[0] == outs[1], stage
    status = _run([sys.executable, "-m", "dvc", "status"], second)
    assert "up to date" in status, status


def test_second_repro_does_nothing(two_runs):
    work, _ = two_runs
    output = _run([sys.executable, "-m", "dvc", "repro"], work)
    assert "Running stage" not in output
    assert "up to date" in output


def _assert_only_the_dlgmm_ran(output: str) -> None:
    """The stages of ``output`` (run, or restored from DVC's run cache): the DLGMM's trainings and report, and
    nothing but the DLGMM's stages, ``resolve`` and ``report``."""
    ran = _stages_run(output)
    trainings = {layout.train_stage("authors", TINY_SEED, d, "dlgmm") for d in ("mnist", "omniglot")}
    assert trainings | {"report"} <= ran, ran
    assert all("dlgmm" in stage or stage in ("resolve", "report") for stage in ran), ran


def test_sweeping_k_reruns_only_the_dlgmm(two_runs):
    """One setting, ``k=3``, swept the three ways on the machine that ran the baseline: a temporary experiment
    (DVC's copy of the repository, without the untracked training states) trains the DLGMM and no other model;
    a queued one and one in the workspace restore even the DLGMM from DVC's run cache. The workspace's metrics
    then differ from the committed ones in the DLGMM's keys only."""
    work, _ = two_runs
    before = json.loads((work / "reports" / "metrics.json").read_text())
    _run(["git", "add", "-A"], work)
    _run(["git", "commit", "-qm", "baseline results", "--allow-empty"], work)
    tracked = _run(["git", "ls-files"], work).splitlines()
    assert layout.train_state("authors", TINY_SEED, "mnist", "gauss_vae", work).is_file()
    assert not any(name.endswith(".state.pt") or name.startswith(".dlgmm/") for name in tracked)

    temporary = _run([*DVC, "exp", "run", "--temp", "-S", "k=3"], work)
    _assert_only_the_dlgmm_ran(temporary)
    assert _trainings_from_scratch(temporary) == ["mnist/dlgmm", "omniglot/dlgmm"], temporary

    queued = _queued(_run([*DVC, "exp", "run", "--queue", "-S", "k=3"], work))
    _start_queue([*DVC, "queue", "start", "-j", "1"], work)
    (name, state), = _wait_for_queue(list(queued), work).items()
    log = _run([*DVC, "queue", "logs", name], work)
    assert state == "Success", f"{name}: {state}\n{log[-3000:]}"
    _assert_only_the_dlgmm_ran(log)
    assert _trainings_from_scratch(log) == [], log

    output = _run([*DVC, "exp", "run", "-S", "k=3"], work)
    _assert_only_the_dlgmm_ran(output)
    assert _trainings_from_scratch(output) == [], output
    diff = json.loads(_run([*DVC, "metrics", "diff", "--json"], work))
    changed = {(path, key) for path, entries in diff.items() for key, change in entries.items()
               if change.get("diff")}
    report = {key for path, key in changed if path == "reports/metrics.json"}
    assert {"authors.mnist.dlgmm.nll", "authors.omniglot.dlgmm.nll"} <= report
    # the DLGMM's own metrics, and the claims that compare the DLGMM with another model (from the per-image files)
    on_dlgmm = {claim.key for claim in CLAIMS if any("dlgmm" in (case.better, case.than) for case in claim.cases)}
    assert all(".dlgmm." in key or (key.startswith("claims.") and key.split(".")[1] in on_dlgmm)
               for key in report), report
    # the DLGMM's own metric files: its training log and the measurement of its t-SNE map
    dlgmm_files = {str(layout.train_metrics(p, TINY_SEED, d, "dlgmm")) for p in ("authors",) for d in ("mnist", "omniglot")}
    dlgmm_files.add(str(cluster_result("authors", TINY_SEED, "mnist", "dlgmm")))
    assert {path for path, _ in changed} <= dlgmm_files | {"reports/metrics.json"}, changed
    after = json.loads((work / "reports" / "metrics.json").read_text())
    assert {k for k in before if before[k] != after.get(k)} == report


def test_adding_a_protocol_leaves_the_others_cached(two_runs):
    """`protocols: [authors, corrected]` adds the corrected stages; every authors stage stays up to date."""
    work, _ = two_runs
    set_params(work / "params.yaml", ["protocols=[authors, corrected]"])
    try:
        status = json.loads(_run([sys.executable, "-m", "dvc", "status", "--json"], work))
    finally:
        set_params(work / "params.yaml", ["protocols=[authors]"])
    changed = set(status)
    assert any(name.startswith(f"train@corrected-{TINY_SEED}-") for name in changed), changed
    assert not any("@authors" in name or name.startswith("prepare@") for name in changed), changed
    assert changed - {"resolve", "report"} == {name for name in changed if "@corrected" in name}


def test_adding_a_seed_leaves_the_others_cached(two_runs):
    """`seeds: [s, s + 1]` adds every model stage of seed s + 1; every stage of seed s and the data stay up to date."""
    work, _ = two_runs
    other = TINY_SEED + 1
    set_params(work / "params.yaml", [f"seeds=[{TINY_SEED}, {other}]"])
    try:
        status = json.loads(_run([sys.executable, "-m", "dvc", "status", "--json"], work))
    finally:
        set_params(work / "params.yaml", [f"seeds=[{TINY_SEED}]"])
    changed = set(status)
    new = {name for name in changed if name.partition("@")[2].split("-")[1:2] == [str(other)]}
    assert layout.train_stage("authors", other, "mnist", "dlgmm") in new, changed
    assert layout.samples_stage("authors", other, "mnist", "qualitative") in new, changed
    assert "resolve" in changed and changed - new <= {"resolve", "report"}, changed


def test_the_committed_gitignores_cover_what_dvc_writes(two_runs):
    """After `dvc repro`, no .gitignore is new or changed: the ones DVC writes are committed as it writes them."""
    _, work = two_runs  # the run whose results are not committed
    assert DVC_GITIGNORES
    status = _run(["git", "status", "--porcelain", "-uall"], work)
    assert not [line for line in status.splitlines() if line.endswith(".gitignore")], status
