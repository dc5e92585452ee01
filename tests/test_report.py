"""reports/README.md, reports/metrics.json and the training curves, built from tiny fixture inputs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlgmm_core import registry
from dlgmm_core.errors import DlgmmError
from dlgmm_core.params.load import params_from_tree
from dlgmm_core.params.stage import DATASETS
from dlgmm_core.report import (DATASET_NAMES, PAPER, differing_settings, flat_metrics, format_cell, read_inputs,
                               write_report)

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16  # the report only links figures; existence is what it checks
NEIGHBORS = (3, 5, 10)
MODEL_KINDS = tuple(registry.KINDS)
MODEL_NAMES = {key: registry.title(key) for key in registry.SECTIONS}
MODEL_INDEX = {m: i for i, m in enumerate(MODEL_KINDS)}  # gauss_vae 0, sb_vae 1, dlgmm 2, dldpmm 3


PROTOCOL_OFFSET = {"authors": 0.0, "corrected": -3.0}  # corrected: a better model, by a known margin


def ours_nll(dataset: str, model: str, protocol: str = "authors") -> float:
    """The headline -log p(x) of the fixture's result."""
    return 97.12 + 10 * DATASETS.index(dataset) + MODEL_INDEX[model] + PROTOCOL_OFFSET[protocol]


def estimator_gap(dataset: str, model: str) -> float:
    """The authors' -log p(x) minus ours in the fixture's results."""
    return 0.5 + 0.1 * MODEL_INDEX[model] + 0.01 * DATASETS.index(dataset)


def ours_knn(dataset: str, model: str, k: int, protocol: str = "authors") -> float:
    return 9.5 + DATASETS.index(dataset) * 20 + MODEL_INDEX[model] + k / 100 + PROTOCOL_OFFSET[protocol] / 3


def nll_payload(nll: float, gap: float, headline: str, kl_method: str | None, dropped: int = 0,
                samples: int = 200) -> dict:
    """A marginal-likelihood result as the stage writes it; ``nll`` is the headline estimator's -log p(x)."""
    authors, ours = (nll, nll - gap) if headline == "authors" else (nll + gap, nll)
    return {"nll": nll, "nll_se": 0.21, "headline": headline, "elbo": -(ours + 4.0),
            "bounds": {"1": ours + 4.0, "10": ours + 2.0, "100": ours + 0.5, str(samples): ours},
            "samples": samples, "examples": 300, "kl_method": kl_method, "seconds": 12.5,
            "ours": {"nll": ours, "nll_se": 0.21, "samples": samples},
            "authors": {"nll": authors, "nll_se": 0.34, "samples": 50, "dropped_draws": dropped}}


#: The seed of the report's inputs.
SEED = 1234


def build_tree(budget: str = "paper", k: int = 3, protocols: tuple[str, ...] = ("authors",),
               seeds: tuple[int, ...] = (SEED,)) -> dict:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["budget"], tree["k"], tree["protocols"], tree["seeds"] = budget, k, list(protocols), list(seeds)
    return tree


def write_inputs(root: Path, protocol: str = "authors", only: set[tuple[str, str]] | None = None,
                 seed: int = SEED) -> None:
    """The inputs of the report stage for ``protocol`` and ``seed``, numbers from ours_nll / estimator_gap /
    ours_knn.

    ``only``: the (dataset, model) runs to write (their results, logs and figures); None: every input.
    """
    run = Path(protocol, f"seed-{seed}")
    headline = "authors" if protocol == "authors" else "ours"
    kl = "taylor" if protocol == "authors" else "quadrature"
    for dataset in DATASETS:
        models = MODEL_KINDS + (("qualitative",) if dataset == "mnist" else ())
        for model in MODEL_KINDS:
            if only is not None and (dataset, model) not in only:
                continue
            payload = nll_payload(ours_nll(dataset, model, protocol), estimator_gap(dataset, model), headline,
                                  None if model == "gauss_vae" else kl, dropped=MODEL_INDEX[model] % 2)
            path = root / "reports/nll" / run / dataset / f"{model}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload))
            knn = {f"error@{k}": ours_knn(dataset, model, k, protocol) for k in NEIGHBORS}
            path = root / "reports/knn" / run / dataset / f"{model}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**knn, "train_examples": 6000, "test_examples": 2000}))
            sample = root / "reports/figures/samples" / run / f"{dataset}_{model}.png"
            sample.parent.mkdir(parents=True, exist_ok=True)
            sample.write_bytes(PNG)
            if dataset == "mnist":
                path = root / "reports/figures/tsne" / run / f"mnist_{model}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(PNG)
                clusters = {"neighbors": 10, "map_error": map_error(model), "latent_error": map_error(model) - 1.5}
                path.with_suffix(".json").write_text(json.dumps({"points": 2000, "latent_dim": 25,
                                                                 "perplexity": 30.0, "clusters": clusters}))
        for model in models:
            if only is not None and (dataset, model) not in only:
                continue
            folder = root / "logs" / run / dataset / model
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
    if only is None:
        folder = root / "reports/figures/qualitative" / run
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, 6):
            (folder / f"component_{k}.png").write_bytes(PNG)
        shapes = [{"component": k, "prior_mean": -2.25 + 0.75 * k, "images": 100, "width": width, "width_se": 0.3,
                   "ink": 90.0 + k, "classes": classes}
                  for k, (width, classes) in enumerate(zip(COMPONENT_WIDTHS, COMPONENT_CLASSES), start=1)]
        classifier = {"neighbors": 5, "train_images": 300, "test_images": 300, "test_error": 4.5}
        (folder / "components.json").write_text(json.dumps({"ink_level": 0.5, "classifier": classifier,
                                                            "components": shapes}))


#: The width (px) of each component's samples in :func:`write_inputs`: component 1 thinner than component 5.
COMPONENT_WIDTHS = (11.0, 12.5, 13.0, 14.0, 15.25)
#: Each component's 100 images counted by digit (0 .. 9) in :func:`write_inputs`: sevens in component 1,
#: zeros in component 5, as the paper reads Figure 2a/2b.
COMPONENT_CLASSES = ([0, 30, 0, 0, 0, 0, 0, 70, 0, 0], [10] * 10, [10] * 10, [10] * 10,
                     [60, 0, 20, 0, 0, 0, 15, 5, 0, 0])


