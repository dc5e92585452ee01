"""params.yaml loading and validation: every bad value is named before any work starts."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlgmm_core.errors import DlgmmError
from dlgmm_core.fields import as_dict
from dlgmm_core.params.editor import set_params
from dlgmm_core.params.load import load_params, params_from_tree
from dlgmm_core.params.read import read_yaml
from dlgmm_core.params.sections import stage_model_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tree() -> dict:
    return read_yaml(ROOT / "params.yaml")


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
    # both protocols, the authors' the headline (the protocol a Params holds by default)
    assert params.protocol == "authors" and params.protocols == ["authors", "corrected"]
    train = params.train
    assert (train["lr"], train["batch_size"], train["patience"]) == (0.0003, 100, 26)
    config = stage_model_config(params, "dlgmm")
    assert config.kind == "dlgmm" and config.components == params.k == 3
    assert (config.hidden, config.latent, config.alpha) == (500, 25, 1.0)
    assert stage_model_config(params, "dldpmm").truncation == 17
    assert stage_model_config(params, "dldpmm").alpha0 == 1.0
    sb = stage_model_config(params, "sb_vae")
    assert (sb.truncation, sb.alpha0, sb.kl_method) == (25, 5.0, "taylor")
    assert as_dict(stage_model_config(params, "gauss_vae")) == {"input_dim": 784, "hidden": 500,
                                                                "encoder_activation": "linear", "latent": 25}
    qual = stage_model_config(params, "qualitative")
    assert qual.kind == "dlgmm" and qual.components == 5 and qual.latent == 5
    assert qual.prior_means == (-1.5, -0.75, 0.0, 0.75, 1.5)
    assert params.eval["marginal_likelihood"]["samples"] == 1000
    assert params.eval["knn"]["neighbors"] == [3, 5, 10]


def test_top_level_k_sets_dlgmm_components_only(tree):
    params = params_from_tree(_set(tree, "k", 10))
    assert stage_model_config(params, "dlgmm").components == 10
    assert stage_model_config(params, "qualitative").components == 5


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
        stage_model_config(params, "vae")
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
        [sys.executable, "tools/params.py", "check", "--file", str(path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {path}: train.lr must be > 0 (got 0)"]


def test_train_config_checked_on_its_own_with_defaults():
    from dlgmm_core.training import TrainConfig

    config = TrainConfig(lr=0.001, batch_size=10, patience=2, max_epochs=3)
    assert config.device == "auto" and config.precision == "float32" and config.max_train_examples is None
    with pytest.raises(DlgmmError, match=r"^TrainConfig.batch_size must be >= 1 \(got 0\)$"):
        TrainConfig(lr=0.001, batch_size=0, patience=2, max_epochs=3)
    with pytest.raises(TypeError, match="max_epochs"):
        TrainConfig(lr=0.001, batch_size=10, patience=2)


# --- YAML 1.2, as DVC reads params.yaml -------------------------------------------------------
def _edited(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the committed params.yaml in ``tmp_path`` with the text ``old`` replaced by ``new`` (once)."""
    text = (ROOT / "params.yaml").read_text()
    assert text.count(old) == 1
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new))
    return path


def _dvc_reading(path: Path):
    from dvc.utils.serialize import load_yaml

    return load_yaml(str(path))


