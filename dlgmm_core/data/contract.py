"""The prepared-data contract every later stage relies on, and its checks.

``data/prepared/<dataset>.npz`` holds ``x_train, x_valid, x_test`` (uint8,
values 0/1 only, shape ``(N, 784)``, each row a row-major 28x28 image) and
``y_train, y_valid, y_test`` (int64 class labels of matching length; all -1
when the source has no labels). ``<dataset>.json`` beside it records where the
data came from (see :func:`dlgmm_core.data.prepare_dataset`).
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from ..errors import DlgmmError
from ..io import read_json
from ..layout import prepare_hint

SIDE = 28
PIXELS = SIDE * SIDE
SPLITS = ("train", "valid", "test")
X_KEYS = tuple(f"x_{s}" for s in SPLITS)
Y_KEYS = tuple(f"y_{s}" for s in SPLITS)
NO_LABEL = -1


def check_intensities(x: np.ndarray, where: str) -> np.ndarray:
    """``x`` as float32 grey levels in [0, 1], shape (N, 784); DlgmmError naming ``where`` otherwise."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != PIXELS:
        raise DlgmmError(f"{where}: expected images of shape (N, {PIXELS}), found {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        raise DlgmmError(f"{where}: expected numeric pixel values, found dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
        raise DlgmmError(f"{where}: expected grey levels in [0, 1], found values in [{x.min()}, {x.max()}]")
    return x


def binarize(splits: list[np.ndarray], seed: int, chunk_rows: int = 2000) -> list[np.ndarray]:
    """Sample each pixel once from Bernoulli(intensity); the same ``seed`` gives the same bytes.

    One uniform float64 draw per pixel from ``Generator(PCG64(seed))``, splits in
    the order given and rows in order (chunking does not change the stream).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    out = [np.empty(x.shape, dtype=np.uint8) for x in splits]
    total = sum(x.shape[0] for x in splits)
    with tqdm(total=total, unit="img", desc="binarize") as bar:
        for x, y in zip(splits, out):
            for start in range(0, x.shape[0], chunk_rows):
                block = x[start:start + chunk_rows]
                y[start:start + chunk_rows] = rng.random(block.shape) < block
                bar.update(block.shape[0])
    return out


def validate(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Check ``arrays`` against the contract; DlgmmError naming ``where`` and the first problem."""
    missing = [k for k in X_KEYS + Y_KEYS if k not in arrays]
    if missing:
        raise DlgmmError(f"{where}: missing array(s) {', '.join(missing)}; expected {', '.join(X_KEYS + Y_KEYS)}")
    labelled = set()
    for xk, yk in zip(X_KEYS, Y_KEYS):
        x, y = arrays[xk], arrays[yk]
        if x.dtype != np.uint8:
            raise DlgmmError(f"{where}: {xk} must have dtype uint8, found {x.dtype}")
        if x.ndim != 2 or x.shape[1] != PIXELS:
            raise DlgmmError(f"{where}: {xk} must have shape (N, {PIXELS}), found {x.shape}")
        if x.size and x.max() > 1:
            raise DlgmmError(f"{where}: {xk} must hold only 0/1 values, found values up to {x.max()}")
        if y.dtype != np.int64:
            raise DlgmmError(f"{where}: {yk} must have dtype int64, found {y.dtype}")
        if y.shape != (x.shape[0],):
            raise DlgmmError(f"{where}: {yk} must have shape ({x.shape[0]},) to match {xk}, found {y.shape}")
        if y.size:
            if y.min() < NO_LABEL:
                raise DlgmmError(f"{where}: {yk} holds negative labels (minimum {y.min()}); -1 alone means 'no label'")
            if (y == NO_LABEL).any() and (y != NO_LABEL).any():
                raise DlgmmError(f"{where}: {yk} mixes labels and -1 (no label)")
            labelled.add(bool(y[0] != NO_LABEL))
    if len(labelled) > 1:
        raise DlgmmError(f"{where}: some splits have labels and others only -1")
    if arrays[X_KEYS[0]].shape[0] == 0:
        raise DlgmmError(f"{where}: x_train is empty")


def load_prepared(path_npz: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a prepared ``<dataset>.npz`` and check the contract; DlgmmError naming the file otherwise."""
    path = Path(path_npz)
    if not path.is_file():
        raise DlgmmError(f"{path}: prepared data not found; run `python stages/prepare.py --dataset {path.stem}` "
                         f"(or `dvc repro`) first")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DlgmmError(f"{path}: not a readable .npz file ({err}); delete it and prepare the data again") from None
    validate(arrays, str(path))
    return {key: arrays[key] for key in X_KEYS + Y_KEYS}


def has_labels(meta_or_npz: Any) -> bool:
    """Whether prepared data carry class labels.

    Accepts the metadata dict (its ``labels`` entry), a dict of arrays (labels
    are present when ``y_train`` is not all -1), or the path of the ``.json``
    or ``.npz`` (the json beside an npz is read when it exists).
    """
    obj = meta_or_npz
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        meta = path.with_suffix(".json")
        if meta.is_file():
            obj = read_json(meta, prepare_hint(meta.stem))
        elif path.suffix == ".npz":
            obj = load_prepared(path)
        else:
            raise DlgmmError(f"{meta}: prepared-data metadata not found")
    if isinstance(obj, Mapping):
        if "labels" in obj:
            return bool(obj["labels"])
        if "y_train" in obj:
            y = np.asarray(obj["y_train"])
            return bool(y.size) and bool((y != NO_LABEL).all())
    raise DlgmmError(f"cannot tell whether {type(obj).__name__} has labels: expected prepared metadata or arrays")


def content_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of the arrays' names, dtypes, shapes and bytes: equal iff the prepared data are equal.

    (The .npz file's own sha256 also depends on zip timestamps.)
    """
    digest = hashlib.sha256()
    for key in X_KEYS + Y_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def summarize(arrays: Mapping[str, np.ndarray]) -> dict:
    """Split sizes, pixel means, per-class counts and the content hash, for the metadata json."""
    out: dict[str, Any] = {"splits": {}, "pixel_mean": {}, "label_counts": {}, "content_sha256": content_sha256(arrays)}
    for split, xk, yk in zip(SPLITS, X_KEYS, Y_KEYS):
        x, y = arrays[xk], arrays[yk]
        out["splits"][split] = int(x.shape[0])
        out["pixel_mean"][split] = round(float(x.mean()), 6) if x.size else None
        labels = y[y != NO_LABEL]
        out["label_counts"][split] = np.bincount(labels).tolist() if labels.size else []
    return out
