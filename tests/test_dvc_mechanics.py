"""How the pipeline meets DVC, after a complete tiny pipeline committed to git:

- a rejected value costs nothing: each of more than twenty bad values of params.yaml, in every section,
  given through ``dvc exp run -S`` or an edit plus ``dvc repro``, is refused with one line naming its
  key, every output file stays byte-identical, and once the value is taken back ``dvc status`` finds
  nothing to run;
- a DVC remote carries the results to a fresh clone, which has nothing to run: the project configures none, a
  maintainer publishes the committed run's cache (``dvc push`` to a folder that a web server serves), and a clone
  pulls it over HTTP as from the folder.

The tiny project is the session's shared one of ``tests/fixtures_pipeline.py`` (offline data, tiny models).
Sweeps on the machine that ran the baseline (temporary, queued and in the workspace) are in
``tests/test_pipeline.py``, sweeps on a fresh clone in ``tests/test_sweep.py``.
"""
from __future__ import annotations

import configparser
import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fixtures_pipeline import TINY_SEED, _env, _run, finished_project

from dlgmm_core import layout
from dlgmm_core.params.read import read_yaml

ROOT = Path(__file__).resolve().parents[1]

ZEROS = "0" * 64

#: ``(how, assignment, the key the error names)``: ``exp`` goes through ``dvc exp run -S``, ``edit``
#: writes the value into params.yaml and runs ``dvc repro``. Values are YAML, as after ``-S key=``.
#: A ``cuda`` device is asked for with the machine's GPUs hidden (:data:`NO_GPU`), so that it names a device
#: that does not exist there, whether or not the machine has one.
BAD = [
    ("exp", "k=0", "k"),
    ("edit", "k=-1", "k"),
    ("edit", "k=abc", "k"),
    ("exp", "train.lr=0", "train.lr"),
    ("edit", "train.batch_size=0", "train.batch_size"),
    ("edit", "protocol.authors.train.patience=-1", "protocol.authors.train.patience"),
    ("edit", "seeds=[]", "seeds"),
    ("edit", "seeds=[7, 7]", "seeds[1]"),
    ("edit", "budget=fast", "budget"),
    ("edit", "train.device=cuda", "train.device"),
    ("edit", "train.precision=fp8", "train.precision"),
    ("edit", "model.dldpmm.truncation=1", "model.dldpmm.truncation"),
    ("edit", "model.dlgmm.prior_means=[0, 1, 2]", "model.dlgmm.prior_means"),
    ("edit", "protocol.authors.model.sb_vae.kl=simpson", "protocol.authors.model.sb_vae.kl"),
    ("exp", "eval.marginal_likelihood.batch_size=0", "eval.marginal_likelihood.batch_size"),
    ("edit", "eval.knn.neighbors=[0]", "eval.knn.neighbors"),
    ("edit", "eval.tsne.perplexity=-1", "eval.tsne.perplexity"),
    ("edit", "eval.samples.grid=0", "eval.samples.grid"),
    ("edit", "protocols=[authors, nobody]", "protocols"),
    ("edit", "data.omniglot.dir=nowhere", "data.omniglot.dir"),
    ("edit", f"data.omniglot.chardata.sha256={ZEROS}", "data.omniglot.chardata.sha256"),
    ("edit", f"data.mnist.wheel.sha256='{ZEROS}'", "data.mnist.wheel.sha256"),
    # a typo key: refused with the nearest known key
    ("edit", "train.max_epoch=2", "train.max_epoch"),
    # shadowed by the quick budget: still checked, though quick replaces it
    ("edit", "budget=quick|protocol.authors.eval.marginal_likelihood.samples=0",
     "protocol.authors.eval.marginal_likelihood.samples"),
]

#: The environment of a run that asks for ``cuda``: no CUDA device visible.
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}

#: What a run writes: every result, log, checkpoint, prepared dataset and resolved parameter file.
OUTPUTS = ("models", "logs", "reports", "data/prepared", "data/params")


def _snapshot(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for top in OUTPUTS for p in sorted((work / top).rglob("*"))
            if p.is_file()}


