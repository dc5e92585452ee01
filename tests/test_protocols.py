"""The two protocols of params.yaml: each builds exactly its settings; every setting is overridable and checked."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlgmm_core import registry
from dlgmm_core.errors import DlgmmError
from dlgmm_core.layout import train_stage
from dlgmm_core.params.editor import set_params
from dlgmm_core.params.load import load_params, params_from_tree
from dlgmm_core.params.read import read_yaml
from dlgmm_core.params.sections import stage_model_config
from dlgmm_core.params.stage import load_stage_params, stage_arguments
from dlgmm_core.params.views import resolve

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
STICK_KEYS = ("sb_vae", "dlgmm", "dldpmm", "qualitative")

DOC = ROOT / "docs" / "protocols.md"
#: The rows of docs/protocols.md's table, by the start of their setting cell, and the params.yaml keys each names.
ROWS = {"encoder": ("encoder_activation",), "KL": ("kl", "taylor_terms"), "early stopping": ("patience",),
        "max epochs": ("max_epochs",), "SB-VAE decoder input": ("decoder_input",),
        "headline": ("headline", "samples")}


def _doc_rows() -> dict[str, list[str]]:
    """``{row: [setting cell, authors cell, corrected cell]}`` of docs/protocols.md's table of the protocols."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        row = next((key for key in ROWS if line.startswith("| ") and cells[0].startswith(key)), None)
        if row is not None and len(cells) == 3:
            rows[row] = cells
    assert list(rows) == list(ROWS), f"{DOC}: expected the rows {list(ROWS)}, found {list(rows)}"
    return rows


def _first_code(cell: str) -> str:
    return re.search(r"`([^`]+)`", cell).group(1)


def _doc_table() -> dict[str, dict]:
    """What each protocol builds, as docs/protocols.md's table says (the one copy of the table)."""
    rows, table = _doc_rows(), {}
    for column, protocol in ((1, "authors"), (2, "corrected")):
        cells = {row: value[column] for row, value in rows.items()}
        assert column == 1 or "taylor_terms` as under `authors`" in cells["KL"], cells["KL"]
        terms = re.search(r"(\d+) terms for DLGMM, DLDPMM and the qualitative model; (\d+) for the SB-VAE",
                          rows["KL"][1])
        mixture, sticks = int(terms.group(1)), int(terms.group(2))
        table[protocol] = {
            "encoder": {"linear": [torch.nn.Linear], "relu": [torch.nn.Linear, torch.nn.ReLU]}[
                _first_code(cells["encoder"])],
            "kl": _first_code(cells["KL"]),
            "taylor_terms": {"sb_vae": sticks, "dlgmm": mixture, "dldpmm": mixture, "qualitative": mixture},
            "patience": int(re.search(r"\d+", cells["early stopping"]).group()),
            "max_epochs": int(cells["max epochs"]), "decoder_input": _first_code(cells["SB-VAE decoder input"]),
            "headline": _first_code(cells["headline"]),
            "samples": int(re.search(r"samples: (\d+)", cells["headline"]).group(1))}
    return table


#: Where the paper's text and the authors' code differ, per protocol: docs/protocols.md's table.
TABLE = _doc_table()


@pytest.fixture()
def tree() -> dict:
    return read_yaml(PARAMS)


@pytest.fixture()
def params_file(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS.read_text())
    return path


