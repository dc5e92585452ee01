"""Stage `tsne` (Figure 2c/2d): t-SNE of test-set latent samples, coloured by class.

    python stages/tsne.py --protocol PROTOCOL --seed SEED --dataset mnist --model {gauss_vae,sb_vae,dlgmm,dldpmm}

Reads its parameters from data/params/<stage>.json (written by the `resolve` stage: seed, eval.device, eval.tsne), models/<protocol>/seed-<seed>/<dataset>/<model>.pt and
data/prepared/<dataset>.{npz,json}. Writes reports/figures/tsne/<protocol>/seed-<seed>/<dataset>_<model>.png and, beside
it, <dataset>_<model>.json: how well the map's points cluster by class (leave-one-out kNN error in the map
and in the latent space; null without labels) and <dataset>_<model>.npz: each point's label and the class its
leave-one-out neighbours give it in the map and in the latent space (-1 without labels; dlgmm_core.results.PerImage).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dlgmm_core.params.stage import load_stage_params, stage_arguments  # noqa: E402
from dlgmm_core import registry  # noqa: E402
from dlgmm_core.data import load_prepared  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.evaluation import (cluster_predictions, embed, load_eval_model, plot_tsne,  # noqa: E402
                                   prediction_errors, tsne_embedding)
from dlgmm_core.io import read_json  # noqa: E402
from dlgmm_core.layout import prepare_hint, prepared, tsne_figure, tsne_stage  # noqa: E402
from dlgmm_core.results import Clusters, PerImage, cluster_result, per_image_path  # noqa: E402
from dlgmm_core.runtime import compute_device, seed_everything  # noqa: E402


def main() -> None:
    args = stage_arguments(__doc__, registry.evaluated_keys(), default_dataset="mnist")
    params = load_stage_params(tsne_stage(args.protocol, args.seed, args.model))
    section = params.eval["tsne"]
    npz_path, meta_path = prepared(args.dataset)
    data = load_prepared(npz_path)
    class_names = read_json(meta_path, prepare_hint(args.dataset)).get("class_names") if meta_path.is_file() else None
    x, y = data["x_test"][:section["points"]], data["y_test"][:section["points"]]
    device = compute_device(params.eval["device"], params.eval["threads"], key="eval.device")
    model = load_eval_model(params.protocol, params.seed, args.dataset, args.model, device, budget=params.budget)
    seed_everything(params.seed)
    z = embed(model, x, device, desc="embed test")
    print(f"t-SNE of {z.shape[0]} latent samples ({z.shape[1]}-d), perplexity {section['perplexity']} ...", flush=True)
    coords = tsne_embedding(z, section["perplexity"], params.seed)
    out = tsne_figure(params.protocol, params.seed, args.dataset, args.model)
    title = (f"{registry.title(args.model)} ({params.protocol} protocol, seed {params.seed}): t-SNE of one latent "
             f"sample per {args.dataset} test image ({z.shape[0]} points)")
    predictions = cluster_predictions(z, coords, y)
    clusters = prediction_errors(y, predictions)
    result = cluster_result(params.protocol, params.seed, args.dataset, args.model)
    unlabelled = np.full(y.shape, -1)  # no labels: no predictions either
    PerImage("clusters", {"labels": y, **{space: unlabelled if predictions is None else predictions[space]
                                          for space in ("map", "latent")}}).write(per_image_path(result))
    Clusters(int(z.shape[0]), int(z.shape[1]), section["perplexity"], clusters).write(result)
    plot_tsne(coords, y, out, title, class_names=class_names)
    if clusters is not None:
        print(f"{args.dataset}/{args.model}: leave-one-out {clusters['neighbors']}-NN class error "
              f"{clusters['map_error']:.2f} % in the map, {clusters['latent_error']:.2f} % in the latent space")
    print(f"{args.dataset}/{args.model}: -> {out}")


if __name__ == "__main__":
    run_stage(main)
