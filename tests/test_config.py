"""params.yaml loading and validation: every bad value is named before any work starts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlgmm_core.config import load_params, params_from_tree, set_params
from dlgmm_core.errors import DlgmmError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tree() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _set(tree: dict, dotted: str, value) -> dict:
    node = tree
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return tree


def test_committed_params_hold_the_paper_settings():
    params = load_params(ROOT / "params.yaml")
    assert params.budget == "paper"
    assert params.protocol == "authors" and params.protocols == ["authors"]  # the headline protocol by default
    train = params.train
    assert (train["lr"], train["batch_size"], train["patience"]) == (0.0003, 100, 26)
    kind, config = params.model_config("dlgmm")
    assert kind == "dlgmm" and config["components"] == params.k == 3
    assert (config["hidden"], config["latent"], config["alpha"]) == (500, 25, 1.0)
    assert params.model_config("dldpmm")[1]["truncation"] == 17
    assert params.model_config("dldpmm")[1]["alpha0"] == 1.0
    sb = params.model_config("sb_vae")[1]
    assert (sb["truncation"], sb["alpha0"]) == (25, 5.0)
    assert params.model_config("gauss_vae")[1] == {"input_dim": 784, "hidden": 500, "encoder_activation": "linear",
                                                   "latent": 25}
    kind, qual = params.model_config("qualitative")
    assert kind == "dlgmm" and qual["components"] == 5 and qual["latent"] == 5
    assert qual["prior_means"] == [-1.5, -0.75, 0.0, 0.75, 1.5]
    assert params.eval["marginal_likelihood"]["samples"] == 1000
    assert params.eval["knn"]["neighbors"] == [3, 5, 10]


def test_top_level_k_sets_dlgmm_components_only(tree):
    params = params_from_tree(_set(tree, "k", 10))
    assert params.model_config("dlgmm")[1]["components"] == 10
    assert params.model_config("qualitative")[1]["components"] == 5


def test_quick_budget_applies_overrides(tree):
    params = params_from_tree(_set(tree, "budget", "quick"))
    assert params.train["max_epochs"] == tree["quick"]["train.max_epochs"]
    assert params.eval["marginal_likelihood"]["samples"] == tree["quick"]["eval.marginal_likelihood.samples"]
    assert tree["protocol"]["authors"]["train"]["max_epochs"] != tree["quick"]["train.max_epochs"]
    paper = params_from_tree(_set(tree, "budget", "paper"))
    assert paper.train["max_epochs"] == tree["protocol"]["authors"]["train"]["max_epochs"]


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("k", 0, "k must be >= 1"),
        ("k", 2.5, "k must be an integer"),
        ("model.dldpmm.truncation", 1, "model.dldpmm.truncation must be >= 2"),
        ("model.sb_vae.truncation", 1, "model.sb_vae.truncation must be >= 2"),
        ("train.lr", 0, "train.lr must be > 0"),
        ("train.lr", -0.1, "train.lr must be > 0"),
        ("train.batch_size", 0, "train.batch_size must be >= 1"),
        ("train.batch_size", -5, "train.batch_size must be >= 1"),
        ("train.device", "tpu", "train.device must be one of"),
        ("budget", "huge", "budget must be one of"),
        ("protocol.authors.model.dlgmm.kl", "exact", "protocol.authors.model.dlgmm.kl must be one of"),
        ("protocol.corrected.model.dlgmm.kl", "exact", "protocol.corrected.model.dlgmm.kl must be one of"),
        ("protocol.authors.model.sb_vae.encoder_activation", "tanh",
         "protocol.authors.model.sb_vae.encoder_activation must be one of relu, linear"),
        ("protocol.corrected.model.qualitative.taylor_terms", 0,
         "protocol.corrected.model.qualitative.taylor_terms must be >= 1"),
        ("protocol.authors.train.patience", 0, r"^params.yaml: protocol.authors.train.patience must be >= 1 \(got 0\)$"),
        ("protocol.corrected.train.max_epochs", 1.5, "protocol.corrected.train.max_epochs must be an integer"),
        ("protocol.authors.eval.marginal_likelihood.headline", "best",
         "protocol.authors.eval.marginal_likelihood.headline must be one of authors, ours"),
        ("eval.marginal_likelihood.authors_samples", 0, "eval.marginal_likelihood.authors_samples must be >= 1"),
        ("model.dlgmm.prior_scales", [0.0], "model.dlgmm.prior_scales[0] must be > 0"),
        ("model.qualitative.prior_means", [0.0, 1.0], "model.qualitative.prior_means must hold 1 or 5 values"),
        ("protocol.authors.eval.marginal_likelihood.samples", 0,
         "protocol.authors.eval.marginal_likelihood.samples must be >= 1"),
        ("data.mnist.source", "web", "data.mnist.source must be one of"),
        ("data.omniglot.lake_split", [0.5, 0.5, 0.5], "data.omniglot.lake_split must be three positive fractions"),
    ],
)
def test_bad_values_name_their_key(tree, key, value, named):
    if not named.startswith("^"):
        named = named.replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(DlgmmError, match=named):
        params_from_tree(_set(tree, key, value))


def test_knn_neighbours_larger_than_training_set_is_rejected(tree):
    _set(tree, "eval.knn.max_train_examples", 5)
    with pytest.raises(DlgmmError, match="eval.knn.neighbors must not exceed eval.knn.max_train_examples"):
        params_from_tree(tree)


def test_dlgmm_prior_means_must_match_k(tree):
    _set(tree, "model.dlgmm.prior_means", [0.0, 1.0, 2.0])
    params_from_tree(tree)  # k = 3: one mean per component is fine
    with pytest.raises(DlgmmError, match="model.dlgmm.prior_means must hold 1 or 4 values"):
        params_from_tree(_set(tree, "k", 4))


def test_unknown_model_and_dataset_names(tree):
    params = params_from_tree(tree)
    with pytest.raises(DlgmmError, match="unknown model 'vae'"):
        params.model_config("vae")
    with pytest.raises(DlgmmError, match="unknown dataset 'cifar'"):
        params.data("cifar")


def test_missing_key_and_unknown_quick_override(tree):
    del tree["train"]["lr"]
    with pytest.raises(DlgmmError, match="missing key train.lr"):
        params_from_tree(tree)
    tree["train"]["lr"] = 0.001
    tree["budget"] = "quick"
    tree["quick"]["train.learning_rate"] = 1
    with pytest.raises(DlgmmError, match="unknown key train.learning_rate"):
        params_from_tree(tree)


def test_set_params_keeps_comments_and_refuses_bad_values(tmp_path):
    path = tmp_path / "params.yaml"
    original = (ROOT / "params.yaml").read_text()
    path.write_text(original)
    set_params(path, ["budget=quick", "data.omniglot.dir=../elsewhere"])
    text = path.read_text()
    assert "budget: quick" in text and "../elsewhere" in text
    assert text.count("#") == original.count("#")
    assert load_params(path).budget == "quick"
    before = path.read_text()
    with pytest.raises(DlgmmError, match="train.lr must be > 0"):
        set_params(path, ["train.lr=-1"])
    assert path.read_text() == before
    with pytest.raises(DlgmmError, match="unknown key train.nope"):
        set_params(path, ["train.nope=1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_cli_reports_one_line_without_traceback(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("lr: 0.0003", "lr: 0"))
    result = subprocess.run(
        [sys.executable, "-m", "dlgmm_core.config", "check", "--file", str(path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {path}: train.lr must be > 0 (got 0)"]


def test_train_section_checked_on_its_own_with_defaults():
    from dlgmm_core.config import validate_train

    section = validate_train({"lr": 0.001, "batch_size": 10, "patience": 2, "max_epochs": 3})
    assert section["device"] == "auto" and section["precision"] == "float32" and section["max_train_examples"] is None
    with pytest.raises(DlgmmError, match="train config: train.batch_size must be >= 1"):
        validate_train({"lr": 0.001, "batch_size": 0, "patience": 2, "max_epochs": 3})
    with pytest.raises(DlgmmError, match="train config: missing key train.max_epochs"):
        validate_train({"lr": 0.001, "batch_size": 10, "patience": 2})
