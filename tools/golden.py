"""Golden check: do two commits train and evaluate to the same bits?

    python tools/golden.py [--base REV] [--head REV] [--protocols P ...] [--models M ...] [--out FILE]

A refactor of code that trained results depend on must not change them. This
check proves it without retraining anything at the paper's budget: it checks
out ``--base`` (default ``main``) and ``--head`` (default ``HEAD``) into
temporary git worktrees, writes the same small prepared MNIST set into both
(300 training, 100 validation and 100 test images, drawn from a fixed seed),
and runs each commit's own pipeline stages there through their command lines,
the interface both commits share:

- ``stages/resolve.py`` on the commit's own params.yaml, with only the budget
  reduced (``budget: quick`` whose overrides are replaced by two epochs and a
  short importance-sampling run; every protocol and model setting stays the
  stage's own);
- ``stages/train.py`` for every model under every protocol (two epochs);
- ``stages/marginal_likelihood.py`` for every evaluated model (both
  estimators, few samples, all 100 test images).

Each result is hashed: a checkpoint by its weights (names, dtypes, shapes and
bytes; whatever else the checkpoint format holds may change), a training log
by its per-epoch values (timings dropped), a marginal-likelihood result by
its JSON less its wall time. The two commits must agree on every hash; the
exit code is 0 when they do and 1 otherwise.

Results are bitwise only on one CPU kind (two processors round differently),
so the check compares two commits on one machine, never stored constants.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The small data set both commits train on: images per split, and the seed they are drawn from.
SPLIT_SIZES = {"train": 300, "valid": 100, "test": 100}
DATA_SEED = 20240601
#: The budget both commits train and evaluate with (dotted params.yaml keys, applied as the `quick` overrides).
BUDGET = {
    "train.max_epochs": 2,
    "eval.marginal_likelihood.samples": 20,
    "eval.marginal_likelihood.authors_samples": 5,
    "eval.marginal_likelihood.bounds_at": [1, 10],
    "eval.marginal_likelihood.batch_size": 500,
    "eval.marginal_likelihood.max_examples": None,
}
PROTOCOLS = ("authors", "corrected")
TRAINED = ("gauss_vae", "sb_vae", "dlgmm", "dldpmm", "qualitative")
EVALUATED = ("gauss_vae", "sb_vae", "dlgmm", "dldpmm")
#: Keys that hold wall-clock measurements, never compared.
TIMING_KEYS = frozenset({"seconds", "timing", "epoch_seconds", "examples_per_second"})


class GoldenError(Exception):
    """A problem that stops the check, with one line saying what."""


# --------------------------------------------------------------------------- inputs
def golden_arrays(sizes: Mapping[str, int] = SPLIT_SIZES, seed: int = DATA_SEED) -> dict[str, np.ndarray]:
    """A prepared-data set of the pipeline's contract: binary 28x28 images of ten blurred prototypes, with labels.

    Each class has its own pixel-probability map, so the models see structure and kNN has classes to find.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784)) ** 3
    arrays = {}
    for split, n in sizes.items():
        y = rng.integers(0, 10, size=n).astype(np.int64)
        arrays[f"x_{split}"] = (rng.random((n, 784)) < prototypes[y]).astype(np.uint8)
        arrays[f"y_{split}"] = y
    return arrays


def write_inputs(tree: Path) -> None:
    """The golden data set as ``tree``'s prepared MNIST, and ``tree``'s params.yaml reduced to the golden budget."""
    prepared = tree / "data" / "prepared"
    prepared.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(prepared / "mnist.npz", **golden_arrays())
    (prepared / "mnist.json").write_text(json.dumps({"dataset": "mnist", "labels": True, "golden": True}))
    set_budget(tree / "params.yaml", BUDGET)


def set_budget(params_path: Path, overrides: Mapping[str, Any]) -> None:
    """``budget: quick`` with exactly ``overrides`` as the quick section; every other line stays as written."""
    from ruamel.yaml import YAML

    yaml = YAML()
    doc = yaml.load(params_path.read_text())
    if "quick" not in doc or "budget" not in doc:
        raise GoldenError(f"{params_path}: no `budget` or `quick` key to reduce the budget with")
    doc["budget"] = "quick"
    doc["quick"] = dict(overrides)
    with open(params_path, "w") as handle:
        yaml.dump(doc, handle)


# --------------------------------------------------------------------------- hashing
def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def tensors_sha256(tensors: Mapping[str, Any]) -> str:
    """sha256 of named tensors: names, dtypes, shapes and bytes, in name order."""
    import torch

    parts = []
    for name in sorted(tensors):
        array = tensors[name].detach().cpu().contiguous()
        parts += [name.encode(), str(array.dtype).encode(), str(tuple(array.shape)).encode(),
                  array.view(-1).view(torch.uint8).numpy().tobytes()]
    return _digest(parts)


def _weights(obj: Any) -> Mapping[str, Any] | None:
    """The largest mapping of names to tensors inside a loaded checkpoint (its model weights)."""
    import torch

    best = None
    if isinstance(obj, Mapping):
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return obj
        for value in obj.values():
            found = _weights(value)
            if found is not None and (best is None or len(found) > len(best)):
                best = found
    return best


def checkpoint_sha256(path: Path) -> str:
    """sha256 of the model weights a checkpoint holds (whatever else its format stores)."""
    import torch

    weights = _weights(torch.load(path, map_location="cpu", weights_only=True))
    if weights is None:
        raise GoldenError(f"{path}: no weights found in the checkpoint")
    return tensors_sha256(weights)