def map_error(model: str) -> float:
    """The t-SNE map's leave-one-out error (%) written for ``model``: the DLGMM's below the Gauss-VAE's."""
    return {"gauss_vae": 24.5, "sb_vae": 12.0, "dlgmm": 9.75, "dldpmm": 10.5}[model]


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
    assert format_cell(97.12, 96.50, se=0.21) == "97.12 ± 0.21 (+0.62)"
    assert format_cell(95.0, 96.5) == "95.00 (-1.50)"
    assert format_cell(97.0, None, se=0.5) == "97.00 ± 0.50"
    assert format_cell(None, None) == "—"


def test_nll_table_cells(built):
    readme = (built / "reports/README.md").read_text()
    table = parse_table(readme, "## Figure 3b")
    assert list(table) == ["DLGMM (500d-3x25s)", "DLDPMM (500d-17tx25s)", "Gauss-VAE (500d-25s)", "SB-VAE (500d-25t)"]
    assert list(table["DLGMM (500d-3x25s)"]) == ["MNIST paper", "MNIST authors", "Omniglot paper", "Omniglot authors"]
    # dlgmm: index 2 -> 99.12 on MNIST, 109.12 on Omniglot
    assert table["DLGMM (500d-3x25s)"]["MNIST paper"] == "96.50"
    assert table["DLGMM (500d-3x25s)"]["MNIST authors"] == "99.12 ± 0.21 (+2.62)"
    assert table["DLGMM (500d-3x25s)"]["Omniglot paper"] == "123.50"
    assert table["DLGMM (500d-3x25s)"]["Omniglot authors"] == "109.12 ± 0.21 (-14.38)"
    assert table["Gauss-VAE (500d-25s)"]["MNIST authors"] == "97.12 ± 0.21 (+0.32)"
    assert table["SB-VAE (500d-25t)"]["MNIST authors"] == "98.12 ± 0.21 (+0.11)"
    assert table["SB-VAE (500d-25t)"]["Omniglot paper"] == "—"
    assert table["SB-VAE (500d-25t)"]["Omniglot authors"] == "108.12 ± 0.21"
    assert table["DLDPMM (500d-17tx25s)"]["Omniglot authors"] == "110.12 ± 0.21 (-13.64)"


def test_knn_tables(built):
    readme = (built / "reports/README.md").read_text()
    table = parse_table(readme, "## Figure 3a")
    assert list(table) == ["DLGMM", "SB-VAE", "Gauss-VAE", "DLDPMM"]
    assert list(table["DLGMM"]) == ["k=3 paper", "k=3 authors", "k=5 paper", "k=5 authors", "k=10 paper",
                                    "k=10 authors"]
    assert table["DLGMM"]["k=3 paper"] == "9.14"
    assert table["DLGMM"]["k=3 authors"] == "11.53 (+2.39)"
    assert table["Gauss-VAE"]["k=10 authors"] == "9.60 (-5.73)"
    assert table["SB-VAE"]["k=5 authors"] == "10.55 (+1.90)"
    assert table["DLDPMM"]["k=3 paper"] == "—" and table["DLDPMM"]["k=3 authors"] == "12.53"
    omniglot = parse_table(readme, "## Omniglot kNN")
    assert list(omniglot["DLGMM"]) == ["k=3 authors", "k=5 authors", "k=10 authors"]
    assert omniglot["DLGMM"]["k=3 authors"] == "31.53"


def test_estimator_table_and_links(built):
    readme = (built / "reports/README.md").read_text()
    table = parse_table(readme, "### Estimators: `authors`")
    row = table["MNIST DLGMM"]  # headline (authors') 99.12, ours 99.12 - 0.7 = 98.42
    assert row["headline"] == "authors"
    assert row["authors' (draws)"] == "99.12 ± 0.34 (50)"
    assert row["ours (S)"] == "98.42 ± 0.21 (200)"
    assert row["authors' - ours"] == "+0.70" and row["dropped draws"] == "0"
    assert table["MNIST SB-VAE"]["dropped draws"] == "1"
    assert row["-ELBO"] == "102.42"
    assert [row[f"s={s}"] for s in (1, 10, 100, 200)] == ["102.42", "100.42", "98.92", "98.42"]
    for rel in ["figures/tsne/authors/seed-1234/mnist_dlgmm.png", "figures/samples/authors/seed-1234/omniglot_sb_vae.png",
                "figures/qualitative/authors/seed-1234/component_1.png", "figures/qualitative/authors/seed-1234/component_5.png",
                "figures/training/authors/mnist.png", "figures/training/authors/omniglot.png"]:
        assert f"]({rel})" in readme, rel
        assert (built / "reports" / rel).is_file(), rel
    assert "REDUCED BUDGET" not in readme and "not run" not in readme.split("## Figure 3a")[1]
    training = parse_table(readme, "### Training: `authors`")
    assert training["MNIST Qualitative DLGMM"]["epochs"] == "3"
    assert training["Omniglot DLGMM"]["best valid ELBO"] == "-117.88"
    assert training["Omniglot DLGMM"]["epochs after the best"] == "1"  # 3 epochs, the best at epoch 2


def test_header_names_the_protocols(built):
    header = (built / "reports/README.md").read_text().split("## ")[0]
    assert "- protocols: `authors` (headline)" in header
    assert "- `authors` (headline): the code behind the published numbers" in header
    assert ("-log p(x) headline: the authors' estimator; the authors' estimator: 50 draws, component sampled; "
            "ours: S = 200, component summed out; MNIST 300, Omniglot 300 test images") in header
    assert "KL(Kumaraswamy ‖ Beta) method, `authors`: DLGMM: `taylor`" in header
    assert "Gauss-VAE: `" not in header  # no KL term, so no method