def _leaves(tree: dict, prefix: str = "") -> dict:
    """``{dotted key: value}`` of every non-mapping value of ``tree``."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _effective(params) -> dict:
    """The settings a run of ``params`` reads: every section, without the protocol definitions."""
    return _leaves({key: value for key, value in params.tree.items() if key not in ("protocol", "protocols")})


# --- the table ------------------------------------------------------------------------------
def test_the_committed_file_runs_both_protocols_the_authors_first():
    tree = read_yaml(PARAMS)
    assert tree["protocols"] == ["authors", "corrected"] and list(tree["protocol"]) == ["authors", "corrected"]
    assert load_params(PARAMS).protocol == "authors"
    for key in ("kl", "taylor_terms", "encoder_activation"):  # a setting lives in one place: the protocol
        assert all(key not in section for section in tree["model"].values())
    assert "patience" not in tree["train"] and "max_epochs" not in tree["train"]
    assert "samples" not in tree["eval"]["marginal_likelihood"]
    assert "headline" not in tree["eval"]["marginal_likelihood"]


@pytest.mark.parametrize("protocol", list(TABLE))
def test_each_protocol_builds_exactly_its_settings(protocol):
    expected = TABLE[protocol]
    params = load_params(PARAMS, protocol)
    assert params.protocol == protocol
    x = (torch.rand(2, 784) < 0.5).float()
    for key in registry.SECTIONS:
        config = stage_model_config(params, key)
        kind = config.kind
        torch.manual_seed(0)
        model = registry.build(config)
        assert [type(layer) for layer in model.encoder] == expected["encoder"], key
        assert model.config.encoder_activation == ("relu" if len(expected["encoder"]) == 2 else "linear")
        if key in STICK_KEYS:
            assert (model.config.kl_method, model.config.taylor_terms) == \
                (expected["kl"], expected["taylor_terms"][key]), key
            sticks = model.posterior(x) if kind == "sb_vae" else model.encode(x)[2]
            assert (sticks.kl_method, sticks.taylor_terms) == (expected["kl"], expected["taylor_terms"][key]), key
        else:
            assert not hasattr(model.config, "kl_method")
        if kind == "sb_vae":
            assert model.config.decoder_input == expected["decoder_input"]
    assert (params.train["patience"], params.train["max_epochs"]) == (expected["patience"], expected["max_epochs"])
    estimator = params.eval["marginal_likelihood"]
    assert (estimator["headline"], estimator["samples"], estimator["authors_samples"]) == \
        (expected["headline"], expected["samples"], 50)


@pytest.mark.parametrize("protocol", list(TABLE))
def test_quick_overrides_apply_on_top_of_a_protocol(tree, protocol):
    tree["budget"] = "quick"
    params = params_from_tree(tree, protocol=protocol)
    assert params.train["max_epochs"] == tree["quick"]["train.max_epochs"] == 10
    assert params.eval["marginal_likelihood"]["samples"] == tree["quick"]["eval.marginal_likelihood.samples"] == 200
    assert params.train["patience"] == TABLE[protocol]["patience"]  # not in quick: the protocol's
    assert params.eval["marginal_likelihood"]["headline"] == TABLE[protocol]["headline"]


def test_a_bad_quick_override_is_named_where_it_is_written(tree):
    tree["budget"] = "quick"
    tree["quick"]["train.max_epochs"] = 0
    with pytest.raises(DlgmmError, match=r"^params.yaml: quick.train.max_epochs must be >= 1 \(got 0\)$"):
        params_from_tree(tree)


# --- every setting overridable and checked ------------------------------------------------
def _other_value(value):
    flips = {"relu": "linear", "linear": "relu", "taylor": "quadrature", "quadrature": "taylor",
             "authors": "ours", "ours": "authors", "pi": "scaled_pi", "scaled_pi": "pi"}
    return flips[value] if isinstance(value, str) else value + 1


def _bad_value(key: str):
    return {"encoder_activation": "tanh", "kl": "exact", "headline": "best"}.get(key.rpartition(".")[2], 0)


SETTINGS = [(name, key) for name, definition in read_yaml(PARAMS)["protocol"].items()
            for key in _leaves(definition)]


def test_every_row_of_the_table_is_a_protocol_setting():
    keys = {key for _, key in SETTINGS}
    named = {name for row in _doc_rows().values() for name in re.findall(r"`(?:[\w<>]+\.)*(\w+)`", row[0])}
    assert {key.rpartition(".")[2] for key in keys} == {name for names in ROWS.values() for name in names} <= named
    assert keys == {f"model.{key}.encoder_activation" for key in registry.SECTIONS} | \
        {f"model.{key}.{name}" for key in STICK_KEYS for name in ("kl", "taylor_terms")} | \
        {"model.sb_vae.decoder_input"} | \
        {"train.patience", "train.max_epochs", "eval.marginal_likelihood.headline", "eval.marginal_likelihood.samples"}


@pytest.mark.parametrize("name, key", SETTINGS)
def test_each_protocol_setting_is_overridable_alone(params_file, name, key):
    before = {protocol: _effective(load_params(params_file, protocol)) for protocol in TABLE}
    value = _other_value(before[name][key])
    set_params(params_file, [f"protocol.{name}.{key}={value}"])
    for protocol in TABLE:
        after = _effective(load_params(params_file, protocol))
        changed = {k for k in after if after[k] != before[protocol][k]}
        assert changed == ({key} if protocol == name else set()), protocol
        if protocol == name:
            assert after[key] == value


@pytest.mark.parametrize("name, key", SETTINGS)
def test_each_protocol_setting_is_checked_with_its_key_named(params_file, name, key):
    before = params_file.read_text()
    with pytest.raises(DlgmmError, match=rf"^{params_file}: protocol\.{name}\.{key} must "):
        set_params(params_file, [f"protocol.{name}.{key}={_bad_value(key)}"])
    assert params_file.read_text() == before


def test_the_check_command_refuses_a_bad_value_in_a_protocol_that_does_not_run(params_file):
    text = params_file.read_text().replace("protocols: [authors, corrected]", "protocols: [authors]")
    params_file.write_text(text.replace("      patience: 30", "      patience: 0"))
    assert read_yaml(params_file)["protocols"] == ["authors"]
    result = subprocess.run([sys.executable, str(ROOT / "tools/params.py"), "check", "--file", str(params_file)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {params_file}: protocol.corrected.train.patience must be >= 1 (got 0)"]


def test_a_base_key_is_named_with_its_protocol_setting(params_file):
    with pytest.raises(DlgmmError, match=rf"^{params_file}: unknown key train.patience \(a protocol setting: "
                                         r"protocol.authors.train.patience\)$"):
        set_params(params_file, ["train.patience=3"])


# --- the protocols list ---------------------------------------------------------------------
def test_set_params_sets_the_protocols_list(params_file):
    comments = params_file.read_text().count("#")
    set_params(params_file, ["protocols=[authors, corrected]"])
    assert load_params(params_file).protocols == ["authors", "corrected"]
    assert load_params(params_file).protocol == "authors"  # the first is the headline
    assert load_params(params_file, "corrected").train["patience"] == 30
    assert params_file.read_text().count("#") == comments
    before = params_file.read_text()
    with pytest.raises(DlgmmError, match=r"protocols\[1\] must name a protocol defined under protocol "
                                         r"\(authors, corrected\) \(got 'nope'\)"):
        set_params(params_file, ["protocols=[authors, nope]"])
    assert params_file.read_text() == before


@pytest.mark.parametrize("value, named", [
    ([], r"protocols must be a non-empty list of protocol names \(got \[\]\)"),
    ("authors", r"protocols must be a non-empty list of protocol names \(got 'authors'\)"),
    (["authors", "authors"], r"protocols\[1\] repeats a protocol \(got 'authors'\)"),
    (["corrected", "nope"], r"protocols\[1\] must name a protocol defined under protocol"),
])
def test_bad_protocols_lists_are_refused(tree, value, named):
    tree["protocols"] = value
    with pytest.raises(DlgmmError, match=f"^params.yaml: {named}"):
        params_from_tree(tree)


def test_an_unknown_protocol_is_refused(tree):
    with pytest.raises(DlgmmError, match=r"^params.yaml: unknown protocol 'nope'; defined under protocol: "
                                         r"authors, corrected$"):
        params_from_tree(tree, protocol="nope")


# --- one place per setting, complete protocols ----------------------------------------------
@pytest.mark.parametrize("section, key, value", [
    (("train",), "patience", 30),
    (("model", "dlgmm"), "kl", "quadrature"),
    (("eval", "marginal_likelihood"), "samples", 5000),
])
def test_a_key_set_in_a_protocol_and_its_section_is_refused(tree, section, key, value):
    node = tree
    for part in section:
        node = node[part]
    node[key] = value
    dotted = ".".join((*section, key))
    with pytest.raises(DlgmmError, match=rf"^params.yaml: protocol\.authors\.{dotted} is also set as {dotted}; "
                                         r"a setting lives in one place$"):
        params_from_tree(tree)


def test_a_protocol_section_that_does_not_exist_is_refused(tree):
    for definition in tree["protocol"].values():
        definition["model"]["vae"] = {"encoder_activation": "relu"}
    with pytest.raises(DlgmmError, match=r"^params.yaml: protocol.authors.model.vae sets keys of model.vae, "
                                         r"a section that does not exist$"):
        params_from_tree(tree)


def test_every_protocol_sets_the_same_keys(tree):
    del tree["protocol"]["corrected"]["train"]["patience"]
    with pytest.raises(DlgmmError, match=r"^params.yaml: protocol.corrected does not set train.patience, which "
                                         r"protocol.authors sets \(every protocol sets the same keys\)$"):
        params_from_tree(tree)
    tree["protocol"]["corrected"]["train"]["patience"] = 30
    tree["protocol"]["corrected"]["train"]["lr"] = 0.001
    with pytest.raises(DlgmmError, match=r"^params.yaml: protocol.corrected.train.lr is not set by "
                                         r"protocol.authors \(every protocol sets the same keys\)$"):
        params_from_tree(tree)


# --- the stages' arguments ------------------------------------------------------------------
def test_stage_arguments_load_the_protocol_named(monkeypatch, tmp_path):
    base = ["stage", "--dataset", "mnist", "--model", "dlgmm"]
    monkeypatch.setattr(sys, "argv", base + ["--protocol", "corrected", "--seed", "1235"])
    args = stage_arguments("A stage.", registry.SECTIONS)
    tree = read_yaml(PARAMS)
    tree["protocols"], tree["seeds"] = ["authors", "corrected"], [1234, 1235]
    (tmp_path / "params.yaml").write_text(json.dumps(tree))  # JSON is YAML 1.2
    resolve(tmp_path / "params.yaml", tmp_path)
    params = load_stage_params(train_stage(args.protocol, args.seed, args.dataset, args.model), tmp_path)
    assert args.protocol == params.protocol == "corrected" and params.train["patience"] == 30
    assert args.seed == params.seed == 1235
    for missing in (["--seed", "1235"], ["--protocol", "corrected"]):  # both are required
        monkeypatch.setattr(sys, "argv", base + missing)
        with pytest.raises(SystemExit) as exit_:
            stage_arguments("A stage.", registry.SECTIONS)
        assert exit_.value.code == 2
