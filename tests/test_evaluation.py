"""Evaluation library (kNN, t-SNE, sample grids, marginal-likelihood summary) and the evaluation stages."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dlgmm_core import layout, registry
from dlgmm_core.errors import DlgmmError
from dlgmm_core.params.sections import stage_model_config
from dlgmm_core.params.views import resolve
from dlgmm_core.evaluation import (MEAN_DRAWS, atomic_dir, check_neighbors, cluster_errors, digit_classes,
                                   digit_classifier, digit_shape, embed, grid_png_size, knn_errors, knn_predictions,
                                   knn_sensitivity, marginal_likelihood, plot_tsne,
                                   prior_bernoulli_means, require_labels, save_component_grids, save_grid, tile,
                                   tsne_embedding)
from dlgmm_core.results import PerImage, cluster_result, component_shapes, per_image_path

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


# --------------------------------------------------------------------------
# kNN
# --------------------------------------------------------------------------
def two_clusters(n: int, seed: int, shuffle_labels: bool = False):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    z = rng.normal(size=(n, 5)) * 0.1 + y[:, None] * 10.0
    if shuffle_labels:
        y = rng.integers(0, 2, size=n)
    return z, y.astype(np.int64)


def test_knn_separated_clusters_zero_error():
    z_train, y_train = two_clusters(200, 0)
    z_test, y_test = two_clusters(100, 1)
    assert knn_errors(z_train, y_train, z_test, y_test, [3, 5, 10]) == {3: 0.0, 5: 0.0, 10: 0.0}


def test_knn_shuffled_labels_near_chance():
    z_train, y_train = two_clusters(600, 2, shuffle_labels=True)
    z_test, y_test = two_clusters(600, 3, shuffle_labels=True)
    errors = knn_errors(z_train, y_train, z_test, y_test, [5])
    assert 40.0 < errors[5] < 60.0


def test_knn_hand_computed():
    z_train = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    y_train = np.array([0, 0, 0, 1, 1, 1])
    z_test = np.array([[1.5], [10.5], [5.9], [6.5]])
    y_test = np.array([0, 1, 1, 1])  # 5.9: neighbours 2, 10, 1 -> class 0 (wrong); 6.5: 2, 10, 11 -> class 1
    assert knn_errors(z_train, y_train, z_test, y_test, [3]) == {3: 25.0}
    # k=1: 5.9 -> 2 (class 0, wrong); 6.5 -> 10 (3.5 away, class 1, right)
    assert knn_errors(z_train, y_train, z_test, y_test, [1]) == {1: 25.0}


def test_knn_rejects_unlabelled_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = Path("data/prepared/mnist.json")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"dataset": "mnist", "source": "amat", "labels": False}))
    with pytest.raises(DlgmmError) as err:
        require_labels(path)
    assert str(err.value) == ("knn needs class labels: data/prepared/mnist.json says source amat has none; "
                              "set data.mnist.source: wheel")
    path.write_text(json.dumps({"dataset": "mnist", "source": "wheel", "labels": True}))
    assert require_labels(path)["labels"] is True
    with pytest.raises(DlgmmError, match="labels hold -1"):
        knn_errors(np.zeros((4, 2)), -np.ones(4, dtype=np.int64), np.zeros((2, 2)), np.zeros(2, np.int64), [1])


def test_knn_rejects_too_many_neighbours():
    with pytest.raises(DlgmmError, match=r"eval\.knn\.neighbors asks for 10 neighbours but only 6 training"):
        check_neighbors([3, 10], 6)
    with pytest.raises(DlgmmError, match=r"eval\.knn\.neighbors"):
        knn_errors(np.zeros((6, 2)), np.zeros(6, np.int64), np.zeros((2, 2)), np.zeros(2, np.int64), [3, 10])
    assert check_neighbors([10, 3, 5], 10) == [3, 5, 10]


# --------------------------------------------------------------------------
# stand-in models
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class StandInConfig:
    components: int
    prior_means: tuple[float, ...]
    kl_method: str = "taylor"


class StandIn(torch.nn.Module):
    """A fixed linear 'model' with the evaluation API (deterministic elbo/embed, seeded prior draws)."""

    kind = "dlgmm"

    def __init__(self, components: int = 3):
        super().__init__()
        self.config = StandInConfig(components, tuple(float(k) for k in range(components)))
        self.latent_dim = 2
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(784, 2, generator=generator))

    def elbo(self, x):
        return -x.sum(1) - 1.0

    def embed(self, x):
        return x @ self.weight

    def sample_prior(self, n, component=None):
        shift = 0.0 if component is None else float(self.config.prior_means[component])
        return torch.randn(n, 2) + shift

    def decode(self, latent):
        return latent @ self.weight.T


def fake_bounds(model, x, samples, at, batch_size):
    base = -x.sum(1).double()
    return {s: base - 10.0 / s for s in (*at, samples)}


def fake_weights(model, x, samples, component, batch_size):
    """log w[d, e] = -(pixels on in e) + log(d + 1); draw 1 is NaN for the examples with 20 pixels on."""
    assert component == "sampled"
    log_w = -x.sum(1).double() + torch.log(torch.arange(1, samples + 1, dtype=torch.float64))[:, None]
    log_w[1, x.sum(1) == 20] = float("nan")
    return log_w


def test_marginal_likelihood_summary():
    x = torch.zeros(7, 784)
    x[:, :10] = 1
    x[3, 10:20] = 1  # example 3: 20 pixels on
    # authors_samples=100 with batch_size 200: examples in chunks of 2, example 3's NaN in the second chunk only
    result = marginal_likelihood(StandIn(), x.numpy(), 50, [1, 10, 100], 4 * 50, CPU, progress=False,
                                 bounds_fn=fake_bounds, authors_samples=100, weights_fn=fake_weights)
    nll = np.array([10.0] * 7) + 10.0 / 50
    nll[3] += 10.0
    assert result["nll"] == pytest.approx(nll.mean())
    assert result["nll_se"] == pytest.approx(nll.std(ddof=1) / np.sqrt(7))
    assert result["elbo"] == pytest.approx(-(nll.mean() - 10.0 / 50) - 1.0)
    assert set(result["bounds"]) == {"1", "10", "50"}  # 100 > S is left out
    assert result["bounds"]["1"] == pytest.approx(nll.mean() - 0.2 + 10.0)
    assert result["bounds"]["50"] == pytest.approx(result["nll"])
    assert (result["samples"], result["examples"], result["kl_method"]) == (50, 7, "taylor")
    assert result["headline"] == "ours"
    assert result["ours"] == {"nll": result["nll"], "nll_se": result["nll_se"], "samples": 50}
    # draw 1 is dropped for every example (its mean over the split is NaN); the other 99 draws are d + 1
    authors_nll = np.array([10.0] * 7) - np.log((5050 - 2) / 99)
    authors_nll[3] += 10.0
    assert set(result["authors"]) == {"nll", "nll_se", "samples", "dropped_draws"}
    assert result["authors"]["nll"] == pytest.approx(authors_nll.mean(), rel=1e-12)
    assert result["authors"]["nll_se"] == pytest.approx(authors_nll.std(ddof=1) / np.sqrt(7), rel=1e-12)
    assert (result["authors"]["samples"], result["authors"]["dropped_draws"]) == (100, 1)

    authors = marginal_likelihood(StandIn(), x.numpy(), 50, [1, 10, 100], 4 * 50, CPU, progress=False,
                                  bounds_fn=fake_bounds, authors_samples=100, weights_fn=fake_weights,
                                  headline="authors")
    assert authors["headline"] == "authors"
    assert (authors["nll"], authors["nll_se"]) == (result["authors"]["nll"], result["authors"]["nll_se"])
    for key in ("elbo", "bounds", "samples", "examples", "kl_method", "ours", "authors"):
        assert authors[key] == result[key], key
    with pytest.raises(DlgmmError, match="headline must be one of 'authors', 'ours' \\(got 'both'\\)"):
        marginal_likelihood(StandIn(), x.numpy(), 50, [1], 200, CPU, progress=False, bounds_fn=fake_bounds,
                            weights_fn=fake_weights, headline="both")


def test_marginal_likelihood_authors_all_draws_dropped():
    def broken(model, x, samples, component, batch_size):
        log_w = torch.zeros(samples, x.shape[0], dtype=torch.float64)
        log_w[:, 0] = float("nan")
        return log_w

    with pytest.raises(DlgmmError, match="all 5 draws have a non-finite mean log-weight over the 3 examples"):
        marginal_likelihood(StandIn(), np.zeros((3, 784), np.uint8), 5, [1], 15, CPU, progress=False,
                            bounds_fn=fake_bounds, authors_samples=5, weights_fn=broken)


def test_marginal_likelihood_ours_draws_first():
    """Ours and the ELBO use the draws they used before the authors' estimator existed, whatever its samples."""
    from dlgmm_core import build_model, importance_bounds

    torch.manual_seed(0)
    model = build_model("dlgmm", input_dim=784, hidden=8, latent=2, components=3, alpha=1.0, prior_means=[0.0],
                        prior_scales=[1.0], kl_method="taylor", taylor_terms=10)
    x = (np.random.default_rng(0).random((9, 784)) < 0.2).astype(np.uint8)
    results = []
    for authors_samples in (3, 7):
        torch.manual_seed(1)
        results.append(marginal_likelihood(model, x, 20, [1, 10], 60, CPU, progress=False,
                                           authors_samples=authors_samples, headline="authors"))
    first, second = results
    for key in ("elbo", "bounds", "ours"):
        assert first[key] == second[key], key
    assert (first["authors"]["samples"], second["authors"]["samples"]) == (3, 7)
    assert first["authors"]["dropped_draws"] == 0 and np.isfinite(first["nll"]) and first["nll"] != second["nll"]
    torch.manual_seed(1)  # ours alone, as marginal_likelihood draws it: chunks of 60 // 20 examples
    xt = torch.from_numpy(x).float()
    ours = torch.cat([importance_bounds(model, xt[i:i + 3], 20, at=(1, 10), batch_size=60)[20] for i in (0, 3, 6)])
    assert first["ours"]["nll"] == float((-ours).numpy().mean())


