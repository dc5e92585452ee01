"""What the report concludes, as numbers and enums (never sentences): effects, the claims' verdicts (by the rule
of :mod:`dlgmm_core.verdicts`, judged in :mod:`dlgmm_core.claims`), the flat metrics.

Sentences are made from these by :mod:`dlgmm_core.report.render` and the templates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..claims import (CLAIMS, Division, Judgement, PaperClaim, ProtocolResults, combined_verdict, judge,
                      judge_division, judge_fidelity)
from ..errors import DlgmmError
from ..params.stage import DATASETS
from ..results import MarginalLikelihood
from ..verdicts import Spread, Verdict
from .inputs import Inputs, RunHistory
from .paper import AUTHORS, CORRECTED, DIFFERENCES, PAPER, SETTING_ROWS, paper_value, table_rows

#: Rounding of the flat metrics (reports/metrics.json).
DECIMALS = 4
#: The epochs over which :func:`late_gain` measures how much a training still gained at its end.
LATE_EPOCHS = 50
#: The embeddings of the knn stage's sensitivity measurement (:class:`dlgmm_core.results.Knn`).
EMBEDDINGS = ("sample", "mean")


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


def share(entry: dict, digit: int) -> float:
    """The percentage of a component's images classified as ``digit``."""
    return 100.0 * entry["classes"][digit] / entry["images"]


def frequent_digits(entry: dict, count: int) -> list[tuple[int, float]]:
    """A component's ``count`` most frequent digits with their shares (%), digits it never draws left out."""
    order = sorted(range(len(entry["classes"])), key=lambda digit: (-entry["classes"][digit], digit))
    return [(digit, share(entry, digit)) for digit in order[:count] if entry["classes"][digit]]


#: A verdict as a number in reports/metrics.json, so that ``dvc metrics diff`` shows it change.
VERDICT_NUMBERS = {Verdict.SUPPORTED: 1, Verdict.INCONCLUSIVE: 0, Verdict.CONTRADICTED: -1}


def claim_results(inputs: Inputs) -> dict[str, ProtocolResults]:
    """Per protocol, every seed's per-image results as the claims read them (:class:`dlgmm_core.claims.ProtocolResults`):
    -log p(x) by the protocol's headline estimator, MNIST kNN and map misclassifications, and the qualitative model's
    component widths in prior-mean order. A run or a file not there is left out."""
    out = {}
    for protocol, runs in inputs.runs.items():
        results = ProtocolResults(nll={}, knn={}, map={}, latent={}, widths={})
        for seed, run in runs.items():
            for key, values in run.nll_per_image.items():
                results.nll.setdefault(key, {})[seed] = values
            for (dataset, model), per_k in run.knn_per_image.items():
                for k, wrong in per_k.items() if dataset == "mnist" else ():
                    results.knn.setdefault((model, k), {})[seed] = wrong
            for model, spaces in run.clusters_per_image.items():
                results.map.setdefault(model, {})[seed] = spaces["map"]
                results.latent.setdefault(model, {})[seed] = spaces["latent"]
            if run.shapes is not None:
                ordered = sorted(run.shapes.components, key=lambda entry: entry["prior_mean"])
                results.widths[seed] = [(float(entry["width"]), float(entry["width_se"])) for entry in ordered]
        out[protocol] = results
    return out


@dataclass(frozen=True)
class Fidelity:
    """One published number (``PAPER[dataset][model][metric]``) against our per-seed values under one protocol;
    ``spread`` None where no seed has the value."""

    dataset: str
    model: str
    metric: str
    published: float
    per_seed: dict[int, float]
    spread: Spread | None

    @property
    def verdict(self) -> Verdict | None:
        """Inside our seeds' prediction interval: supported; outside: contradicted; one seed: inconclusive."""
        if self.spread is None:
            return None
        return {True: Verdict.SUPPORTED, False: Verdict.CONTRADICTED, None: Verdict.INCONCLUSIVE}[self.spread.inside]


