"""Stage `resolve`: validate params.yaml once and write what every other stage reads of it.

    python stages/resolve.py [--params params.yaml]

Reads params.yaml (every section, every defined protocol; the budget applied) and checks the local
data folders it names and, where a `cuda` device is asked for, that one exists. Writes
data/params/<stage>.json for every stage of dvc.yaml, each holding exactly the values that stage
reads (dlgmm_core.params.views), and nothing at all unless everything validated: a bad value stops the
pipeline here, before DVC has removed any other stage's outputs. Prints a notice for every value of
params.yaml that the quick budget replaces.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.layout import stage_params_dir  # noqa: E402
from dlgmm_core.params.views import resolve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = parser.parse_args()
    for notice in resolve(args.params):
        print(f"notice: {notice}")
    print(f"{args.params}: ok -> {stage_params_dir()}/")


if __name__ == "__main__":
    run_stage(main)
