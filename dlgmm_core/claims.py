"""The paper's claims, judged from every seed's per-image results by the rule of :mod:`dlgmm_core.verdicts`.

Each claim of the paper is one :class:`Claim`: the two models it compares,
the measure (lower is better: -log p(x) in nats, kNN error and the t-SNE map's
leave-one-out error in percent) and the form of the claim ("A is better than
B", "A does not help over B"). :func:`judge` computes, per protocol, the
paired interval of every claim from the per-image results of all seeds and
its verdict; :func:`judge_division` judges Figure 2a/2b's reading in a form
that does not depend on the orientation a seed happened to take; and
:func:`judge_fidelity` places each published number against our seeds.
Everything returned is numbers and :class:`~dlgmm_core.verdicts.Verdict`
values; the report's template words them.

:data:`CLAIMS` lists the paper's claims, each with its words from the
paper's Section 3 and how it is judged; the report's "Claims" section has one
row per entry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from .verdicts import CONFIDENCE, Interval, Spread, Verdict, directional_verdict, no_gain_verdict, paired_interval, \
    spread_check

#: The k of the paper's kNN claims ("across all number of neighbors tested (k = {3, 5, 10})", Figure 3a).
NEIGHBORS = (3, 5, 10)
#: The largest gain in nats that still counts as "no gain": half the smallest MNIST gain the paper calls
#: "modest" (DLGMM 96.50 against the Gauss-VAE's 96.80, 0.30 nats).
NO_GAIN_MARGIN_NATS = 0.15
#: Within how many pixels of zero every seed's width gap must lie for "no division" (:func:`judge_division`).
DIVISION_MARGIN_PX = 1.0


@dataclass(frozen=True)
class Claim:
    """One claim: ``better`` is better than (``form`` "better") or no better than (``form`` "no_gain") ``than``."""

    key: str
    measure: str  # "nll" | "knn" | "map" | "latent"
    dataset: str
    better: str
    than: str
    form: str = "better"
    neighbors: int | None = None  # kNN's k


@dataclass
class ProtocolResults:
    """One protocol's per-image results of every seed: what :func:`judge` reads.

    ``nll[(dataset, model)][seed]``: -log p(x) of each test image by the
    protocol's headline estimator; ``knn[(model, k)][seed]``: whether the kNN
    classifier on the latent space got each MNIST test image wrong (1) or right
    (0); ``map[model][seed]``: the same for each point of the t-SNE map
    (leave-one-out), ``latent[model][seed]`` for the same points in the latent
    space the map was made from; ``widths[seed]``: ``(width, width_se)`` of each component
    of the qualitative model, in prior-mean order.
    """

    nll: Mapping[tuple[str, str], Mapping[int, np.ndarray]] = field(default_factory=dict)
    knn: Mapping[tuple[str, int], Mapping[int, np.ndarray]] = field(default_factory=dict)
    map: Mapping[str, Mapping[int, np.ndarray]] = field(default_factory=dict)
    latent: Mapping[str, Mapping[int, np.ndarray]] = field(default_factory=dict)
    widths: Mapping[int, Sequence[tuple[float, float]]] = field(default_factory=dict)

    def values(self, claim: Claim, model: str) -> Mapping[int, np.ndarray]:
        """Per seed, the per-image values of ``model`` on ``claim``'s measure (empty when not run)."""
        if claim.measure == "nll":
            return self.nll.get((claim.dataset, model), {})
        if claim.measure == "knn":
            return {s: 100.0 * np.asarray(v, dtype=np.float64) for s, v in self.knn.get((model, claim.neighbors),
                                                                                          {}).items()}
        errors = self.map if claim.measure == "map" else self.latent
        return {s: 100.0 * np.asarray(v, dtype=np.float64) for s, v in errors.get(model, {}).items()}