def test_where_the_numbers_come_from(built):
    readme = (built / "reports/README.md").read_text()
    section = readme.split("## Where the published numbers come from")[1].split("\n## ")[0]
    table = parse_table(section, "")
    assert list(table) == ["encoder", "KL(Kumaraswamy ‖ Beta)", "early stopping", "-log p(x) estimator", "MNIST",
                           "Omniglot"]
    assert "no activation" in table["encoder"]["authors' code (protocol `authors`)"]
    assert table["encoder"]["measured effect"].startswith("not measured yet")
    gaps = [estimator_gap(d, m) for d in DATASETS for m in MODEL_KINDS]
    assert table["-log p(x) estimator"]["measured effect"] == (
        f"authors' - ours: {min(gaps):+.2f} to {max(gaps):+.2f} nats over 8 runs")
    combined = section.split("### Combined effect of the protocol")[1]
    assert "not measured yet: run both protocols" in combined
    for fact in ("98.01", "100 validation images", "5-component, 5-dimensional", "split is not in the code"):
        assert fact in section, fact


def test_metrics_keys_exact(built):
    metrics = json.loads((built / "reports/metrics.json").read_text())
    expected = set()
    per_run = ("nll", "nll_se", "nll_ours", "nll_authors", "authors_dropped_draws", "elbo", "valid_elbo", "epochs")
    for dataset in DATASETS:
        for model in MODEL_KINDS:
            expected |= {f"authors.{dataset}.{model}.{m}" for m in per_run}
            expected |= {f"authors.{dataset}.{model}.knn_err@{k}" for k in NEIGHBORS}
    expected |= {"authors.mnist.qualitative.valid_elbo", "authors.mnist.qualitative.epochs"}
    for dataset in DATASETS:  # every seed's values (one seed here)
        for model in MODEL_KINDS:
            expected |= {f"authors.seed-{SEED}.{dataset}.{model}.{m}"
                         for m in ("nll",) + tuple(f"knn_err@{k}" for k in NEIGHBORS)}
    # the claims: the fixture has no per-image results, so no paired claim is judged (none has a key); the division
    # from the component grids' widths; each published MNIST number against the one seed (no interval)
    expected |= {"claims.division.authors.verdict", "claims.division.authors.seeds"}
    expected |= {f"claims.division.authors.seed-{SEED}.{m}" for m in ("gap", "low", "high", "orientation")}
    for model, published in PAPER["mnist"].items():
        expected |= {f"claims.fidelity.mnist.{model}.{metric}.authors.{m}" for metric in published
                     for m in ("verdict", "seeds", "estimate")}
    assert set(metrics) == expected
    assert list(metrics) == sorted(metrics)
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())
    assert metrics["authors.mnist.dlgmm.nll"] == 99.12
    assert metrics["authors.mnist.dlgmm.nll_authors"] == 99.12 and metrics["authors.mnist.dlgmm.nll_ours"] == 98.42
    assert metrics["authors.mnist.sb_vae.authors_dropped_draws"] == 1
    assert metrics["authors.omniglot.sb_vae.knn_err@5"] == 30.55
    assert metrics["authors.mnist.dlgmm.valid_elbo"] == round(-118.0 + 0.123456, 4)
    assert metrics["authors.mnist.qualitative.epochs"] == 3
    assert metrics[f"authors.seed-{SEED}.mnist.dlgmm.nll"] == 99.12
    assert metrics[f"authors.seed-{SEED}.omniglot.sb_vae.knn_err@5"] == 30.55
    # component 5 is 4.25 px wider than component 1 (standard errors 0.3): divided, in the paper's orientation
    assert metrics["claims.division.authors.verdict"] == 1 and metrics["claims.division.authors.seeds"] == 1
    assert metrics[f"claims.division.authors.seed-{SEED}.gap"] == 4.25
    assert metrics[f"claims.division.authors.seed-{SEED}.orientation"] == 1
    assert metrics["claims.fidelity.mnist.dlgmm.nll.authors.estimate"] == 99.12
    assert metrics["claims.fidelity.mnist.dlgmm.nll.authors.verdict"] == 0  # one seed: no spread to judge by


def test_protocol_settings_come_from_params(tmp_path):
    """The header describes each protocol by its settings in params.yaml, so an override shows."""
    write_inputs(tmp_path)
    tree = build_tree()
    tree["protocol"]["authors"]["train"]["patience"] = 31
    tree["protocol"]["authors"]["model"]["sb_vae"]["encoder_activation"] = "relu"
    write_report(tmp_path, params_from_tree(tree))
    header = (tmp_path / "reports/README.md").read_text().split("## ")[0]
    line = next(row for row in header.splitlines() if row.startswith("- `authors` (headline): "))
    assert line.startswith(
        "- `authors` (headline): the code behind the published numbers: 784 → 500 linear encoder (no activation) "
        "(Gauss-VAE, DLGMM, DLDPMM, Qualitative DLGMM); ReLU encoder (SB-VAE), Taylor-series KL with 10 terms "
        "(SB-VAE); Taylor-series KL with 11 terms (DLGMM, DLDPMM, Qualitative DLGMM), early stopping after 31 "
        "epochs without improvement, at most 500 epochs; -log p(x) headline: ")
    assert "26 epochs" not in header


def test_quick_budget_header_and_k(tmp_path):
    write_inputs(tmp_path)
    write_report(tmp_path, params_from_tree(build_tree(budget="quick", k=10)))
    readme = (tmp_path / "reports/README.md").read_text()
    header = readme.split("## ")[0]
    assert "REDUCED BUDGET" in header and "NOT comparable" in header
    tree = build_tree(budget="quick", k=10)
    assert tree["quick"] and all(f"`{key}: {json.dumps(value)}`" in header for key, value in tree["quick"].items())
    assert "k (DLGMM components): 10" in header
    assert "DLGMM: `taylor`" in header
    epochs = tree["quick"]["train.max_epochs"]
    assert f"without improvement, at most {epochs} epochs" in header and "at most 500 epochs" not in header
    table = parse_table(readme, "## Figure 3b")
    assert "DLGMM (500d-10x25s) † paper: 500d-3x25s" in table