def test_marginal_likelihood_refuses_non_finite():
    def bad(model, x, samples, at, batch_size):
        value = torch.zeros(x.shape[0], dtype=torch.float64)
        value[0] = float("nan")
        return {samples: value}

    with pytest.raises(DlgmmError, match="1 of 3 test examples have a non-finite"):
        marginal_likelihood(StandIn(), np.zeros((3, 784), np.uint8), 5, [1], 15, CPU, progress=False, bounds_fn=bad)


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------
def test_tile_layout():
    images = np.stack([np.full(784, i / 4, dtype=np.float32) for i in range(4)])
    canvas = tile(images, 2, pad=2, pad_value=0.5)
    assert canvas.shape == (2 * 28 + 3 * 2, 2 * 28 + 3 * 2)
    assert canvas[0, 0] == 0.5 and canvas[2, 2] == 0.0
    assert canvas[2 + 28 + 2 + 5, 2 + 28 + 2 + 5] == pytest.approx(0.75)  # image 3: row 1, column 1
    with pytest.raises(DlgmmError, match="expected 9 images"):
        tile(images, 3)


def test_sample_grid_png_size_and_pixels(tmp_path):
    grid = 3
    images = np.stack([np.full(784, (i % 2) * 1.0, dtype=np.float32) for i in range(grid * grid)])
    title = "Gauss-VAE (mnist): Bernoulli means of 9 samples from the prior"
    path = save_grid(tmp_path / "grid.png", images, grid, title, scale=2)
    png = np.asarray(Image.open(path).convert("L"))
    width, height = grid_png_size(grid, title, scale=2)
    assert (png.shape[1], png.shape[0]) == (width, height) == ((3 * 28 + 4 * 2) * 2, png.shape[0])
    band = height - width
    # tile 0 is black (0.0), tile 1 white (1.0): pixel-exact, no resampling
    top = band + 2 * 2
    assert png[top + 10, 2 * 2 + 10] == 0
    assert png[top + 10, (2 + 28 + 2) * 2 + 10] == 255
    assert not list(tmp_path.glob(".*tmp"))


