"""Checkpoints: round trip, the optional extra, given weights, weights_only loading, and one clear error per problem."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlgmm_core import DlgmmError, build_model, load_checkpoint, save_checkpoint

CONFIGS = {
    "gauss_vae": dict(input_dim=12, hidden=8, encoder_activation="linear", latent=3),
    "sb_vae": dict(input_dim=12, hidden=8, encoder_activation="relu", truncation=4, alpha0=5.0, kl_method="taylor",
                   taylor_terms=10),
    "dlgmm": dict(input_dim=12, hidden=8, encoder_activation="linear", latent=3, components=3, alpha=1.0,
                  prior_means=[-1.0, 0.0, 1.0], prior_scales=[1.0], kl_method="quadrature", taylor_terms=10),
    "dldpmm": dict(input_dim=12, hidden=8, encoder_activation="relu", latent=3, truncation=5, alpha0=1.0,
                   prior_means=[0.0], prior_scales=[1.0], kl_method="taylor", taylor_terms=7),
}


def _model(kind="dlgmm", **overrides):
    torch.manual_seed(0)
    model = build_model(kind, **{**CONFIGS[kind], **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_round_trip_same_outputs(tmp_path, kind):
    model = _model(kind)
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, model, metadata={"epochs": 3, "note": "x"})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind
    loaded = load_checkpoint(path, expect_kind=kind, expect_input_dim=12)
    assert loaded.kind == kind and loaded.config == model.config and not loaded.training
    assert loaded.checkpoint_metadata == {"epochs": 3, "note": "x"}
    x = (torch.rand(5, 12) < 0.5).float()
    outputs = []
    for m in (model, loaded):
        torch.manual_seed(42)
        outputs.append((m.elbo(x), m.log_importance_weights(x, 4), m.embed(x), m.sample_prior(3)))
    for a, b in zip(*outputs):
        assert torch.equal(a, b)
    # plain weights_only loading works: nothing but dicts, lists, numbers, strings and tensors
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "dlgmm-checkpoint" and payload["version"] == 1 and payload["kind"] == kind
    # the config's fields as a plain dict, lists as lists: the format of the files written before the config
    # objects, which therefore load unchanged
    stored = {**CONFIGS[kind], **({"decoder_input": "pi"} if kind == "sb_vae" else {})}  # its one default
    assert payload["config"] == stored and list(payload["config"]) == list(stored)


def test_extra_round_trip_with_optimizer_and_rng(tmp_path):
    model = _model("gauss_vae")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.elbo(torch.ones(2, 12)).mean().backward()
    optimizer.step()
    extra = {"epoch": 4, "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
             "history": [{"elbo": -1.5}], "best": None}
    save_checkpoint(tmp_path / "s.pt", model, extra=extra)
    loaded, got = load_checkpoint(tmp_path / "s.pt", with_extra=True)
    assert got["epoch"] == 4 and got["history"] == [{"elbo": -1.5}] and got["best"] is None
    assert torch.equal(got["rng"], extra["rng"])
    fresh = torch.optim.Adam(loaded.parameters(), lr=1e-3)
    fresh.load_state_dict(got["optimizer"])
    assert load_checkpoint(tmp_path / "s.pt", with_extra=False).kind == "gauss_vae"
    save_checkpoint(tmp_path / "n.pt", model)
    assert load_checkpoint(tmp_path / "n.pt", with_extra=True)[1] is None


def test_given_state_dict_is_stored_and_the_model_left_as_it_is(tmp_path):
    model, other = _model("dlgmm"), _model("dlgmm")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "given.pt", model, state_dict=other.state_dict(), metadata={"epochs": 2})
    save_checkpoint(tmp_path / "own.pt", other, metadata={"epochs": 2})
    assert (tmp_path / "given.pt").read_bytes() == (tmp_path / "own.pt").read_bytes()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    for key, value in load_checkpoint(tmp_path / "given.pt").state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key


def test_state_dict_that_does_not_fit_the_model_is_refused_at_save(tmp_path):
    model = _model("dlgmm")
    with pytest.raises(ValueError, match="shape mismatch"):
        save_checkpoint(tmp_path / "bad.pt", model, state_dict=_model("dlgmm", hidden=16).state_dict())
    with pytest.raises(ValueError, match="missing log_a_head"):
        save_checkpoint(tmp_path / "bad.pt", model,
                        state_dict=_model("dlgmm", components=1, prior_means=[0.0]).state_dict())
    assert not (tmp_path / "bad.pt").exists()


def test_extra_that_weights_only_cannot_read_is_refused_at_save(tmp_path):
    model = _model("gauss_vae")
    with pytest.raises(TypeError, match="numpy"):
        save_checkpoint(tmp_path / "bad.pt", model, extra={"state": np.zeros(3)})
    with pytest.raises(TypeError, match="numpy"):
        save_checkpoint(tmp_path / "bad.pt", model, metadata={"n": np.int64(3)})
    assert not (tmp_path / "bad.pt").exists()


def _expect_error(path, needle, **kwargs):
    with pytest.raises(DlgmmError) as err:
        load_checkpoint(path, **kwargs)
    message = str(err.value)
    assert str(path) in message, message
    assert needle in message, message
    return message


def _saved_payload(path, model):
    """Save ``model`` as a checkpoint at ``path`` and return the file's payload, to be edited and saved again."""
    save_checkpoint(path, model)
    return torch.load(path, weights_only=True)


