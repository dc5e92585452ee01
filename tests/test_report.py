"""reports/README.md, reports/metrics.json and the training curves, built from tiny fixture inputs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlgmm_core.config import DATASETS, MODEL_KINDS, params_from_tree
from dlgmm_core.errors import DlgmmError
from dlgmm_core.report import PAPER, flat_metrics, format_cell, read_inputs, write_report

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16  # the report only links figures; existence is what it checks
NEIGHBORS = (3, 5, 10)
MODEL_INDEX = {m: i for i, m in enumerate(MODEL_KINDS)}  # gauss_vae 0, sb_vae 1, dlgmm 2, dldpmm 3


def ours_nll(dataset: str, model: str) -> float:
    return 97.12 + 10 * DATASETS.index(dataset) + MODEL_INDEX[model]


def ours_knn(dataset: str, model: str, k: int) -> float:
    return 9.5 + DATASETS.index(dataset) * 20 + MODEL_INDEX[model] + k / 100


def build_tree(budget: str = "paper", k: int = 3) -> dict:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["budget"], tree["k"] = budget, k
    return tree


def write_inputs(root: Path) -> None:
    """Every input of the report stage, with numbers derived from ours_nll / ours_knn."""
    for dataset in DATASETS:
        models = MODEL_KINDS + (("qualitative",) if dataset == "mnist" else ())
        for model in MODEL_KINDS:
            nll = ours_nll(dataset, model)
            payload = {"nll": nll, "nll_se": 0.21, "elbo": -(nll + 4.0),
                       "bounds": {"1": nll + 4.0, "10": nll + 2.0, "100": nll + 0.5, "200": nll},
                       "samples": 200, "examples": 300,
                       "kl_method": None if model == "gauss_vae" else "quadrature", "seconds": 12.5}
            path = root / "reports/nll" / dataset / f"{model}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload))
            knn = {f"error@{k}": ours_knn(dataset, model, k) for k in NEIGHBORS}
            path = root / "reports/knn" / dataset / f"{model}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**knn, "train_examples": 6000, "test_examples": 2000}))
            sample = root / "reports/figures/samples" / f"{dataset}_{model}.png"
            sample.parent.mkdir(parents=True, exist_ok=True)
            sample.write_bytes(PNG)
        for model in models:
            folder = root / "logs" / dataset / model
            (folder / "plots/metrics/train").mkdir(parents=True, exist_ok=True)
            (folder / "plots/metrics/valid").mkdir(parents=True, exist_ok=True)
            train = [-200.0, -120.0, -110.0]
            valid = [-190.0, -118.0, -112.0 - MODEL_INDEX.get(model, 5)]
            for split, values in (("train", train), ("valid", valid)):
                rows = "".join(f"{e + 1}\t{v}\n" for e, v in enumerate(values))
                (folder / f"plots/metrics/{split}/elbo.tsv").write_text("step\telbo\n" + rows)
            summary = {"best_valid_elbo": -118.0 + 0.123456, "best_epoch": 2, "epochs": 3, "step": 3,
                       "train": {"elbo": train[-1]}, "valid": {"elbo": valid[-1]},
                       "timing": {"mean_epoch_seconds": 1.0, "examples_per_second": 5.0}}
            (folder / "metrics.json").write_text(json.dumps(summary))
    for model in MODEL_KINDS:
        path = root / "reports/figures/tsne" / f"mnist_{model}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG)
    folder = root / "reports/figures/qualitative"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, 6):
        (folder / f"component_{k}.png").write_bytes(PNG)


def parse_table(markdown: str, heading: str) -> dict[str, dict[str, str]]:
    """The first markdown table after the line starting with ``heading``: {row label: {column: cell}}."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif table:
            break
    header, rows = table[0], table[2:]
    return {row[0]: dict(zip(header[1:], row[1:])) for row in rows}


@pytest.fixture()
def built(tmp_path):
    write_inputs(tmp_path)
    params = params_from_tree(build_tree())
    write_report(tmp_path, params)
    return tmp_path


def test_format_cell():
    assert format_cell(97.12, 96.50, se=0.21) == "97.12 ± 0.21 (paper 96.50, +0.62)"
    assert format_cell(95.0, 96.5) == "95.00 (paper 96.50, -1.50)"
    assert format_cell(97.0, None, se=0.5) == "97.00 ± 0.50 (paper —)"
    assert format_cell(None, None) == "—"


def test_nll_table_cells(built):
    readme = (built / "reports/README.md").read_text()
    table = parse_table(readme, "## Figure 3b")
    assert list(table) == ["DLGMM (500d-3x25s)", "DLDPMM (500d-17tx25s)", "Gauss-VAE (500d-25s)", "SB-VAE (500d-25t)"]
    # dlgmm: index 2 -> 99.12 on MNIST, 109.12 on Omniglot
    assert table["DLGMM (500d-3x25s)"]["MNIST"] == "99.12 ± 0.21 (paper 96.50, +2.62)"
    assert table["DLGMM (500d-3x25s)"]["Omniglot"] == "109.12 ± 0.21 (paper 123.50, -14.38)"
    assert table["Gauss-VAE (500d-25s)"]["MNIST"] == "97.12 ± 0.21 (paper 96.80, +0.32)"
    assert table["SB-VAE (500d-25t)"]["MNIST"] == "98.12 ± 0.21 (paper 98.01, +0.11)"
    assert table["SB-VAE (500d-25t)"]["Omniglot"] == "108.12 ± 0.21 (paper —)"
    assert table["DLDPMM (500d-17tx25s)"]["Omniglot"] == "110.12 ± 0.21 (paper 123.76, -13.64)"


