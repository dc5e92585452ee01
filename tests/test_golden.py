"""The golden check (tools/golden.py): its data, its hashes, its comparison, and that it sees a changed result."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dlgmm_core.data.contract import validate

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("golden", ROOT / "tools" / "golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


def test_golden_data_follow_the_contract_and_are_fixed():
    arrays = golden.golden_arrays()
    validate(arrays, "golden")
    assert {k: v.shape[0] for k, v in arrays.items() if k.startswith("x_")} == \
        {f"x_{s}": n for s, n in golden.SPLIT_SIZES.items()}
    again = golden.golden_arrays()
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)
    assert len(np.unique(arrays["y_train"])) == 10


def test_set_budget_replaces_only_budget_and_quick(tmp_path):
    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    params.write_text(text)
    golden.set_budget(params, golden.BUDGET)
    from ruamel.yaml import YAML

    before, after = YAML(typ="safe").load(text), YAML(typ="safe").load(params.read_text())
    assert after["budget"] == "quick" and after["quick"] == golden.BUDGET
    assert {k: v for k, v in after.items() if k not in ("budget", "quick")} == \
        {k: v for k, v in before.items() if k not in ("budget", "quick")}
    assert "# Seeds: every model" in params.read_text()  # comments kept


def test_set_budget_refuses_a_file_without_budget(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\n")
    with pytest.raises(golden.GoldenError, match="params.yaml: no `budget`"):
        golden.set_budget(params, {})


def test_tensor_hash_sees_every_bit_name_and_dtype():
    weights = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2)}
    same = {"b": torch.ones(2), "a": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    assert golden.tensors_sha256(weights) == golden.tensors_sha256(same)
    flipped = {k: v.clone() for k, v in weights.items()}
    flipped["a"].view(torch.int32)[0, 0] ^= 1  # one bit
    assert golden.tensors_sha256(flipped) != golden.tensors_sha256(weights)
    assert golden.tensors_sha256({"c": weights["a"], "b": weights["b"]}) != golden.tensors_sha256(weights)
    assert golden.tensors_sha256({**weights, "b": torch.ones(2, dtype=torch.float64)}) != \
        golden.tensors_sha256(weights)
    assert golden.tensors_sha256({**weights, "a": weights["a"].reshape(3, 2)}) != golden.tensors_sha256(weights)


def test_checkpoint_hash_reads_only_the_weights(tmp_path):
    weights = {"w": torch.randn(3, 3, generator=torch.Generator().manual_seed(0)), "b": torch.zeros(3)}
    torch.save({"format": "x", "config": {"hidden": 3}, "state_dict": weights, "extra": {"step": torch.tensor(1)}},
               tmp_path / "one.pt")
    torch.save({"model_args": {"hidden": 3, "new": True}, "model": weights}, tmp_path / "two.pt")
    assert golden.checkpoint_sha256(tmp_path / "one.pt") == golden.checkpoint_sha256(tmp_path / "two.pt")
    torch.save({"config": {}}, tmp_path / "empty.pt")
    with pytest.raises(golden.GoldenError, match="empty.pt: no weights"):
        golden.checkpoint_sha256(tmp_path / "empty.pt")


def test_json_and_log_hashes_ignore_timings_only(tmp_path):
    result = {"nll": 97.5, "ours": {"nll": 96.0}, "seconds": 12.0}
    assert golden.json_sha256(result) == golden.json_sha256({**result, "seconds": 99.0})
    assert golden.json_sha256(result) != golden.json_sha256({**result, "nll": 97.50000000000001})
    log = tmp_path / "log"
    (log / "plots" / "metrics" / "valid").mkdir(parents=True)
    (log / "metrics.json").write_text(json.dumps({"best_epoch": 2, "timing": {"mean_epoch_seconds": 1.0}}))
    (log / "plots" / "metrics" / "epoch_seconds.tsv").write_text("step\tepoch_seconds\n1\t1.0\n")
    (log / "plots" / "metrics" / "valid" / "elbo.tsv").write_text("step\telbo\n1\t-200.5\n")
    first = golden.log_sha256(log)
    (log / "metrics.json").write_text(json.dumps({"best_epoch": 2, "timing": {"mean_epoch_seconds": 3.0}}))
    (log / "plots" / "metrics" / "epoch_seconds.tsv").write_text("step\tepoch_seconds\n1\t3.0\n")
    assert golden.log_sha256(log) == first
    (log / "plots" / "metrics" / "valid" / "elbo.tsv").write_text("step\telbo\n1\t-200.50001\n")
    assert golden.log_sha256(log) != first


def test_compare_counts_a_missing_result_as_different():
    rows = golden.compare({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"})
    assert [(r["result"], r["equal"]) for r in rows] == [("a", True), ("b", False), ("c", False)]


def test_an_unknown_commit_is_one_line_and_exit_2():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "golden.py"), "--base", "no-such-rev"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip() == f"golden: --base/--head 'no-such-rev': not a commit of {ROOT}"


def _tree_copy(dest: Path) -> Path:
    """The files of this checkout that the stages need, without results or caches."""
    for name in ("stages", "dlgmm_core"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "params", dest / "data" / "params")
    shutil.copy(ROOT / "params.yaml", dest / "params.yaml")
    return dest


def test_the_check_runs_the_stages_and_sees_a_changed_training(tmp_path):
    """The same tree twice gives the same hashes; a different seed gives different weights and log."""
    first = golden.run_commit(_tree_copy(tmp_path / "first"), ["authors"], ["gauss_vae"], log=lambda _: None)
    assert set(first) == {"weights authors/mnist/gauss_vae", "training log authors/mnist/gauss_vae",
                          "-log p(x) authors/mnist/gauss_vae"}
    again = golden.run_commit(_tree_copy(tmp_path / "again"), ["authors"], ["gauss_vae"], log=lambda _: None)
    assert again == first
    changed = _tree_copy(tmp_path / "changed")
    params = changed / "params.yaml"
    params.write_text(params.read_text().replace("\nseeds: [1234, ", "\nseeds: [1237, ", 1))
    other = golden.run_commit(changed, ["authors"], ["gauss_vae"], log=lambda _: None)
    assert not any(row["equal"] for row in golden.compare(first, other))
