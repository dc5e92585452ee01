"""The four models: construction, stick weights, Eq. (1) as written, gradients, extremes, shapes."""
from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from dlgmm_core import DlgmmError, build_model, registry
from dlgmm_core.distributions import stick_breaking
from dlgmm_core.fields import as_dict
from dlgmm_core.nets import gaussian_log_density, gaussian_mixture_log_densities

KINDS = ("gauss_vae", "sb_vae", "dlgmm", "dldpmm")
KL = ("quadrature", "taylor")


def config(kind: str, *, input_dim=12, hidden=16, latent=3, k=4, kl="quadrature", activation="relu",
           **overrides) -> dict:
    trunk = dict(input_dim=input_dim, hidden=hidden, encoder_activation=activation)
    base = {
        "gauss_vae": dict(**trunk, latent=latent),
        "sb_vae": dict(**trunk, truncation=k, alpha0=5.0, kl_method=kl, taylor_terms=10, decoder_input="pi"),
        "dlgmm": dict(**trunk, latent=latent, components=k, alpha=1.0,
                      prior_means=[0.0], prior_scales=[1.0], kl_method=kl, taylor_terms=10),
        "dldpmm": dict(**trunk, latent=latent, truncation=k, alpha0=1.0,
                       prior_means=[0.0], prior_scales=[1.0], kl_method=kl, taylor_terms=10),
    }[kind]
    base.update(overrides)
    return base


