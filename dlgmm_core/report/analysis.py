"""What the report concludes, as numbers and enums (never sentences): effects, verdicts, the flat metrics.

Sentences are made from these by :mod:`dlgmm_core.report.render` and the templates.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..params.stage import DATASETS
from ..results import MarginalLikelihood
from .inputs import Inputs, RunHistory
from .paper import AUTHORS, CORRECTED, DIFFERENCES, SETTING_ROWS, table_rows

#: Rounding of the flat metrics (reports/metrics.json).
DECIMALS = 4
#: The epochs over which :func:`late_gain` measures how much a training still gained at its end.
LATE_EPOCHS = 50
#: The embeddings of the knn stage's sensitivity measurement (:class:`dlgmm_core.results.Knn`).
EMBEDDINGS = ("sample", "mean")


class Verdict(enum.Enum):
    """A reading of the paper against a measurement; the value names the phrase in ``templates/phrases.md``."""

    HOLDS = "holds"
    DOES_NOT_HOLD = "does_not_hold"
    HOLDS_EXTREMES_ONLY = "holds_extremes_only"
    NOT_BORNE_OUT = "not_borne_out"
    HOLD = "hold"
    REVERSED = "reversed"
    HOLD_IN_PART = "hold_in_part"


def knn_neighbors(inputs: Inputs, dataset: str) -> list[int]:
    """Every k of a kNN result of ``dataset``, under any protocol, ascending."""
    return sorted({k for run in inputs.protocols.values() for data in run.knn[dataset].values() for k in data.errors})


def estimator_gap(data: MarginalLikelihood) -> float:
    """The authors' 50-draw -log p(x) minus ours, from the same checkpoint."""
    return float(data.authors["nll"]) - float(data.ours["nll"])


def estimator_effects(inputs: Inputs) -> dict[str, dict[tuple[str, str], float]]:
    """``{protocol: {(dataset, model): authors' -log p(x) - ours}}`` for every marginal-likelihood result read."""
    return {protocol: {(dataset, model): estimator_gap(data)
                       for dataset in DATASETS for model, data in run.nll[dataset].items()}
            for protocol, run in inputs.protocols.items()}


