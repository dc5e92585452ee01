"""The tiny committed pipeline that the pipeline, DVC and sweep tests share, and how they run DVC in it.

:func:`_project` copies the project (dvc.yaml, params.yaml with tiny sizes, stages/, dlgmm_core/, .gitignore,
.dvcignore, the committed DVC .gitignore files) into a temporary git + DVC repository, with a tiny fake MNIST wheel in
the download cache and a tiny ``chardata.mat`` as the local Omniglot folder. :func:`finished_project` runs one such
project through ``dvc repro`` once per test session, commits its results, and hands each test file a copy of its
own; :func:`fresh_clone` is a ``git clone`` of that committed run, as a user gets it (no DVC cache, no outputs
that git does not track), with the files its downloads would fetch.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlgmm_core.params.editor import set_params
from fixtures_data import WHEEL, mnist_pickle_bytes, sha256, write_chardata, write_wheel

ROOT = Path(__file__).resolve().parents[1]

#: The tiny pipeline's one seed: the first of the committed params.yaml's, so that the stage views it writes
#: (data/params/<stage>.json, git-tracked) are files the repository tracks.
TINY_SEED = 1234
TINY = [
    f"seeds=[{TINY_SEED}]", "k=2", "budget=paper", "protocols=[authors]",
    "data.omniglot.dir=raw_omniglot", "data.omniglot.valid_size=10",
    "model.gauss_vae.hidden=16", "model.gauss_vae.latent=2",
    "model.sb_vae.hidden=16", "model.sb_vae.truncation=3",
    "model.dlgmm.hidden=16", "model.dlgmm.latent=2",
    "model.dldpmm.hidden=16", "model.dldpmm.latent=2", "model.dldpmm.truncation=3",
    "model.qualitative.hidden=16", "model.qualitative.latent=2",
    "protocol.authors.train.max_epochs=2", "protocol.authors.train.patience=1", "train.batch_size=50",
    "train.device=cpu", "train.compile=false", "eval.device=cpu",
    "protocol.authors.eval.marginal_likelihood.samples=20",
    "eval.marginal_likelihood.authors_samples=5", "eval.marginal_likelihood.bounds_at=[1, 10]",
    "eval.knn.neighbors=[1, 3]", "eval.tsne.points=40", "eval.tsne.perplexity=5", "eval.samples.grid=2",
]

#: What the tiny project's downloads fetch (the MNIST wheel in the download cache) and its local Omniglot folder:
#: ignored by git, so a clone lacks them until its data preparation fetches them.
DOWNLOADS = ("data/raw", "raw_omniglot")

#: The .gitignore files DVC writes beside the outputs it caches, committed so that a run leaves none untracked.
DVC_GITIGNORES = [name for name in subprocess.run(["git", "ls-files", "*.gitignore"], cwd=ROOT, capture_output=True,
                                                  text=True, check=True).stdout.split()
                  if name not in (".gitignore", ".dvc/.gitignore")]

#: ``dvc`` as the tests run it: this interpreter's.
DVC = [sys.executable, "-m", "dvc"]

#: Seconds a queued experiment may take on a busy machine before the test gives up on it.
QUEUE_DEADLINE = 600

#: Seconds between two looks at DVC's queue (each look is a ``dvc queue status`` process, a second of CPU).
QUEUE_POLL = 3.0


def _env(work: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(work / ".site_cache"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
        "COLUMNS": "400",  # DVC's tables (`dvc exp show`) whole, names not cut short
    })
    return env


def _run(args: list[str], work: Path) -> str:
    result = subprocess.run(args, cwd=work, env=_env(work), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def _project(work: Path) -> Path:
    """A tiny, self-contained copy of the project with offline data, committed to git."""
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("stages", "dlgmm_core"):
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, work / name)
    for name in DVC_GITIGNORES:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, work / name)
    rng = np.random.default_rng(0)
    grey = {split: rng.random((n, 784), dtype=np.float32) for split, n in
            (("train", 120), ("valid", 40), ("test", 60))}
    wheel = write_wheel(work / "data" / "raw" / WHEEL, mnist_pickle_bytes(grey))
    write_chardata(work / "raw_omniglot" / "chardata.mat", n_train=60, n_test=30, classes=3)
    set_params(work / "params.yaml", TINY + [f"data.mnist.wheel.sha256={sha256(wheel)}"])
    (work / ".gitignore").write_text((ROOT / ".gitignore").read_text() + "/raw_omniglot/\n/.site_cache/\n")
    _run(["git", "init", "-q"], work)
    _run([*DVC, "init", "-q"], work)
    shutil.copy(ROOT / ".dvcignore", work / ".dvcignore")
    _run(["git", "add", "-A"], work)
    _run(["git", "commit", "-qm", "tiny project"], work)
    return work


def _repro_two_at_a_time(work: Path) -> subprocess.Popen:
    """``make repro``'s way: independent stages two at a time, each a ``dvc repro --single-item``."""
    dvc = str(Path(sys.executable).parent / "dvc")
    return subprocess.Popen([sys.executable, str(ROOT / "tools" / "schedule.py"), "--jobs", "2", "--dvc", dvc],
                            cwd=work, env=_env(work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _session_dir(tmp_path_factory) -> Path:
    """A folder of this test session that every xdist worker sees: the parent of the workers' own base folders
    under xdist, the session's base folder without it (whose parent other sessions share)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _committed_run(tmp_path_factory) -> Path:
    """The session's ONE tiny project that ran ``dvc repro`` to the end with its results committed (read-only for
    the tests): made by whichever test file (xdist worker) asks first, while the others wait."""
    from filelock import FileLock

    shared = _session_dir(tmp_path_factory)
    done = shared / "tiny_pipeline"
    with FileLock(str(shared / "tiny_pipeline.lock")):
        if not (done / ".finished").is_file():
            build = shared / "tiny_pipeline.building"
            shutil.rmtree(build, ignore_errors=True)
            build.mkdir()
            _project(build)
            _run([*DVC, "repro"], build)
            _run(["git", "add", "-A"], build)
            _run(["git", "commit", "-qm", "results"], build)
            (build / ".finished").touch()
            shutil.rmtree(done, ignore_errors=True)
            build.rename(done)
    return done


def finished_project(tmp_path_factory, name: str) -> Path:
    """A copy, in a folder of its own named ``name``, of the session's committed tiny run (:func:`_committed_run`):
    the workspace of the machine that ran the baseline, DVC cache and training states included."""
    done = _committed_run(tmp_path_factory)
    copy = tmp_path_factory.mktemp(name) / "project"
    shutil.copytree(done, copy, symlinks=True)
    (copy / ".finished").unlink()
    return copy


def fresh_clone(tmp_path_factory, name: str) -> Path:
    """A ``git clone`` of the session's committed tiny run, as a user gets it: the committed files only (no DVC
    cache, no checkpoint, no prepared data, no training state), plus :data:`DOWNLOADS`, which its data preparation
    would download (the tiny project's sources are offline files)."""
    done = _committed_run(tmp_path_factory)
    clone = tmp_path_factory.mktemp(name) / "clone"
    _run(["git", "clone", "-q", str(done), str(clone)], clone.parent)
    for folder in DOWNLOADS:
        shutil.copytree(done / folder, clone / folder)
    return clone


def _stages_run(output: str) -> set[str]:
    """The stages a `dvc repro` output ran, or restored from DVC's run cache instead of running."""
    return {line.split("'")[1] for line in output.splitlines()
            if line.startswith("Running stage") or (line.startswith("Stage '") and "is cached" in line)}


def _trainings_from_scratch(output: str) -> list[str]:
    """The ``<dataset>/<model>`` of every training a `dvc repro` output started from scratch, sorted."""
    return sorted(line.split(":")[0] for line in output.splitlines() if line.endswith("; from scratch"))


def _queued(output: str) -> dict[str, list[str]]:
    """``{experiment: its -S overrides}`` of a ``dvc exp run --queue`` output."""
    queued, overrides = {}, None
    for line in output.splitlines():
        if line.startswith("Queueing with overrides"):
            quoted = line.split("overrides ", 1)[1].rstrip(".")  # '{'params.yaml': ['k=5']}'
            overrides = sorted(ast.literal_eval(quoted[1:-1]).get("params.yaml", []))
        elif line.startswith("Queued experiment '"):
            queued[line.split("'")[1]] = overrides
    return queued


def _start_queue(args: list[str], work: Path) -> None:
    """``dvc queue start``: the workers it spawns outlive it and inherit its output, so that goes to a file (a pipe
    would stay open, and this call wait, until the last worker stops)."""
    with tempfile.TemporaryFile("w+") as log:
        result = subprocess.run(args, cwd=work, env=_env(work), stdout=log, stderr=subprocess.STDOUT, text=True)
        log.seek(0)
        assert result.returncode == 0, log.read()[-3000:]


def _wait_for_queue(names: list[str], work: Path) -> dict[str, str]:
    """``{experiment: final status}`` once none of ``names`` is queued or running; the queue's workers stopped."""
    deadline = time.monotonic() + QUEUE_DEADLINE
    try:
        while True:
            status = _run([*DVC, "queue", "status"], work)
            states = {line.split()[1]: line.split()[-1] for line in status.splitlines()
                      if len(line.split()) > 2 and line.split()[1] in names}
            if set(states) == set(names) and not {"Queued", "Running"} & set(states.values()):
                return states
            assert time.monotonic() < deadline, status
            time.sleep(QUEUE_POLL)
    finally:
        _run([*DVC, "queue", "stop"], work)
