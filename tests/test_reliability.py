"""Interrupted or misfed stages: no partial output, one clear message, the same result on restart."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_evaluation import SEED, make_workspace

from dlgmm_core import layout
from dlgmm_core.params.views import resolve

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
NLL = ["marginal_likelihood.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "dlgmm"]


def _stage(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / args[0]), *args[1:]], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_marginal_likelihood_killed_midway_leaves_nothing_and_restarts_cleanly(tmp_path):
    work, reference = tmp_path / "work", tmp_path / "reference"
    work.mkdir()
    make_workspace(work)
    tree = yaml.safe_load((work / "params.yaml").read_text())
    tree["eval"]["marginal_likelihood"].update(batch_size=12000, max_examples=30)
    tree["protocol"]["authors"]["eval"]["marginal_likelihood"]["samples"] = 12000
    (work / "params.yaml").write_text(yaml.safe_dump(tree))
    resolve(work / "params.yaml", work)
    shutil.copytree(work, reference)
    out = layout.nll_result("authors", SEED, "mnist", "dlgmm", work)

    process = subprocess.Popen([sys.executable, str(ROOT / "stages" / NLL[0]), *NLL[1:]], cwd=work, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Past the imports and the model load (about 2 s of CPU), inside the estimator.
    while process.poll() is None and _cpu_seconds(process.pid) < 2.5:
        time.sleep(0.05)
    assert process.poll() is None, "the stage finished before it could be interrupted; raise the sample count"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()

    restarted = _stage(NLL, work)
    assert restarted.returncode == 0, restarted.stderr
    uninterrupted = _stage(NLL, reference)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    first, second = json.loads(out.read_text()), json.loads((reference / out.relative_to(work)).read_text())
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert sorted(p.name for p in out.parent.iterdir()) == ["dlgmm.json", "dlgmm.npz"]
    assert out.with_suffix(".npz").read_bytes() == (reference / out.relative_to(work)).with_suffix(".npz").read_bytes()


def test_checkpoint_of_another_model_is_named(tmp_path):
    make_workspace(tmp_path)
    dlgmm = layout.checkpoint("authors", SEED, "mnist", "dlgmm", tmp_path)
    shutil.copy(layout.checkpoint("authors", SEED, "mnist", "gauss_vae", tmp_path), dlgmm)
    result = _stage(NLL, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"models/authors/seed-{SEED}/mnist/dlgmm.pt" in lines[0] and "gauss_vae" in lines[0], result.stderr
    assert not layout.nll_result("authors", SEED, "mnist", "dlgmm", tmp_path).exists()


@pytest.mark.parametrize("key, recorded", [("dataset", "omniglot"), ("protocol", "corrected"), ("budget", "quick")])
def test_checkpoint_recording_another_dataset_or_protocol_is_named(tmp_path, key, recorded):
    """A checkpoint copied in from another dataset's, protocol's or budget's run would give its numbers under this
    name."""
    from dlgmm_core import load_checkpoint, save_checkpoint

    make_workspace(tmp_path)
    path = layout.checkpoint("authors", SEED, "mnist", "dlgmm", tmp_path)
    model = load_checkpoint(path)
    save_checkpoint(path, model, metadata={**model.checkpoint_metadata, key: recorded})
    result = _stage(NLL, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path.relative_to(tmp_path)) in lines[0] and f"{key} {recorded!r}" in lines[0], \
        result.stderr
    assert not layout.nll_result("authors", SEED, "mnist", "dlgmm", tmp_path).exists()


def test_checkpoint_with_nan_weights_is_named(tmp_path):
    """NaN encoder weights would fail deep in torch (a NaN scale in the first sample); one line names the file."""
    import torch

    from dlgmm_core import load_checkpoint, save_checkpoint

    make_workspace(tmp_path)
    path = layout.checkpoint("authors", SEED, "mnist", "gauss_vae", tmp_path)
    model = load_checkpoint(path)
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    save_checkpoint(path, model, metadata=model.checkpoint_metadata)
    result = _stage(["knn.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "gauss_vae"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path.relative_to(tmp_path)) in lines[0] and "NaN or infinite" in lines[0], \
        result.stderr


def test_non_binary_prepared_data_is_named(tmp_path):
    make_workspace(tmp_path)
    path = tmp_path / "data/prepared/mnist.npz"
    arrays = dict(np.load(path))
    arrays["x_test"][0, 0] = 7
    np.savez_compressed(path, **arrays)
    result = _stage(["knn.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "dlgmm"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "data/prepared/mnist.npz" in lines[0] and "x_test" in lines[0], result.stderr
    assert not (tmp_path / "reports/knn").exists()


def test_stale_temporary_files_are_cleared_and_ignored_by_dvc(tmp_path):
    from dlgmm_core.io import write_json

    stale = tmp_path / ".metrics.json.abc123.tmp"
    stale.write_text("{half")
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert ".*.tmp" in (ROOT / ".dvcignore").read_text().splitlines()


@pytest.mark.parametrize("code", ["ENOSPC", "EROFS"])
def test_a_full_or_read_only_disk_is_one_line(code, capsys):
    import errno

    from dlgmm_core.errors import run_stage

    def main():
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), "models/authors/seed-1234/mnist/.dlgmm.pt.x.tmp")

    with pytest.raises(SystemExit) as exit_info:
        run_stage(main)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "models/authors/seed-1234/mnist/.dlgmm.pt.x.tmp" in lines[0] and "rerun the stage" in lines[0]


def test_other_os_errors_are_not_disguised():
    from dlgmm_core.errors import run_stage

    def main():
        raise ConnectionResetError("peer reset")

    with pytest.raises(ConnectionResetError):
        run_stage(main)
