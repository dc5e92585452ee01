"""The report shows the spread over seeds where a reader compares models: every seed's training curves in each
training figure, and every seed's t-SNE map and extreme prior components in the appendix; seeds not run yet are
named, never drawn or linked."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dlgmm_core import layout
from dlgmm_core.params.load import params_from_tree
from dlgmm_core.report import read_inputs, registered_models, render, write_report
from dlgmm_core.report.figures import HEADLINE_LINE, OTHER_SEED_LINE, training_curves_figure

from test_report import MODEL_NAMES, build_tree, write_inputs

SEEDS = (1234, 1235, 1236)
PROTOCOL = "authors"
#: What seed 1235's curves are shifted by against seed 1234's, so that a curve tells which seed's log it is.
SHIFT = 7.0


def _shift_curves(root: Path, seed: int) -> None:
    """Shift ``seed``'s ELBO curves by :data:`SHIFT` nats."""
    for path in (root / "logs" / PROTOCOL / f"seed-{seed}").rglob("elbo.tsv"):
        lines = path.read_text().splitlines()
        rows = [line.split("\t") for line in lines[1:]]
        path.write_text("\n".join([lines[0]] + [f"{step}\t{float(value) + SHIFT}" for step, value in rows]) + "\n")


def _params():
    return params_from_tree(build_tree(protocols=(PROTOCOL,), seeds=SEEDS))


def _report(root: Path, monkeypatch) -> tuple[str, dict[str, dict]]:
    """Write the report of :data:`SEEDS`; the README and, per dataset, what each training figure was drawn from."""
    drawn: dict[str, dict] = {}
    plot = render.plot_training_curves

    def spy(logs, models, title, headline_label, others_label, path):
        drawn[Path(path).stem] = {"logs": logs, "models": models, "title": title, "headline": headline_label,
                                  "others": others_label}
        return plot(logs, models, title, headline_label, others_label, path)

    monkeypatch.setattr(render, "plot_training_curves", spy)
    write_report(root, _params())
    return (root / "reports/README.md").read_text(), drawn


def _section(readme: str, heading: str) -> str:
    return readme.split(f"\n{heading}\n")[1].split("\n## ")[0]


def _lines(fig, split: int = 0) -> dict[str, object]:
    """The curves of panel ``split`` (0: train, 1: valid) by their gid ``seed-<seed>/<model>``."""
    return {line.get_gid(): line for line in fig.axes[split].get_lines()}


def test_a_figure_of_two_seeds_draws_both_in_each_models_colour(tmp_path, monkeypatch):
    for seed in SEEDS[:2]:
        write_inputs(tmp_path, PROTOCOL, seed=seed)
    _shift_curves(tmp_path, SEEDS[1])
    readme, drawn = _report(tmp_path, monkeypatch)

    mnist = drawn["mnist"]
    assert list(mnist["logs"]) == [1234, 1235]
    assert mnist["title"].endswith("ELBO per epoch (budget paper), 2 of 3 seeds")
    assert mnist["headline"] == "seed 1234 (thick)" and mnist["others"] == "other seeds (thin): 1235"
    assert (tmp_path / "reports/figures/training/authors/mnist.png").is_file()

    fig = training_curves_figure(mnist["logs"], mnist["models"], mnist["title"], mnist["headline"], mnist["others"])
    models = registered_models("mnist")
    for split in (0, 1):
        lines = _lines(fig, split)
        assert set(lines) == {f"seed-{seed}/{model}" for seed in SEEDS[:2] for model in models}
        for model in models:
            first, other = lines[f"seed-1234/{model}"], lines[f"seed-1235/{model}"]
            assert first.get_color() == other.get_color()  # one colour per model
            assert first.get_linewidth() == HEADLINE_LINE["linewidth"] > other.get_linewidth()
            assert other.get_alpha() == OTHER_SEED_LINE["alpha"] < first.get_alpha()
            # each curve is its own seed's log
            assert list(other.get_ydata()) == pytest.approx([y + SHIFT for y in first.get_ydata()])
        assert len({lines[f"seed-1234/{model}"].get_color() for model in models}) == len(models)
    legend = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert legend == [MODEL_NAMES[model] for model in models] + ["other seeds (thin): 1235"]
    assert fig.axes[1].get_legend().get_title().get_text() == "seed 1234 (thick)"

    training = _section(readme, "## Training")
    assert "![training curves authors mnist](figures/training/authors/mnist.png)\n\nSeeds drawn: 1234 thick; 1235 " \
           "thin and light, in each model's colour. Not run yet (or still training): 1236." in training