def test_paper_values_in_one_table():
    assert PAPER["mnist"]["dlgmm"]["nll"] == 96.50 and PAPER["omniglot"]["gauss_vae"]["nll"] == 119.18
    assert "nll" not in PAPER["omniglot"]["sb_vae"]
    assert [PAPER["mnist"]["gauss_vae"][f"knn_err@{k}"] for k in NEIGHBORS] == [28.4, 20.96, 15.33]


def test_missing_input_names_the_file(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "reports/knn/authors/seed-1234/omniglot/dldpmm.json").unlink()
    with pytest.raises(DlgmmError, match=r"reports/knn/authors/seed-1234/omniglot/dldpmm\.json: not found; "
                                         r"run `dvc repro knn@authors-1234-omniglot-dldpmm`"):
        read_inputs(tmp_path, params_from_tree(build_tree()))
    write_inputs(tmp_path)
    (tmp_path / "reports/figures/qualitative/authors/seed-1234/component_5.png").unlink()
    with pytest.raises(DlgmmError,
                       match=r"component_5\.png: figure not found; run `dvc repro samples_qualitative@authors-1234`"):
        write_report(tmp_path, params_from_tree(build_tree()))
    assert not (tmp_path / "reports/README.md").exists()
    write_inputs(tmp_path)
    path = tmp_path / "reports/nll/authors/seed-1234/mnist/dlgmm.json"
    data = json.loads(path.read_text())
    del data["authors"]["dropped_draws"]
    path.write_text(json.dumps(data))
    with pytest.raises(DlgmmError, match=r"dlgmm\.json: missing key 'authors\.dropped_draws'"):
        read_inputs(tmp_path, params_from_tree(build_tree()))


def test_every_mnist_cell_against_the_paper(tmp_path):
    write_inputs(tmp_path, "authors")
    write_inputs(tmp_path, "corrected")
    path = tmp_path / "reports/knn/authors/seed-1234/mnist/gauss_vae.json"
    data = json.loads(path.read_text())
    data["sensitivity"] = {"draws": 20, "sample": {"1000": {"3": 27.0, "5": 30.0, "10": 16.0}},
                           "mean": {"6000": {"3": 12.0, "5": 19.5, "10": 10.0}}}
    path.write_text(json.dumps(data))
    log = tmp_path / "logs/authors/seed-1234/mnist/dlgmm/plots/metrics/valid/elbo.tsv"
    log.write_text("step\telbo\n" + "".join(f"{e}\t{-150.0 + 0.5 * min(e, 80)}\n" for e in range(1, 121)))
    write_report(tmp_path, params_from_tree(build_tree(protocols=("authors", "corrected"))))
    readme = (tmp_path / "reports/README.md").read_text()
    where = readme.split("## Where the published numbers come from")[1]
    cells = parse_table(where, "### Every MNIST cell against the paper (`authors`)")
    assert "5 of 13 cells are within it" in where
    assert list(cells["-log p(x), Gauss-VAE"].values())[:4] == ["96.80", "97.12", "+0.32", "yes"]
    assert cells["-log p(x), Gauss-VAE"]["measurements"] == "—"  # within: nothing to explain
    dlgmm = cells["-log p(x), DLGMM"]
    assert (dlgmm["ours - paper"], dlgmm["within"]) == ("+2.62", "no")
    # the other estimator, the other protocol (within: marked) and how the training ended (the best validation
    # ELBO of its last 50 epochs is 5 nats above that of the epochs before: epoch 70's -115, epoch 80's -110)
    assert dlgmm["measurements"] == ("our estimator (200 samples): 98.42 (+1.92); `corrected`: 96.12 (-0.38) — "
                                     "within; training: best validation ELBO at epoch 2 of 3, +5.00 nats over its "
                                     "last 50 epochs")
    # kNN: the variant nearest the paper at each k, on its own
    assert cells["kNN error k=3, Gauss-VAE"]["measurements"] == (
        "nearest variant (one sample, N = 1,000): 27.00 (-1.40) — within; `corrected`: 8.53 (-19.87)")
    assert cells["kNN error k=5, Gauss-VAE"]["measurements"].startswith(
        "nearest variant (mean of 20 draws, N = 6,000): 19.50 (-1.46) — within")
    assert cells["kNN error k=3, SB-VAE"]["within"] == "yes"


