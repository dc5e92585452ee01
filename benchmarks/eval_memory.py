#!/usr/bin/env python
"""Peak resident memory of the marginal likelihood on a trained checkpoint (``make bench``).

Runs :func:`dlgmm_core.evaluation.marginal_likelihood` as the stage does (the
checkpoint loaded with ``load_checkpoint``, ``eval.threads`` and ``eval.marginal_likelihood.batch_size``
of ``params.yaml``) on the first ``--examples`` MNIST test images at ``--samples``
importance samples, in a fresh process, and prints and writes (``--out``,
atomically) its peak resident memory (VmHWM), seconds and -log p(x); with
``--strict``, exit 1 when the peak exceeds ``--limit-mib``. Memory that grows
with the test set shows here: before the loops stopped keeping a tensor per
chunk (``tests/test_eval_memory.py``), 2,000 images of a loaded 5-component
model reached 6.4 GB, against a flat 0.7 GB since.

Trained weights matter (a freshly initialised model did not show the growth):
it reads ``--checkpoint`` (default: the first of
``models/<protocol>/seed-<seed>/mnist/{dlgmm,qualitative}.pt`` that exists, of
the run of ``--seed``, default the first of params.yaml's ``seeds``) and the
prepared MNIST test split, so run it after the pipeline has trained one. The
Monte Carlo draws are seeded with ``--seed``, as the stage of that run seeds them.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlgmm_core import layout  # noqa: E402
from dlgmm_core.io import write_json  # noqa: E402

RUN = """
import json, sys, time
from dlgmm_core import load_checkpoint
from dlgmm_core.params.load import load_params
from dlgmm_core.data import load_prepared
from dlgmm_core.evaluation import likelihood
from dlgmm_core.runtime import compute_device, seed_everything
checkpoint, examples, samples, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
params = load_params()
device = compute_device("cpu", params.eval["threads"])
model = load_checkpoint(checkpoint, map_location="cpu")
model.eval()
x = load_prepared(sys.argv[4])["x_test"][:examples]
seed_everything(seed)
began = time.perf_counter()
result = likelihood.marginal_likelihood(model, x, samples, [samples], params.eval["marginal_likelihood"]["batch_size"],
                                        device, progress=False, authors_samples=50)
seconds = time.perf_counter() - began
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_mib": peak / 1024, "seconds": seconds, "nll": result["nll"]}))
"""


def first_seed() -> int:
    """The first of params.yaml's ``seeds``: the run the report's single-run figures show."""
    from dlgmm_core.params.load import load_params

    return load_params(ROOT / "params.yaml").seeds[0]


def default_checkpoint(seed: int, root: Path = ROOT) -> Path | None:
    """The first MNIST mixture checkpoint of the run of ``seed`` there is (``corrected`` before ``authors``, the
    DLGMM before the qualitative model), or None."""
    for protocol in ("corrected", "authors"):
        for model in ("dlgmm", "qualitative"):
            path = layout.checkpoint(protocol, seed, "mnist", model, root)
            if path.is_file():
                return path
    return None


def measure(checkpoint: Path, examples: int, samples: int, seed: int) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, str(checkpoint), str(examples), str(samples),
                          str(layout.prepared("mnist", ROOT)[0]), str(seed)], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"eval_memory: the run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained MNIST mixture checkpoint (default: see above)")
    parser.add_argument("--examples", type=int, default=1000, help="MNIST test images (default 1000)")
    parser.add_argument("--samples", type=int, default=5000, help="importance samples per image (default 5000)")
    parser.add_argument("--seed", type=int, help="the run whose checkpoint is the default, and the seed of the draws "
                        "(default: the first of params.yaml's seeds)")
    parser.add_argument("--limit-mib", type=float, default=1500.0, help="target peak (MiB)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "eval_memory.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the peak exceeds --limit-mib")
    args = parser.parse_args(argv)
    seed = first_seed() if args.seed is None else args.seed
    checkpoint = args.checkpoint or default_checkpoint(seed)
    if checkpoint is None or not checkpoint.is_file():
        wanted = checkpoint or layout.checkpoint("*", seed, "mnist", "dlgmm")
        print(f"eval_memory: no trained checkpoint ({wanted}); train one first "
              f"(`dvc repro {layout.train_stage('corrected', seed, 'mnist', 'dlgmm')}`); not measured")
        return 0
    row = measure(checkpoint, args.examples, args.samples, seed)
    met = row["peak_mib"] <= args.limit_mib
    print(f"marginal likelihood, {args.examples} MNIST test images x {args.samples} samples of {checkpoint}: "
          f"peak {row['peak_mib']:.0f} MiB (target <= {args.limit_mib:.0f}: {'met' if met else 'MISSED'}), "
          f"{row['seconds']:.1f} s, -log p(x) {row['nll']:.4f}")
    write_json(args.out, {"checkpoint": str(checkpoint), "seed": seed, "examples": args.examples,
                          "samples": args.samples, **row, "limit_mib": args.limit_mib, "within_limit": met})
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
