"""The paper's values and names: published numbers (Figure 3), model names and architectures, table orders.

Everything here is a fact of the paper or an editorial choice of the report,
keyed by the ``model.<key>`` sections of params.yaml. Which models exist, and
which are trained on which dataset, the report asks the model registry in one
place: :func:`registered_models`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..claims import NEIGHBORS
from . import templates

#: ``PAPER[dataset][model][metric]``: -log p(x) in nats (Fig. 3b) and MNIST kNN test error in % (Fig. 3a).
#: A metric absent here was not published (shown as "—").
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "mnist": {
        "dlgmm": {"nll": 96.50, "knn_err@3": 9.14, "knn_err@5": 8.38, "knn_err@10": 8.42},
        "dldpmm": {"nll": 96.91},
        "gauss_vae": {"nll": 96.80, "knn_err@3": 28.4, "knn_err@5": 20.96, "knn_err@10": 15.33},
        "sb_vae": {"nll": 98.01, "knn_err@3": 9.34, "knn_err@5": 8.65, "knn_err@10": 8.90},
    },
    "omniglot": {
        "dlgmm": {"nll": 123.50},
        "dldpmm": {"nll": 123.76},
        "gauss_vae": {"nll": 119.18},
        "sb_vae": {},
    },
}
DATASET_NAMES = {"mnist": "MNIST", "omniglot": "Omniglot"}


@dataclass(frozen=True)
class ReportModel:
    """How the report places one params.yaml model key (its name is the registry's, :func:`name`).

    ``notation(sizes)`` writes an architecture in the paper's notation
    (``500d-3x25s``) from its sizes (constructor arguments such as ``hidden``,
    ``latent``, ``components``); ``paper_sizes`` are the paper's (None: not in
    the paper); ``sizes(section, tree)`` reads ours from the key's effective
    params.yaml section and the whole tree (default: the section).
    ``nll_row``/``knn_row`` order the -log p(x) and kNN tables (None: after
    the numbered rows, in registry order). ``figure``: the panel of Figure 2
    its t-SNE map is, if any.
    """

    notation: Callable[[Mapping[str, Any]], str] | None = None
    paper_sizes: Mapping[str, int] | None = None
    nll_row: int | None = None
    knn_row: int | None = None
    figure: str = ""
    sizes: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] = lambda section, tree: section

    @property
    def paper_architecture(self) -> str | None:
        """The paper's architecture in its notation, None if not in the paper."""
        return None if self.notation is None or self.paper_sizes is None else self.notation(self.paper_sizes)


#: The report's table of models, by params.yaml model key: notation, the paper's sizes, table rows, figure. A key
#: the registry lists and this table does not is reported without a notation, after the paper's models.
MODELS: dict[str, ReportModel] = {
    "gauss_vae": ReportModel(lambda c: f"{c['hidden']}d-{c['latent']}s", {"hidden": 500, "latent": 25},
                             3, 3, "Figure 2c"),
    "sb_vae": ReportModel(lambda c: f"{c['hidden']}d-{c['truncation']}t",
                          {"hidden": 500, "truncation": 25}, 4, 2),
    "dlgmm": ReportModel(lambda c: f"{c['hidden']}d-{c['components']}x{c['latent']}s",
                         {"hidden": 500, "latent": 25, "components": 3}, 1, 1, "Figure 2d",
                         sizes=lambda section, tree: {**section, "components": tree["k"]}),
    "dldpmm": ReportModel(lambda c: f"{c['hidden']}d-{c['truncation']}tx{c['latent']}s",
                          {"hidden": 500, "latent": 25, "truncation": 17}, 2, 4),
    "qualitative": ReportModel(),
}

#: What each protocol defined in params.yaml stands for, in the report's header.
PROTOCOL_PURPOSES = {
    "authors": "the code behind the published numbers",
    "corrected": "the paper's text done right",
}
#: The models the paper's claims name: the proposed mixture (DLGMM), the single-Gaussian baseline (Gauss-VAE) and the
#: stick-breaking VAE (SB-VAE), by params.yaml model key.
MIXTURE, GAUSSIAN, STICK_BREAKING = "dlgmm", "gauss_vae", "sb_vae"
#: The two protocols whose difference is the combined effect of the settings that differ.
AUTHORS, CORRECTED = "authors", "corrected"
ENCODERS = {"linear": "784 → 500 linear encoder (no activation)", "relu": "ReLU encoder"}