def test_seeds_not_run_or_still_training_are_absent(tmp_path, monkeypatch):
    write_inputs(tmp_path, PROTOCOL, seed=1234)
    # seed 1235: one Omniglot training finished, one MNIST training under way (dvclive's per-epoch summary)
    write_inputs(tmp_path, PROTOCOL, only={("omniglot", "dldpmm"), ("mnist", "dlgmm")}, seed=1235)
    summary = layout.train_metrics(PROTOCOL, 1235, "mnist", "dlgmm", tmp_path)
    summary.write_text(json.dumps({"step": 2, "train": {"elbo": -120.0}, "valid": {"elbo": -118.0}}))
    readme, drawn = _report(tmp_path, monkeypatch)

    assert list(drawn["mnist"]["logs"]) == [1234] and drawn["mnist"]["others"] is None
    assert drawn["mnist"]["title"].endswith(", 1 of 3 seeds")
    fig = training_curves_figure(**{key: drawn["mnist"][key] for key in ("logs", "models", "title")},
                                 headline_label=drawn["mnist"]["headline"], others_label=None)
    assert {gid.split("/")[0] for gid in _lines(fig)} == {"seed-1234"}
    assert [text.get_text() for text in fig.axes[1].get_legend().get_texts()] == \
           [MODEL_NAMES[model] for model in registered_models("mnist")]
    assert list(drawn["omniglot"]["logs"]) == [1234, 1235]
    assert list(drawn["omniglot"]["logs"][1235]) == ["dldpmm"]
    fig = training_curves_figure(drawn["omniglot"]["logs"], drawn["omniglot"]["models"], "", "", "")
    assert {gid for gid in _lines(fig) if gid.startswith("seed-1235/")} == {"seed-1235/dldpmm"}

    training = _section(readme, "## Training")
    assert "(figures/training/authors/mnist.png)\n\nSeeds drawn: 1234 thick. Not run yet (or still training): " \
           "1235, 1236." in training
    assert "(figures/training/authors/omniglot.png)\n\nSeeds drawn: 1234 thick; 1235 thin and light, in each " \
           "model's colour. Seed 1235: DLDPMM only. Not run yet (or still training): 1236." in training


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower()).replace(" ", "-")


def test_the_appendix_shows_every_seeds_map_and_names_the_seeds_not_run(tmp_path, monkeypatch):
    write_inputs(tmp_path, PROTOCOL, seed=1234)
    write_inputs(tmp_path, PROTOCOL, only={("mnist", "dlgmm")}, seed=1235)  # one model's stages of seed 1235
    readme, _ = _report(tmp_path, monkeypatch)

    heading = "## Appendix: t-SNE maps of every seed"
    # the report's last two sections: the t-SNE maps, then Figure 2a/2b, of every seed
    assert [part.split("\n")[0] for part in readme.rstrip("\n").split("\n## ")[-2:]] == \
           [heading[3:], "Appendix: Figure 2a/2b of every seed"]
    tsne = _section(readme, "## Figure 2c/2d: t-SNE of MNIST test-set latent samples")
    assert f"[appendix](#{_slug(heading)})" in tsne
    appendix = _section(readme, heading)
    assert "`seeds` (1234, 1235, 1236)" in appendix

    blocks = dict(re.findall(r"#### ([\w-]+)[^\n]*\n\n((?:- [^\n]*\n?)+)", appendix))
    assert list(blocks) == [MODEL_NAMES[model] for model in registered_models()]
    for model in registered_models():
        made = (1234, 1235) if model == "dlgmm" else (1234,)
        missing = [seed for seed in SEEDS if seed not in made]
        expected = [f"- seed {seed}: ![t-SNE {MODEL_NAMES[model]}, {PROTOCOL}, seed {seed}]"
                    f"(figures/tsne/{PROTOCOL}/seed-{seed}/mnist_{model}.png)" for seed in made]
        expected.append("- seeds not run yet: " + ", ".join(str(seed) for seed in missing))
        assert blocks[MODEL_NAMES[model]].strip().splitlines() == expected
    # every image the appendix links exists
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", appendix)
    assert len(links) == len(registered_models()) + 1
    assert all((tmp_path / "reports" / link).is_file() for link in links)