def test_prior_means_and_component_grids(tmp_path):
    model = StandIn(components=3)
    torch.manual_seed(0)
    means = prior_bernoulli_means(model, 4)
    assert means.shape == (4, 784) and 0.0 <= means.min() and means.max() <= 1.0
    folder = tmp_path / "qualitative"
    folder.mkdir()
    (folder / "component_9.png").write_bytes(b"stale")
    written = save_component_grids(folder, model, 2, "StandIn")
    assert sorted(p.name for p in folder.iterdir()) == ["component_1.png", "component_2.png", "component_3.png",
                                                        "components.json"]
    assert written == [folder / f"component_{k}.png" for k in (1, 2, 3)]
    assert Image.open(written[0]).size[0] == (2 * 28 + 3 * 2) * 2
    shapes = json.loads((folder / "components.json").read_text())
    assert shapes["ink_level"] == 0.5 and [c["component"] for c in shapes["components"]] == [1, 2, 3]
    assert all(c["images"] == 4 and 0.0 <= c["width"] <= 28.0 for c in shapes["components"])
    assert "classifier" not in shapes and all("classes" not in c for c in shapes["components"])
    # with labelled data: each component's images counted by digit, the classifier's test error beside them
    rng = np.random.default_rng(0)
    data = {"x_train": rng.integers(0, 2, (40, 784)).astype(np.uint8), "y_train": np.arange(40) % 10,
            "x_test": rng.integers(0, 2, (8, 784)).astype(np.uint8), "y_test": np.arange(8) % 10}
    torch.manual_seed(0)
    prior_bernoulli_means(model, 4)  # the draws made above, so that the grids get the same images again
    save_component_grids(folder, model, 2, "StandIn", labelled=data)
    again = json.loads((folder / "components.json").read_text())
    assert again["classifier"]["train_images"] == 40 and again["classifier"]["test_images"] == 8
    for entry, before in zip(again["components"], shapes["components"]):
        assert len(entry["classes"]) == 10 and sum(entry["classes"]) == 4
        assert entry["width"] == before["width"]  # the same images: classifying draws no random numbers


