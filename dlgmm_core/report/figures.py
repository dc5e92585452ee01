"""The report's own figures: training curves per protocol and dataset, and ours beside the authors' logs.

Static PNGs (``dvc plots show`` needs a CDN), written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io import save_figure
from .analysis import logged_runs
from .inputs import Inputs, RunHistory
from .paper import AUTHORS, name

#: The authors' logs' figure, under the training curves' folder.
AUTHORS_LOGS_FIGURE = "authors_logs_mnist.png"


def plot_training_curves(logs: dict[str, RunHistory], title: str, path: str | os.PathLike) -> Path:
    """Train and valid ELBO per epoch of every model in ``logs`` (two panels)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11.0, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    values = []
    for ax, split in zip(axes, ("train", "valid")):
        for model, log in logs.items():
            steps, elbo = getattr(log, split)
            ax.plot(steps, elbo, label=name(model), linewidth=1.4, marker="o" if len(steps) < 15 else None,
                    markersize=3)
            values.append(elbo[1:] if len(elbo) > 2 else elbo)
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
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


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
