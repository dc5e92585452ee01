"""dlgmm_core.results: each stage-output format written and read by one class, bytes as committed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlgmm_core.errors import DlgmmError
from dlgmm_core.results import Clusters, ComponentShapes, Knn, MarginalLikelihood

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = {
    MarginalLikelihood: sorted((ROOT / "reports/nll").rglob("*.json")),
    Knn: sorted((ROOT / "reports/knn").rglob("*.json")),
    Clusters: sorted((ROOT / "reports/figures/tsne").rglob("*.json")),
    ComponentShapes: sorted((ROOT / "reports/figures/qualitative").rglob("components.json")),
}


def _read(cls, path: Path):
    if cls is ComponentShapes:
        return cls.read(path, "hint", len(json.loads(path.read_text())["components"]))
    return cls.read(path, "hint")


@pytest.mark.parametrize("cls", list(COMMITTED), ids=lambda c: c.__name__)
def test_a_committed_result_is_written_back_byte_for_byte(cls, tmp_path):
    assert COMMITTED[cls], f"no committed {cls.__name__} results"
    for path in COMMITTED[cls]:
        _read(cls, path).write(tmp_path / "out.json")
        assert (tmp_path / "out.json").read_bytes() == path.read_bytes(), path


@pytest.mark.parametrize("cls, key", [(MarginalLikelihood, "elbo"), (MarginalLikelihood, "authors"),
                                      (Clusters, "points")])
def test_a_missing_key_is_one_line_naming_the_file_and_the_key(cls, key, tmp_path):
    data = json.loads(COMMITTED[cls][0].read_text())
    del data[key]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DlgmmError) as err:
        cls.read(path, "hint")
    assert str(err.value).startswith(f"{path}: ") and f"'{key}'" in str(err.value) and "\n" not in str(err.value)


def test_a_bad_number_and_a_missing_file_are_named(tmp_path):
    path = tmp_path / "knn.json"
    path.write_text(json.dumps({"error@3": "x"}))
    with pytest.raises(DlgmmError, match=r"knn.json: 'error@3' must be a finite number \(got 'x'\)"):
        Knn.read(path, "hint")
    with pytest.raises(DlgmmError, match=r"missing.json: not found; run `dvc repro knn`$"):
        Knn.read(tmp_path / "missing.json", "run `dvc repro knn`")
    shapes = json.loads(COMMITTED[ComponentShapes][0].read_text())
    path.write_text(json.dumps(shapes))
    with pytest.raises(DlgmmError, match=r"expected 'components', one entry for each of the 3 components"):
        ComponentShapes.read(path, "hint", 3)