def test_digit_shape_hand_computed():
    images = np.zeros((2, 28, 28))
    images[0, 3:20, 10:14] = 0.9   # 4 columns of ink, 17 rows: 68 ink pixels
    images[1, 5:7, 2:26] = 0.5     # 24 columns at exactly the ink level, 2 rows: 48 ink pixels
    images[1, 0, 0] = 0.49         # below the ink level: not ink
    shape = digit_shape(images.reshape(2, 784))
    assert shape == {"images": 2, "width": 14.0, "width_se": pytest.approx(10.0), "ink": 58.0}
    with pytest.raises(DlgmmError, match="at least 2 images of 784 pixels"):
        digit_shape(np.zeros((1, 784)))


def test_atomic_dir_keeps_old_contents_on_failure(tmp_path):
    folder = tmp_path / "out"
    with atomic_dir(folder) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(folder) as tmp:
            (tmp / "b.txt").write_text("2")
            raise RuntimeError("interrupted")
    assert [p.name for p in folder.iterdir()] == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_tsne_deterministic_and_plot(tmp_path):
    z, y = two_clusters(40, 4)
    first = tsne_embedding(z, perplexity=5.0, seed=7)
    second = tsne_embedding(z, perplexity=5.0, seed=7)
    assert first.shape == (40, 2)
    np.testing.assert_array_equal(first, second)
    with pytest.raises(DlgmmError, match=r"eval\.tsne\.perplexity"):
        tsne_embedding(z, perplexity=40.0, seed=7)
    path = plot_tsne(first, y, tmp_path / "tsne.png", "StandIn", class_names=["zero", "one"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_embed_batches_match_one_call():
    model = StandIn()
    x = (np.random.default_rng(0).random((25, 784)) < 0.3).astype(np.uint8)
    z = embed(model, x, CPU, batch_size=7, progress=False)
    expected = (torch.from_numpy(x).float() @ model.weight).detach().double().numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-6)


# --------------------------------------------------------------------------
# the stage scripts, end to end, on tiny models
# --------------------------------------------------------------------------
TINY_MODELS = {"gauss_vae": {"hidden": 8, "latent": 2}, "sb_vae": {"hidden": 8, "truncation": 3},
               "dlgmm": {"hidden": 8, "latent": 2}, "dldpmm": {"hidden": 8, "latent": 2, "truncation": 3},
               "qualitative": {"hidden": 8, "latent": 2}}


#: The one seed of the tiny pipeline.
SEED = 5


def tiny_params() -> dict:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["budget"], tree["k"], tree["seeds"] = "paper", 2, [SEED]
    for key, values in TINY_MODELS.items():
        tree["model"][key].update(values)
    tree["eval"] = {
        "device": "cpu",
        "threads": 1,
        "marginal_likelihood": {"bounds_at": [1, 10, 100], "batch_size": 60, "max_examples": 12,
                                "authors_samples": 5},
        "knn": {"neighbors": [1, 3], "max_train_examples": 40, "max_test_examples": 20},
        "tsne": {"points": 30, "perplexity": 5.0},
        "samples": {"grid": 3},
    }
    tree["protocol"]["authors"]["eval"]["marginal_likelihood"]["samples"] = 20
    return tree


def make_workspace(root: Path) -> None:
    """params.yaml, data/prepared/mnist.{npz,json} and models/mnist/*.pt of tiny models."""
    from dlgmm_core import build_model, save_checkpoint
    from dlgmm_core.params.load import params_from_tree
    from dlgmm_core.io import save_npz

    tree = tiny_params()
    (root / "params.yaml").write_text(yaml.safe_dump(tree))
    resolve(root / "params.yaml", root)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 60), ("valid", 10), ("test", 30)):
        arrays[f"x_{split}"] = (rng.random((n, 784)) < 0.2).astype(np.uint8)
        arrays[f"y_{split}"] = (np.arange(n) % 10).astype(np.int64)
    save_npz(root / "data/prepared/mnist.npz", **arrays)
    (root / "data/prepared/mnist.json").write_text(json.dumps(
        {"dataset": "mnist", "source": "wheel", "labels": True, "class_names": [str(d) for d in range(10)]}))
    params = params_from_tree(tree, protocol="authors")
    for key in ("gauss_vae", "dlgmm", "dldpmm", "qualitative"):
        config = stage_model_config(params, key)
        torch.manual_seed(1)
        save_checkpoint(layout.checkpoint("authors", SEED, "mnist", key, root), registry.build(config),
                        metadata={"dataset": "mnist", "model": key, "protocol": "authors"})


