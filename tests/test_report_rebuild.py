"""The committed report rebuilds byte-identically from the committed, git-tracked inputs alone."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dlgmm_core.params.stage import load_stage_params
from dlgmm_core.layout import report_stage
from dlgmm_core.report import write_report

ROOT = Path(__file__).resolve().parents[1]
#: What the report stage reads (dvc.yaml's `report` stage), as git tracks it.
INPUTS = ("reports/nll", "reports/knn", "reports/figures", "logs", "data/params/report.json", "params.yaml")
#: What it writes, compared byte for byte (the training figures are rewritten too, but PNG bytes depend on
#: matplotlib's version).
OUTPUTS = ("reports/README.md", "reports/metrics.json")


def _tracked(path: str) -> list[str]:
    result = subprocess.run(["git", "ls-files", "--", path], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return result.stdout.splitlines()


def test_the_committed_report_rebuilds_byte_identically(tmp_path):
    files = [name for path in INPUTS for name in _tracked(path)]
    assert files, "no tracked inputs"
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    write_report(tmp_path, load_stage_params(report_stage(), tmp_path))
    for name in OUTPUTS:
        assert (tmp_path / name).read_bytes() == (ROOT / name).read_bytes(), name