#: Where the paper's text, the authors' code and the protocols differ (docs/protocols.md explains each):
#: ``(setting, paper's text, the authors' code = protocol "authors", protocol "corrected")``.
DIFFERENCES: tuple[tuple[str, ...], ...] = templates.table_rows("differences.md")
#: Where protocol ``authors`` still is not the authors' code, the same under both protocols:
#: ``(setting, the authors' code, this package)``.
NOT_REPRODUCED: tuple[tuple[str, ...], ...] = templates.table_rows("not_reproduced.md")
#: The rows of :data:`DIFFERENCES` a key of ``protocol.<name>.model.<model>`` or ``protocol.<name>.train`` belongs to.
SETTING_ROWS = {"encoder_activation": "encoder", "kl": "KL(Kumaraswamy ‖ Beta)",
                "taylor_terms": "KL(Kumaraswamy ‖ Beta)", "decoder_input": "SB-VAE decoder input",
                "patience": "early stopping", "max_epochs": "early stopping"}

#: How far a cell of ours may lie from the paper's and still count as reproduced: nats of -log p(x), points of
#: kNN error.
TOLERANCE = {"nll": 1.0, "knn": 2.0}
#: The digits the paper names in its reading of Figure 2a/2b: "thin digits such as sevens" from component 1,
#: "wide digits such as zeros" from component K.
PAPER_THIN_DIGIT, PAPER_WIDE_DIGIT = 7, 0
#: The k of Figure 3a (those the paper's kNN claims name).
PAPER_KS = NEIGHBORS


def registered_models(dataset: str | None = None) -> tuple[str, ...]:
    """The params.yaml model keys the model registry declares, in its order: those the evaluation stages cover
    (``dataset`` None), or those trained on ``dataset``. The report's only question to the registry."""
    from .. import registry

    return registry.evaluated_keys() if dataset is None else registry.trained_keys(dataset)


def name(model: str) -> str:
    """The display name of ``model``: the registry's (the paper's names), the key itself for a model it lacks."""
    from .. import registry

    return registry.title(model) if model in registry.SECTIONS else model


def table_rows(table: str) -> tuple[str, ...]:
    """The evaluated keys in the row order of the report's ``"nll"`` or ``"knn"`` table."""
    keys = registered_models()
    rank = {key: getattr(MODELS.get(key), f"{table}_row", None) for key in keys}
    return tuple(sorted(keys, key=lambda k: (rank[k] is None, rank[k] or 0, keys.index(k))))


def trained_only() -> tuple[str, ...]:
    """The model keys that are trained but not evaluated, in registry order."""
    from ..params.stage import DATASETS

    evaluated = registered_models()
    keys = dict.fromkeys(key for dataset in DATASETS for key in registered_models(dataset))
    return tuple(key for key in keys if key not in evaluated)


def paper_value(dataset: str, model: str, metric: str) -> float | None:
    """The published value, or None where the paper gives none."""
    return PAPER.get(dataset, {}).get(model, {}).get(metric)


def architecture(tree: Mapping[str, Any], model: str) -> str | None:
    """Our configuration of ``model`` in the paper's notation (``500d-3x25s``), from the effective parameter
    tree; None for a model the table gives no notation."""
    entry = MODELS.get(model)
    if entry is None or entry.notation is None:
        return None
    return entry.notation(entry.sizes(tree["model"][model], tree))


def differs_from_paper(tree: Mapping[str, Any], model: str) -> bool:
    """Whether our architecture of ``model`` is not the paper's (False for a model not in the paper)."""
    entry = MODELS.get(model)
    return entry is not None and entry.paper_architecture is not None and \
        architecture(tree, model) != entry.paper_architecture