def test_figure_measurements_and_the_papers_readings(tmp_path):
    write_inputs(tmp_path)
    write_report(tmp_path, params_from_tree(build_tree()))
    readme = (tmp_path / "reports/README.md").read_text()
    lines = readme.splitlines()
    start = lines.index("### The t-SNE maps in numbers")
    rows = [line for line in lines[start:] if line.startswith("| `authors`")][:4]
    assert rows[0].split("|")[2:7] == [" Gauss-VAE ", " 2000 ", " 10 ", " 24.50 ", " 23.00 "]
    # the numbers of the first seed's maps; the verdict is the Claims section's, from per-point results (none here)
    assert "`authors`: the DLGMM's map 9.75 %, the Gauss-VAE's 24.50 % (8.25 % and 23.00 % in the latent space). " \
           "Whether the DLGMM's latent space clusters better, judged from every seed's per-point results in " \
           "[Claims](#claims): not run yet in the map, not run yet in the latent space." in readme
    shapes = readme.split("## Figure 2a/2b")[1]
    assert "| `authors` | 1 | -1.50 | 11.0 ± 0.3 | 91 | 100 | 7: 70, 1: 30 |" in shapes
    assert "| `authors` | 5 | +1.50 | 15.2 ± 0.3 | 95 | 100 | 0: 60, 2: 20, 6: 15, 7: 5 |" in shapes
    assert "(`authors`: k = 5, 300 training images, 4.50 % error on the first 300 test images)" in shapes
    assert "`authors`: sevens are 70 % of component 1's images and 5 % of component 5's, zeros 0 % and 60 % (the " \
           "paper's examples: sevens from component 1, zeros from component 5;" in shapes
    # the gap of the extremes with its interval (1.96 x hypot(0.3, 0.3) = 0.83 px) and the orientation this seed took
    assert "`authors`: component 1's images are 11.0 px wide on average, component 5's 15.2 px: a gap of +4.2 px " \
           "(95 % interval +3.4 to +5.1 px), as the paper's (component 5 wider); ink per image 91 px in component " \
           "1, 95 px in component 5. The division of width between the extremes, whichever the orientation, " \
           "judged over every seed in [Claims](#claims): supported, 1 of 1 seeds." in shapes
    path = tmp_path / "reports/figures/qualitative/authors/seed-1234/components.json"
    data = json.loads(path.read_text())
    # reversed (component 1 the wider): still a division, in the other orientation, so still supported
    data["components"][-1]["width"] = 9.0
    path.write_text(json.dumps(data))
    write_report(tmp_path, params_from_tree(build_tree()))
    readme = (tmp_path / "reports/README.md").read_text()
    assert "component 5's 9.0 px: a gap of -2.0 px (95 % interval -2.8 to -1.2 px), reversed (component 1 wider); " \
           "ink per image" in readme
    assert "judged over every seed in [Claims](#claims): supported, 1 of 1 seeds." in readme
    # the same widths within the interval: no gap resolved, and not within 1 px of zero either: inconclusive
    data["components"][-1]["width"] = 11.5
    path.write_text(json.dumps(data))
    write_report(tmp_path, params_from_tree(build_tree()))
    readme = (tmp_path / "reports/README.md").read_text()
    assert "a gap of +0.5 px (95 % interval -0.3 to +1.3 px), no gap resolved;" in readme
    assert "judged over every seed in [Claims](#claims): inconclusive, 1 of 1 seeds." in readme
    # equal widths, the interval within 1 px of zero: no division, contradicted
    data["components"][-1]["width"] = 11.0
    path.write_text(json.dumps(data))
    write_report(tmp_path, params_from_tree(build_tree()))
    assert "judged over every seed in [Claims](#claims): contradicted, 1 of 1 seeds." in \
        (tmp_path / "reports/README.md").read_text()
    # a headline measurement missing or malformed is named
    (tmp_path / "reports/figures/tsne/authors/seed-1234/mnist_sb_vae.json").unlink()
    with pytest.raises(DlgmmError, match=r"mnist_sb_vae\.json: not found; run `dvc repro tsne@authors-1234-sb_vae`"):
        read_inputs(tmp_path, params_from_tree(build_tree()))
    write_inputs(tmp_path)
    data["components"] = data["components"][:4]
    path.write_text(json.dumps(data))
    with pytest.raises(DlgmmError, match=r"components\.json: expected 'components', one entry for each of the 5"):
        read_inputs(tmp_path, params_from_tree(build_tree()))


def test_component_digits_against_the_papers_examples(tmp_path):
    write_inputs(tmp_path)
    path = tmp_path / "reports/figures/qualitative/authors/seed-1234/components.json"
    data = json.loads(path.read_text())
    first, last = data["components"][0], data["components"][-1]
    first["classes"], last["classes"] = last["classes"], first["classes"]  # sevens at the top, zeros at the bottom
    path.write_text(json.dumps(data))
    write_report(tmp_path, params_from_tree(build_tree()))
    # the shares only: which extreme draws the sevens is the seed's (the prior is symmetric), so no verdict is read
    # from one seed's point counts; the division claim is judged over every seed in the Claims section
    readme = (tmp_path / "reports/README.md").read_text()
    sentence = next(line for line in readme.splitlines() if line.startswith("`authors`: sevens are "))
    assert sentence == ("`authors`: sevens are 5 % of component 1's images and 70 % of component 5's, zeros 60 % and "
                        "0 % (the paper's examples: sevens from component 1, zeros from component 5; which extreme "
                        "draws which is the seed's, see the division claim in [Claims](#claims)).")
    last["classes"] = [0, 30, 0, 0, 0, 0, 0, 60, 0, 0]  # counts 90 images of 100
    path.write_text(json.dumps(data))
    with pytest.raises(DlgmmError, match=r"components\.json: components\[\]\.classes must count every image"):
        read_inputs(tmp_path, params_from_tree(build_tree()))
    # written from unlabelled data: no digit column, and the report says what width cannot tell
    for entry in data["components"]:
        del entry["classes"]
    del data["classifier"]
    path.write_text(json.dumps(data))
    write_report(tmp_path, params_from_tree(build_tree()))
    shapes = (tmp_path / "reports/README.md").read_text().split("## Figure 2a/2b")[1]
    assert "| `authors` | 1 | -1.50 | 11.0 ± 0.3 | 91 | 100 |\n" in shapes and "digits (%)" not in shapes
    assert "Width measures shape, not which digits a component draws" in shapes


def test_headline_is_required_even_when_listed_second(tmp_path):
    params = params_from_tree(build_tree(protocols=("corrected", "authors")))
    write_inputs(tmp_path / "authors_only", "authors")
    with pytest.raises(DlgmmError, match=r"reports/nll/corrected/seed-1234/mnist/gauss_vae\.json: not found; "
                                         r"run `dvc repro marginal_likelihood@corrected-1234-mnist-gauss_vae`"):
        read_inputs(tmp_path / "authors_only", params)
    # the further protocol, authors, may be missing as a whole
    write_inputs(tmp_path / "corrected_only", "corrected")
    inputs = read_inputs(tmp_path / "corrected_only", params)
    assert inputs.headline == "corrected" and inputs.protocols["authors"].nll == {"mnist": {}, "omniglot": {}}


def test_flat_metrics_rounding(tmp_path):
    write_inputs(tmp_path)
    path = tmp_path / "reports/nll/authors/seed-1234/mnist/gauss_vae.json"
    data = json.loads(path.read_text())
    data["nll"] = 97.123456789
    path.write_text(json.dumps(data))
    metrics = flat_metrics(read_inputs(tmp_path, params_from_tree(build_tree())))
    assert metrics["authors.mnist.gauss_vae.nll"] == 97.1235


