"""dlgmm_core.results: each stage-output format written and read by one class, bytes as committed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlgmm_core.errors import DlgmmError
from dlgmm_core.results import Clusters, ComponentShapes, Knn, MarginalLikelihood, PerImage, per_image_path

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


@pytest.mark.parametrize("kind, arrays", [
    ("nll", {"ours": np.array([90.25, 101.5]), "authors": np.array([91.0, 103.125])}),
    ("knn", {"labels": np.array([3, 7]), "k3": np.array([3, 1]), "k10": np.array([3, 7])}),
    ("clusters", {"labels": np.array([0, 9]), "map": np.array([0, 9]), "latent": np.array([-1, 9])}),
])
def test_per_image_results_round_trip(tmp_path, kind, arrays):
    path = per_image_path(tmp_path / "result.json")
    assert path == tmp_path / "result.npz"
    PerImage(kind, arrays).write(path)
    read = PerImage.read(path, kind, "run its stage")
    assert set(read.arrays) == set(arrays)
    for name, array in arrays.items():
        assert read.arrays[name].dtype == PerImage.FORMATS[kind].get(name, np.int8)
        assert np.array_equal(read.arrays[name], array)  # these values are exact in the stored dtypes


def test_bad_per_image_results_are_one_line(tmp_path):
    path = tmp_path / "r.npz"
    with pytest.raises(DlgmmError, match=r"r.npz: not found; run it"):
        PerImage.read(path, "nll", "run it")
    np.savez_compressed(path, ours=np.zeros(3, np.float32))
    with pytest.raises(DlgmmError, match=r"r.npz: missing array\(s\) authors; run it"):
        PerImage.read(path, "nll", "run it")
    np.savez_compressed(path, ours=np.zeros(3, np.float32), authors=np.zeros(3, np.float64))
    with pytest.raises(DlgmmError, match=r"'authors' must be a 1-d float32 array"):
        PerImage.read(path, "nll", "run it")
    np.savez_compressed(path, ours=np.zeros(3, np.float32), authors=np.zeros(2, np.float32))
    with pytest.raises(DlgmmError, match="differ in length"):
        PerImage.read(path, "nll", "run it")
    path.write_bytes(b"not a zip")
    with pytest.raises(DlgmmError, match="not a readable .npz"):
        PerImage.read(path, "nll", "run it")
    with pytest.raises(ValueError, match="no array 'k'"):
        PerImage("knn", {"labels": np.zeros(2), "k": np.zeros(2)}).write(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="different lengths"):
        PerImage("nll", {"ours": np.zeros(2), "authors": np.zeros(3)}).write(tmp_path / "x.npz")