@dataclass(frozen=True)
class Judged:
    """One claim of :data:`dlgmm_core.claims.CLAIMS` under one protocol: its cases' judgements (paired claims),
    each seed's division (the division claim) or each published number (fidelity), the claim's verdict (None: not
    run yet; fidelity has one per number) and the seeds it rests on."""

    claim: PaperClaim
    judgements: tuple[Judgement, ...] = ()
    divisions: tuple[Division, ...] = ()
    fidelity: tuple[Fidelity, ...] = ()
    verdict: Verdict | None = None
    seeds: tuple[int, ...] = ()


def _judge_paired(results: ProtocolResults, claim: PaperClaim, protocol: str) -> Judged:
    judgements = []
    for case in claim.cases:
        try:
            judgements.append(judge(results, case))
        except ValueError as err:
            text = str(err) if str(err).startswith("claim ") else f"claim {case.key}: {err}"
            raise DlgmmError(f"the per-image files of protocol {protocol}, {text}; run their stages again") from None
    judgements = tuple(judgements)
    judged = [j for j in judgements if j.verdict is not None]
    seeds = tuple(sorted(set.intersection(*(set(j.seeds) for j in judged)))) if judged else ()
    return Judged(claim, judgements=judgements, verdict=combined_verdict([j.verdict for j in judgements]),
                  seeds=seeds)


def published_numbers(dataset: str = "mnist") -> list[tuple[str, str, float]]:
    """``(model, metric, value)`` of every published number of ``dataset``: -log p(x), then kNN error per k, in the
    tables' row order."""
    out = []
    for metric_kind, rows in (("nll", table_rows("nll")), ("knn", table_rows("knn"))):
        for model in rows:
            for metric, value in PAPER.get(dataset, {}).get(model, {}).items():
                if (metric == "nll") == (metric_kind == "nll"):
                    out.append((model, metric, value))
    return out


def _our_value(run, dataset: str, model: str, metric: str) -> float | None:
    """Our value of a published number in one run (None where not run): the headline -log p(x) or the kNN error."""
    if metric == "nll":
        data = run.nll[dataset].get(model)
        return None if data is None else float(data.nll)
    data = run.knn[dataset].get(model)
    value = None if data is None else data.error(int(metric.split("@", 1)[1]))
    return None if value is None else float(value)


def _judge_fidelity(inputs: Inputs, claim: PaperClaim, protocol: str) -> Judged:
    cells = []
    for model, metric, published in published_numbers():
        per_seed = {seed: value for seed, run in inputs.runs[protocol].items()
                    if (value := _our_value(run, "mnist", model, metric)) is not None}
        cells.append(Fidelity("mnist", model, metric, published, per_seed,
                              judge_fidelity(per_seed, published) if per_seed else None))
    seeds = tuple(sorted({seed for cell in cells for seed in cell.per_seed}))
    return Judged(claim, fidelity=tuple(cells), seeds=seeds)


def judge_claims(inputs: Inputs) -> dict[str, dict[str, Judged]]:
    """``{claim key: {protocol: Judged}}`` for every claim of :data:`dlgmm_core.claims.CLAIMS`, from every seed's
    results read."""
    results = claim_results(inputs)
    out: dict[str, dict[str, Judged]] = {}
    for claim in CLAIMS:
        out[claim.key] = {}
        for protocol in inputs.runs:
            if claim.kind == "paired":
                judged = _judge_paired(results[protocol], claim, protocol)
            elif claim.kind == "division":
                rows, verdict = judge_division(results[protocol].widths)
                judged = Judged(claim, divisions=rows, verdict=verdict, seeds=tuple(r.seed for r in rows))
            else:
                judged = _judge_fidelity(inputs, claim, protocol)
            out[claim.key][protocol] = judged
    return out


def paper_difference(case) -> float | None:
    """The paper's own values of a paired case's measure: ``than``'s minus ``better``'s (None: not published)."""
    if case.measure not in ("nll", "knn"):
        return None
    metric = "nll" if case.measure == "nll" else f"knn_err@{case.neighbors}"
    better, than = paper_value(case.dataset, case.better, metric), paper_value(case.dataset, case.than, metric)
    return None if better is None or than is None else than - better


def case_suffix(claim: PaperClaim, case) -> str:
    """The part of a case's metrics key after the protocol: ``k3`` for one k of a claim made at several, else ''."""
    return f"k{case.neighbors}" if len(claim.cases) > 1 else ""