def scramble(model: torch.nn.Module, std: float = 0.3) -> torch.nn.Module:
    """Random weights well away from the tiny N(0, 0.01^2) init, so heads are not all ~0."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model


def binary(n: int, d: int, p: float = 0.3) -> torch.Tensor:
    return (torch.rand(n, d) < p).float()


# --- construction ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind):
    torch.manual_seed(0)
    cfg = config(kind)
    model = build_model(kind, **cfg)
    assert model.kind == kind
    assert as_dict(model.config) == cfg and type(model.config) is registry.KINDS[kind][0]
    again = build_model(model.kind, **as_dict(model.config))
    assert type(model)(type(model.config)(**as_dict(model.config))).config == model.config  # Model(Config(**args))
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert model.latent_dim == (cfg["truncation"] if kind == "sb_vae" else cfg["latent"])


@pytest.mark.parametrize("kind", KINDS)
def test_linear_encoder_drops_only_the_relu(kind):
    """encoder_activation=linear: no ReLU after the first layer, the same weights under the same keys."""
    models = {}
    for activation in ("relu", "linear"):
        torch.manual_seed(0)
        models[activation] = build_model(kind, **config(kind, activation=activation))
    relu, linear = models["relu"], models["linear"]
    assert [type(m) for m in relu.encoder] == [torch.nn.Linear, torch.nn.ReLU]
    assert [type(m) for m in linear.encoder] == [torch.nn.Linear]
    assert relu.config.encoder_activation == "relu" and linear.config.encoder_activation == "linear"
    assert list(relu.state_dict()) == list(linear.state_dict())
    assert all(torch.equal(relu.state_dict()[key], value) for key, value in linear.state_dict().items())
    scramble(linear)
    x = binary(5, 12)
    affine = torch.nn.functional.linear(x, linear.encoder[0].weight, linear.encoder[0].bias)
    assert (affine < 0).any() and torch.equal(linear.encoder(x), affine)
    relu.load_state_dict(linear.state_dict())
    assert torch.equal(relu.encoder(x), affine.clamp(min=0))


def test_encoder_activation_defaults_to_relu_when_omitted():
    cfg = config("dlgmm")
    del cfg["encoder_activation"]
    model = build_model("dlgmm", **cfg)
    assert model.config.encoder_activation == "relu" and isinstance(model.encoder[-1], torch.nn.ReLU)


def test_init_is_authors_normal_001():
    torch.manual_seed(0)
    model = build_model("gauss_vae", input_dim=784, hidden=500, latent=25)
    weight = model.encoder[0].weight
    assert abs(weight.std().item() - 0.01) < 5e-4
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, torch.nn.Linear))


@pytest.mark.parametrize("kind, bad, needle", [
    ("nope", {}, "unknown model kind"),
    ("gauss_vae", {"latent": None}, "missing argument(s) latent"),
    ("gauss_vae", {"extra_arg": 1}, "unknown argument(s) extra_arg"),
    ("gauss_vae", {"hidden": 0}, "hidden"),
    ("gauss_vae", {"latent": 2.5}, "latent"),
    ("gauss_vae", {"input_dim": True}, "input_dim"),
    ("gauss_vae", {"encoder_activation": "tanh"}, "encoder_activation must be one of relu, linear (got 'tanh')"),
    ("dldpmm", {"encoder_activation": "ReLU"}, "encoder_activation must be one of relu, linear (got 'ReLU')"),
    ("sb_vae", {"truncation": 1}, "truncation"),
    ("sb_vae", {"alpha0": -1.0}, "alpha0"),
    ("sb_vae", {"alpha0": float("nan")}, "alpha0"),
    ("sb_vae", {"kl_method": "exact"}, "kl_method"),
    ("sb_vae", {"taylor_terms": 0}, "taylor_terms"),
    ("dlgmm", {"alpha": 0}, "alpha"),
    ("dlgmm", {"prior_means": [0.0, 1.0]}, "prior_means"),
    ("dlgmm", {"prior_scales": [1.0, 0.0, 1.0, 1.0]}, "prior_scales"),
    ("dlgmm", {"prior_means": 0.0}, "prior_means"),
    ("dlgmm", {"truncation": 4}, "unknown argument(s) truncation"),
    ("dldpmm", {"components": 4}, "unknown argument(s) components"),
])
def test_build_model_errors(kind, bad, needle):
    cfg = config(kind if kind in KINDS else "gauss_vae")
    for key, value in bad.items():
        if value is None:
            cfg.pop(key)
        else:
            cfg[key] = value
    with pytest.raises(DlgmmError, match=None) as err:
        build_model(kind, **cfg)
    assert needle in str(err.value)


def test_per_component_priors_accepted():
    model = build_model("dlgmm", **config("dlgmm", k=4, prior_means=[-1.5, -0.5, 0.5, 1.5],
                                          prior_scales=[1.0, 2.0, 1.0, 0.5]))
    assert torch.allclose(model.prior_mean, torch.tensor([-1.5, -0.5, 0.5, 1.5]))
    assert torch.allclose(model.prior_log_scale.exp(), torch.tensor([1.0, 2.0, 1.0, 0.5]))


def test_stick_priors_differ_as_the_paper_says():
    like = torch.zeros(1)
    dlgmm = build_model("dlgmm", **config("dlgmm", k=4, alpha=0.7)).stick_prior(like)
    dp = build_model("dldpmm", **config("dldpmm", k=4, alpha0=2.0)).stick_prior(like)
    assert torch.allclose(dlgmm.concentration1, torch.full((3,), 0.7))
    assert torch.allclose(dlgmm.concentration0, torch.tensor([3 * 0.7, 2 * 0.7, 0.7]))
    assert torch.allclose(dp.concentration1, torch.ones(3)) and torch.allclose(dp.concentration0, torch.full((3,), 2.0))


# --- stick weights --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dlgmm", "dldpmm"])
def test_mixture_weights_are_a_distribution_and_mean_is_exact(kind):
    torch.manual_seed(1)
    model = scramble(build_model(kind, **config(kind, k=5)), std=0.5).double()
    x = binary(3, 12).double()
    _, _, q_v = model.encode(x)
    from dlgmm_core.distributions import log_stick_breaking
    pi_hat = log_stick_breaking(*q_v.log_rsample((100,))).exp()
    assert (pi_hat > 0).all()
    assert torch.allclose(pi_hat.sum(-1), torch.ones(100, 3, dtype=torch.float64), atol=1e-12)
    mean_pi = stick_breaking(q_v.mean)
    assert (mean_pi > 0).all() and torch.allclose(mean_pi.sum(-1), torch.ones(3, dtype=torch.float64))
    monte_carlo = stick_breaking(q_v.rsample((40000,))).mean(0)
    assert torch.allclose(mean_pi, monte_carlo, atol=0.01), (mean_pi, monte_carlo)


def test_sb_vae_embedding_is_a_weight_vector():
    torch.manual_seed(2)
    model = scramble(build_model("sb_vae", **config("sb_vae", k=6)))
    pi = model.embed(binary(5, 12))
    assert pi.shape == (5, 6) and (pi > 0).all()
    assert torch.allclose(pi.sum(-1), torch.ones(5), atol=1e-5)


# --- Eq. (1) ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dlgmm", "dldpmm"])
def test_batched_decoding_and_elbo_match_a_per_component_loop(kind):
    """model.elbo against Eq. (1) written out with a Python loop over components and torch.distributions."""
    torch.manual_seed(3)
    model = scramble(build_model(kind, **config(kind, k=4, prior_means=[-1.0, 0.0, 0.5, 2.0],
                                                prior_scales=[1.0, 0.5, 2.0, 1.0]))).double()
    x = binary(6, 12).double()
    torch.manual_seed(11)
    elbo = model.elbo(x)

    torch.manual_seed(11)  # same draws, same order as the model: z noise first, then the sticks
    mu, log_sigma, q_v = model.encode(x)
    sigma = log_sigma.exp()
    z = mu + sigma * torch.randn_like(mu)
    log_v, _ = q_v.log_rsample()
    pi_hat = stick_breaking(log_v.exp())
    mean_pi = stick_breaking(q_v.mean)
    batched = model.decode(z.reshape(-1, z.shape[-1])).view(6, 4, -1)
    total = -kl_divergence(q_v, model.stick_prior(mu)).sum(-1)
    mixture_density = torch.zeros(6, dtype=torch.float64)
    for k in range(4):
        logits_k = model.decode(z[:, k])
        assert torch.allclose(batched[:, k], logits_k, atol=1e-12)
        log_lik = Bernoulli(logits=logits_k).log_prob(x).sum(-1)
        q_k = Normal(mu[:, k], sigma[:, k])
        p_k = Normal(torch.full_like(mu[:, k], model.config.prior_means[k]),
                     torch.full_like(mu[:, k], model.config.prior_scales[k]))
        expected_log_prior = -(q_k.entropy() + kl_divergence(q_k, p_k)).sum(-1)  # E_q log p = -H(q) - KL(q||p)
        total = total + mean_pi[:, k] * (log_lik + expected_log_prior)
        mixture_density = mixture_density + pi_hat[:, k] * q_k.log_prob(z[:, k]).sum(-1).exp()
    total = total - mixture_density.log()
    assert torch.allclose(elbo, total, atol=1e-8), (elbo, total)


def test_gauss_vae_elbo_matches_definition():
    torch.manual_seed(4)
    model = scramble(build_model("gauss_vae", **config("gauss_vae"))).double()
    x = binary(5, 12).double()
    torch.manual_seed(9)
    elbo = model.elbo(x)
    torch.manual_seed(9)
    q = model.posterior(x)
    z = q.mean + q.stddev * torch.randn_like(q.mean)
    expected = Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1) - \
        kl_divergence(Normal(q.mean, q.stddev), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(elbo, expected, atol=1e-10)


# --- gradients, shapes, extremes --------------------------------------------------------------
def _check_finite_gradients(model, x):
    model.zero_grad()
    elbo = model.elbo(x)
    assert elbo.shape == (x.shape[0],) and torch.isfinite(elbo).all(), elbo
    (-elbo.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    return elbo


_SIZES = [
    ("gauss_vae", dict(latent=3)), ("gauss_vae", dict(input_dim=784, hidden=500, latent=25)),
    ("sb_vae", dict(k=3)), ("sb_vae", dict(input_dim=784, hidden=500, k=25)),
    ("dlgmm", dict(k=2)), ("dlgmm", dict(input_dim=784, hidden=500, latent=25, k=3)),
    ("dldpmm", dict(k=3)), ("dldpmm", dict(input_dim=784, hidden=500, latent=25, k=17)),
]


@pytest.mark.parametrize("kind, sizes, kl", [(kind, sizes, kl) for kind, sizes in _SIZES
                                             for kl in (["quadrature"] if kind == "gauss_vae" else KL)])
def test_gradients_finite(kind, sizes, kl):
    torch.manual_seed(5)
    model = build_model(kind, **config(kind, kl=kl, **sizes))
    _check_finite_gradients(model, binary(4, model.config.input_dim))
    _check_finite_gradients(scramble(model, 0.1), binary(4, model.config.input_dim))


@pytest.mark.parametrize("k", [1, 2, 50])
def test_mixture_shapes_any_k(k):
    torch.manual_seed(6)
    model = build_model("dlgmm", **config("dlgmm", k=k, latent=3))
    x = binary(7, 12)
    _check_finite_gradients(model, x)
    assert model.embed(x).shape == (7, 3)
    assert model.sample_prior(9).shape == (9, 3)
    assert model.sample_prior(9, component=k - 1).shape == (9, 3)
    assert model.decode(torch.randn(8, 3)).shape == (8, 12)
    assert model.log_importance_weights(x, 5).shape == (5, 7)


@pytest.mark.parametrize("kind", KINDS)
def test_method_shapes(kind):
    torch.manual_seed(7)
    model = build_model(kind, **config(kind, k=5, latent=3))
    x = binary(7, 12)
    d = model.latent_dim
    assert model.embed(x).shape == (7, d)
    assert model.sample_prior(4).shape == (4, d)
    assert model.decode(model.sample_prior(4)).shape == (4, 12)
    assert model.log_importance_weights(x, 3).shape == (3, 7)
    if kind in ("gauss_vae", "sb_vae"):
        with pytest.raises(DlgmmError):
            model.sample_prior(4, component=0)
    else:
        for bad in (-1, 5, 1.0, True):
            with pytest.raises(DlgmmError):
                model.sample_prior(4, component=bad)


def test_sample_prior_component_uses_its_prior():
    torch.manual_seed(8)
    model = build_model("dlgmm", **config("dlgmm", k=3, latent=2, prior_means=[-5.0, 0.0, 5.0],
                                          prior_scales=[0.1, 1.0, 0.5]))
    z = model.sample_prior(4000, component=2)
    assert abs(z.mean().item() - 5.0) < 0.05 and abs(z.std().item() - 0.5) < 0.03
    mixed = model.sample_prior(6000)  # symmetric Dirichlet(1): each component chosen ~1/3 of the time
    share = (mixed[:, 0] < -3).float().mean().item()
    assert abs(share - 1 / 3) < 0.03


_EXTREMES = [("gauss_vae", "quadrature", sign, 1) for sign in (1, -1)] + [
    (kind, kl, sign_a, sign_b) for kind in ("sb_vae", "dlgmm", "dldpmm") for kl in KL
    for sign_a in (1, -1) for sign_b in (1, -1)]


@pytest.mark.parametrize("kind, kl, sign_a, sign_b", _EXTREMES)
def test_extreme_heads_stay_finite(kind, kl, sign_a, sign_b):
    """Head biases at +-50 (log sigma, log a, log b) must give finite ELBO, gradients and importance weights."""
    torch.manual_seed(9)
    model = build_model(kind, **config(kind, kl=kl, k=4))
    with torch.no_grad():
        if kind == "gauss_vae":
            model.log_sigma_head[0].bias.fill_(50.0 * sign_a)
        elif kind == "sb_vae":
            model.log_a_head[0].bias.fill_(50.0 * sign_a)
            model.log_b_head[0].bias.fill_(50.0 * sign_b)
        else:
            gauss = model.gauss_head[0].bias.view(4, 2, -1)
            gauss[:, 1].fill_(50.0 * sign_a)  # log sigma of every component
            model.log_a_head[0].bias.fill_(50.0 * sign_a)
            model.log_b_head[0].bias.fill_(50.0 * sign_b)
    x = binary(6, 12)
    _check_finite_gradients(model, x)
    with torch.no_grad():
        assert torch.isfinite(model.log_importance_weights(x, 20)).all()
        assert torch.isfinite(model.embed(x)).all()


def test_dtypes_float64_and_bf16_autocast():
    torch.manual_seed(10)
    x = binary(4, 12)
    for kind in KINDS:
        model = build_model(kind, **config(kind))
        assert model.double().elbo(x.double()).dtype == torch.float64
        model = model.float()
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            elbo = model.elbo(x)
        torch.manual_seed(1)
        reference = model.elbo(x)
        assert elbo.dtype == torch.float32 and torch.isfinite(elbo).all()
        assert (elbo - reference).abs().max().item() < 0.02 * reference.abs().max().item(), kind


def test_kumaraswamy_density_from_logs():
    """Matches Kumaraswamy.log_prob where v is representable, and float64 where v is within 1e-38 of 1."""
    from dlgmm_core.distributions import Kumaraswamy
    from dlgmm_core.distributions import kumaraswamy_log_density_from_logs

    torch.manual_seed(12)
    for a, b in [(1.0, 1.0), (0.3, 4.0), (3.0, 0.5), (1e-3, 1e-3), (1e3, 1e3), (1e-3, 1e3), (1e3, 1e-3), (5.0, 1e-3)]:
        a64, b64 = torch.full((4000,), a, dtype=torch.float64), torch.full((4000,), b, dtype=torch.float64)
        log_v, log1m_v = Kumaraswamy(a64, b64).log_rsample()
        exact = kumaraswamy_log_density_from_logs(a64, b64, log_v, log1m_v)
        single = kumaraswamy_log_density_from_logs(a64.float(), b64.float(), log_v.float(), log1m_v.float())
        assert torch.isfinite(single).all()
        assert ((single.double() - exact).abs() / (1 + exact.abs())).max().item() < 1e-5, (a, b)
        if 0.1 <= a <= 10 and 0.1 <= b <= 10:
            reference = Kumaraswamy(a64, b64).log_prob(log_v.exp())
            assert torch.allclose(exact, reference, atol=1e-9), (a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mixture_log_densities_by_matrix_product_equal_the_direct_form(dtype):
    """The expanded-square (bmm) densities of log_importance_weights against the direct form in float64."""
    gen = torch.Generator().manual_seed(0)
    samples, batch, k, dim = 200, 6, 17, 25
    mu = 3 * torch.randn(batch, k, dim, generator=gen, dtype=dtype)
    log_sigma = torch.empty(batch, k, dim, dtype=dtype).uniform_(-4.0, 1.0, generator=gen)
    index = torch.randint(k, (samples, batch), generator=gen)
    rows = torch.arange(batch)
    z = mu[rows, index] + log_sigma[rows, index].exp() * torch.randn(samples, batch, dim, generator=gen, dtype=dtype)
    prior = (torch.linspace(-2, 2, k, dtype=dtype)[:, None], torch.linspace(-1, 0.5, k, dtype=dtype)[:, None])
    for mean, log_scale in ((mu, log_sigma), prior):
        direct = gaussian_log_density(z.double().unsqueeze(2), mean.double(), log_scale.double())
        ours = gaussian_mixture_log_densities(z, mean, log_scale)
        assert ours.dtype == dtype and ours.shape == (samples, batch, k)
        # float32: the result's own rounding (values reach -1e6 for far components)
        tolerance = (1e-4 + 2e-7 * direct.abs()) if dtype == torch.float32 else 1e-9 * (1 + direct.abs())
        assert ((ours.double() - direct).abs() <= tolerance).all()
        # where a component matters in the log-sum-exp (within 30 nats of the best), within 1e-4 nats
        near = direct > direct.max(-1, keepdim=True).values - 30
        assert (ours.double() - direct)[near].abs().max() < 1e-4