@dataclass(frozen=True)
class Judgement:
    """A claim under one protocol: each model's per-seed means, the paired interval and the verdict.

    ``seeds``: the seeds both models have results for (the interval pairs
    them by seed and by image); ``interval`` is of ``than``'s measure minus
    ``better``'s (> 0: the claim's direction). None where a model was not run.
    """

    claim: Claim
    seeds: tuple[int, ...]
    better_per_seed: tuple[float, ...]
    than_per_seed: tuple[float, ...]
    interval: Interval | None
    verdict: Verdict | None


def differences(claim: Claim, better: Mapping[int, np.ndarray], than: Mapping[int, np.ndarray]
                ) -> tuple[tuple[int, ...], np.ndarray | None]:
    """The seeds both models' per-seed values share and the (seeds x images) differences ``than - better``
    (None: nothing shared)."""
    seeds = tuple(sorted(set(better) & set(than)))
    if not seeds:
        return (), None
    shapes = {np.shape(better[s]) for s in seeds} | {np.shape(than[s]) for s in seeds}
    if len(shapes) != 1:
        raise ValueError(f"claim {claim.key}: the per-image results of {claim.better} and {claim.than} do not cover "
                         f"the same images (shapes {sorted(shapes)})")
    return seeds, np.stack([np.asarray(than[s], np.float64) - np.asarray(better[s], np.float64) for s in seeds])


def judge(results: ProtocolResults, claim: Claim) -> Judgement:
    """``claim`` judged on ``results`` (one protocol, every seed) by the rule of :mod:`dlgmm_core.verdicts`."""
    better, than = results.values(claim, claim.better), results.values(claim, claim.than)
    seeds, d = differences(claim, better, than)
    if d is None:
        return Judgement(claim, (), (), (), None, None)
    interval = paired_interval(d)
    verdict = (directional_verdict(interval) if claim.form == "better"
               else no_gain_verdict(interval, NO_GAIN_MARGIN_NATS))
    return Judgement(claim, seeds, tuple(float(np.mean(better[s])) for s in seeds),
                     tuple(float(np.mean(than[s])) for s in seeds), interval, verdict)


def combined_verdict(verdicts: Sequence[Verdict | None]) -> Verdict | None:
    """A claim made for several cases at once ("at every k"): supported only if every case is, contradicted if any
    case is, else inconclusive; None if no case was judged."""
    judged = [v for v in verdicts if v is not None]
    if not judged:
        return None
    if len(judged) == len(verdicts) and all(v is Verdict.SUPPORTED for v in judged):
        return Verdict.SUPPORTED
    if any(v is Verdict.CONTRADICTED for v in judged):
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Division:
    """Figure 2a/2b per seed: the width gap between the last and the first component, with its interval.

    ``orientation``: +1 where the last component (most positive prior mean)
    draws the wider digits, as in the paper, -1 where the first does, 0 where
    the gap's interval includes zero.
    """

    seed: int
    gap: float
    low: float
    high: float
    orientation: int


def judge_division(widths: Mapping[int, Sequence[tuple[float, float]]], margin_px: float = DIVISION_MARGIN_PX,
                   confidence: float = CONFIDENCE) -> tuple[tuple[Division, ...], Verdict | None]:
    """"Thin digits from one extreme component, wide ones from the other", whichever extreme is which.

    The model's prior is symmetric (flipping z and reversing the component
    order gives the same likelihood), so the orientation is the seed's, not
    the model's. Per seed, the gap ``width_K - width_1`` with its normal
    interval from the two components' standard errors. Supported when every
    seed's gap excludes zero (either sign); contradicted when every seed's
    interval lies within ``margin_px`` of zero (no division); else
    inconclusive.
    """
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows = []
    for seed in sorted(widths):
        (w1, se1), (wk, sek) = widths[seed][0], widths[seed][-1]
        gap, half = wk - w1, z * math.hypot(se1, sek)
        orientation = 0 if gap - half <= 0 <= gap + half else (1 if gap > 0 else -1)
        rows.append(Division(seed, gap, gap - half, gap + half, orientation))
    if not rows:
        return (), None
    if all(r.orientation != 0 for r in rows):
        return tuple(rows), Verdict.SUPPORTED
    if all(-margin_px < r.low and r.high < margin_px for r in rows):
        return tuple(rows), Verdict.CONTRADICTED
    return tuple(rows), Verdict.INCONCLUSIVE


