"""Stage `samples`: a grid of images from a model's prior; for `qualitative`, one grid per prior component (Figure 2a/2b).

    python stages/samples.py --protocol PROTOCOL --seed SEED --dataset {mnist,omniglot} --model {gauss_vae,sb_vae,dlgmm,dldpmm,qualitative}
                            

Reads its parameters from data/params/<stage>.json (written by the `resolve` stage: seed, eval.device, eval.samples) and models/<protocol>/seed-<seed>/<dataset>/<model>.pt. Writes
reports/figures/samples/<protocol>/seed-<seed>/<dataset>_<model>.png, or for `qualitative` the folder
reports/figures/qualitative/<protocol>/seed-<seed>/ (component_1.png ... component_K.png, and components.json: each
component's prior mean, the width and ink of its images and, where data/prepared/mnist.npz carries labels, how
many of them a pixel-space kNN classifier fitted on its training split assigns to each digit).
Images are Bernoulli means.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.params.stage import load_stage_params, stage_arguments  # noqa: E402
from dlgmm_core import registry  # noqa: E402
from dlgmm_core.data import has_labels, load_prepared  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.evaluation import (load_eval_model, prior_bernoulli_means,  # noqa: E402
                                   save_component_grids, save_grid)
from dlgmm_core.layout import prepared, qualitative_dir, samples_figure, samples_stage  # noqa: E402
from dlgmm_core.runtime import compute_device, seed_everything  # noqa: E402


def main() -> None:
    args = stage_arguments(__doc__, registry.SECTIONS)
    params = load_stage_params(samples_stage(args.protocol, args.seed, args.dataset, args.model))
    grid = params.eval["samples"]["grid"]
    device = compute_device(params.eval["device"], params.eval["threads"], key="eval.device")
    model = load_eval_model(params.protocol, params.seed, args.dataset, args.model, device, budget=params.budget)
    seed_everything(params.seed)
    label = f"{registry.title(args.model)} ({args.dataset}, {params.protocol} protocol, seed {params.seed})"
    if args.model == "qualitative":
        npz_path = prepared(args.dataset)[0]
        data = load_prepared(npz_path)
        labelled = data if has_labels(data) else None
        if labelled is None:
            print(f"notice: {npz_path} carries no labels: the digits of the component samples are not classified")
        written = save_component_grids(qualitative_dir(params.protocol, params.seed), model, grid, label,
                                       labelled=labelled)
        print(f"{args.dataset}/{args.model}: {len(written)} component grids -> {qualitative_dir(params.protocol, params.seed)}/")
        return
    out = samples_figure(params.protocol, params.seed, args.dataset, args.model)
    title = f"{label}: Bernoulli means of {grid * grid} samples from the prior"
    save_grid(out, prior_bernoulli_means(model, grid * grid), grid, title)
    print(f"{args.dataset}/{args.model}: -> {out}")


if __name__ == "__main__":
    run_stage(main)
