"""Print the tables of README.md and docs/ that come from committed results.

    python tools/results.py [--metrics reports/metrics.json]   # README.md's "Results" table
    python tools/results.py --claims                          # README.md's verdict of each claim
    python tools/results.py --epochs                          # docs/protocols.md's validation ELBO per epoch

The Results table's and the claims' protocol columns follow params.yaml's `protocols` list; both read the
report's metrics. The epochs table reads the committed training logs (logs/<protocol>/mnist/<model>/) and the
authors' logged runs (dlgmm_core/reference/). tests/test_docs.py and tests/test_report.py keep both documents equal
to what this prints.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core import authors_logs  # noqa: E402
from dlgmm_core.params.read import read_params_tree  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.io import read_json  # noqa: E402
from dlgmm_core.layout import report_metrics  # noqa: E402
from dlgmm_core.report import markdown_table, readme_claims_digest, results_table  # noqa: E402
from dlgmm_core.report.analysis import valid_at  # noqa: E402
from dlgmm_core.report.inputs import read_training_log  # noqa: E402
from dlgmm_core.report.paper import name  # noqa: E402
from dlgmm_core.report.tables import MISSING  # noqa: E402

#: The epochs of docs/protocols.md's table.
EPOCHS = (1, 5, 10, 20)


def _elbo(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def epochs_table(root: Path = Path(".")) -> str:
    """Validation ELBO (nats) at :data:`EPOCHS` of the authors' logged MNIST runs and of ours under every protocol
    of params.yaml (its first seed), from the committed logs; ``—`` at an epoch a run has not logged (a training
    under way, or one that stopped early)."""
    tree = read_params_tree(root / "params.yaml")
    protocols, seed = list(tree["protocols"]), tree["seeds"][0]
    rows = []
    for model in authors_logs.SOURCES:
        log = authors_logs.read(model)
        runs = [("authors' log", log.epoch, log.valid_elbo)]
        for protocol in protocols:
            ours = read_training_log(protocol, seed, "mnist", model, root, "run `dvc repro` (or `make repro`)")
            runs.append((f"`{protocol}`", *ours.valid))
        rows += [[f"{name(model)}, {label}"] + [_elbo(valid_at(steps, values, e)) for e in EPOCHS]
                 for label, steps, values in runs]
    return markdown_table(["run"] + [f"epoch {e}" for e in EPOCHS], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default=str(report_metrics()), help="the report's flat metrics")
    parser.add_argument("--claims", action="store_true", help="README.md's claims' verdicts instead")
    parser.add_argument("--epochs", action="store_true", help="docs/protocols.md's table instead")
    args = parser.parse_args(argv)
    if args.epochs:
        print(epochs_table())
        return
    metrics = read_json(Path(args.metrics), "run `dvc repro report` (or `make repro`)")
    tree = read_params_tree()
    if args.claims:
        print(readme_claims_digest(metrics, tree))
        return
    print(results_table(metrics, list(tree["protocols"])))


if __name__ == "__main__":
    run_stage(main)