def test_knn_tables(built):
    readme = (built / "reports/README.md").read_text()
    table = parse_table(readme, "## Figure 3a")
    assert list(table) == ["DLGMM", "SB-VAE", "Gauss-VAE", "DLDPMM"]
    assert list(table["DLGMM"]) == ["k=3", "k=5", "k=10"]
    assert table["DLGMM"]["k=3"] == "11.53 (paper 9.14, +2.39)"
    assert table["Gauss-VAE"]["k=10"] == "9.60 (paper 15.33, -5.73)"
    assert table["SB-VAE"]["k=5"] == "10.55 (paper 8.65, +1.90)"
    assert table["DLDPMM"]["k=3"] == "12.53 (paper —)"
    omniglot = parse_table(readme, "## Omniglot kNN")
    assert omniglot["DLGMM"]["k=3"] == "31.53"


def test_iwae_table_and_links(built):
    readme = (built / "reports/README.md").read_text()
    table = parse_table(readme, "## Convergence")
    row = table["MNIST DLGMM"]
    assert row["-ELBO"] == "103.12"
    assert [row[f"s={s}"] for s in (1, 10, 100, 200)] == ["103.12", "101.12", "99.62", "99.12"]
    for rel in ["figures/tsne/mnist_dlgmm.png", "figures/samples/omniglot_sb_vae.png",
                "figures/qualitative/component_1.png", "figures/qualitative/component_5.png",
                "figures/training/mnist.png", "figures/training/omniglot.png"]:
        assert f"]({rel})" in readme, rel
        assert (built / "reports" / rel).is_file(), rel
    assert "REDUCED BUDGET" not in readme


def test_metrics_keys_exact(built):
    metrics = json.loads((built / "reports/metrics.json").read_text())
    expected = set()
    for dataset in DATASETS:
        for model in MODEL_KINDS:
            expected |= {f"{dataset}.{model}.{m}" for m in ("nll", "nll_se", "elbo", "valid_elbo", "epochs")}
            expected |= {f"{dataset}.{model}.knn_err@{k}" for k in NEIGHBORS}
    expected |= {"mnist.qualitative.valid_elbo", "mnist.qualitative.epochs"}
    assert set(metrics) == expected
    assert list(metrics) == sorted(metrics)
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())
    assert metrics["mnist.dlgmm.nll"] == 99.12
    assert metrics["omniglot.sb_vae.knn_err@5"] == 30.55
    assert metrics["mnist.dlgmm.valid_elbo"] == round(-118.0 + 0.123456, 4)
    assert metrics["mnist.qualitative.epochs"] == 3


def test_quick_budget_header_and_k(tmp_path):
    write_inputs(tmp_path)
    write_report(tmp_path, params_from_tree(build_tree(budget="quick", k=10)))
    readme = (tmp_path / "reports/README.md").read_text()
    header = readme.split("## ")[0]
    assert "REDUCED BUDGET" in header and "NOT comparable" in header
    assert "k (DLGMM components): 10" in header
    assert "DLGMM: `quadrature`" in header
    table = parse_table(readme, "## Figure 3b")
    assert "DLGMM (500d-10x25s) † paper: 500d-3x25s" in table


def test_paper_values_in_one_table():
    assert PAPER["mnist"]["dlgmm"]["nll"] == 96.50 and PAPER["omniglot"]["gauss_vae"]["nll"] == 119.18
    assert "nll" not in PAPER["omniglot"]["sb_vae"]
    assert [PAPER["mnist"]["gauss_vae"][f"knn_err@{k}"] for k in NEIGHBORS] == [28.4, 20.96, 15.33]


def test_missing_input_names_the_file(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "reports/knn/omniglot/dldpmm.json").unlink()
    with pytest.raises(DlgmmError, match=r"reports/knn/omniglot/dldpmm\.json: not found"):
        read_inputs(tmp_path, params_from_tree(build_tree()))
    write_inputs(tmp_path)
    (tmp_path / "reports/figures/qualitative/component_5.png").unlink()
    with pytest.raises(DlgmmError, match=r"component_5\.png: figure not found"):
        write_report(tmp_path, params_from_tree(build_tree()))
    assert not (tmp_path / "reports/README.md").exists()


def test_flat_metrics_rounding(tmp_path):
    write_inputs(tmp_path)
    path = tmp_path / "reports/nll/mnist/gauss_vae.json"
    data = json.loads(path.read_text())
    data["nll"] = 97.123456789
    path.write_text(json.dumps(data))
    metrics = flat_metrics(read_inputs(tmp_path, params_from_tree(build_tree())))
    assert metrics["mnist.gauss_vae.nll"] == 97.1235


def run_stage(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages/report.py")], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_report_stage_end_to_end(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(build_tree(budget="quick")))
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr
    for rel in ["reports/README.md", "reports/metrics.json", "reports/figures/training/mnist.png",
                "reports/figures/training/omniglot.png"]:
        assert (tmp_path / rel).is_file(), rel
    assert (tmp_path / "reports/figures/training/mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "REDUCED BUDGET" in (tmp_path / "reports/README.md").read_text()

    (tmp_path / "logs/omniglot/sb_vae/plots/metrics/valid/elbo.tsv").unlink()
    result = run_stage(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "logs/omniglot/sb_vae/plots/metrics/valid/elbo.tsv" in lines[0], result.stderr
