"""The ``resolve`` stage's per-stage views: params.yaml validated once, split into exactly what each stage reads.

The pipeline's first stage, ``resolve`` (``stages/resolve.py``), loads
``params.yaml`` through :mod:`.load` (every section and every
defined protocol validated, the protocol merged, the budget applied) and
writes one small JSON file per stage, ``data/params/<stage>.json``
(:func:`dlgmm_core.layout.stage_params`), holding exactly the values that
stage reads (:func:`stage_views`). Every other stage depends on its own file
instead of on sections of ``params.yaml``, and reads its values from it
(:func:`.load.load_stage_params`). So:

- a bad value anywhere fails the ``resolve`` stage, before DVC has removed
  any other stage's outputs (its own folder is ``persist: true`` and written
  only after everything validated, so the files of the last good
  parameters stay);
- a change reruns exactly the stages whose values it changes: an override
  only the t-SNE reads changes only the t-SNE's file, and an edit of the quick
  budget leaves every file of a paper-budget run as it was.

Resolving builds every model's config, so it loads torch (no model is built).
"""
from __future__ import annotations

import os

from .. import layout, registry
from ..io import read_json, write_json
from .load import params_of_protocols
from .merge import shadowed_by_quick
from .read import read_params_tree
from .stage import DATASETS, Params

#: The devices a stage view names, by the key the error names.
_DEVICE_KEYS = ("train.device", "eval.device")


def _eval_view(params: Params, seed: int, section: str) -> dict:
    """What an evaluation stage reads: the budget (checked against the checkpoint's), its seed, the evaluation
    device and threads, and its own ``eval`` section."""
    return {"protocol": params.protocol, "budget": params.budget, "seed": seed,
            "eval": {"device": params.eval["device"], "threads": params.eval["threads"],
                     section: params.eval[section]}}


def _train_view(params: Params, seed: int, key: str) -> dict:
    """What the training stage of model ``key`` with ``seed`` reads: seed, budget, ``train``, ``model.<key>`` and its
    top-level keys.

    ``train.max_epochs_by_model`` is resolved here: the stage sees its own model's epoch limit as ``max_epochs``.
    """
    train = params.train
    train["max_epochs"] = train.pop("max_epochs_by_model").get(key, train["max_epochs"])
    view = {"protocol": params.protocol, "seed": seed, "budget": params.budget,
            "train": train, "model": {key: params.tree["model"][key]}}
    for top_level in registry.SECTIONS[key].top_level.values():
        view[top_level] = params.tree[top_level]
    return view


def stage_views(by_protocol: dict[str, Params]) -> dict[str, dict]:
    """``{stage name: the values it reads}`` for every stage of ``dvc.yaml`` but ``resolve`` itself.

    ``by_protocol``: the validated parameters of every protocol the pipeline
    runs, in the order of ``protocols`` (the first is the report's headline). Every stage of a model runs once
    per protocol and seed (``seeds``); the data preparation once.
    """
    headline = next(iter(by_protocol.values()))
    views: dict[str, dict] = {}
    for dataset in DATASETS:
        views[layout.prepare_stage(dataset)] = {"data": {dataset: headline.data(dataset)}}
    for protocol, params in by_protocol.items():
        for seed in params.seeds:
            for dataset in DATASETS:
                for key in registry.trained_keys(dataset):
                    views[layout.train_stage(protocol, seed, dataset, key)] = _train_view(params, seed, key)
                for key in registry.evaluated_keys():
                    views[layout.nll_stage(protocol, seed, dataset, key)] = _eval_view(params, seed,
                                                                                       "marginal_likelihood")
                    views[layout.knn_stage(protocol, seed, dataset, key)] = _eval_view(params, seed, "knn")
                    views[layout.samples_stage(protocol, seed, dataset, key)] = _eval_view(params, seed, "samples")
            for key in registry.evaluated_keys():
                views[layout.tsne_stage(protocol, seed, key)] = _eval_view(params, seed, "tsne")
            for key in registry.trained_keys("mnist"):
                if key not in registry.evaluated_keys():  # the qualitative model: its component grids only
                    views[layout.samples_stage(protocol, seed, "mnist", key)] = _eval_view(params, seed, "samples")
    # The report reads params.yaml's shape: `protocol` holds the definitions, the model sections the headline's.
    tree = headline.tree
    views[layout.report_stage()] = {"budget": tree["budget"], "k": tree["k"], "protocols": tree["protocols"],
                                    "seeds": tree["seeds"],
                                    "quick": tree.get("quick") or {}, "protocol": tree["protocol"],
                                    "model": tree["model"]}
    return views


def check_devices(views: dict[str, dict]) -> None:
    """A ``cuda`` device named anywhere must exist (DlgmmError naming the key), before any stage runs."""
    wanted = {key for view in views.values() for key in _DEVICE_KEYS
              if (view.get(key.split(".")[0]) or {}).get("device") == "cuda"}
    if wanted:
        from ..runtime import resolve_device

        for key in sorted(wanted):
            resolve_device("cuda", key=key)


def check_data_sources(by_protocol: dict[str, Params], root: str | os.PathLike = ".") -> None:
    """A local data folder named in params.yaml must exist and hold what its source reads, and pinned files match.

    Only where a dataset's settings differ from those last resolved, that is where its prepare stage will
    run: an unchanged dataset is already prepared (and DVC's temporary copies of the repository for
    queued experiments lack the git-ignored data folders). Downloads cannot be checked before they are
    made; the prepare stage checks them.
    """
    from ..data import check_local_sources

    headline = next(iter(by_protocol.values()))
    for dataset in DATASETS:
        section = headline.data(dataset)
        previous = layout.stage_params(layout.prepare_stage(dataset), root)
        if previous.is_file() and read_json(previous, "").get("data", {}).get(dataset) == section:
            continue
        check_local_sources(dataset, section, layout.raw_dir(root))


def resolve(params_path: str | os.PathLike = "params.yaml", root: str | os.PathLike = ".") -> list[str]:
    """Validate ``params_path`` and (re)write every stage's file under ``root``; return notices for the user.

    Nothing is written unless everything validated. Files of stages that no
    longer exist (a protocol taken off the list) are removed.
    """
    raw = read_params_tree(params_path)
    by_protocol = params_of_protocols(raw, str(params_path))
    views = stage_views(by_protocol)
    check_devices(views)
    check_data_sources(by_protocol, root)
    folder = layout.stage_params_dir(root)
    for name, view in views.items():
        write_json(layout.stage_params(name, root), view)
    wanted = {layout.stage_params(name, root).name for name in views}
    for stale in folder.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    return shadowed_by_quick(raw)
