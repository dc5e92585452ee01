"""Stage `report`: reports/README.md (the paper's claims judged, our numbers beside the paper's),
reports/metrics.json, training curves.

    python stages/report.py

Reads reports/nll/<protocol>/seed-<seed>/*/*.json, reports/knn/<protocol>/seed-<seed>/*/*.json with the per-image
.npz beside each (where written), the figures under reports/figures/ and their measurements,
logs/<protocol>/seed-<seed>/*/*/ (for every protocol of params.yaml's `protocols`) and its parameters (budget, k,
protocols, quick, the model sections) from data/params/report.json, which the `resolve` stage writes.
Writes reports/README.md (its appendix links every seed's t-SNE maps), reports/metrics.json (flat keys such as
authors.mnist.dlgmm.nll, authors.seed-1234.mnist.dlgmm.nll, claims.mnist_nll_dlgmm.authors.verdict) and
reports/figures/training/<protocol>/<dataset>.png (the curves of every seed whose training has finished).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.params.stage import load_stage_params  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.layout import report_stage  # noqa: E402
from dlgmm_core.report import write_report  # noqa: E402



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    written = write_report(Path("."), load_stage_params(report_stage()))
    print("report: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    run_stage(main)