@pytest.mark.parametrize("written, value", [("1e-3", 0.001), ("3e-4", 0.0003), ("3.0e-4", 0.0003)])
def test_hand_written_exponents_are_numbers_as_for_dvc(tmp_path, written, value):
    path = _edited(tmp_path, "lr: 0.0003", f"lr: {written}")
    assert read_yaml(path) == _dvc_reading(path)
    assert load_params(path).train["lr"] == value
    result = subprocess.run([sys.executable, "tools/params.py", "check", "--file", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: ok"


def test_the_committed_file_reads_as_dvc_reads_it():
    assert read_yaml(ROOT / "params.yaml") == _dvc_reading(ROOT / "params.yaml")


def test_yaml_1_2_scalars_read_as_dvc_reads_them(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text("a: yes\nb: on\nc: 0777\nd: 1_000\ne: 3e-4\nf: '00'\ng: [1e3, .5, null, true]\n")
    values = read_yaml(path)
    assert values == _dvc_reading(path) == {"a": "yes", "b": "on", "c": 777, "d": 1000, "e": 0.0003, "f": "00",
                                            "g": [1000.0, 0.5, None, True]}
    assert [type(v) for v in values["g"]] == [float, float, type(None), bool]


def test_a_pin_of_zeros_stays_a_string(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    zeros = "0" * 64
    set_params(path, [f'data.omniglot.known_sha256."images_background_small1.zip"={zeros}',
                      f"data.mnist.wheel.sha256={zeros}", "data.omniglot.dir=2016"])
    for tree in (read_yaml(path), _dvc_reading(path)):
        assert tree["data"]["omniglot"]["known_sha256"]["images_background_small1.zip"] == zeros
        assert tree["data"]["mnist"]["wheel"]["sha256"] == zeros
        assert tree["data"]["omniglot"]["dir"] == "2016"
    assert load_params(path).data("mnist")["wheel"]["sha256"] == zeros


def test_invalid_yaml_is_one_line_naming_the_file(tmp_path):
    path = _edited(tmp_path, "lr: 0.0003", "lr: [0.0003")
    with pytest.raises(DlgmmError, match=rf"^{path}: not valid YAML \(.*\)$") as error:
        load_params(path)
    assert "\n" not in str(error.value)
    with pytest.raises(DlgmmError, match=rf"^{path}: not valid YAML "):
        set_params(path, ["budget=quick"])


def test_a_missing_default_file_says_where_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DlgmmError, match=rf"^params.yaml: file not found in {tmp_path}; run the stages from the "
                                         rf"repository root \(where dvc.yaml is\)$"):
        load_params()
    with pytest.raises(DlgmmError, match=rf"^{tmp_path / 'other.yaml'}: file not found$"):
        load_params(tmp_path / "other.yaml")


# --- unknown keys -----------------------------------------------------------------------------
def _add(tree: dict, dotted: str, value) -> dict:
    node = tree
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    assert last not in node
    node[last] = value
    return tree


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("K", 10, "unknown key K (did you mean k?)"),
        ("sead", 1, "unknown key sead (did you mean seeds?)"),
        ("seed", 1234, "unknown key seed (did you mean seeds?)"),  # the single seed before the seed axis
        ("budgte", "paper", "unknown key budgte (did you mean budget?)"),
        ("protocls", ["authors"], "unknown key protocls (did you mean protocols?)"),
        ("data.mnist.binarise_seed", 1, "unknown key data.mnist.binarise_seed (did you mean data.mnist.binarize_seed?)"),
        ("data.mnist.wheel.sha265", "", "unknown key data.mnist.wheel.sha265 (did you mean data.mnist.wheel.sha256?)"),
        ("data.omniglot.lake.url", [], "unknown key data.omniglot.lake.url (did you mean data.omniglot.lake.urls?)"),
        ("model.sb_vae.alpha_0", 5.0, "unknown key model.sb_vae.alpha_0 (did you mean model.sb_vae.alpha0?)"),
        ("model.dlgmm.prior_mean", [0.0], "unknown key model.dlgmm.prior_mean (did you mean model.dlgmm.prior_means?)"),
        ("train.max_epoch", 5, "unknown key train.max_epoch (did you mean protocol.authors.train.max_epochs?)"),
        ("train.max_train_example", 5,
         "unknown key train.max_train_example (did you mean train.max_train_examples?)"),
        ("eval.tsne.perplexty", 3.0, "unknown key eval.tsne.perplexty (did you mean eval.tsne.perplexity?)"),
        ("eval.marginal_likelihood.sample", 3, "unknown key eval.marginal_likelihood.sample "
                                               "(did you mean protocol.authors.eval.marginal_likelihood.samples?)"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_known_key(tree, key, value, message):
    with pytest.raises(DlgmmError, match="^params.yaml: " + re.escape(message) + "$"):
        params_from_tree(_add(tree, key, value))


def test_an_unknown_key_in_the_protocols_is_named_where_written(tree):
    for definition in tree["protocol"].values():
        definition["train"]["max_epoch"] = 3
    with pytest.raises(DlgmmError, match=r"^params.yaml: unknown key protocol.authors.train.max_epoch "
                                         r"\(did you mean protocol.authors.train.max_epochs\?\)$"):
        params_from_tree(tree)


@pytest.mark.parametrize("budget", ["quick", "paper"])
def test_an_unknown_quick_override_is_refused_with_the_nearest_key(tree, budget):
    tree["budget"] = budget
    tree["quick"]["train.max_epoch"] = 3
    with pytest.raises(DlgmmError, match=r"^params.yaml: quick.train.max_epoch overrides an unknown key "
                                         r"train.max_epoch \(did you mean train.max_epochs\?\)$"):
        params_from_tree(tree)


def test_the_pin_maps_take_any_file_name(tree):
    tree["data"]["omniglot"]["known_sha256"]["images_evaluation.zip"] = "ab" * 32
    tree["data"]["mnist"]["amat"]["sha256"]["extra.amat"] = ""
    tree["data"]["omniglot"]["lake"]["urls"].append("https://example.org/more.zip")
    assert params_from_tree(tree).data("omniglot")["known_sha256"]["images_evaluation.zip"] == "ab" * 32


def test_set_refuses_an_unknown_key_with_the_nearest_known_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    before = path.read_text()
    with pytest.raises(DlgmmError, match=rf"^{path}: unknown key train.max_epoch "
                                         r"\(did you mean protocol.authors.train.max_epochs\?\)$"):
        set_params(path, ["train.max_epoch=2"])
    with pytest.raises(DlgmmError, match=rf"^{path}: unknown key protocol.corrected.train.max_epoch "
                                         r"\(did you mean protocol.corrected.train.max_epochs\?\)$"):
        set_params(path, ["protocol.corrected.train.max_epoch=2"])
    with pytest.raises(DlgmmError, match=rf"^{path}: unknown key train.patience "
                                         r"\(a protocol setting: protocol.authors.train.patience\)$"):
        set_params(path, ["train.patience=2"])
    result = subprocess.run([sys.executable, "tools/params.py", "set", "--file", str(path), "K=4"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {path}: unknown key K (did you mean k?)"]
    assert path.read_text() == before


# --- keys holding dots ------------------------------------------------------------------------
@pytest.mark.parametrize("written", ['"images_background_small1.zip"', "'images_background_small1.zip'",
                                     "[images_background_small1.zip]"])
def test_set_addresses_a_key_holding_dots(tmp_path, written):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    pin = "ab" * 32
    separator = "" if written.startswith("[") else "."
    set_params(path, [f"data.omniglot.known_sha256{separator}{written}={pin}"])
    known = load_params(path).data("omniglot")["known_sha256"]
    assert known["images_background_small1.zip"] == pin
    assert known["images_background_small2.zip"] == read_yaml(ROOT / "params.yaml")["data"]["omniglot"][
        "known_sha256"]["images_background_small2.zip"]


def test_set_suggests_quoting_a_key_holding_dots(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(DlgmmError, match=rf'^{path}: unknown key data.omniglot.known_sha256.images_background_small1.zip '
                                         r'\(did you mean data.omniglot.known_sha256."images_background_small1.zip"\?\)$'):
        set_params(path, ["data.omniglot.known_sha256.images_background_small1.zip=" + "ab" * 32])
    with pytest.raises(DlgmmError, match=rf"^{path}: cannot read the key data.omniglot.known_sha256.\"a.zip: "):
        set_params(path, ['data.omniglot.known_sha256."a.zip=' + "ab" * 32])
