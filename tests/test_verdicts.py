"""The verdict rule of the claims (dlgmm_core.verdicts) on synthetic seeds x images differences."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dlgmm_core.verdicts import (Verdict, directional_verdict, no_gain_verdict, paired_interval,
                                 spread_check)

SEEDS, IMAGES = 3, 10_000


def _differences(effect: float, seed_offsets=(0.0, 0.0, 0.0), image_sd: float = 3.0, noise_sd: float = 1.0,
                 rng_seed: int = 0) -> np.ndarray:
    """Two-way data: effect + per-seed offset + per-image effect (shared by seeds) + residual noise."""
    rng = np.random.default_rng(rng_seed)
    per_image = rng.normal(0.0, image_sd, IMAGES)
    offsets = np.asarray(seed_offsets, dtype=float)[:, None]
    return effect + offsets + per_image[None, :] + rng.normal(0.0, noise_sd, (len(seed_offsets), IMAGES))


def test_a_clear_effect_is_supported():
    interval = paired_interval(_differences(0.5, seed_offsets=(0.05, -0.03, 0.0)))
    assert interval.low > 0
    assert directional_verdict(interval) is Verdict.SUPPORTED


def test_no_effect_is_inconclusive():
    for rng_seed in range(5):
        interval = paired_interval(_differences(0.0, seed_offsets=(0.1, -0.1, 0.02), rng_seed=rng_seed))
        assert directional_verdict(interval) is Verdict.INCONCLUSIVE


def test_a_reversed_effect_is_contradicted():
    interval = paired_interval(_differences(-0.5, seed_offsets=(0.02, -0.05, 0.0)))
    assert directional_verdict(interval) is Verdict.CONTRADICTED


def test_seeds_that_disagree_in_sign_are_never_supported():
    for offsets in [(0.9, 0.9, -1.2), (2.0, 2.0, -2.4), (0.3, 0.3, -0.4)]:
        interval = paired_interval(_differences(0.3, seed_offsets=offsets, image_sd=0.0, noise_sd=0.01))
        assert min(interval.per_seed) < 0 < max(interval.per_seed)
        assert directional_verdict(interval) is not Verdict.SUPPORTED
    # with many seeds the interval can exclude zero while one seed is reversed: the sign rule still holds it back
    many = paired_interval(_differences(1.0, seed_offsets=(0.0,) * 9 + (-1.01,), image_sd=0.0, noise_sd=0.01))
    assert many.low > 0 and min(many.per_seed) < 0
    assert directional_verdict(many) is Verdict.INCONCLUSIVE


def test_the_seed_spread_widens_the_interval():
    tight = paired_interval(_differences(0.5, seed_offsets=(0.0, 0.0, 0.0)))
    spread = paired_interval(_differences(0.5, seed_offsets=(0.4, -0.4, 0.0)))
    assert spread.high - spread.low > 3 * (tight.high - tight.low)
    # the same effect the seeds disagree on by more than its size is no longer resolved by three seeds
    assert directional_verdict(spread) is Verdict.INCONCLUSIVE


def test_one_seed_matches_scipys_paired_t_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(90, 20, 500), None
    b = a + rng.normal(0.3, 1.0, 500)
    interval = paired_interval(b - a)
    expected = stats.ttest_rel(b, a).confidence_interval(0.95)
    assert interval.low == pytest.approx(expected.low, rel=1e-10)
    assert interval.high == pytest.approx(expected.high, rel=1e-10)
    assert interval.seeds == 1 and interval.images == 500


def test_the_interval_covers_the_effect_at_its_stated_rate():
    """Two-way data with seed and image effects: the 95 % interval covers the true effect about 95 % of the time."""
    rng = np.random.default_rng(2)
    covered, trials = 0, 400
    for _ in range(trials):
        offsets = rng.normal(0.0, 0.2, SEEDS)
        d = 0.5 + offsets[:, None] + rng.normal(0, 1.0, 300)[None, :] + rng.normal(0, 0.5, (SEEDS, 300))
        interval = paired_interval(d)
        # the truth the interval targets: the effect in the population of seeds and images
        covered += interval.low <= 0.5 <= interval.high
    assert 0.90 <= covered / trials <= 0.995


def test_no_gain_claims():
    assert no_gain_verdict(paired_interval(_differences(-2.0)), margin=0.15) is Verdict.SUPPORTED
    assert no_gain_verdict(paired_interval(_differences(1.0)), margin=0.15) is Verdict.CONTRADICTED
    wide = paired_interval(_differences(0.05, seed_offsets=(0.3, -0.3, 0.1)))
    assert no_gain_verdict(wide, margin=0.15) is Verdict.INCONCLUSIVE
    with pytest.raises(ValueError, match="margin"):
        no_gain_verdict(wide, margin=0.0)


def test_spread_check():
    inside = spread_check([97.46, 97.10, 97.80], published=96.9)
    assert inside.inside is True and inside.minimum == 97.10 and inside.maximum == 97.80
    outside = spread_check([92.0, 92.1, 91.9], published=96.5)
    assert outside.inside is False
    assert spread_check([92.0], published=96.5).inside is None


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 2 images"):
        paired_interval(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        paired_interval([[0.0, np.nan, 1.0]])
    with pytest.raises(ValueError, match="per-seed values"):
        spread_check([], published=1.0)


def test_identical_models_give_a_zero_width_interval():
    interval = paired_interval(np.zeros((3, 100)))
    assert (interval.mean, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert directional_verdict(interval) is Verdict.INCONCLUSIVE