def without_timings(obj: Any) -> Any:
    """``obj`` less every key that holds a wall-clock measurement (:data:`TIMING_KEYS`), recursively."""
    if isinstance(obj, Mapping):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def json_sha256(obj: Any) -> str:
    """sha256 of a JSON value less its timings, with sorted keys and floats written exactly (repr)."""
    return _digest([json.dumps(without_timings(obj), sort_keys=True).encode()])


def log_sha256(log_dir: Path) -> str:
    """sha256 of a training log: its summary and every per-epoch curve, timings dropped."""
    parts = [json_sha256(json.loads((log_dir / "metrics.json").read_text())).encode()]
    for tsv in sorted((log_dir / "plots").rglob("*.tsv")):
        if tsv.stem not in TIMING_KEYS:
            parts += [str(tsv.relative_to(log_dir)).encode(), tsv.read_bytes()]
    return _digest(parts)


# --------------------------------------------------------------------------- running
def _run(tree: Path, *args: str, log) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True)
    log(f"  {' '.join(args)}  ({time.perf_counter() - start:.1f} s)")
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GoldenError(f"{tree.name}: `python {' '.join(args)}` failed: {tail[0]}")


def run_selector(tree: Path) -> tuple[list[str], str]:
    """``(arguments, folder)`` that pick the run the golden stages compare in the checkout ``tree``: where its
    params.yaml lists ``seeds``, its first seed (``--seed N`` and the ``seed-N`` folder below the protocol's);
    in a commit from before the seed axis, nothing (its one global ``seed``). The same value of the seed
    either way, so the two commits train the same run."""
    from ruamel.yaml import YAML

    seeds = YAML(typ="safe").load((tree / "params.yaml").read_text()).get("seeds")
    return (["--seed", str(seeds[0])], f"/seed-{seeds[0]}") if seeds else ([], "")


def run_commit(tree: Path, protocols: Iterable[str], models: Iterable[str], log=print) -> dict[str, str]:
    """Run the golden stages in the checkout ``tree``; return result name -> sha256 (named the same in both
    commits)."""
    write_inputs(tree)
    _run(tree, "stages/resolve.py", log=log)
    seed, folder = run_selector(tree)
    hashes = {}
    for protocol in protocols:
        for model in models:
            _run(tree, "stages/train.py", "--protocol", protocol, *seed, "--dataset", "mnist", "--model", model,
                 log=log)
            name, stem = f"{protocol}/mnist/{model}", f"{protocol}{folder}/mnist/{model}"
            hashes[f"weights {name}"] = checkpoint_sha256(tree / "models" / f"{stem}.pt")
            hashes[f"training log {name}"] = log_sha256(tree / "logs" / stem)
            if model in EVALUATED:
                _run(tree, "stages/marginal_likelihood.py", "--protocol", protocol, *seed, "--dataset", "mnist",
                     "--model", model, log=log)
                result = json.loads((tree / "reports" / "nll" / f"{stem}.json").read_text())
                hashes[f"-log p(x) {name}"] = json_sha256(result)
    return hashes


def compare(base: Mapping[str, str], head: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per result of either commit: its two hashes and whether they are equal (a missing one is not)."""
    return [{"result": name, "base": base.get(name), "head": head.get(name),
             "equal": base.get(name) is not None and base.get(name) == head.get(name)}
            for name in list(base) + [n for n in head if n not in base]]


def _commit(rev: str) -> str:
    done = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode:
        raise GoldenError(f"--base/--head {rev!r}: not a commit of {ROOT}")
    return done.stdout.strip()


def golden(base: str, head: str, protocols: Iterable[str], models: Iterable[str], log=print) -> dict[str, Any]:
    """Check out both commits, run the golden stages in each, and compare; the comparison as a dict."""
    commits = {"base": _commit(base), "head": _commit(head)}
    hashes = {}
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        for side, commit in commits.items():
            tree = Path(tmp) / side
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit], cwd=ROOT, check=True)
            try:
                log(f"{side}: {commit[:12]}")
                hashes[side] = run_commit(tree, protocols, models, log=log)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
                shutil.rmtree(tree, ignore_errors=True)
    rows = compare(hashes["base"], hashes["head"])
    return {"base": commits["base"], "head": commits["head"], "all_equal": all(r["equal"] for r in rows),
            "results": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="the commit results must not change from (default: main)")
    parser.add_argument("--head", default="HEAD", help="the commit to check (default: HEAD)")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), metavar="P")
    parser.add_argument("--models", nargs="+", default=list(TRAINED), metavar="M")
    parser.add_argument("--out", type=Path, help="also write the comparison as JSON here")
    args = parser.parse_args(argv)
    try:
        result = golden(args.base, args.head, args.protocols, args.models)
    except GoldenError as err:
        print(f"golden: {err}", file=sys.stderr)
        return 2
    for row in result["results"]:
        print(f"{'equal ' if row['equal'] else 'DIFFER'}  {row['result']:<42} "
              f"{(row['base'] or '-')[:16]}  {(row['head'] or '-')[:16]}")
    print(f"golden check, {result['base'][:12]} -> {result['head'][:12]}: "
          f"{'all equal' if result['all_equal'] else 'results differ'} ({len(result['results'])} results)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
