"""The ``eval`` section of params.yaml as frozen config dataclasses, checked once where built.

Standard library only: the ``resolve`` stage checks the section without loading the evaluation code.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import fields

#: The values of ``eval.marginal_likelihood.headline``: which estimate is a result's ``nll`` (the report's
#: -log p(x)): the authors' (``authors_samples`` draws, component index sampled) or ours (``samples``, summed out).
HEADLINES = ("authors", "ours")


@dataclass(frozen=True, kw_only=True)
class LikelihoodConfig:
    """``eval.marginal_likelihood``: Figure 3b's estimators."""

    headline: str = fields.choice(HEADLINES)
    samples: int = fields.integer()
    authors_samples: int = fields.integer()
    bounds_at: tuple[float, ...] = fields.numbers(positive=True, whole=True)
    batch_size: int = fields.integer()
    max_examples: int | None = fields.integer(optional=True)

    def __post_init__(self) -> None:
        fields.check(self)


@dataclass(frozen=True, kw_only=True)
class KnnConfig:
    """``eval.knn``: Figure 3a's classifiers (the neighbours must not outnumber the training examples:
    the schema checks that across the two keys)."""

    neighbors: tuple[float, ...] = fields.numbers(positive=True, whole=True)
    max_train_examples: int | None = fields.integer(optional=True)
    max_test_examples: int | None = fields.integer(optional=True)

    def __post_init__(self) -> None:
        fields.check(self)


@dataclass(frozen=True, kw_only=True)
class TsneConfig:
    """``eval.tsne``: Figure 2c/2d's maps."""

    points: int = fields.integer(minimum=10)
    perplexity: float = fields.number(positive=True)

    def __post_init__(self) -> None:
        fields.check(self)


@dataclass(frozen=True, kw_only=True)
class SamplesConfig:
    """``eval.samples``: the sample grids."""

    grid: int = fields.integer()

    def __post_init__(self) -> None:
        fields.check(self)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """``eval``: the device and threads of every evaluation stage (the sections have their own configs)."""

    device: str = fields.device()
    threads: int = fields.integer()

    def __post_init__(self) -> None:
        fields.check(self)


#: ``eval.<name>`` -> its config class.
SECTIONS = {"marginal_likelihood": LikelihoodConfig, "knn": KnnConfig, "tsne": TsneConfig, "samples": SamplesConfig}