PARTIAL = {("mnist", "gauss_vae"), ("mnist", "dlgmm")}


@pytest.fixture()
def partial(tmp_path):
    """authors run in full; corrected only for MNIST's Gauss-VAE and DLGMM."""
    write_inputs(tmp_path, "authors")
    write_inputs(tmp_path, "corrected", only=PARTIAL)
    write_report(tmp_path, params_from_tree(build_tree(protocols=("authors", "corrected"))))
    return tmp_path


def test_second_protocol_partially_run_renders_not_run(partial):
    readme = (partial / "reports/README.md").read_text()
    nll = parse_table(readme, "## Figure 3b")
    assert list(nll["DLGMM (500d-3x25s)"]) == ["MNIST paper", "MNIST authors", "MNIST corrected", "Omniglot paper",
                                               "Omniglot authors", "Omniglot corrected"]
    assert nll["DLGMM (500d-3x25s)"]["MNIST corrected"] == "96.12 ± 0.21 (-0.38)"
    assert nll["DLGMM (500d-3x25s)"]["MNIST authors"] == "99.12 ± 0.21 (+2.62)"
    assert nll["DLDPMM (500d-17tx25s)"]["MNIST corrected"] == "not run"
    assert all(row["Omniglot corrected"] == "not run" for row in nll.values())
    knn = parse_table(readme, "## Figure 3a")
    assert knn["Gauss-VAE"]["k=3 corrected"] == "8.53 (-19.87)" and knn["SB-VAE"]["k=3 corrected"] == "not run"
    estimators = parse_table(readme, "### Estimators: `corrected`")
    assert estimators["MNIST DLGMM"]["headline"] == "ours"
    assert estimators["MNIST DLGMM"]["authors' (draws)"] == "96.82 ± 0.34 (50)"
    assert set(estimators["Omniglot DLGMM"].values()) == {"not run"}
    training = parse_table(readme, "### Training: `corrected`")
    assert training["MNIST DLGMM"]["epochs"] == "3" and training["MNIST Qualitative DLGMM"]["epochs"] == "not run"
    header = readme.split("## ")[0]
    assert "- protocols: `authors` (headline), `corrected`" in header
    assert "- `corrected`: the paper's text done right" in header
    assert "-log p(x) headline: ours; " in header and "summed out; MNIST 300 test images" in header
    assert "KL(Kumaraswamy ‖ Beta) method, `corrected`: DLGMM: `quadrature`; DLDPMM: not run" in header
    notice = next(line for line in header.splitlines() if line.startswith("> Protocol `corrected` is incomplete"))
    for stage in ("marginal_likelihood@corrected-1234-omniglot-dlgmm", "knn@corrected-1234-mnist-sb_vae",
                  "train@corrected-1234-omniglot-dlgmm", "train_qualitative@corrected-1234-mnist-qualitative", "tsne@corrected-1234-dldpmm",
                  "samples@corrected-1234-omniglot-gauss_vae", "samples_qualitative@corrected-1234"):
        assert f" {stage}" in notice, stage
    assert "marginal_likelihood@corrected-1234-mnist-dlgmm" not in notice and "authors" not in notice
    assert "](figures/tsne/corrected/seed-1234/mnist_dlgmm.png)" in readme
    assert "`corrected`: not run" in readme.split("### SB-VAE")[1]
    assert "](figures/training/corrected/mnist.png)" in readme
    assert (partial / "reports/figures/training/corrected/mnist.png").is_file()
    assert not (partial / "reports/figures/training/corrected/omniglot.png").exists()


def test_a_training_under_way_counts_as_not_run(partial):
    """Its logs and its best checkpoint are rewritten every epoch, the final summary only when it stops: a further
    protocol's training whose metrics.json is dvclive's per-epoch one is not read (and is named among the stages
    to run); the headline protocol's is refused with one line."""
    per_epoch = {"train": {"elbo": -110.0}, "valid": {"elbo": -113.0}, "epoch_seconds": 1.0,
                 "examples_per_second": 5.0, "step": 3}
    (partial / "logs/corrected/seed-1234/mnist/dlgmm/metrics.json").write_text(json.dumps(per_epoch))
    write_report(partial, params_from_tree(build_tree(protocols=("authors", "corrected"))))
    readme = (partial / "reports/README.md").read_text()
    assert parse_table(readme, "### Training: `corrected`")["MNIST DLGMM"]["epochs"] == "not run"
    notice = next(line for line in readme.splitlines() if line.startswith("> Protocol `corrected` is incomplete"))
    assert " train@corrected-1234-mnist-dlgmm" in notice
    (partial / "logs/authors/seed-1234/mnist/dlgmm/metrics.json").write_text(json.dumps(per_epoch))
    with pytest.raises(DlgmmError, match=r"logs/authors/seed-1234/mnist/dlgmm/metrics.json: training has not finished"):
        write_report(partial, params_from_tree(build_tree(protocols=("authors", "corrected"))))


def read_result(root: Path, kind: str, protocol: str, dataset: str, model: str) -> dict:
    return json.loads((root / "reports" / kind / protocol / f"seed-{SEED}" / dataset / f"{model}.json").read_text())