def _expect_error_once_saved(path, payload, needle):
    torch.save(payload, path)
    return _expect_error(path, needle)


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nothing.pt", "not found")


def test_expectations(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model("dlgmm"))
    _expect_error(path, "expected 'gauss_vae'", expect_kind="gauss_vae")
    _expect_error(path, "input_dim is 12, expected 784", expect_input_dim=784)


def test_corrupt_and_truncated_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    _expect_error(garbage, "corrupt")
    good = tmp_path / "good.pt"
    save_checkpoint(good, _model("dlgmm"))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    _expect_error(truncated, "corrupt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _expect_error(empty, "corrupt")


def test_other_torch_files(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    _expect_error(other, "format tag")
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "dlgmm-checkpoint", "array": np.zeros(3)}, unsafe)  # needs weights_only=False
    _expect_error(unsafe, "corrupt")
    future = tmp_path / "future.pt"
    payload = _saved_payload(future, _model("gauss_vae"))
    payload["version"] = 99
    _expect_error_once_saved(future, payload, "version 99")


def test_state_dict_of_another_config(tmp_path):
    path = tmp_path / "mixed.pt"
    payload = _saved_payload(path, _model("dlgmm"))
    payload["state_dict"] = _model("dlgmm", hidden=16).state_dict()
    _expect_error_once_saved(path, payload, "shape mismatch")
    payload["state_dict"] = _model("dlgmm", components=1, prior_means=[0.0]).state_dict()  # no stick heads
    _expect_error_once_saved(path, payload, "missing log_a_head")
    payload["config"] = {**payload["config"], "hidden": -3}
    _expect_error_once_saved(path, payload, "hidden")


def test_encoder_activation_is_stored_and_checked(tmp_path):
    path = tmp_path / "linear.pt"
    payload = _saved_payload(path, _model("dlgmm"))
    assert payload["config"]["encoder_activation"] == "linear"
    loaded = load_checkpoint(path)
    assert [type(m) for m in loaded.encoder] == [torch.nn.Linear]
    del payload["config"]["encoder_activation"]  # a checkpoint written before the argument existed: ReLU
    torch.save(payload, path)
    loaded = load_checkpoint(path)
    assert loaded.config.encoder_activation == "relu" and isinstance(loaded.encoder[-1], torch.nn.ReLU)
    payload["config"]["encoder_activation"] = "sigmoid"
    _expect_error_once_saved(path, payload, "encoder_activation must be one of relu, linear")


def test_map_location_and_device(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model("sb_vae"))
    model = load_checkpoint(path, map_location=torch.device("cpu"))
    assert next(model.parameters()).device.type == "cpu"
