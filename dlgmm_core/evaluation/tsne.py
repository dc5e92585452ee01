"""Figure 2c/2d: 2-D t-SNE of test-set latent samples, coloured by class.

The paper reads its t-SNE maps by eye ("the DLGMM's latent space exhibits
conspicuously better clustering"); :func:`cluster_errors` puts a number on
what the eye sees: the leave-one-out kNN error of the digit class among the
map's points, in the 2-D map and in the latent space it was made from.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DlgmmError
from ..io import save_figure
from .knn import knn_predictions

#: Neighbours of :func:`cluster_errors` (the largest k of Figure 3a).
MAP_NEIGHBORS = 10


def tsne_embedding(z: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """scikit-learn t-SNE of ``z`` (N, d) to (N, 2): PCA initialisation, ``random_state=seed``.

    Runs single-threaded (OpenMP and BLAS limited to one thread): the
    Barnes-Hut gradient's summation order is then fixed, so the result is
    deterministic for a given ``z``, ``perplexity`` and ``seed`` on one
    machine, and it avoids OpenMP spin-waiting on a busy machine (a 2,000
    point embedding takes ~10 s).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise DlgmmError(f"t-SNE needs at least 2 points in an (N, d) array (got shape {z.shape})")
    if perplexity >= z.shape[0]:
        raise DlgmmError(f"params.yaml: eval.tsne.perplexity ({perplexity}) must be below the number of points "
                         f"({z.shape[0]}); lower it or raise eval.tsne.points")
    tsne = TSNE(n_components=2, perplexity=float(perplexity), random_state=int(seed), init="pca")
    with threadpool_limits(limits=1):
        return np.asarray(tsne.fit_transform(z), dtype=np.float64)


def cluster_predictions(z: np.ndarray, coords: np.ndarray, labels: np.ndarray | None,
                        neighbors: int = MAP_NEIGHBORS) -> dict[str, np.ndarray | int] | None:
    """The class each point's ``k`` nearest other points vote for, in the 2-D ``coords`` and in the latent ``z``.

    ``{"neighbors": k, "map": ..., "latent": ...}`` (int arrays in the order
    of the points); ``k`` is ``neighbors``, or N - 1 for fewer points. None
    without labels (``labels`` None or holding -1).
    """
    z, coords = np.asarray(z, dtype=np.float64), np.asarray(coords, dtype=np.float64)
    if labels is None or (np.asarray(labels) < 0).any():
        return None
    labels = np.asarray(labels)
    if coords.shape != (z.shape[0], 2) or labels.shape != (z.shape[0],):
        raise DlgmmError(f"t-SNE: {coords.shape} map points and {labels.shape} labels for {z.shape[0]} latents")
    k = min(int(neighbors), z.shape[0] - 1)
    return {"neighbors": k,
            "map": knn_predictions(coords, labels, coords, [k], leave_one_out=True)[k],
            "latent": knn_predictions(z, labels, z, [k], leave_one_out=True)[k]}


def cluster_errors(z: np.ndarray, coords: np.ndarray, labels: np.ndarray | None,
                   neighbors: int = MAP_NEIGHBORS) -> dict[str, float | int] | None:
    """How well the map's points cluster by class: leave-one-out kNN error (%) among the same points.

    ``{"neighbors": k, "map_error": ..., "latent_error": ...}``: the errors of
    :func:`cluster_predictions`; a map that shows tight, separate class
    clusters has a low ``map_error``. None without labels.
    """
    return prediction_errors(labels, cluster_predictions(z, coords, labels, neighbors))


def prediction_errors(labels: np.ndarray | None, predictions: dict[str, np.ndarray | int] | None
                      ) -> dict[str, float | int] | None:
    """:func:`cluster_errors` from the predictions :func:`cluster_predictions` made (None for None)."""
    if predictions is None:
        return None
    labels = np.asarray(labels)
    return {"neighbors": predictions["neighbors"],
            **{f"{space}_error": 100.0 * float((predictions[space] != labels).sum()) / labels.shape[0]
               for space in ("map", "latent")}}


def plot_tsne(coords: np.ndarray, labels: np.ndarray | None, path: str | os.PathLike, title: str,
              class_names: Sequence[str] | None = None) -> Path:
    """Scatter ``coords`` (N, 2) coloured by ``labels`` with a legend; PNG written atomically to ``path``.

    ``labels`` None (or all -1) draws one colour and says so in the title.
    """
    from matplotlib.figure import Figure

    coords = np.asarray(coords)
    fig = Figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    size = 6 if coords.shape[0] > 1000 else 12
    if labels is None or (np.asarray(labels) < 0).all():
        ax.scatter(coords[:, 0], coords[:, 1], s=size, c="tab:blue", linewidths=0)
        title = f"{title} (no class labels)"
    else:
        labels = np.asarray(labels)
        classes = np.unique(labels[labels >= 0])
        import matplotlib

        cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "turbo"]
        for i, cls in enumerate(classes):
            name = class_names[cls] if class_names is not None and 0 <= cls < len(class_names) else str(cls)
            mask = labels == cls
            colour = cmap(i if len(classes) <= 20 else i / max(1, len(classes) - 1))
            ax.scatter(coords[mask, 0], coords[mask, 1], s=size, color=colour, linewidths=0, label=name)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2.5, fontsize=8, frameon=False,
                  title="class")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path)