def _gap(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else float(first) - float(second)


def protocol_effects(inputs: Inputs) -> dict[tuple[str, str], dict[str, float | None]]:
    """``{(dataset, model): {metric: authors - corrected}}`` (``nll``: each protocol's headline -log p(x);
    ``knn_err@<k>``), None where either protocol lacks the value; {} unless both protocols are listed."""
    if AUTHORS not in inputs.protocols or CORRECTED not in inputs.protocols:
        return {}
    authors, corrected = inputs.protocols[AUTHORS], inputs.protocols[CORRECTED]
    out: dict[tuple[str, str], dict[str, float | None]] = {}
    for dataset in DATASETS:
        ks = knn_neighbors(inputs, dataset)
        for model in table_rows("nll"):
            first, second = authors.nll[dataset].get(model), corrected.nll[dataset].get(model)
            effect = {"nll": _gap(first and first.nll, second and second.nll)}
            first_knn, second_knn = authors.knn[dataset].get(model), corrected.knn[dataset].get(model)
            for k in ks:
                effect[f"knn_err@{k}"] = _gap(first_knn and first_knn.error(k), second_knn and second_knn.error(k))
            out[(dataset, model)] = effect
    return out


def setting_order(setting: str) -> int:
    """The place of ``setting`` among the rows of :data:`DIFFERENCES` (after them if none)."""
    order = [row[0] for row in DIFFERENCES]
    return order.index(setting) if setting in order else len(order)


def differing_settings(tree: Mapping[str, Any], model: str) -> list[str]:
    """The settings (rows of :data:`DIFFERENCES`, in its order) in which protocols ``authors`` and ``corrected``
    train ``model`` differently, as the parameter tree ``tree`` defines them; a Taylor series' length counts only
    where both protocols use the series."""
    definitions = tree.get("protocol") or {}
    first, second = definitions.get(AUTHORS) or {}, definitions.get(CORRECTED) or {}
    pairs = [((first.get("model") or {}).get(model) or {}, (second.get("model") or {}).get(model) or {}),
             (first.get("train") or {}, second.get("train") or {})]
    found = set()
    for one, other in pairs:
        for key in sorted(set(one) | set(other)):
            if one.get(key) == other.get(key):
                continue
            if key == "taylor_terms" and not (one.get("kl") == other.get("kl") == "taylor"):
                continue
            found.add(SETTING_ROWS.get(key, key))
    return sorted(found, key=lambda row: (setting_order(row), row))


def common_bound(inputs: Inputs, dataset: str, model: str) -> tuple[int, float] | None:
    """``(S, authors - corrected)``: our -log p(x) with the largest sample count S both protocols' results hold
    (the same estimator on both checkpoints, so the difference is the training's alone); None without both."""
    results = [inputs.protocols[p].nll[dataset].get(model) if p in inputs.protocols else None
               for p in (AUTHORS, CORRECTED)]
    if any(r is None for r in results):
        return None
    bounds = [{int(s): float(v) for s, v in r.bounds.items()} for r in results]
    common = set(bounds[0]) & set(bounds[1])
    if not common:
        return None
    size = max(common)
    return size, bounds[0][size] - bounds[1][size]


def isolated_effects(inputs: Inputs, tree: Mapping[str, Any], settings: set[str]) -> list[tuple[str, str, int, float]]:
    """The training effect of exactly ``settings``: ``(dataset, model, S, authors - corrected)`` of our -log p(x)
    for each model whose protocols differ in those settings and no other (:func:`differing_settings`)."""
    out = []
    for model in table_rows("nll"):
        if set(differing_settings(tree, model)) != settings:
            continue
        for dataset in DATASETS:
            effect = common_bound(inputs, dataset, model)
            if effect is not None:
                out.append((dataset, model, *effect))
    return out


def late_gain(log: RunHistory) -> float | None:
    """How much the best validation ELBO rose over the last :data:`LATE_EPOCHS` epochs (None for a shorter run)."""
    steps, values = log.valid
    if steps.size == 0 or steps[-1] <= LATE_EPOCHS:
        return None
    return float(np.max(values) - np.max(values[steps <= steps[-1] - LATE_EPOCHS]))


def nearest_variant(sensitivity: dict, k: int, paper: float) -> tuple[float, str, int] | None:
    """The knn sensitivity measurement's ``(error, embedding, N)`` at ``k`` nearest ``paper``."""
    best = None
    for embedding in EMBEDDINGS:
        for n, per_k in sensitivity.get(embedding, {}).items():
            value = per_k.get(str(k)) if isinstance(per_k, dict) else None
            if isinstance(value, (int, float)) and (best is None or abs(value - paper) < abs(best[0] - paper)):
                best = (float(value), embedding, int(n))
    return best


def nearest_to_paper(sensitivity: dict, ks: list[int], paper: list[float | None], sizes: list[int]
                     ) -> tuple[float, str, int] | None:
    """``(mean absolute difference over ks, embedding, N)`` of the sensitivity variant nearest the paper's values."""
    best = None
    for embedding in EMBEDDINGS:
        for n in sizes:
            per_k = sensitivity.get(embedding, {}).get(str(n), {})
            values = [per_k.get(str(k)) for k in ks]
            if None not in values and None not in paper:
                gap = float(np.mean([abs(v - q) for v, q in zip(values, paper)]))
                if best is None or gap < best[0]:
                    best = (gap, embedding, n)
    return best


def cluster_verdict(dlgmm_error: float, gauss_error: float) -> Verdict:
    """Figure 2c/2d: the paper reads that the DLGMM's map clusters better than the Gauss-VAE's."""
    return Verdict.HOLDS if dlgmm_error < gauss_error else Verdict.DOES_NOT_HOLD


def share(entry: dict, digit: int) -> float:
    """The percentage of a component's images classified as ``digit``."""
    return 100.0 * entry["classes"][digit] / entry["images"]


def frequent_digits(entry: dict, count: int) -> list[tuple[int, float]]:
    """A component's ``count`` most frequent digits with their shares (%), digits it never draws left out."""
    order = sorted(range(len(entry["classes"])), key=lambda digit: (-entry["classes"][digit], digit))
    return [(digit, share(entry, digit)) for digit in order[:count] if entry["classes"][digit]]


def examples_verdict(first_shares: tuple[float, float], last_shares: tuple[float, float]) -> Verdict:
    """The paper's examples (thin digits from component 1, wide ones from component K) against the classified
    digits: ``(thin share, wide share)`` of component 1 and of component K."""
    (thin_first, wide_first), (thin_last, wide_last) = first_shares, last_shares
    if thin_first > thin_last and wide_last > wide_first:
        return Verdict.HOLD
    if thin_first < thin_last and wide_last < wide_first:
        return Verdict.REVERSED
    return Verdict.HOLD_IN_PART


@dataclass(frozen=True)
class Widths:
    """Figure 2a/2b's reading (width grows from component 1 to component K) against the measured widths."""

    verdict: Verdict
    gap: float
    margin: float
    falls: list[tuple[dict, dict]]


def widths(components: list[dict]) -> Widths:
    """The extremes compared within two standard errors, then every step between neighbouring components."""
    first, last = components[0], components[-1]
    gap = last["width"] - first["width"]
    margin = 2.0 * math.hypot(first["width_se"], last["width_se"])
    falls = [(a, b) for a, b in zip(components, components[1:]) if b["width"] < a["width"]]
    if gap > margin:
        verdict = Verdict.HOLDS if not falls else Verdict.HOLDS_EXTREMES_ONLY
    else:
        verdict = Verdict.DOES_NOT_HOLD if gap < -margin else Verdict.NOT_BORNE_OUT
    return Widths(verdict, gap, margin, falls)


def flat_metrics(inputs: Inputs) -> dict[str, float | int]:
    """``{"<protocol>.<dataset>.<model>.<metric>": number}``, sorted, floats rounded to :data:`DECIMALS`.

    Metrics: ``nll`` and ``nll_se`` (the protocol's headline estimator),
    ``nll_ours`` and ``nll_authors`` (both estimators), ``authors_dropped_draws``
    (int), ``elbo`` (mean test ELBO), ``knn_err@<k>`` (%), ``valid_elbo``
    (best validation ELBO), ``epochs`` (int); the qualitative model has
    ``valid_elbo`` and ``epochs`` only. Only the inputs that were read.
    """
    out: dict[str, float | int] = {}
    for protocol, run in inputs.protocols.items():
        for dataset in DATASETS:
            for model, data in run.nll[dataset].items():
                prefix = f"{protocol}.{dataset}.{model}"
                for key in ("nll", "nll_se", "elbo"):
                    out[f"{prefix}.{key}"] = round(float(getattr(data, key)), DECIMALS)
                out[f"{prefix}.nll_ours"] = round(float(data.ours["nll"]), DECIMALS)
                out[f"{prefix}.nll_authors"] = round(float(data.authors["nll"]), DECIMALS)
                out[f"{prefix}.authors_dropped_draws"] = int(data.authors["dropped_draws"])
            for model, result in run.knn[dataset].items():
                for k, value in result.errors.items():
                    out[f"{protocol}.{dataset}.{model}.knn_err@{k}"] = round(float(value), DECIMALS)
            for model, log in run.logs[dataset].items():
                out[f"{protocol}.{dataset}.{model}.valid_elbo"] = round(log.best_valid_elbo, DECIMALS)
                out[f"{protocol}.{dataset}.{model}.epochs"] = log.epochs
    return dict(sorted(out.items()))


def logged_runs(inputs: Inputs) -> dict[str, tuple[Any, RunHistory | None]]:
    """``{model: (the authors' log, our MNIST run under protocol authors or None)}``; {} without that protocol."""
    run = inputs.protocols.get(AUTHORS)
    if run is None:
        return {}
    return {model: (log, run.logs["mnist"].get(model)) for model, log in inputs.authors_logs.items()}


def valid_at(steps: np.ndarray, values: np.ndarray, epoch: int) -> float | None:
    """The validation ELBO logged at ``epoch``, None if not logged."""
    hit = np.flatnonzero(steps == epoch)
    return float(values[hit[0]]) if hit.size else None
