"""The report's own figures: training curves per protocol and dataset, and ours beside the authors' logs.

Static PNGs (``dvc plots show`` needs a CDN), written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io import save_figure
from .analysis import logged_runs
from .inputs import Inputs, RunHistory
from .paper import AUTHORS, name

#: The authors' logs' figure, under the training curves' folder.
AUTHORS_LOGS_FIGURE = "authors_logs_mnist.png"


#: The headline seed's curves, and the other seeds' (thinner, lighter, in the model's colour).
HEADLINE_LINE = {"linewidth": 1.4, "alpha": 1.0}
OTHER_SEED_LINE = {"linewidth": 0.8, "alpha": 0.45}


def settled_from(epochs: int) -> int:
    """The first epoch index a training figure's ELBO axis is scaled to: past the first 5 % of the epochs (at
    least the first epoch where there are more than two), whose ELBOs lie hundreds of nats below the rest and
    would squeeze the part where models differ into a sliver; the early epochs stay drawn, below the axis."""
    return 0 if epochs <= 2 else max(1, epochs // 20)


def drawn_models(logs: dict[int, dict[str, RunHistory]], models: tuple[str, ...]) -> list[str]:
    """The models of ``models`` (in that order) that at least one seed of ``logs`` has a history of."""
    return [model for model in models if any(model in by_model for by_model in logs.values())]


def training_curves_figure(logs: dict[int, dict[str, RunHistory]], models: tuple[str, ...], title: str,
                           headline_label: str, others_label: str | None) -> Any:
    """Train and valid ELBO per epoch of every model and seed in ``logs`` (``{seed: {model: history}}``), two
    panels, as a matplotlib Figure.

    Each model keeps one colour, the default colour cycle's in the order of ``models`` (the same in every
    figure, whichever models a run lacks; ``models`` holds every model of ``logs``). The first
    seed of ``logs`` is the headline, drawn as :data:`HEADLINE_LINE`; every other seed's curves are drawn
    thinner and lighter (:data:`OTHER_SEED_LINE`) in the same colour, below the headline's. Each curve's
    ``gid`` is ``seed-<seed>/<model>``. The legend names each model once, under the title ``headline_label``;
    ``others_label`` (None when only one seed is drawn) labels a grey line in the other seeds' style.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    colours = {model: f"C{index}" for index, model in enumerate(models)}
    models = drawn_models(logs, models)
    headline = next(iter(logs))
    fig = Figure(figsize=(11.0, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    values = []
    for ax, split in zip(axes, ("train", "valid")):
        # the other seeds first, so the headline's curves lie on top
        for seed in [s for s in logs if s != headline] + [headline]:
            style = HEADLINE_LINE if seed == headline else OTHER_SEED_LINE
            for model, log in logs[seed].items():
                steps, elbo = getattr(log, split)
                ax.plot(steps, elbo, color=colours[model], marker="o" if len(steps) < 15 else None,
                        markersize=3 if seed == headline else 2, gid=f"seed-{seed}/{model}", **style)
                values.append(elbo[settled_from(len(elbo)):])
        ax.set_title(f"{split} ELBO", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ELBO (nats per image)")
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        margin = max(0.05 * (high - low), 0.5)
        axes[0].set_ylim(low - margin, high + margin)
    # one entry per model in its colour (in the headline's style where the headline seed has it), then the
    # other seeds' style
    handles = [Line2D([], [], color=colours[m], **(HEADLINE_LINE if m in logs[headline] else OTHER_SEED_LINE))
               for m in models]
    labels = [name(m) for m in models]
    if others_label is not None:
        handles.append(Line2D([], [], color="0.4", **OTHER_SEED_LINE))
        labels.append(others_label)
    axes[1].legend(handles, labels, title=headline_label, fontsize=8, title_fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_training_curves(logs: dict[int, dict[str, RunHistory]], models: tuple[str, ...], title: str,
                         headline_label: str, others_label: str | None, path: str | os.PathLike) -> Path:
    """Write :func:`training_curves_figure` to ``path`` (PNG)."""
    return save_figure(training_curves_figure(logs, models, title, headline_label, others_label), path)


def plot_authors_logs(inputs: Inputs, path: str | os.PathLike) -> Path | None:
    """Validation ELBO per epoch of the authors' logged runs and of ours (protocol ``authors``), one panel per
    model; None when protocol ``authors`` is not listed."""
    from matplotlib.figure import Figure

    runs = logged_runs(inputs)
    if not runs:
        return None
    fig = Figure(figsize=(11.0, 4.2))
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (model, (log, ours)) in zip(axes, runs.items()):
        ax.plot(log.epoch, log.valid_elbo, label="authors' log", linewidth=1.4, color="0.4")
        if ours is not None:
            ax.plot(*ours.valid, label=f"ours, protocol {AUTHORS}", linewidth=1.4)
        ax.set_title(f"MNIST {name(model)}", fontsize=10)
        ax.set_xlabel("epoch")
        # From epoch 10 on, where the curves differ by nats; a short run (a quick budget) from its epoch 3.
        first = 10 if ours is None or len(ours.valid[1]) >= 30 else min(3, len(ours.valid[1]))
        low = [float(log.valid_elbo[first - 1])] + ([] if ours is None else [float(ours.valid[1][first - 1])])
        ax.set_ylim(min(low) - 2.0, float(log.valid_elbo.max()) + 2.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("validation ELBO (nats per image)")
    fig.suptitle("Validation ELBO per epoch: ours beside the authors' logged runs", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
