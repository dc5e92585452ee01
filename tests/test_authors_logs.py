"""The authors' logged MNIST runs (dlgmm_core/reference/) and the report's section that lays ours beside them."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dlgmm_core import authors_logs
from dlgmm_core.errors import DlgmmError
from dlgmm_core.params.load import params_from_tree
from dlgmm_core.report import write_report
from test_report import build_tree, parse_table, write_inputs


def test_the_logs_give_the_papers_numbers():
    """The two copied logs end with the paper's test values and the authors' early-stopping rule."""
    dlgmm, gauss = authors_logs.read("dlgmm"), authors_logs.read("gauss_vae")
    assert (dlgmm.epochs, dlgmm.best_epoch, dlgmm.best_valid_elbo) == (243, 217, -104.754)
    assert (gauss.epochs, gauss.best_epoch, gauss.best_valid_elbo) == (154, 128, -103.240)
    assert round(dlgmm.test_nll, 2) == 96.50 and round(gauss.test_nll, 2) == 96.80
    assert (dlgmm.valid_nll, gauss.valid_nll) == (97.380, 97.867)
    for log in (dlgmm, gauss):  # stopped when epoch_idx - best_epoch > 25 (0-based), i.e. best + 26
        assert log.epochs == log.best_epoch + 26
        assert log.valid_elbo[log.best_epoch - 1] == log.valid_elbo.max()
        np.testing.assert_array_equal(log.epoch, np.arange(1, log.epochs + 1))


def test_a_changed_log_is_refused_naming_the_file(tmp_path):
    shutil.copytree(authors_logs.REFERENCE_DIR, tmp_path, dirs_exist_ok=True)
    path = tmp_path / authors_logs.SOURCES["dlgmm"].file
    path.write_text(path.read_text().replace("-104.754", "-104.000"))
    with pytest.raises(DlgmmError, match=rf"{path.name}: sha256 .* is not the pinned .*mixture_density_VAEs"):
        authors_logs.read("dlgmm", tmp_path)
    path.unlink()
    with pytest.raises(DlgmmError, match=rf"{path.name}: cannot read"):
        authors_logs.read("dlgmm", tmp_path)


@pytest.mark.parametrize("text, message", [
    ("Epoch 1.  Train ELBO: -2.0,  Validation ELBO: -1.0 ***\nEpoch 3.  Train ELBO: -2.0,  Validation ELBO: -1.0\n"
     "Validation Marginal Likelihood: -1.0,  Test Marginal Likelihood: -1.0\n", "line 2: epoch 3 where 2"),
    ("Epoch 1.  Train ELBO: -2.0,  Validation ELBO: -1.0 ***\nsomething else\n", "line 2: not an epoch"),
    ("Epoch 1.  Train ELBO: -2.0,  Validation ELBO: -1.0\n"
     "Validation Marginal Likelihood: -1.0,  Test Marginal Likelihood: -1.0\n", "a best epoch"),
])
def test_a_malformed_log_names_the_line(text, message):
    with pytest.raises(DlgmmError, match=f"some.txt: .*{message}"):
        authors_logs.parse(text, "some.txt")


def test_report_lays_ours_beside_the_authors_logs(tmp_path):
    """The fixture's runs (3 epochs, best 2) against the logs: differences are ours minus the authors'."""
    write_inputs(tmp_path)
    write_report(tmp_path, params_from_tree(build_tree()))
    readme = (tmp_path / "reports/README.md").read_text()
    table = parse_table(readme, "### Our training beside the authors' logs")
    dlgmm = authors_logs.read("dlgmm")
    assert table["DLGMM: authors' log"]["epochs"] == "243"
    assert table["DLGMM: authors' log"]["test -log p(x), 50 draws"] == "96.50"
    assert table["DLGMM: ours"]["epochs"] == "3 (-240)"
    assert table["DLGMM: ours"]["best epoch"] == "2 (-215)"
    assert table["DLGMM: ours"]["valid ELBO, epoch 10"] == "—"  # the fixture has 3 epochs
    ours_valid = [-190.0, -118.0, -114.0]  # the fixture's DLGMM validation curve
    gap = np.mean(np.abs(np.array(ours_valid) - dlgmm.valid_elbo[:3]))
    assert table["DLGMM: ours"]["valid ELBO, mean absolute Δ"] == f"{gap:.2f} over 3 epochs"
    nll = json.loads((tmp_path / "reports/nll/authors/seed-1234/mnist/dlgmm.json").read_text())["authors"]["nll"]
    assert table["DLGMM: ours"]["test -log p(x), 50 draws"] == f"{nll:.2f} ({nll - dlgmm.test_nll:+.2f})"
    assert "Gauss-VAE: ours" in table
    figure = tmp_path / "reports/figures/training/authors_logs_mnist.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](figures/training/authors_logs_mnist.png)" in readme


def test_without_the_authors_protocol_the_section_is_left_out(tmp_path):
    write_inputs(tmp_path, protocol="corrected")
    write_report(tmp_path, params_from_tree(build_tree(protocols=("corrected",))))
    readme = (tmp_path / "reports/README.md").read_text()
    assert "beside the authors' logs" not in readme
    assert not (tmp_path / "reports/figures/training/authors_logs_mnist.png").exists()


def test_report_lists_what_the_authors_protocol_does_not_reproduce(tmp_path):
    from dlgmm_core.report import NOT_REPRODUCED

    write_inputs(tmp_path)
    write_report(tmp_path, params_from_tree(build_tree()))
    readme = (tmp_path / "reports/README.md").read_text()
    table = parse_table(readme, "### Where protocol `authors` is still not the authors' code")
    assert list(table) == [row[0] for row in NOT_REPRODUCED]
    assert table["minibatch order"]["the authors' code"].startswith("one unseeded shuffle")
    assert "std 1e-8" in table["initial weights of the Kumaraswamy heads (log a, log b)"]["the authors' code"]
