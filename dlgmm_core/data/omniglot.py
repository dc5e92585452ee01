"""Omniglot: Burda et al.'s ``chardata.mat`` or Lake et al.'s zips of 105x105 PNGs."""
from __future__ import annotations

import hashlib
import io
import sys
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from ..params.reader import ParamReader
from ..errors import DlgmmError
from . import download
from .contract import NO_LABEL, PIXELS, SIDE, binarize, check_intensities

PREFIX = "data.omniglot"
CHARDATA = "chardata.mat"
LAKE_PATTERNS = ("images_background*.zip", "images_evaluation*.zip")
EXPECTED = f"{CHARDATA} (Burda et al.) or Lake-format {' / '.join(LAKE_PATTERNS)}"
BURDA = "Burda et al.'s chardata.mat"
RESIZE = "PIL BOX (area average) of the grey levels to 28x28, inverted so ink = 1"


def _pins(section: dict, name: str, explicit: str | None = None) -> list[tuple[str, str]]:
    """``[(sha256, params key), ...]`` pinned for the file ``name`` (explicit key first)."""
    params = ParamReader(section, prefix=PREFIX)
    pins = []
    if explicit:
        pins.append((params.typed(explicit, str, default=""), f"{PREFIX}.{explicit}"))
    known = params.typed("known_sha256", dict, default={}) or {}
    if name in known:
        if not isinstance(known[name], str):
            raise DlgmmError(f"params.yaml: {PREFIX}.known_sha256.{name} must be a string (got {known[name]!r})")
        pins.append((known[name], f"{PREFIX}.known_sha256.{name}"))
    return pins or [("", f"{PREFIX}.known_sha256.{name}")]


def _check_more(record: dict, pins: list[tuple[str, str]]) -> dict:
    for expected, key in pins:
        expected = expected.strip().lower()
        if expected and record["sha256"] != expected:
            raise DlgmmError(f"{record['path']}: sha256 mismatch: expected {expected} ({key} in params.yaml), "
                             f"found {record['sha256']}; replace the file or correct {key}")
    return record


def _local(path: Path, pins: list[tuple[str, str]]) -> dict:
    pinned = [p for p in pins if p[0].strip()] or pins
    return _check_more(download.verify(path, pinned[0][0], pinned[0][1]), pinned[1:])


def _fetch(url: str, raw_dir: Path, pins: list[tuple[str, str]], url_key: str) -> tuple[Path, dict]:
    dest = Path(raw_dir) / PurePosixPath(url.split("?")[0]).name
    pinned = [p for p in pins if p[0].strip()] or pins
    hint = f"set {PREFIX}.dir to a local folder holding {EXPECTED}, or change {url_key}"
    record = download.fetch_url(url, dest, pinned[0][0], pinned[0][1], hint)
    return dest, _check_more(record, pinned[1:])


def locate(section: dict, raw_dir: Path | None) -> tuple[str, list[tuple[Path, dict]]]:
    """``(source, [(file, record), ...])``: the local folder's files, or (``raw_dir`` given) verified downloads.

    With ``raw_dir=None`` and no local folder, nothing is checked: ``(source, [])``.
    """
    params = ParamReader(section, prefix=PREFIX)
    source = params.typed("source", str)
    if source not in ("chardata", "lake"):
        raise DlgmmError(f"params.yaml: {PREFIX}.source must be chardata or lake (got {source!r})")
    folder = params.typed("dir", str).strip()
    if folder:
        base = Path(folder).expanduser()
        if not base.is_dir():
            raise DlgmmError(f"{folder}: folder not found (set by {PREFIX}.dir in params.yaml); "
                             f"it must hold {EXPECTED}")
        chardata = base / CHARDATA
        zips = sorted({p for pattern in LAKE_PATTERNS for p in base.glob(pattern) if p.is_file()}, key=lambda p: p.name)
        if chardata.is_file() and (source == "chardata" or not zips):
            if source != "chardata":
                print(f"note: {folder} holds {CHARDATA} and no Lake zips: using source chardata", file=sys.stderr)
            return "chardata", [(chardata, _local(chardata, _pins(section, CHARDATA, "chardata.sha256")))]
        if zips:
            if source != "lake":
                print(f"note: {folder} holds Lake-format zips and no {CHARDATA}: using source lake", file=sys.stderr)
            return "lake", [(z, _local(z, _pins(section, z.name))) for z in zips]
        present = sorted(p.name for p in base.iterdir())
        shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "") if present else "nothing"
        raise DlgmmError(f"{folder}: holds neither {CHARDATA} nor Lake-format {' / '.join(LAKE_PATTERNS)} "
                         f"(found {shown}); fix {PREFIX}.dir in params.yaml")
    if raw_dir is None:
        return source, []
    if source == "chardata":
        url = params.typed("chardata.url", str)
        return "chardata", [_fetch(url, raw_dir, _pins(section, CHARDATA, "chardata.sha256"), f"{PREFIX}.chardata.url")]
    urls = params.typed("lake.urls", list)
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise DlgmmError(f"params.yaml: {PREFIX}.lake.urls must be a non-empty list of URLs (got {urls!r})")
    fetched = [_fetch(u, raw_dir, _pins(section, PurePosixPath(u.split("?")[0]).name), f"{PREFIX}.lake.urls")
               for u in urls]
    return "lake", sorted(fetched, key=lambda item: item[0].name)