def _edit(params: Path, assignments: str) -> None:
    """Write ``key=value`` assignments into params.yaml by hand (no validation), creating a missing last key."""
    import yaml

    tree = read_yaml(params)
    for assignment in assignments.split("|"):
        key, _, text = assignment.partition("=")
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = yaml.safe_load(text)
    params.write_text(yaml.safe_dump(tree, sort_keys=False))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A tiny project that ran `dvc repro` to the end, its results committed (the session's shared run)."""
    return finished_project(tmp_path_factory, "mechanics")


def test_more_than_twenty_bad_values_cost_nothing(finished):
    work = finished
    params = work / "params.yaml"
    original = params.read_bytes()
    before = _snapshot(work)
    assert len(BAD) > 20 and before
    sections = {key.split(".")[0] if not key.startswith("protocol.") else "protocol" for _, _, key in BAD}
    assert {"k", "seeds", "budget", "protocols", "protocol", "data", "model", "train", "eval"} <= sections
    for how, assignment, key in BAD:
        if how == "exp":
            args = [sys.executable, "-m", "dvc", "exp", "run", "-S", assignment]
        else:
            _edit(params, assignment)
            args = [sys.executable, "-m", "dvc", "repro"]
        env = {**_env(work), **(NO_GPU if "device=cuda" in assignment else {})}
        result = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
        output = result.stdout + result.stderr
        params.write_bytes(original)
        assert result.returncode != 0, f"{assignment} was accepted:\n{output[-2000:]}"
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and key in errors[0], f"{assignment}:\n{output[-2000:]}"
        assert "Traceback" not in output, f"{assignment}:\n{output[-3000:]}"
        assert _snapshot(work) == before, f"{assignment} changed an output"
    status = _run([sys.executable, "-m", "dvc", "status"], work)
    assert "up to date" in status, status


def test_cuda_is_absent_where_the_gpus_are_hidden():
    """What the bad ``train.device=cuda`` above relies on, on a machine with a GPU as without: with
    :data:`NO_GPU`, asking for ``cuda`` is refused with one line naming the key."""
    code = "from dlgmm_core.runtime import resolve_device; resolve_device('cuda', key='train.device')"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, **NO_GPU}, capture_output=True, text=True)
    assert result.returncode != 0 and "train.device is 'cuda' but no CUDA device is available" in result.stderr


def test_a_typo_key_suggests_the_known_one(finished):
    result = subprocess.run([sys.executable, str(ROOT / "tools/params.py"), "check"], cwd=finished, env=_env(finished),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    _edit(finished / "params.yaml", "train.max_epoch=2")
    try:
        result = subprocess.run([sys.executable, str(finished / "stages/resolve.py")], cwd=finished,
                                env=_env(finished), capture_output=True, text=True)
    finally:
        _run(["git", "checkout", "params.yaml"], finished)
    assert result.returncode == 2 and "did you mean" in result.stderr, result.stderr


def test_an_equal_float_written_another_way_changes_nothing(finished):
    """params.yaml is read as YAML 1.2, as DVC reads it: `lr: 3e-4` is the same float as `lr: 0.0003`."""
    params = finished / "params.yaml"
    text = params.read_text()
    assert "lr: 0.0003" in text
    params.write_text(text.replace("lr: 0.0003", "lr: 3e-4"))
    try:
        output = _run([sys.executable, "-m", "dvc", "repro"], finished)
    finally:
        _run(["git", "checkout", "params.yaml"], finished)
    ran = {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}
    assert ran <= {"resolve"}, ran


@contextlib.contextmanager
def _served(folder: Path):
    """``folder`` served read-only over HTTP on this machine, as a published DVC remote is: yields its URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_dvc_remote_carries_the_results_to_a_fresh_clone(finished, tmp_path):
    """docs/pipeline.md, "Publishing the checkpoints through a DVC remote": the project configures no remote; the
    maintainer's `dvc push` to a folder (named in ``.dvc/config.local``, so no committed file changes), a fresh
    `git clone`, `dvc pull` from that folder or over HTTP from a web server serving it: the clone has every output
    and nothing to run."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert not [section for section in config.sections() if section.startswith(("remote", "'remote"))]
    work = finished
    dvc = [sys.executable, "-m", "dvc"]
    folder = tmp_path / "remote"
    _run([*dvc, "remote", "add", "--local", "publish", str(folder)], work)
    _run([*dvc, "push", "-r", "publish"], work)
    assert not _run(["git", "status", "--porcelain", "--untracked-files=no"], work).strip()

    for how in ("folder", "http"):
        clone = tmp_path / f"clone_{how}"
        _run(["git", "clone", "-q", str(work), str(clone)], tmp_path)
        assert not _run([*dvc, "remote", "list"], clone).strip()
        with contextlib.ExitStack() as stack:
            url = str(folder) if how == "folder" else stack.enter_context(_served(folder))
            _run([*dvc, "remote", "add", "--local", "public", url], clone)
            _run([*dvc, "pull", "-r", "public"], clone)
        status = json.loads(_run([*dvc, "status", "--json"], clone))
        assert status == {}, (how, status)
        assert not layout.train_state_dir(clone).exists()
        for model in ("gauss_vae", "dlgmm"):
            assert layout.checkpoint("authors", TINY_SEED, "mnist", model, clone).read_bytes() == \
                layout.checkpoint("authors", TINY_SEED, "mnist", model, work).read_bytes()
        assert layout.report_metrics(clone).read_bytes() == layout.report_metrics(work).read_bytes()
