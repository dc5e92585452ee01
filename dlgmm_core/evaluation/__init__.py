"""Evaluation of trained models: marginal likelihood, kNN on latent samples, t-SNE, sample grids.

Everything here works on a loaded model (see :func:`load_eval_model`) and
NumPy/torch arrays; the stage scripts in ``stages/`` only parse arguments,
read params.yaml and the prepared data, call these functions and write the
outputs. Figures are drawn on ``matplotlib.figure.Figure`` objects (Agg
canvas, no pyplot state) and written atomically with :func:`save_figure`;
folders of figures with :func:`atomic_dir` (both from :mod:`dlgmm_core.io`).

The modules: :mod:`.common` (model loading, batched calls, names),
:mod:`.likelihood` (Figure 3b), :mod:`.knn` (Figure 3a), :mod:`.tsne`
(Figure 2c/2d), :mod:`.samples` (Figure 2a/2b and prior samples); this
package re-exports their public names.
"""
from __future__ import annotations

from ..io import atomic_dir, save_figure
from .common import EMBED_BATCH, Timer, batched, load_eval_model, model_components, prior_mean
from .knn import (MEAN_DRAWS, check_neighbors, embed, knn_errors, knn_predictions, knn_sensitivity,
                  require_labels)
from .likelihood import marginal_likelihood
from .samples import (digit_classes, digit_classifier, digit_shape, grid_png_size, prior_bernoulli_means,
                      save_component_grids, save_grid, tile)
from .tsne import MAP_NEIGHBORS, cluster_errors, cluster_predictions, plot_tsne, prediction_errors, tsne_embedding

__all__ = [
    "EMBED_BATCH", "MAP_NEIGHBORS", "MEAN_DRAWS", "Timer", "atomic_dir", "batched", "check_neighbors",
    "cluster_errors", "cluster_predictions", "digit_classes", "digit_classifier", "digit_shape", "embed",
    "grid_png_size", "knn_errors", "knn_predictions", "knn_sensitivity", "load_eval_model", "marginal_likelihood",
    "model_components",
    "plot_tsne", "prediction_errors", "prior_bernoulli_means", "prior_mean", "require_labels", "save_component_grids",
    "save_figure", "save_grid", "tile", "tsne_embedding",
]
