"""SB-VAE ``decoder_input``: recorded and checked, a reparameterization only, unbiased estimator, set per protocol."""
from __future__ import annotations

import copy
import itertools
import math
import re
from pathlib import Path

import pytest
import torch

from dlgmm_core import DlgmmError, build_model, importance_bounds, load_checkpoint, save_checkpoint
from dlgmm_core import registry
from dlgmm_core.nets import bernoulli_log_likelihood
from dlgmm_core.params.load import load_params, params_from_tree
from dlgmm_core.params.read import read_yaml
from dlgmm_core.params.sections import stage_model_config

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
CONFIG = dict(input_dim=12, hidden=8, encoder_activation="relu", truncation=4, alpha0=5.0, kl_method="taylor",
              taylor_terms=10)


def _model(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("sb_vae", **{**CONFIG, **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


@pytest.mark.parametrize("decoder_input", ["pi", "scaled_pi"])
def test_decoder_input_is_recorded_in_the_config_and_the_checkpoint(tmp_path, decoder_input):
    model = _model(decoder_input=decoder_input)
    assert model.config.decoder_input == decoder_input
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.config.decoder_input == decoder_input
    assert loaded.decoder_input_scale == {"pi": 1.0, "scaled_pi": 4.0}[decoder_input]
    latent = torch.softmax(torch.randn(3, 4), -1)
    assert torch.equal(loaded.decode(latent), model.decode(latent))


def test_decoder_input_defaults_to_the_authors_pi_when_omitted():
    model = build_model("sb_vae", **CONFIG)
    assert model.config.decoder_input == "pi" and model.decoder_input_scale == 1.0


@pytest.mark.parametrize("value", ["T_pi", "Pi", 25, None])
def test_a_bad_decoder_input_is_one_clear_error(value):
    with pytest.raises(DlgmmError, match=rf"^build_model\('sb_vae'\): decoder_input must be one of pi, scaled_pi "
                                         rf"\(got {re.escape(repr(value))}\)$"):
        build_model("sb_vae", **CONFIG, decoder_input=value)


@pytest.mark.parametrize("protocol", ["authors", "corrected"])
def test_a_bad_decoder_input_in_params_names_its_key(protocol):
    tree = read_yaml(PARAMS)
    tree["protocol"][protocol]["model"]["sb_vae"]["decoder_input"] = "log_pi"
    with pytest.raises(DlgmmError, match=rf"^params.yaml: protocol\.{protocol}\.model\.sb_vae\.decoder_input must be "
                                         r"one of pi, scaled_pi \(got 'log_pi'\)$"):
        params_from_tree(tree, protocol=protocol)


@pytest.mark.parametrize("protocol, decoder_input, scale", [("authors", "pi", 1.0), ("corrected", "scaled_pi", 25.0)])
def test_each_protocol_builds_its_decoder_input(protocol, decoder_input, scale):
    config = stage_model_config(load_params(PARAMS, protocol), "sb_vae")
    assert config.decoder_input == decoder_input
    model = registry.build(config)
    assert model.config.decoder_input == decoder_input and model.decoder_input_scale == scale


def test_scaled_pi_is_the_pi_model_with_its_first_decoder_layer_scaled():
    """W1 (T pi) = (T W1) pi: with that first layer the pi model gives the same ELBO and importance weights."""
    scaled = _model(decoder_input="scaled_pi")
    plain = build_model("sb_vae", **CONFIG, decoder_input="pi")
    plain.load_state_dict(scaled.state_dict())
    with torch.no_grad():
        plain.decoder[0].weight *= CONFIG["truncation"]
    x = (torch.rand(5, 12) < 0.5).float()
    torch.manual_seed(3)
    elbo_scaled, weights_scaled = scaled.elbo(x), scaled.log_importance_weights(x, 7)
    torch.manual_seed(3)
    elbo_plain, weights_plain = plain.elbo(x), plain.log_importance_weights(x, 7)
    torch.testing.assert_close(elbo_scaled, elbo_plain)
    torch.testing.assert_close(weights_scaled, weights_plain)
    same_weights = build_model("sb_vae", **CONFIG, decoder_input="pi")
    same_weights.load_state_dict(scaled.state_dict())
    uniform = torch.full((1, 4), 0.25)
    assert not torch.allclose(scaled.decode(uniform), same_weights.decode(uniform))  # the factor is applied


def test_the_estimator_with_scaled_pi_converges_to_the_exact_marginal():
    """One stick (T = 2), all 2^6 binary x: log p(x) by quadrature over v against 10,000 importance draws."""
    dim = 6
    all_x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=dim)), dtype=torch.float64)
    torch.manual_seed(0)
    model = build_model("sb_vae", input_dim=dim, hidden=8, encoder_activation="relu", truncation=2, alpha0=2.0,
                        kl_method="quadrature", taylor_terms=10, decoder_input="scaled_pi").double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0.0, 1.0 if name.startswith("decoder") else 0.3)
    encoder = [p for name, p in model.named_parameters() if not name.startswith("decoder")]
    optimizer = torch.optim.Adam(encoder, lr=0.02)
    for _ in range(200):  # a decent proposal, so that 10,000 draws suffice
        optimizer.zero_grad()
        (-model.elbo(all_x).mean()).backward()
        optimizer.step()
    with torch.no_grad():
        n = 20_000
        v = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        log_prior = math.log(2.0) + torch.log1p(-v)  # Beta(1, 2) density: 2 (1 - v)
        logits = model.decoder(2 * torch.stack([v, 1 - v], -1))  # the decoder reads T * pi, written out here
        log_lik = bernoulli_log_likelihood(all_x[:, None, :], logits[None])  # (64, n)
        exact = torch.logsumexp(log_lik + log_prior - math.log(n), -1)
    assert abs(torch.logsumexp(exact, 0).item()) < 1e-6
    torch.manual_seed(1)
    error = importance_bounds(copy.deepcopy(model), all_x, samples=10_000, at=(10_000,), batch_size=200_000)[10_000] \
        - exact
    assert error.abs().max().item() < 0.08, error.abs().max().item()
    assert abs(error.mean().item()) < 0.01, error.mean().item()
