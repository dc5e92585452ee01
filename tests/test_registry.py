"""The model registry: a model kind added by its file, one registry line and its params.yaml section is
loaded, checked, built, saved and reported."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import yaml
from torch import nn

from dlgmm_core import DlgmmError, build_model, fields, load_checkpoint, registry, save_checkpoint
from dlgmm_core.fields import as_dict
from dlgmm_core.nets import bernoulli_log_likelihood
from dlgmm_core.params.load import load_params, params_from_tree
from dlgmm_core.params.sections import stage_model_config
from dlgmm_core.report import MODELS, ReportModel, write_report
from dlgmm_core.report.paper import table_rows
from test_report import NEIGHBORS, PNG, nll_payload, parse_table, write_inputs

ROOT = Path(__file__).resolve().parents[1]
_LOG_TWO_PI = math.log(2 * math.pi)


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    """A toy kind's config, declared as a model file declares one."""

    kind: ClassVar[str] = "toy"
    title: ClassVar[str] = "Toy-VAE"

    input_dim: int = fields.integer(from_data=True)
    latent: int = fields.integer(minimum=2)

    def __post_init__(self) -> None:
        fields.check(self)

    def architecture(self) -> str:
        return f"{self.latent}s"


class ToyVAE(nn.Module):
    """One linear layer each way: q(z|x) = N(W x, I), p(z) = N(0, I), p(x|z) = Bernoulli(logits V z)."""

    kind = ToyConfig.kind

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent
        self.encoder = nn.Linear(config.input_dim, config.latent)
        self.decoder = nn.Linear(config.latent, config.input_dim)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        mu = self.encoder(x)
        z = mu + torch.randn_like(mu)
        kl = 0.5 * mu.square().sum(-1)  # KL(N(mu, I) || N(0, I))
        return bernoulli_log_likelihood(x, self.decode(z)) - kl

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    @torch.no_grad()
    def sample_prior(self, n: int, component: int | None = None) -> torch.Tensor:
        if component is not None:
            raise DlgmmError(f"toy has no mixture components (got component={component!r})")
        return torch.randn(n, self.latent_dim)

    def log_importance_weights(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        mu = self.encoder(x)
        eps = torch.randn(samples, *mu.shape)
        z = mu + eps
        log_p_z = (-0.5 * z.square() - 0.5 * _LOG_TWO_PI).sum(-1)
        log_q_z = (-0.5 * eps.square() - 0.5 * _LOG_TWO_PI).sum(-1)
        logits = self.decode(z.reshape(-1, self.latent_dim)).view(samples, x.shape[0], -1)
        return bernoulli_log_likelihood(x, logits) + log_p_z - log_q_z


@pytest.fixture()
def register_toy(monkeypatch):
    """Register the toy kind as its one registry line does (and its params.yaml section, named like it);
    undone after the test."""

    def register() -> None:
        monkeypatch.setitem(registry.KINDS, "toy", (ToyConfig, ToyVAE))
        monkeypatch.setitem(registry.SECTIONS, "toy", registry.Section("toy"))

    yield register
    monkeypatch.undo()
    assert "toy" not in registry.KINDS and "toy" not in registry.SECTIONS


def toy_tree(latent=3) -> dict:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["model"]["toy"] = {"latent": latent}
    return tree


def test_builtin_registry_is_the_papers():
    assert tuple(registry.KINDS) == ("gauss_vae", "sb_vae", "dlgmm", "dldpmm")
    assert {key: section.kind for key, section in registry.SECTIONS.items()} == {
        "gauss_vae": "gauss_vae", "sb_vae": "sb_vae", "dlgmm": "dlgmm", "dldpmm": "dldpmm", "qualitative": "dlgmm"}
    assert registry.title("qualitative") == "Qualitative DLGMM" and registry.title("sb_vae") == "SB-VAE"
    assert registry.evaluated_keys() == ("gauss_vae", "sb_vae", "dlgmm", "dldpmm")
    assert registry.trained_keys("omniglot") == registry.evaluated_keys()
    assert registry.trained_keys("mnist") == registry.evaluated_keys() + ("qualitative",)
    assert table_rows("nll") == ("dlgmm", "dldpmm", "gauss_vae", "sb_vae")
    assert table_rows("knn") == ("dlgmm", "sb_vae", "gauss_vae", "dldpmm")
    params = load_params(ROOT / "params.yaml")  # the committed sizes are the paper's
    assert {key: stage_model_config(params, key).architecture() for key in registry.evaluated_keys()} == \
        {key: MODELS[key].paper_architecture for key in registry.evaluated_keys()} == {"gauss_vae": "500d-25s", "sb_vae": "500d-25t", "dlgmm": "500d-3x25s",
                                "dldpmm": "500d-17tx25s"}


def test_every_kind_is_its_config_and_model_class():
    for kind, (config_class, model_class) in registry.KINDS.items():
        assert config_class.kind == kind and model_class.__module__ == config_class.__module__
    params = load_params(ROOT / "params.yaml")
    for key in registry.SECTIONS:
        config = stage_model_config(params, key)
        torch.manual_seed(0)
        model = registry.build(config)
        assert model.kind == config.kind == registry.SECTIONS[key].kind and model.config is config


def test_reading_params_loads_no_torch_and_the_training_code_no_dvc():
    """Parameters are read (YAML, protocols, a stage's own file) and paths named without torch; the models, the
    training step and the estimators import without dvc, dvclive and ruamel (a GPU machine may lack them)."""
    light = ("import sys, dlgmm_core.layout, dlgmm_core.params.read, dlgmm_core.params.merge, "
             "dlgmm_core.params.stage; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr
    heavy = ("import sys, dlgmm_core.registry, dlgmm_core.training, dlgmm_core.estimators, dlgmm_core.checkpoint; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dvc', 'dvclive', 'ruamel')))")
    result = subprocess.run([sys.executable, "-c", heavy], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


def test_an_unknown_kind_is_named():
    with pytest.raises(DlgmmError, match="unknown model kind 'toy'"):
        build_model("toy", input_dim=4, latent=2)


def test_config_loader_reads_and_checks_the_toy_section(register_toy):
    register_toy()
    params = params_from_tree(toy_tree())
    assert stage_model_config(params, "toy") == ToyConfig(input_dim=784, latent=3)
    with pytest.raises(DlgmmError, match=r"^params.yaml: model.toy.latent must be >= 2 \(got 1\)$"):
        params_from_tree(toy_tree(latent=1))
    tree = toy_tree()
    del tree["model"]["toy"]["latent"]
    with pytest.raises(DlgmmError, match="^params.yaml: missing key model.toy.latent$"):
        params_from_tree(tree)


def test_build_model_and_checkpoint_round_trip(register_toy, tmp_path):
    register_toy()
    torch.manual_seed(0)
    model = build_model("toy", input_dim=12, latent=3)
    assert isinstance(model, ToyVAE) and as_dict(model.config) == {"input_dim": 12, "latent": 3}
    with pytest.raises(DlgmmError, match=r"^build_model\('toy'\): latent must be >= 2 \(got 1\)$"):
        build_model("toy", input_dim=12, latent=1)
    with pytest.raises(DlgmmError, match=r"unknown argument\(s\) hidden \(expected exactly: input_dim, latent\)"):
        build_model("toy", input_dim=12, latent=3, hidden=8)
    path = tmp_path / "toy.pt"
    save_checkpoint(path, model, metadata={"model": "toy"})
    loaded = load_checkpoint(path, expect_kind="toy", expect_input_dim=12)
    assert isinstance(loaded, ToyVAE) and loaded.checkpoint_metadata == {"model": "toy"}
    for (name, a), (other, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == other and torch.equal(a, b)
    x = (torch.rand(5, 12) < 0.5).float()
    assert torch.equal(model.embed(x), loaded.embed(x))


def test_report_covers_the_toy(register_toy, tmp_path, monkeypatch):
    write_inputs(tmp_path)  # the paper's models, protocol authors
    register_toy()
    # the report's table of notations (dlgmm_core/report/paper.py) gets the toy's row; its name is the registry's
    monkeypatch.setitem(MODELS, "toy", ReportModel(lambda sizes: f"{sizes['latent']}s"))
    for dataset in ("mnist", "omniglot"):
        nll = 90.5 + len(dataset)
        payload = nll_payload(nll, 0.4, "authors", None)
        for folder, data in (("nll", payload), ("knn", {f"error@{k}": 40.0 + k for k in NEIGHBORS})):
            path = tmp_path / "reports" / folder / "authors" / "seed-1234" / dataset / "toy.json"
            path.write_text(json.dumps(data))
        (tmp_path / "reports/figures/samples/authors/seed-1234" / f"{dataset}_toy.png").write_bytes(PNG)
        logs = tmp_path / "logs/authors/seed-1234" / dataset / "toy"
        for split in ("train", "valid"):
            (logs / "plots/metrics" / split).mkdir(parents=True)
            (logs / "plots/metrics" / split / "elbo.tsv").write_text("step\telbo\n1\t-150.0\n2\t-140.0\n")
        (logs / "metrics.json").write_text(json.dumps({"best_valid_elbo": -140.0, "best_epoch": 2, "epochs": 2}))
    (tmp_path / "reports/figures/tsne/authors/seed-1234/mnist_toy.png").write_bytes(PNG)
    clusters = {"neighbors": 10, "map_error": 33.25, "latent_error": 30.5}
    (tmp_path / "reports/figures/tsne/authors/seed-1234/mnist_toy.json").write_text(json.dumps({"points": 2000,
                                                                                     "clusters": clusters}))

    tree = toy_tree()
    tree["protocols"] = ["authors"]
    write_report(tmp_path, params_from_tree(tree))
    readme = (tmp_path / "reports/README.md").read_text()
    nll = parse_table(readme, "## Figure 3b")
    assert list(nll)[-1] == "Toy-VAE (3s)"  # an extra row, after the paper's, without a paper architecture
    assert nll["Toy-VAE (3s)"]["MNIST paper"] == "—" and nll["Toy-VAE (3s)"]["MNIST authors"] == "95.50 ± 0.21"
    knn = parse_table(readme, "## Figure 3a")
    assert list(knn) == ["DLGMM", "SB-VAE", "Gauss-VAE", "DLDPMM", "Toy-VAE"]
    assert knn["Toy-VAE"]["k=5 authors"] == "45.00"
    assert "MNIST Toy-VAE" in parse_table(readme, "### Training: `authors`")
    assert parse_table(readme, "### Estimators: `authors`")["Omniglot Toy-VAE"]["authors' - ours"] == "+0.40"
    assert "| `authors` | Toy-VAE | 2000 | 10 | 33.25 | 30.50 |" in readme  # the t-SNE map in numbers
    assert "](figures/tsne/authors/seed-1234/mnist_toy.png)" in readme and "](figures/samples/authors/seed-1234/omniglot_toy.png)" in readme
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["authors.omniglot.toy.nll"] == 98.5 and metrics["authors.mnist.toy.knn_err@10"] == 50.0
    assert metrics["authors.mnist.toy.epochs"] == 2
