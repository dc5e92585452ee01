"""Stage `prepare`: fetch, check and binarize one dataset into data/prepared/<dataset>.{npz,json}.

    python stages/prepare.py --dataset {mnist,omniglot} [--out data/prepared] [--raw data/raw]

Reads its parameters (data.<dataset>) from data/params/prepare@<dataset>.json, which the `resolve`
stage writes. Raw downloads are cached, sha256-checked, in data/raw/.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.data import DATASETS, prepare_dataset  # noqa: E402
from dlgmm_core.params.stage import load_stage_params  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.layout import prepare_stage, prepared_dir, prepared_in, raw_dir  # noqa: E402



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--out", default=str(prepared_dir()), help=f"output folder (default: {prepared_dir()})")
    parser.add_argument("--raw", default=str(raw_dir()), help=f"download cache (default: {raw_dir()})")
    args = parser.parse_args()
    section = load_stage_params(prepare_stage(args.dataset)).data(args.dataset)
    start = time.perf_counter()
    meta = prepare_dataset(args.dataset, section, Path(args.out), Path(args.raw))
    sizes = ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
    print(f"{args.dataset}: {meta['source']}, {sizes}, labels {meta['labels']}, "
          f"{time.perf_counter() - start:.1f} s -> {prepared_in(args.out, args.dataset)[0]}")


if __name__ == "__main__":
    run_stage(main)
