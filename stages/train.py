"""Stage `train`: fit one model on one dataset (Adam, early stopping on the validation ELBO); resumable.

    python stages/train.py --protocol PROTOCOL --seed SEED --dataset {mnist,omniglot} --model MODEL

MODEL is a model section of params.yaml (dlgmm_core.registry.SECTIONS). Reads its parameters from
data/params/<stage>.json (written by the `resolve` stage: seed, train, model.<model> and the top-level
keys it reads, such as k) and data/prepared/<dataset>.npz.
Writes models/<protocol>/seed-<seed>/<dataset>/<model>.pt (best-validation weights) and the dvclive logs
logs/<protocol>/seed-<seed>/<dataset>/<model>/, and after every epoch the resumable state
.dlgmm/train-state/<protocol>/seed-<seed>/<dataset>/<model>.state.pt (ignored by git and DVC: not an output).
Killed and started again, it continues from the last completed epoch.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Idle OpenMP threads sleep instead of spinning: with anything else running on the
# machine, spinning made torch's 2-thread CPU training up to 100x slower. Before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dlgmm_core import registry  # noqa: E402
from dlgmm_core.data import load_prepared  # noqa: E402
from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.layout import (checkpoint, prepared, script, stage_sources, train_logs, train_stage,  # noqa: E402
                               train_state)
from dlgmm_core.params.sections import stage_model_config  # noqa: E402
from dlgmm_core.params.stage import load_stage_params, stage_arguments  # noqa: E402
from dlgmm_core.resume import code_sha256  # noqa: E402
from dlgmm_core.runtime import seed_everything  # noqa: E402
from dlgmm_core.training import TrainConfig, train_model  # noqa: E402

#: The repository: this script and the package it runs, whose sources fingerprint a saved training state.
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    args = stage_arguments(__doc__, registry.SECTIONS)
    params = load_stage_params(train_stage(args.protocol, args.seed, args.dataset, args.model))
    config = stage_model_config(params, args.model)
    data = load_prepared(prepared(args.dataset)[0])
    seed_everything(params.seed)  # weight initialisation
    model = registry.build(config)
    train_model(model, data["x_train"], data["x_valid"], TrainConfig(**params.train), seed=params.seed,
                code=code_sha256(stage_sources(script("train"), ROOT), ROOT),
                state_path=train_state(params.protocol, params.seed, args.dataset, args.model),
                checkpoint_path=checkpoint(params.protocol, params.seed, args.dataset, args.model),
                log_dir=train_logs(params.protocol, params.seed, args.dataset, args.model),
                metadata={"dataset": args.dataset, "model": args.model, "kind": config.kind, "budget": params.budget,
                          "protocol": params.protocol})


if __name__ == "__main__":
    run_stage(main)