def test_effects_are_the_differences_of_the_inputs(partial):
    section = (partial / "reports/README.md").read_text().split("## Where the published numbers come from")[1]
    estimator = parse_table(section, "### Effect of the estimator")
    combined = parse_table(section, "### Combined effect of the protocol")
    for dataset in DATASETS:
        for model in MODEL_KINDS:
            label = f"{DATASET_NAMES[dataset]} {MODEL_NAMES[model]}"
            for protocol in ("authors", "corrected"):
                if protocol == "corrected" and (dataset, model) not in PARTIAL:
                    assert estimator[label][protocol] == "not measured yet"
                    continue
                data = read_result(partial, "nll", protocol, dataset, model)
                assert estimator[label][protocol] == f"{data['authors']['nll'] - data['ours']['nll']:+.2f}"
            settings = combined[label].pop("settings that differ")
            assert settings == ("encoder, early stopping" if model == "gauss_vae" else
                                "encoder, KL(Kumaraswamy ‖ Beta), early stopping" + (", SB-VAE decoder input"
                                                                                     if model == "sb_vae" else ""))
            if (dataset, model) not in PARTIAL:
                assert set(combined[label].values()) == {"not measured yet"}, label
                continue
            authors = read_result(partial, "nll", "authors", dataset, model)
            corrected = read_result(partial, "nll", "corrected", dataset, model)
            assert combined[label]["-log p(x), headlines (nats)"] == f"{authors['nll'] - corrected['nll']:+.2f}"
            # the same estimator on both checkpoints: ours with S = 200, the fixtures' largest common bound
            same = authors["bounds"]["200"] - corrected["bounds"]["200"]
            assert combined[label]["-log p(x), ours on both (nats)"] == f"{same:+.2f} (S = 200)"
            if model == "gauss_vae":  # its protocols differ in the encoder and early stopping only
                rows = parse_table(section, "The paper's numbers came from")
                assert rows["encoder"]["measured effect"] == rows["early stopping"]["measured effect"] == (
                    f"encoder and early stopping together, where the protocols differ in nothing else: "
                    f"MNIST Gauss-VAE {same:+.2f} nats of -log p(x) (ours, S = 200)")
            authors = read_result(partial, "knn", "authors", dataset, model)
            corrected = read_result(partial, "knn", "corrected", dataset, model)
            for k in NEIGHBORS:
                assert combined[label][f"kNN k={k} (%)"] == f"{authors[f'error@{k}'] - corrected[f'error@{k}']:+.2f}"
    assert "nats over 2 runs" in section.split("### Not determinable")[0]


def test_differing_settings_follow_the_protocol_definitions():
    tree = build_tree(protocols=("authors", "corrected"))
    assert differing_settings(params_from_tree(tree).tree, "dlgmm") == [
        "encoder", "KL(Kumaraswamy ‖ Beta)", "early stopping"]
    corrected = tree["protocol"]["corrected"]
    corrected["model"]["dlgmm"].update(encoder_activation="linear", kl="taylor", taylor_terms=11)
    corrected["train"]["patience"] = 26
    assert differing_settings(params_from_tree(tree).tree, "dlgmm") == []
    corrected["model"]["dlgmm"]["taylor_terms"] = 5  # a series' length counts where both use the series
    assert differing_settings(params_from_tree(tree).tree, "dlgmm") == ["KL(Kumaraswamy ‖ Beta)"]
    corrected["model"]["dlgmm"]["kl"] = "quadrature"
    tree["protocol"]["authors"]["model"]["dlgmm"]["kl"] = "quadrature"  # both accurate: the length is unused
    assert differing_settings(params_from_tree(tree).tree, "dlgmm") == []


def test_metrics_keys_carry_the_protocol(partial):
    metrics = json.loads((partial / "reports/metrics.json").read_text())
    claims = {key for key in metrics if key.startswith("claims.")}
    per_seed = {key for key in metrics if key.split(".")[1].startswith("seed-") and key not in claims}
    runs = set(metrics) - claims - per_seed
    authors = {key.split(".", 1)[1] for key in runs if key.startswith("authors.")}
    corrected = {key.split(".", 1)[1] for key in runs if key.startswith("corrected.")}
    assert len(authors) + len(corrected) == len(runs)
    assert corrected == {key for key in authors if tuple(key.split(".")[:2]) in PARTIAL}
    # every seed's -log p(x) and kNN errors, under the protocol and the seed
    for protocol, keys in (("authors", authors), ("corrected", corrected)):
        assert {key.split(".", 2)[2] for key in per_seed if key.startswith(f"{protocol}.")} == {
            key for key in keys if key.endswith(".nll") or ".knn_err@" in key}
    assert metrics[f"corrected.seed-{SEED}.mnist.dlgmm.nll"] == 96.12
    assert {key.split(".")[-2] for key in claims if key.startswith("claims.fidelity.")} == {"authors", "corrected"}
    assert metrics["corrected.mnist.dlgmm.nll"] == 96.12 and metrics["corrected.mnist.dlgmm.nll_authors"] == 96.82
    assert metrics["corrected.mnist.gauss_vae.knn_err@3"] == 8.53
    assert metrics["authors.mnist.dlgmm.nll"] == 99.12
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values())


def run_stage(cwd: Path) -> subprocess.CompletedProcess:
    """The resolve stage, then (if it passed) the report stage, as DVC runs them in ``cwd``."""
    for script in ("stages/resolve.py", "stages/report.py"):
        result = subprocess.run([sys.executable, str(ROOT / script)], cwd=cwd, capture_output=True, text=True,
                                timeout=120)
        if result.returncode:
            break
    return result