STAGE_RUNS = {
    "nll": ["marginal_likelihood.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "dlgmm"],
    "knn": ["knn.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "dldpmm"],
    "tsne": ["tsne.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "gauss_vae"],
    "samples": ["samples.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "dldpmm"],
    "qualitative": ["samples.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "qualitative"],
    "missing": ["knn.py", "--protocol", "authors", "--seed", str(SEED), "--dataset", "mnist", "--model", "sb_vae"],
}


@pytest.fixture(scope="module")
def stage_runs(tmp_path_factory):
    """Run every stage once (concurrently) in a tiny workspace; the nll stage twice (determinism)."""
    first = tmp_path_factory.mktemp("stages")
    make_workspace(first)
    second = tmp_path_factory.mktemp("stages_again")
    shutil.copytree(first, second, dirs_exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    jobs = [(name, first, args) for name, args in STAGE_RUNS.items()] + [("nll_again", second, STAGE_RUNS["nll"])]
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "stages" / args[0]), *args[1:]], cwd=cwd, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, cwd, args in jobs}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    return first, second, results


def test_stage_marginal_likelihood(stage_runs):
    root, again, results = stage_runs
    rc, _, err = results["nll"]
    assert rc == 0, err
    data = json.loads(layout.nll_result("authors", SEED, "mnist", "dlgmm", root).read_text())
    assert set(data) == {"nll", "nll_se", "headline", "elbo", "bounds", "samples", "examples", "kl_method", "ours",
                         "authors", "seconds"}
    assert data["headline"] == "authors"  # the authors protocol's headline estimator
    assert data[data["headline"]]["nll"] == data["nll"] and data["ours"]["samples"] == 20
    assert data["bounds"]["20"] == data["ours"]["nll"] and data["authors"]["dropped_draws"] == 0
    assert (data["samples"], data["examples"], data["kl_method"]) == (20, 12, "taylor")
    assert set(data["bounds"]) == {"1", "10", "20"}
    assert 0 < data["nll"] < 784 * np.log(2) * 2 and data["nll_se"] > 0
    assert data["bounds"]["1"] >= data["nll"] - 1.0
    assert results["nll_again"][0] == 0, results["nll_again"][2]
    repeat = json.loads(layout.nll_result("authors", SEED, "mnist", "dlgmm", again).read_text())
    data.pop("seconds"), repeat.pop("seconds")
    assert data == repeat  # deterministic on CPU
    assert not list(layout.nll_result("authors", SEED, "mnist", "dlgmm", root).parent.glob(".*"))
    # each test image's -log p(x) by both estimators, beside the result: their means are the result's
    per_image = PerImage.read(per_image_path(layout.nll_result("authors", SEED, "mnist", "dlgmm", root)), "nll", "")
    assert set(per_image.arrays) == {"ours", "authors"} and per_image.arrays["ours"].shape == (12,)
    for estimator in ("ours", "authors"):
        assert per_image.arrays[estimator].astype(np.float64).mean() == pytest.approx(data[estimator]["nll"],
                                                                                     rel=1e-6)


def test_stage_knn(stage_runs):
    root, _, results = stage_runs
    rc, _, err = results["knn"]
    assert rc == 0, err
    data = json.loads(layout.knn_result("authors", SEED, "mnist", "dldpmm", root).read_text())
    assert set(data) == {"error@1", "error@3", "train_examples", "test_examples", "sensitivity"}
    assert (data["train_examples"], data["test_examples"]) == (40, 20)
    assert all(0.0 <= data[k] <= 100.0 for k in ("error@1", "error@3"))
    sensitivity = data["sensitivity"]
    assert sensitivity["draws"] == MEAN_DRAWS and set(sensitivity) == {"draws", "sample", "mean"}
    # 40 training examples: both sensitivity sizes (1,000 and 10,000) exceed them, so only the whole set is fitted
    assert sensitivity["sample"] == {"40": {"1": data["error@1"], "3": data["error@3"]}}
    assert set(sensitivity["mean"]) == {"40"} and set(sensitivity["mean"]["40"]) == {"1", "3"}
    # each test image's label and predicted class per k, beside the result: the errors are the result's
    arrays = PerImage.read(per_image_path(layout.knn_result("authors", SEED, "mnist", "dldpmm", root)), "knn", "").arrays
    assert set(arrays) == {"labels", "k1", "k3"} and arrays["labels"].shape == (20,)
    for k in (1, 3):
        assert 100.0 * float((arrays[f"k{k}"] != arrays["labels"]).sum()) / 20 == data[f"error@{k}"]


def test_stage_figures(stage_runs):
    root, _, results = stage_runs
    for name in ("tsne", "samples", "qualitative"):
        assert results[name][0] == 0, results[name][2]
    assert Image.open(layout.tsne_figure("authors", SEED, "mnist", "gauss_vae", root)).format == "PNG"
    summary = json.loads(cluster_result("authors", SEED, "mnist", "gauss_vae", root).read_text())
    assert (summary["points"], summary["perplexity"]) == (30, 5.0)
    assert 0.0 <= summary["clusters"]["map_error"] <= 100.0 and summary["clusters"]["neighbors"] == 10
    points = PerImage.read(per_image_path(cluster_result("authors", SEED, "mnist", "gauss_vae", root)), "clusters", "")
    for space in ("map", "latent"):
        wrong = points.arrays[space] != points.arrays["labels"]
        assert 100.0 * float(wrong.sum()) / 30 == summary["clusters"][f"{space}_error"]
    assert [c["component"] for c in json.loads(component_shapes("authors", SEED, root).read_text())["components"]] == \
        [1, 2, 3, 4, 5]
    grid = Image.open(layout.samples_figure("authors", SEED, "mnist", "dldpmm", root))
    assert grid.size[0] == (3 * 28 + 4 * 2) * 2
    names = sorted(p.name for p in layout.qualitative_dir("authors", SEED, root).iterdir())
    assert names == [f"component_{k}.png" for k in range(1, 6)] + ["components.json"]


def test_stage_missing_checkpoint(stage_runs):
    _, _, results = stage_runs
    rc, _, err = results["missing"]
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "models/authors/seed-5/mnist/sb_vae.pt" in lines[0] and "not found" in lines[0], err


def test_knn_matches_scikit_learn_with_chunks():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(3)
    z_train, z_test = rng.normal(size=(300, 3)), rng.normal(size=(101, 3))
    y_train, y_test = rng.integers(0, 5, 300), rng.integers(0, 5, 101)
    ours = knn_errors(z_train, y_train, z_test, y_test, [1, 3, 4, 10], chunk=17)
    for k, error in ours.items():
        reference = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(z_train, y_train)
        assert error == pytest.approx(100.0 * np.mean(reference.predict(z_test) != y_test), abs=1e-12), k


def test_knn_predictions_match_scikit_learn_with_chunks():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(4)
    z_train, z_query = rng.normal(size=(200, 4)), rng.normal(size=(53, 4))
    y_train = rng.integers(0, 6, 200)
    ours = knn_predictions(z_train, y_train, z_query, [1, 5], chunk=7)
    for k, predicted in ours.items():
        reference = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(z_train, y_train)
        np.testing.assert_array_equal(predicted, reference.predict(z_query))


def test_digit_classes_count_the_images_by_nearest_training_digits():
    x_train = np.zeros((30, 784), dtype=np.uint8)
    y_train = np.repeat([0, 7, 3], 10)
    x_train[:10, :100] = 1        # zeros: ink in the first 100 pixels
    x_train[10:20, 300:400] = 1   # sevens: ink in pixels 300..399
    x_train[20:, 600:700] = 1     # threes
    images = np.zeros((5, 784), dtype=np.float32)
    images[:3, 300:400] = 0.8     # three blurry sevens
    images[3:, :100] = 0.6        # two blurry zeros
    assert digit_classes(images, x_train, y_train) == [2, 0, 0, 0, 0, 0, 0, 3]
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_train[::3], "y_test": y_train[::3]}
    assert digit_classifier(data) == {"neighbors": 5, "train_images": 30, "test_images": 10, "test_error": 0.0}
    data["y_test"] = np.where(data["y_test"] == 3, 0, data["y_test"])  # the threes labelled as zeros: all wrong
    assert digit_classifier(data)["test_error"] == pytest.approx(100.0 * 3 / 10)


def test_knn_leave_one_out_excludes_each_point_itself():
    rng = np.random.default_rng(4)
    z, y = rng.normal(size=(23, 2)), rng.integers(0, 3, 23)
    ours = knn_errors(z, y, z, y, [1, 4], chunk=5, leave_one_out=True)
    distances = np.linalg.norm(z[:, None] - z[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")
    for k, error in ours.items():
        votes = np.stack([np.bincount(y[row[:k]], minlength=3) for row in order])
        assert error == pytest.approx(100.0 * np.mean(votes.argmax(axis=1) != y)), k
    # without leaving it out, each point is its own nearest neighbour
    assert knn_errors(z, y, z, y, [1]) == {1: 0.0} and ours[1] > 0.0
    with pytest.raises(DlgmmError, match="leave_one_out needs the same points"):
        knn_errors(z, y, z[:-1], y[:-1], [1], leave_one_out=True)
    with pytest.raises(DlgmmError, match="asks for 23 neighbours but only 22"):
        knn_errors(z, y, z, y, [23], leave_one_out=True)


def test_cluster_errors_of_a_map():
    z, y = two_clusters(30, 5)
    rng = np.random.default_rng(6)
    clustered = z[:, :2]
    scrambled = rng.normal(size=(30, 2))
    assert cluster_errors(z, clustered, y) == {"neighbors": 10, "map_error": 0.0, "latent_error": 0.0}
    assert cluster_errors(z, scrambled, y)["map_error"] > 20.0
    assert cluster_errors(z[:6], clustered[:6], y[:6])["neighbors"] == 5  # fewer points than neighbours
    assert cluster_errors(z, clustered, None) is None
    assert cluster_errors(z, clustered, np.full(30, -1)) is None
    with pytest.raises(DlgmmError, match="map points"):
        cluster_errors(z, clustered[:-1], y)


def test_knn_sensitivity_fits_the_first_n_training_examples():
    rng = np.random.default_rng(4)
    z_train, z_test = rng.normal(size=(50, 2)), rng.normal(size=(21, 2))
    y_train, y_test = rng.integers(0, 3, 50), rng.integers(0, 3, 21)
    mean_train, mean_test = z_train + 1.0, z_test * 2.0
    out = knn_sensitivity({"sample": (z_train, z_test), "mean": (mean_train, mean_test)}, y_train, y_test,
                          [3, 1], train_sizes=(2, 10, 20, 50, 80))
    # N below the largest k (2 < 3) or not below the training size (50, 80) is left out; the whole set is in
    assert {name: sorted(per_n) for name, per_n in out.items()} == {"sample": [10, 20, 50], "mean": [10, 20, 50]}
    for n in (10, 20, 50):
        assert out["sample"][n] == knn_errors(z_train[:n], y_train[:n], z_test, y_test, [1, 3])
        assert out["mean"][n] == knn_errors(mean_train[:n], y_train[:n], mean_test, y_test, [1, 3])


def test_mean_embedding_estimates_the_posterior_mean():
    """``embed(draws=S)`` averages S draws of ``model.embed``: for the Gauss-VAE, the posterior mean up to
    Monte Carlo error; one draw leaves the single-sample embedding bitwise as it was."""
    from dlgmm_core import build_model

    torch.manual_seed(0)
    model = build_model("gauss_vae", input_dim=784, hidden=8, latent=3, encoder_activation="relu").eval()
    x = (np.random.default_rng(5).random((7, 784)) < 0.3).astype(np.uint8)
    xt = torch.from_numpy(x).float()
    with torch.no_grad():
        posterior = model.posterior(xt)
    mean, std = posterior.mean.double().numpy(), posterior.stddev.double().numpy()
    draws = 4000
    z = embed(model, x, torch.device("cpu"), batch_size=3 * draws, desc="mean", progress=False, draws=draws)
    assert z.shape == (7, 3)
    assert np.all(np.abs(z - mean) < 5 * std / np.sqrt(draws))
    torch.manual_seed(1)
    one = embed(model, x, torch.device("cpu"), progress=False)
    torch.manual_seed(1)
    assert np.array_equal(one, embed(model, x, torch.device("cpu"), progress=False, draws=1))
    with pytest.raises(DlgmmError, match="draws must be a positive integer"):
        embed(model, x, torch.device("cpu"), progress=False, draws=0)