def judge_fidelity(per_seed: Mapping[int, float], published: float) -> Spread:
    """A published value against our per-seed values of the same number (:func:`~dlgmm_core.verdicts.spread_check`)."""
    return spread_check([per_seed[s] for s in sorted(per_seed)], published)


@dataclass(frozen=True)
class PaperClaim:
    """A claim of the paper in its own words and how it is judged.

    ``quote``: the paper's sentence (Section 3), verbatim but for its LaTeX;
    ``kind``: "paired" (each of ``cases`` judged by :func:`judge`, the claim's
    verdict their :func:`combined_verdict`), "division" (the qualitative
    model's widths, :func:`judge_division`) or "fidelity" (each published MNIST
    number of Figure 3 against our seeds, :func:`judge_fidelity`).
    """

    key: str
    quote: str
    kind: str = "paired"
    cases: tuple[Claim, ...] = ()


_LIKELIHOOD = ("We find that using a mixture latent space improves the likelihood modestly for MNIST but not at all "
               "for Omniglot.")
_KNN = ("We see from the table that the DLGMM performs markedly better than the Gauss-VAE—supporting our visual "
        "analysis above of the t-SNE projections—and slightly better than the SB-VAE. Moreover, the DLGMM's "
        "superior performance holds across all number of neighbors tested (k = {3, 5, 10}).")
_CLUSTERS = "The DLGMM's latent space exhibits conspicuously better clustering."
_DIVISION = ("We see that the DLGMM learned not only recognizable MNIST digits but also to divide their factors of "
             "variation into different parts of the latent space. Thin digits such as sevens are generated from the "
             "component with the most negative prior mean and wide digits such as zeros are generated from the "
             "component with the most positive prior mean.")
_FIGURE_3 = ("Subtable (a) shows MNIST test error for kNN classifiers trained on samples from the latent "
             "distributions. [...] Subfigure (b) reports the (Monte Carlo) estimated marginal likelihood on the test "
             "set.")


def _knn_cases(key: str, than: str) -> tuple[Claim, ...]:
    return tuple(Claim(f"{key}@k{k}", "knn", "mnist", "dlgmm", than, neighbors=k) for k in NEIGHBORS)


#: The paper's claims, in the order of the report's "Claims" section.
CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("mnist_nll_dlgmm", _LIKELIHOOD, cases=(Claim("mnist_nll_dlgmm", "nll", "mnist", "dlgmm", "gauss_vae"),)),
    PaperClaim("mnist_nll_dldpmm", _LIKELIHOOD,
               cases=(Claim("mnist_nll_dldpmm", "nll", "mnist", "dldpmm", "gauss_vae"),)),
    PaperClaim("omniglot_nll_dlgmm", _LIKELIHOOD,
               cases=(Claim("omniglot_nll_dlgmm", "nll", "omniglot", "dlgmm", "gauss_vae", form="no_gain"),)),
    PaperClaim("omniglot_nll_dldpmm", _LIKELIHOOD,
               cases=(Claim("omniglot_nll_dldpmm", "nll", "omniglot", "dldpmm", "gauss_vae", form="no_gain"),)),
    PaperClaim("knn_dlgmm_gauss_vae", _KNN, cases=_knn_cases("knn_dlgmm_gauss_vae", "gauss_vae")),
    PaperClaim("knn_dlgmm_sb_vae", _KNN, cases=_knn_cases("knn_dlgmm_sb_vae", "sb_vae")),
    PaperClaim("clusters_map", _CLUSTERS, cases=(Claim("clusters_map", "map", "mnist", "dlgmm", "gauss_vae"),)),
    PaperClaim("clusters_latent", _CLUSTERS,
               cases=(Claim("clusters_latent", "latent", "mnist", "dlgmm", "gauss_vae"),)),
    PaperClaim("division", _DIVISION, kind="division"),
    PaperClaim("fidelity", _FIGURE_3, kind="fidelity"),
)
