"""The verdict rule for the paper's claims: paired intervals over seeds and test images, decided before any run.

A claim compares two models on one measure where lower is better (-log p(x),
kNN error, the map's leave-one-out error). Both models are trained once per
seed and evaluated on the same test images, so the per-image difference

    d[s, i] = measure_B[s, i] - measure_A[s, i]      (> 0: A is better)

is paired by image. Its mean over seeds and images estimates the effect. Its
uncertainty has two sources: which seeds were drawn (training randomness, the
seed-to-seed spread of the per-seed mean differences) and which test images
were drawn (the spread of the seed-averaged per-image differences). Under the
two-way model ``d[s, i] = mu + a_s + b_i + e_si`` the variance of the grand mean
is ``var(a)/S + var(b)/N + var(e)/(S N)``; :func:`paired_interval` estimates it
by the sum of the two spreads' variances of the mean (each holds the residual
term once, so the sum slightly overstates it: conservative) and takes a
Student t interval with Welch-Satterthwaite degrees of freedom (SciPy's
``stats.t``). With three seeds the seed term has two degrees of freedom, so
the interval is wide unless the effect is large against the seed spread:
three seeds resolve effects several times the seed-to-seed spread, and not a
difference of the spread's own size.

The verdict of a directional claim (:func:`directional_verdict`, "A is better
than B"):

- **supported**: the whole interval lies on the claimed side of zero and every
  seed's mean difference has the claimed sign (seeds that disagree in sign are
  never "supported");
- **contradicted**: the whole interval lies on the other side of zero;
- **inconclusive**: otherwise.

A claim of no improvement ("A does not help over B", :func:`no_gain_verdict`)
is supported when the interval's upper end stays below a stated margin (no
gain as large as the margin is compatible with the data), contradicted when
its lower end lies above zero (A helps), inconclusive otherwise.

A published value is inside our spread (:func:`spread_check`) when it lies in
the 95 % prediction interval of one more run, from the per-seed values'
mean and standard deviation (Student t, S - 1 degrees of freedom).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: The coverage of every interval the report gives.
CONFIDENCE = 0.95


class Verdict(str, enum.Enum):
    """What the data say of a claim."""

    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A paired effect: its estimate, interval, the per-seed means it came from and how it was computed."""

    mean: float
    low: float
    high: float
    se: float
    df: float
    per_seed: tuple[float, ...]
    images: int
    confidence: float = CONFIDENCE

    @property
    def seeds(self) -> int:
        return len(self.per_seed)


def _as_differences(differences) -> np.ndarray:
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.shape[1] < 2 or d.shape[0] < 1:
        raise ValueError(f"paired differences must be (seeds, images) with at least 2 images, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("paired differences must be finite")
    return d


def paired_interval(differences, confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``differences`` (seeds x images, paired by image) with its interval over seeds and images.

    The variance of the mean is the seed term ``var_s(mean_i d)/S`` (zero with
    one seed, which then carries no seed uncertainty: the report names such a
    row single-seed) plus the image term ``var_i(mean_s d)/N``; degrees of
    freedom by Welch-Satterthwaite.
    """
    d = _as_differences(differences)
    seeds, images = d.shape
    per_seed, per_image = d.mean(axis=1), d.mean(axis=0)
    v_seed = per_seed.var(ddof=1) / seeds if seeds > 1 else 0.0
    v_image = per_image.var(ddof=1) / images
    variance = v_seed + v_image
    mean = float(d.mean())
    if variance == 0.0:
        return Interval(mean, mean, mean, 0.0, math.inf, tuple(map(float, per_seed)), images, confidence)
    terms = [(v_image, images - 1)] + ([(v_seed, seeds - 1)] if seeds > 1 else [])
    df = variance ** 2 / sum(v ** 2 / dof for v, dof in terms if v > 0)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(variance)
    return Interval(mean, mean - half, mean + half, math.sqrt(variance), float(df), tuple(map(float, per_seed)),
                    images, confidence)


def directional_verdict(interval: Interval) -> Verdict:
    """"A is better than B", with ``interval`` of B's measure minus A's (> 0: A better; lower is better)."""
    if interval.low > 0 and all(m > 0 for m in interval.per_seed):
        return Verdict.SUPPORTED
    if interval.high < 0:
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


def no_gain_verdict(interval: Interval, margin: float) -> Verdict:
    """"A does not help over B", with ``interval`` of A's gain (B's measure minus A's) and the margin of "no gain"."""
    if not margin > 0:
        raise ValueError(f"the margin of 'no gain' must be > 0, got {margin!r}")
    if interval.high < margin:
        return Verdict.SUPPORTED
    if interval.low > 0:
        return Verdict.CONTRADICTED
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Spread:
    """Our per-seed values of one measure and whether a published value lies in their prediction interval."""

    mean: float
    low: float
    high: float
    minimum: float
    maximum: float
    published: float
    inside: bool | None  # None: fewer than two seeds, no spread to judge by


def spread_check(per_seed, published: float, confidence: float = CONFIDENCE) -> Spread:
    """``published`` against the prediction interval of one more run from ``per_seed`` (Student t, S - 1 dof)."""
    values = np.asarray(per_seed, dtype=np.float64)
    if values.ndim != 1 or values.size < 1 or not np.isfinite(values).all():
        raise ValueError(f"per-seed values must be a non-empty list of finite numbers, got {per_seed!r}")
    mean = float(values.mean())
    if values.size < 2:
        return Spread(mean, mean, mean, mean, mean, float(published), None)
    half = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1)) * values.std(ddof=1) * math.sqrt(
        1 + 1 / values.size)
    return Spread(mean, mean - half, mean + half, float(values.min()), float(values.max()), float(published),
                  bool(mean - half <= published <= mean + half))