def _claims_metrics(judged: dict[str, dict[str, Judged]]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}

    def put(prefix: str, verdict: Verdict | None, seeds: int, low=None, high=None, estimate=None) -> None:
        if verdict is None:
            return
        out[f"{prefix}.verdict"], out[f"{prefix}.seeds"] = VERDICT_NUMBERS[verdict], seeds
        for key, value in (("estimate", estimate), ("low", low), ("high", high)):
            if value is not None:
                out[f"{prefix}.{key}"] = round(float(value), DECIMALS)

    for key, per_protocol in judged.items():
        for protocol, entry in per_protocol.items():
            prefix = f"claims.{key}.{protocol}"
            if entry.claim.kind == "paired":
                for case, judgement in zip(entry.claim.cases, entry.judgements):
                    suffix = case_suffix(entry.claim, case)
                    interval = judgement.interval
                    if interval is not None:
                        put(f"{prefix}.{suffix}" if suffix else prefix, judgement.verdict, interval.seeds,
                            interval.low, interval.high, interval.mean)
                if len(entry.claim.cases) > 1:
                    put(prefix, entry.verdict, len(entry.seeds))
            elif entry.claim.kind == "division":
                put(prefix, entry.verdict, len(entry.seeds))
                for row in entry.divisions:
                    for name in ("gap", "low", "high"):
                        out[f"{prefix}.seed-{row.seed}.{name}"] = round(float(getattr(row, name)), DECIMALS)
                    out[f"{prefix}.seed-{row.seed}.orientation"] = row.orientation
            else:
                for cell in entry.fidelity:
                    if cell.spread is None:
                        continue
                    two = len(cell.per_seed) > 1
                    put(f"claims.{key}.{cell.dataset}.{cell.model}.{cell.metric}.{protocol}", cell.verdict,
                        len(cell.per_seed), cell.spread.low if two else None, cell.spread.high if two else None,
                        cell.spread.mean)
    return out


def flat_metrics(inputs: Inputs, judged: dict[str, dict[str, Judged]] | None = None) -> dict[str, float | int]:
    """``{"<protocol>.<dataset>.<model>.<metric>": number}``, sorted, floats rounded to :data:`DECIMALS`.

    Metrics: ``nll`` and ``nll_se`` (the protocol's headline estimator),
    ``nll_ours`` and ``nll_authors`` (both estimators), ``authors_dropped_draws``
    (int), ``elbo`` (mean test ELBO), ``knn_err@<k>`` (%), ``valid_elbo``
    (best validation ELBO), ``epochs`` (int); the qualitative model has
    ``valid_elbo`` and ``epochs`` only. Only the inputs that were read.

    Every seed's values: ``<protocol>.seed-<seed>.<dataset>.<model>.nll`` (headline estimator) and
    ``.knn_err@<k>``. The claims (``judged``, else judged here): ``claims.<claim>.<protocol>.verdict`` (+1
    supported, 0 inconclusive, -1 contradicted; absent: not run yet), ``.seeds``, ``.estimate``, ``.low``,
    ``.high`` (the paired interval of the difference in the claim's direction); a claim made at several k has
    these per k below ``.k<k>`` and its combined ``verdict`` and ``seeds``; the division claim has per seed
    ``.seed-<seed>.gap``, ``.low``, ``.high``, ``.orientation``; each published number
    ``claims.fidelity.<dataset>.<model>.<metric>.<protocol>.verdict``, ``.seeds``, ``.estimate`` (our mean) and
    with two seeds or more ``.low`` and ``.high`` (the prediction interval).
    """
    out: dict[str, float | int] = {}
    for protocol, runs in inputs.runs.items():
        for seed, run in runs.items():
            for dataset in DATASETS:
                for model, data in run.nll[dataset].items():
                    out[f"{protocol}.seed-{seed}.{dataset}.{model}.nll"] = round(float(data.nll), DECIMALS)
                for model, result in run.knn[dataset].items():
                    for k, value in result.errors.items():
                        out[f"{protocol}.seed-{seed}.{dataset}.{model}.knn_err@{k}"] = round(float(value), DECIMALS)
    out.update(_claims_metrics(judge_claims(inputs) if judged is None else judged))
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
