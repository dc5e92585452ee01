"""Stage `marginal_likelihood` (Figure 3b): importance-sampled -log p(x) on the test set, with the ELBO and IWAE bounds.

    python stages/marginal_likelihood.py --protocol PROTOCOL --seed SEED --dataset {mnist,omniglot} --model {gauss_vae,sb_vae,dlgmm,dldpmm}
                                        

Reads its parameters from data/params/<stage>.json (written by the `resolve` stage: seed, eval.device,
eval.marginal_likelihood, with the settings of protocol PROTOCOL),
models/<protocol>/seed-<seed>/<dataset>/<model>.pt and data/prepared/<dataset>.npz. Writes
reports/nll/<protocol>/seed-<seed>/<dataset>/<model>.json once, at the end, atomically: {"nll", "nll_se" (the
headline estimator's), "headline", "ours": {...}, "authors": {...}, "elbo", "bounds": {"<s>": -mean IWAE
bound}, "samples", "examples", "kl_method", "seconds"}, and beside it <model>.npz, each test image's -log p(x)
by both estimators (dlgmm_core.results.PerImage).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.params.stage import load_stage_params, stage_arguments  # noqa: E402
from dlgmm_core.registry import evaluated_keys  # noqa: E402
from dlgmm_core.data import load_prepared  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.evaluation import Timer, load_eval_model, marginal_likelihood  # noqa: E402
from dlgmm_core.layout import nll_result, nll_stage, prepared  # noqa: E402
from dlgmm_core.results import MarginalLikelihood, PerImage, per_image_path  # noqa: E402
from dlgmm_core.runtime import compute_device, seed_everything  # noqa: E402


def main() -> None:
    args = stage_arguments(__doc__, evaluated_keys())
    params = load_stage_params(nll_stage(args.protocol, args.seed, args.dataset, args.model))
    section = params.eval["marginal_likelihood"]
    device = compute_device(params.eval["device"], params.eval["threads"], key="eval.device")
    model = load_eval_model(params.protocol, params.seed, args.dataset, args.model, device, budget=params.budget)
    x = load_prepared(prepared(args.dataset)[0])["x_test"][:section["max_examples"]]
    seed_everything(params.seed)
    with Timer() as timer:
        result = marginal_likelihood(model, x, section["samples"], section["bounds_at"], section["batch_size"], device,
                                     authors_samples=section["authors_samples"], headline=section["headline"])
    out = nll_result(params.protocol, params.seed, args.dataset, args.model)
    PerImage("nll", result.pop("per_image")).write(per_image_path(out))
    MarginalLikelihood(**result, seconds=round(timer.seconds, 3)).write(out)
    print(f"{args.dataset}/{args.model}: -log p(x) = {result['nll']:.4f} ± {result['nll_se']:.4f} "
          f"({result['headline']} estimator, {result['examples']} test examples), ELBO {result['elbo']:.4f}, "
          f"{timer.seconds:.1f} s -> {out}")


if __name__ == "__main__":
    run_stage(main)
