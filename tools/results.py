"""Print README.md's "Results" table from the report's flat metrics (reports/metrics.json).

    python tools/results.py [--metrics reports/metrics.json]

The protocols' columns follow params.yaml's `protocols` list; tests/test_report.py keeps README.md's table equal to
what this prints for the committed metrics.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.config import read_params_tree  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.io import read_json  # noqa: E402
from dlgmm_core.layout import report_metrics  # noqa: E402
from dlgmm_core.report import results_table  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default=str(report_metrics()), help="the report's flat metrics")
    args = parser.parse_args(argv)
    metrics = read_json(Path(args.metrics), "run `dvc repro report` (or `make repro`)")
    print(results_table(metrics, list(read_params_tree()["protocols"])))


if __name__ == "__main__":
    run_stage(main)