def test_the_appendix_shows_every_seeds_extreme_components_with_the_orientation_it_took(tmp_path, monkeypatch):
    write_inputs(tmp_path, PROTOCOL, seed=1234)
    write_inputs(tmp_path, PROTOCOL, seed=1235)
    write_inputs(tmp_path, PROTOCOL, only={("mnist", "dlgmm")}, seed=1236)  # no qualitative model yet
    # seed 1235 took the other orientation: its component 1 draws the wider digits
    path = tmp_path / "reports/figures/qualitative" / PROTOCOL / "seed-1235/components.json"
    data = json.loads(path.read_text())
    data["components"][-1]["width"] = 9.0
    path.write_text(json.dumps(data))
    readme, _ = _report(tmp_path, monkeypatch)

    heading = "## Appendix: Figure 2a/2b of every seed"
    components = _section(readme, "## Figure 2a/2b: samples from single prior components of the qualitative DLGMM")
    assert "The grids and numbers below are seed 1234's (params.yaml's first seed); every seed's two extremes are " \
           f"in the [appendix](#{_slug(heading)})." in components
    appendix = _section(readme, heading)
    assert "`seeds` (1234, 1235, 1236)" in appendix

    def line(seed: int, gap: str) -> str:
        folder = f"figures/qualitative/{PROTOCOL}/seed-{seed}"
        return (f"- seed {seed}, width gap {gap}: ![component 1, {PROTOCOL}, seed {seed}]({folder}/component_1.png) "
                f"![component 5, {PROTOCOL}, seed {seed}]({folder}/component_5.png)")

    # each seed's gap with its interval (1.96 x hypot(0.3, 0.3) = 0.83 px), as the division claim judges it
    expected = [line(1234, "+4.2 px (95 % interval +3.4 to +5.1 px), as the paper's (component 5 wider)"),
                line(1235, "-2.0 px (95 % interval -2.8 to -1.2 px), reversed (component 1 wider)"),
                "- seeds not run yet: 1236"]
    assert appendix.split(f"### `{PROTOCOL}`\n\n")[1].strip().splitlines() == expected
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", appendix)
    assert len(links) == 4 and all((tmp_path / "reports" / link).is_file() for link in links)
    # the claim the appendix illustrates rests on the same two seeds, one in each orientation
    assert "seed 1234 +4.2 px (+3.4 to +5.1), as the paper's (component 5 wider); seed 1235 -2.0 px (-2.8 to " \
           "-1.2), reversed (component 1 wider); 2 of 3 seeds" in _section(readme, "## Claims")


def test_the_elbo_axis_is_scaled_to_the_settled_epochs():
    """The first epochs' ELBOs (hundreds of nats below the rest) do not set the axis: the last 95 % of a long
    run's epochs do; a run of two epochs is scaled to both."""
    from dlgmm_core.history import RunHistory

    steps = np.arange(1, 101)
    elbo = np.where(steps <= 3, -500.0, -100.0 - 10.0 / steps)
    long = RunHistory({}, (steps, elbo), (steps, elbo))
    low, high = training_curves_figure({1234: {"dlgmm": long}}, ("dlgmm",), "", "", None).axes[0].get_ylim()
    assert -110.0 < low < -100.0 < high
    short = RunHistory({}, (steps[:2], np.array([-500.0, -100.0])), (steps[:2], np.array([-500.0, -100.0])))
    low, _ = training_curves_figure({1234: {"dlgmm": short}}, ("dlgmm",), "", "", None).axes[0].get_ylim()
    assert low < -500.0
