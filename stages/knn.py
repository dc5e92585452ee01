"""Stage `knn` (Figure 3a): kNN test error (%) on one latent sample per example.

    python stages/knn.py --protocol PROTOCOL --seed SEED --dataset {mnist,omniglot} --model {gauss_vae,sb_vae,dlgmm,dldpmm}

Reads its parameters from data/params/<stage>.json (written by the `resolve` stage: seed, eval.device, eval.knn), models/<protocol>/seed-<seed>/<dataset>/<model>.pt and
data/prepared/<dataset>.{npz,json} (which must carry labels). Writes reports/knn/<protocol>/seed-<seed>/<dataset>/<model>.json:
{"error@<k>" for k in eval.knn.neighbors, "train_examples", "test_examples", "sensitivity"}; "sensitivity"
holds the same errors fitted on fewer labelled examples and with the mean of several draws as the embedding
({"draws": MEAN_DRAWS, "sample": {N: {k: error}}, "mean": {N: {k: error}}}; dlgmm_core.evaluation.knn_sensitivity),
the headline errors being its one-sample errors on the whole training set (the mean embedding is drawn
after the one-sample embedding, so the headline numbers are those of one-sample kNN alone). Beside it,
<model>.npz: each test image's label and the class the headline classifier gives it for each k
(dlgmm_core.results.PerImage).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.params.stage import load_stage_params, stage_arguments  # noqa: E402
from dlgmm_core.registry import evaluated_keys  # noqa: E402
from dlgmm_core.data import load_prepared  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.evaluation import (MEAN_DRAWS, check_neighbors, embed, knn_predictions,  # noqa: E402
                                   knn_sensitivity, load_eval_model, require_labels)
from dlgmm_core.layout import knn_result, knn_stage, prepared  # noqa: E402
from dlgmm_core.results import Knn, PerImage, per_image_path  # noqa: E402
from dlgmm_core.runtime import compute_device, seed_everything  # noqa: E402


def main() -> None:
    args = stage_arguments(__doc__, evaluated_keys())
    params = load_stage_params(knn_stage(args.protocol, args.seed, args.dataset, args.model))
    section = params.eval["knn"]
    npz_path, json_path = prepared(args.dataset)
    require_labels(json_path)
    data = load_prepared(npz_path)
    x_train, y_train = data["x_train"][:section["max_train_examples"]], data["y_train"][:section["max_train_examples"]]
    x_test, y_test = data["x_test"][:section["max_test_examples"]], data["y_test"][:section["max_test_examples"]]
    check_neighbors(section["neighbors"], x_train.shape[0])
    device = compute_device(params.eval["device"], params.eval["threads"], key="eval.device")
    model = load_eval_model(params.protocol, params.seed, args.dataset, args.model, device, budget=params.budget)
    seed_everything(params.seed)
    z_train = embed(model, x_train, device, desc="embed train")
    z_test = embed(model, x_test, device, desc="embed test")
    embeddings = {"sample": (z_train, z_test),
                  "mean": (embed(model, x_train, device, desc=f"embed train (mean of {MEAN_DRAWS})", draws=MEAN_DRAWS),
                           embed(model, x_test, device, desc=f"embed test (mean of {MEAN_DRAWS})", draws=MEAN_DRAWS))}
    sensitivity = knn_sensitivity(embeddings, y_train, y_test, section["neighbors"])
    errors = sensitivity["sample"][x_train.shape[0]]  # the headline: one sample, the whole training set
    sensitivity_json = {name: {str(n): {str(k): e for k, e in per_k.items()} for n, per_k in per_n.items()}
                        for name, per_n in sensitivity.items()}
    out = knn_result(params.protocol, params.seed, args.dataset, args.model)
    predictions = knn_predictions(z_train, y_train, z_test, section["neighbors"])
    PerImage("knn", {"labels": y_test, **{f"k{k}": p for k, p in predictions.items()}}).write(per_image_path(out))
    Knn(errors, int(x_train.shape[0]), int(x_test.shape[0]),
        {"draws": MEAN_DRAWS, **sensitivity_json}).write(out)
    print(f"{args.dataset}/{args.model}: kNN test error "
          + ", ".join(f"k={k} {e:.2f}%" for k, e in errors.items()) + f" -> {out}")


if __name__ == "__main__":
    run_stage(main)
