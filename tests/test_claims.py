"""The claims' judgements (dlgmm_core.claims) on synthetic per-image results of three seeds."""
from __future__ import annotations

import numpy as np
import pytest

from dlgmm_core.claims import (NO_GAIN_MARGIN_NATS, Claim, ProtocolResults, combined_verdict, judge,
                               judge_division, judge_fidelity)
from dlgmm_core.verdicts import Verdict

SEEDS = (1234, 1, 2)
N = 2000


def _nll(base: np.ndarray, shift: float, seed_offsets=(0.0, 0.0, 0.0), rng_seed: int = 0) -> dict:
    rng = np.random.default_rng(rng_seed)
    return {s: base + shift + o + rng.normal(0, 0.5, base.shape) for s, o in zip(SEEDS, seed_offsets)}


@pytest.fixture
def images():
    return np.random.default_rng(7).normal(95.0, 20.0, N)


def test_a_clear_likelihood_gain_is_supported_and_a_loss_contradicted(images):
    results = ProtocolResults(nll={("mnist", "gauss_vae"): _nll(images, 0.0, rng_seed=1),
                                   ("mnist", "dlgmm"): _nll(images, -0.4, (0.02, -0.01, 0.0), rng_seed=2),
                                   ("mnist", "dldpmm"): _nll(images, +0.4, (0.02, -0.01, 0.0), rng_seed=3)})
    gain = judge(results, Claim("mnist_dlgmm", "nll", "mnist", "dlgmm", "gauss_vae"))
    assert gain.verdict is Verdict.SUPPORTED and gain.seeds == tuple(sorted(SEEDS))
    assert gain.interval.mean == pytest.approx(0.4, abs=0.05)
    loss = judge(results, Claim("mnist_dldpmm", "nll", "mnist", "dldpmm", "gauss_vae"))
    assert loss.verdict is Verdict.CONTRADICTED


def test_no_gain_on_omniglot(images):
    worse = ProtocolResults(nll={("omniglot", "gauss_vae"): _nll(images, 0.0, rng_seed=1),
                                 ("omniglot", "dlgmm"): _nll(images, 2.0, rng_seed=2)})
    claim = Claim("omniglot_dlgmm", "nll", "omniglot", "dlgmm", "gauss_vae", form="no_gain")
    assert judge(worse, claim).verdict is Verdict.SUPPORTED
    better = ProtocolResults(nll={("omniglot", "gauss_vae"): _nll(images, 0.0, rng_seed=1),
                                  ("omniglot", "dlgmm"): _nll(images, -3 * NO_GAIN_MARGIN_NATS, rng_seed=2)})
    assert judge(better, claim).verdict is Verdict.CONTRADICTED


def test_knn_errors_are_paired_per_image_and_seeds_that_disagree_are_not_supported():
    rng = np.random.default_rng(3)
    truth_hard = rng.random(N) < 0.07  # images every model finds hard
    gauss = {s: (truth_hard | (rng.random(N) < 0.02)).astype(np.int8) for s in SEEDS}
    dlgmm = {s: (truth_hard & (rng.random(N) < 0.98)).astype(np.int8) for s in SEEDS}
    claim = Claim("knn_10", "knn", "mnist", "dlgmm", "gauss_vae", neighbors=10)
    judged = judge(ProtocolResults(knn={("dlgmm", 10): dlgmm, ("gauss_vae", 10): gauss}), claim)
    assert judged.verdict is Verdict.SUPPORTED
    assert all(t > b for b, t in zip(judged.better_per_seed, judged.than_per_seed))
    # one seed reversed: never supported
    dlgmm_mixed = {**dlgmm, SEEDS[2]: np.maximum(gauss[SEEDS[2]], (rng.random(N) < 0.05).astype(np.int8))}
    mixed = judge(ProtocolResults(knn={("dlgmm", 10): dlgmm_mixed, ("gauss_vae", 10): gauss}), claim)
    assert mixed.verdict is not Verdict.SUPPORTED


def test_a_model_not_run_gives_no_verdict_and_mismatched_images_an_error(images):
    results = ProtocolResults(nll={("mnist", "gauss_vae"): _nll(images, 0.0)})
    assert judge(results, Claim("x", "nll", "mnist", "dlgmm", "gauss_vae")).verdict is None
    results = ProtocolResults(nll={("mnist", "gauss_vae"): _nll(images, 0.0), ("mnist", "dlgmm"): _nll(images[:10], 0)})
    with pytest.raises(ValueError, match="claim x: .* do not cover the same images"):
        judge(results, Claim("x", "nll", "mnist", "dlgmm", "gauss_vae"))


def test_combined_verdict():
    S, I, C = Verdict.SUPPORTED, Verdict.INCONCLUSIVE, Verdict.CONTRADICTED
    assert combined_verdict([S, S, S]) is S
    assert combined_verdict([S, I, S]) is I
    assert combined_verdict([S, C, S]) is C
    assert combined_verdict([S, None]) is I
    assert combined_verdict([None]) is None


def test_division_is_judged_whatever_the_orientation():
    either = {1234: [(11.0, 0.3), (12.0, 0.3), (17.0, 0.3)], 1: [(17.2, 0.3), (13.0, 0.3), (10.9, 0.3)],
              2: [(10.5, 0.3), (14.0, 0.3), (16.0, 0.3)]}
    rows, verdict = judge_division(either)
    assert verdict is Verdict.SUPPORTED
    assert [(r.seed, r.orientation) for r in rows] == [(1, -1), (2, 1), (1234, 1)]
    flat = {s: [(12.0, 0.2), (12.1, 0.2), (12.1, 0.2)] for s in SEEDS}
    assert judge_division(flat)[1] is Verdict.CONTRADICTED
    one_flat = {**either, 2: [(12.0, 0.5), (12.3, 0.5), (12.4, 0.5)]}
    assert judge_division(one_flat)[1] is Verdict.INCONCLUSIVE
    assert judge_division({}) == ((), None)


def test_fidelity_of_a_published_value():
    assert judge_fidelity({1234: 97.46, 1: 97.2, 2: 97.7}, 97.3).inside is True
    assert judge_fidelity({1234: 91.9, 1: 92.0, 2: 92.1}, 96.5).inside is False