def _fix(downloaded: bool, what: str) -> str:
    return "delete it to download it again" if downloaded else f"replace it with {what}, or change {PREFIX}.dir"


def read_chardata(path: Path, downloaded: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(x_train, y_train, x_test, y_test, num_classes)``; images row-major, labels -1 when absent."""
    import scipy.io

    where = download.show(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mat = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises many types (ValueError, MatReadError, OSError, zlib.error, ...)
        raise DlgmmError(f"{where}: not a readable .mat file ({type(err).__name__}: {err}); "
                         f"{_fix(downloaded, BURDA)}") from None
    out = []
    for key, target in (("data", "target"), ("testdata", "testtarget")):
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DlgmmError(f"{where}: no variable '{key}' (found {found}); expected Burda et al.'s {CHARDATA}")
        raw = np.asarray(mat[key])
        if raw.ndim != 2 or raw.shape[0] != PIXELS:
            raise DlgmmError(f"{where}: '{key}' must be {PIXELS} x N (one column per image), found {raw.shape}")
        # Columns are 28x28 images stored column-major (MATLAB order): undo that, store row-major.
        images = raw.T.reshape((-1, SIDE, SIDE), order="F").reshape(-1, PIXELS)
        x = check_intensities(images, f"{where} ('{key}')")
        if target in mat:
            onehot = np.asarray(mat[target])
            if onehot.ndim != 2 or onehot.shape[1] != x.shape[0]:
                raise DlgmmError(f"{where}: '{target}' must be classes x {x.shape[0]} (one-hot columns), "
                                 f"found {onehot.shape}")
            y = onehot.argmax(axis=0).astype(np.int64)
            classes = onehot.shape[0]
        else:
            y, classes = np.full(x.shape[0], NO_LABEL, dtype=np.int64), 0
        out.append((x, y, classes))
    (xtr, ytr, ctr), (xte, yte, cte) = out
    if (ytr[:1] == NO_LABEL).any() != (yte[:1] == NO_LABEL).any():
        raise DlgmmError(f"{where}: has labels for only one of train ('target') and test ('testtarget')")
    return xtr, ytr, xte, yte, max(ctr, cte)


def read_lake(zips: list[Path], downloaded: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Pooled ``(intensities, labels, alphabet names, stats)`` from Lake-format zips.

    Images are taken in zip-name then member-path order; byte-identical images
    of the same alphabet and file name (the ``*_small1``/``*_small2`` subsets
    overlap) are kept once. Labels index the sorted alphabet names.
    """
    from PIL import Image, UnidentifiedImageError

    entries, seen, duplicates = [], set(), 0
    for path in sorted(zips, key=lambda p: p.name):
        where = download.show(path)
        try:
            with zipfile.ZipFile(path) as archive:
                members = sorted(n for n in archive.namelist()
                                 if n.lower().endswith(".png") and not n.startswith("__MACOSX/"))
                for name in tqdm(members, unit="img", desc=f"read {path.name}"):
                    parts = PurePosixPath(name).parts
                    if len(parts) < 3:
                        raise DlgmmError(f"{where}: member {name} is not <Alphabet>/<character>/<image>.png; "
                                         f"expected Lake's Omniglot layout")
                    blob = archive.read(name)
                    key = (parts[-3], parts[-1], hashlib.sha256(blob).digest())
                    if key in seen:
                        duplicates += 1
                        continue
                    seen.add(key)
                    try:
                        with Image.open(io.BytesIO(blob)) as image:
                            grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
                    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
                        why = "unrecognised image data" if isinstance(err, UnidentifiedImageError) else err
                        raise DlgmmError(f"{where}: member {name} is not a readable PNG ({why}); "
                                         f"{_fix(downloaded, 'an intact copy')}") from None
                    small = np.asarray(Image.fromarray(grey).resize((SIDE, SIDE), Image.Resampling.BOX))
                    entries.append((parts[-3], np.clip(1.0 - small, 0.0, 1.0).reshape(PIXELS)))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise DlgmmError(f"{where}: not a valid zip ({err}); {_fix(downloaded, 'an intact copy')}") from None
        if not members:
            raise DlgmmError(f"{where}: holds no .png images; expected Lake's <root>/<Alphabet>/<character>/*.png")
    alphabets = sorted({alphabet for alphabet, _ in entries})
    index = {name: i for i, name in enumerate(alphabets)}
    x = np.stack([image for _, image in entries]).astype(np.float32)
    y = np.array([index[alphabet] for alphabet, _ in entries], dtype=np.int64)
    return x, y, alphabets, {"images_read": len(entries) + duplicates, "duplicates_dropped": duplicates}


def _permutation(n: int, seed: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64(seed)).permutation(n)


def prepare(section: dict, raw_dir: Path) -> tuple[dict, dict]:
    params = ParamReader(section, prefix=PREFIX)
    binarize_seed = params.typed("binarize_seed", int)
    split_seed = params.typed("split_seed", int)
    source, found = locate(section, raw_dir)
    files = [path for path, _ in found]
    downloaded = not params.typed("dir", str).strip()
    meta = {"source": source, "configured_source": section.get("source"), "dir": section.get("dir") or "",
            "files": [record for _, record in found], "binarize_seed": binarize_seed, "split_seed": split_seed,
            "binarization": "one Bernoulli(grey level) draw per pixel, numpy PCG64(binarize_seed), "
                            "splits in order train, valid, test"}
    if source == "chardata":
        valid_size = params.typed("valid_size", int)
        xtr, ytr, xte, yte, classes = read_chardata(files[0], downloaded)
        if not 0 < valid_size < xtr.shape[0]:
            raise DlgmmError(f"params.yaml: {PREFIX}.valid_size must be between 1 and {xtr.shape[0] - 1} "
                             f"(the training images of {download.show(files[0])}), got {valid_size}")
        perm = _permutation(xtr.shape[0], split_seed)
        valid, train = np.sort(perm[:valid_size]), np.sort(perm[valid_size:])
        xs, ys = [xtr[train], xtr[valid], xte], [ytr[train], ytr[valid], yte]
        meta |= {"valid_size": valid_size, "num_classes": classes,
                 "class_names": [f"alphabet {i}" for i in range(classes)],
                 "split": "test = chardata test set; valid = valid_size training images drawn by "
                          "PCG64(split_seed).permutation; train = the rest (original order kept)"}
    else:
        fractions = params.typed("lake_split", list)
        if len(fractions) != 3 or any(isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0
                                      for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
            raise DlgmmError(f"params.yaml: {PREFIX}.lake_split must be three positive fractions summing to 1 "
                             f"(got {fractions!r})")
        x, y, alphabets, stats = read_lake(files, downloaded)
        n = x.shape[0]
        n_train, n_valid = int(round(fractions[0] * n)), int(round(fractions[1] * n))
        if min(n_train, n_valid, n - n_train - n_valid) < 1:
            raise DlgmmError(f"{', '.join(download.show(f) for f in files)}: only {n} distinct images, too few "
                             f"to split by {PREFIX}.lake_split {fractions}")
        perm = _permutation(n, split_seed)
        parts = [np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_valid]), np.sort(perm[n_train + n_valid:])]
        xs, ys = [x[p] for p in parts], [y[p] for p in parts]
        meta |= stats | {"lake_split": list(fractions), "num_classes": len(alphabets), "class_names": alphabets,
                         "resize": RESIZE,
                         "split": "pooled images split by PCG64(split_seed).permutation into lake_split "
                                  "fractions (each part in reading order)"}
    labels = bool(ys[0].size) and bool((ys[0] != NO_LABEL).all())
    meta["labels"] = labels
    xb = binarize(xs, binarize_seed)
    arrays = {f"x_{s}": v for s, v in zip(("train", "valid", "test"), xb)}
    arrays |= {f"y_{s}": v for s, v in zip(("train", "valid", "test"), ys)}
    return arrays, meta