def test_report_stage_end_to_end(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(build_tree(budget="quick")))
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr
    for rel in ["reports/README.md", "reports/metrics.json", "reports/figures/training/authors/mnist.png",
                "reports/figures/training/authors/omniglot.png"]:
        assert (tmp_path / rel).is_file(), rel
    assert (tmp_path / "reports/figures/training/authors/mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "REDUCED BUDGET" in (tmp_path / "reports/README.md").read_text()

    (tmp_path / "logs/authors/seed-1234/omniglot/sb_vae/plots/metrics/valid/elbo.tsv").unlink()
    result = run_stage(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "logs/authors/seed-1234/omniglot/sb_vae/plots/metrics/valid/elbo.tsv" in lines[0], result.stderr


def test_results_table_from_the_flat_metrics(built):
    """The top-level README's table: read back from reports/metrics.json, ours beside the paper's."""
    from dlgmm_core.report import results_table

    metrics = json.loads((built / "reports/metrics.json").read_text())
    table = parse_table("## Results\n" + results_table(metrics, ["authors", "corrected"]), "## Results")
    assert len(table) == 2 * len(MODEL_KINDS)
    nll = metrics["authors.mnist.dlgmm.nll"]
    assert table["MNIST DLGMM"]["-log p(x) paper"] == "96.50"
    assert table["MNIST DLGMM"]["-log p(x) `authors`"] == f"{nll:.2f} ± 0.21 ({nll - 96.50:+.2f})"
    assert table["MNIST DLGMM"]["-log p(x) `corrected`"] == "not run"
    error = metrics["authors.mnist.dlgmm.knn_err@10"]
    assert table["MNIST DLGMM"]["kNN k=10 `authors`"] == f"{error:.2f} ({error - 8.42:+.2f})"
    assert table["MNIST DLDPMM"]["kNN k=10 paper"] == "—"
    assert table["Omniglot SB-VAE"]["-log p(x) paper"] == "—"


def test_claims_digest_reads_each_verdict_back_from_the_flat_metrics():
    """README.md's verdicts: one row per claim of the paper (the published numbers left out), each protocol's
    verdict in words with the seeds it rests on, ``not run yet`` where the metrics have none."""
    from dlgmm_core.report import claims_digest

    metrics = {"claims.mnist_nll_dlgmm.authors.verdict": -1, "claims.mnist_nll_dlgmm.authors.seeds": 3,
               "claims.mnist_nll_dlgmm.corrected.verdict": 1, "claims.mnist_nll_dlgmm.corrected.seeds": 2,
               "claims.knn_dlgmm_gauss_vae.authors.verdict": 0, "claims.knn_dlgmm_gauss_vae.authors.seeds": 1,
               "claims.knn_dlgmm_gauss_vae.authors.k3.verdict": 1, "claims.knn_dlgmm_gauss_vae.authors.k3.seeds": 1,
               "claims.division.corrected.verdict": 1, "claims.division.corrected.seeds": 3}
    lines = claims_digest(metrics, ["authors", "corrected"], 3, 5).splitlines()
    assert lines[0] == "| claim | measure | `authors` | `corrected` |"
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]):
            [cell.strip() for cell in line.strip("|").split("|")[2:]] for line in lines[2:]}
    assert len(rows) == len(lines) - 2 == 9
    assert rows[("DLGMM better than Gauss-VAE", "MNIST -log p(x) (nats)")] == [
        "**contradicted**, 3 of 3 seeds", "**supported**, 2 of 3 seeds"]
    assert rows[("DLGMM better than Gauss-VAE", "MNIST kNN error at every k = 3, 5, 10")] == [
        "**inconclusive**, 1 of 3 seeds", "not run yet"]
    assert rows[("DLDPMM better than Gauss-VAE", "MNIST -log p(x) (nats)")] == ["not run yet", "not run yet"]
    division = next(cells for (label, _), cells in rows.items() if label.startswith("the 5-component DLGMM"))
    assert division == ["not run yet", "**supported**, 3 of 3 seeds"]


def test_the_readme_results_are_the_committed_report():
    """Once a paper-budget report is committed, README.md's "Results" table is the one its metrics give."""
    from dlgmm_core.params.read import read_params_tree
    from dlgmm_core.report import results_table

    metrics_path = ROOT / "reports" / "metrics.json"
    if not metrics_path.is_file():
        pytest.skip("no committed reports/metrics.json yet (the paper-budget run has not finished)")
    metrics = json.loads(metrics_path.read_text())
    table = results_table(metrics, list(read_params_tree(ROOT / "params.yaml")["protocols"]))
    assert table in (ROOT / "README.md").read_text(), "README.md: update 'Results' (python tools/results.py)"


def test_results_command_names_a_missing_metrics_file(tmp_path):
    result = subprocess.run([sys.executable, "tools/results.py", "--metrics", str(tmp_path / "metrics.json")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("run `dvc repro report` (or `make repro`)")
    assert "metrics.json" in result.stderr and "Traceback" not in result.stderr


def test_knn_sensitivity_not_measured_without_it(built):
    readme = (built / "reports/README.md").read_text()
    section = readme.split("### Figure 3a's protocol: what the labelled set and the embedding do (MNIST, `authors`)")[1]
    assert section.split("\n### ")[0].strip() == "not measured yet: run the knn stages (`dvc repro knn`)."


def test_knn_sensitivity_table_and_the_variant_nearest_the_paper(tmp_path):
    write_inputs(tmp_path)
    paper = [PAPER["mnist"]["gauss_vae"][f"knn_err@{k}"] for k in NEIGHBORS]  # 28.4, 20.96, 15.33
    path = tmp_path / "reports/knn/authors/seed-1234/mnist/gauss_vae.json"
    data = json.loads(path.read_text())
    far, near = [p + 6.0 for p in paper], [paper[0] - 1.0, paper[1] + 0.5, paper[2]]  # mean |diff| 6.0 and 0.5
    data["sensitivity"] = {
        "draws": 20,
        "sample": {"1000": dict(zip(["3", "5", "10"], near)), "6000": dict(zip(["3", "5", "10"], far))},
        "mean": {"1000": dict(zip(["3", "5", "10"], far)), "6000": {"3": 1.0, "5": 2.0, "10": 3.0}},
    }
    path.write_text(json.dumps(data))
    write_report(tmp_path, params_from_tree(build_tree()))
    readme = (tmp_path / "reports/README.md").read_text()
    section = readme.split("### Figure 3a's protocol")[1].split("\n### ")[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|")]
    assert rows[0] == ["model", "embedding", "N = 1,000", "N = 6,000", "paper", "nearest the paper"]
    assert rows[2] == ["Gauss-VAE", "one sample", "27.40 / 21.46 / 15.33", "34.40 / 26.96 / 21.33",
                       "28.40 / 20.96 / 15.33", "one sample, N = 1,000 (0.50)"]
    assert rows[3] == ["Gauss-VAE", "mean of 20 draws", "34.40 / 26.96 / 21.33", "1.00 / 2.00 / 3.00", "", ""]
    assert len(rows) == 4  # the models without a sensitivity measurement have no rows
