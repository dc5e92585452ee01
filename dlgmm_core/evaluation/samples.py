"""Sample grids from a model's prior (and, Figure 2a/2b, from each prior component alone).

Each image shown is the Bernoulli mean ``sigmoid(decode(z))`` of a latent
``z`` drawn from the prior, not a binary sample; titles say so. Grids are
rendered pixel-exactly: every image pixel becomes a ``scale`` x ``scale``
block of the PNG (no resampling), under a title band.

The paper reads Figure 2a/2b by eye: "thin digits such as sevens are
generated from the component with the most negative prior mean and wide
digits such as zeros ... from the component with the most positive prior
mean". :func:`digit_shape` measures that on the images of each grid, and
:func:`digit_classes` which digits they show (a kNN classifier in pixel
space, fitted on the labelled training images), written beside them by
:func:`save_component_grids` (``components.json``).
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DlgmmError
from ..io import atomic_dir, save_figure
from ..results import COMPONENT_SHAPES, ComponentShapes
from ..layout import component_figure_in
from .common import model_components, prior_mean
from .knn import knn_errors, knn_predictions

SIDE = 28
#: Separator width between tiles, in image pixels.
PAD = 2
#: Grey level of the separators (digits are white on black).
PAD_VALUE = 0.35
#: PNG pixels per image pixel.
SCALE = 2
DPI = 100
FONT_PT = 9
LINE_PX = 16
TITLE_MARGIN_PX = 8
CHAR_PX = 6.5
#: A pixel is ink when its Bernoulli mean is at least this (:func:`digit_shape`).
INK_LEVEL = 0.5
#: Neighbours of the pixel-space classifier that names the digit an image shows (:func:`digit_classes`).
DIGIT_NEIGHBORS = 5
#: Test images the classifier's own error is measured on (the first ones of the test split).
DIGIT_TEST_IMAGES = 2000


def prior_bernoulli_means(model: Any, n: int, component: int | None = None) -> np.ndarray:
    """``sigmoid(model.decode(model.sample_prior(n, component)))``: (n, 784) float32 in [0, 1].

    ``component`` (0-based) restricts the prior to that mixture component.
    Uses the global torch RNG (seed it first).
    """
    import torch

    with torch.no_grad():
        z = model.sample_prior(n) if component is None else model.sample_prior(n, component=component)
        means = torch.sigmoid(model.decode(z).float()).reshape(n, -1).cpu().numpy()
    if means.shape != (n, SIDE * SIDE):
        raise DlgmmError(f"decode returned shape {means.shape} for {n} latents; expected ({n}, {SIDE * SIDE})")
    if not np.isfinite(means).all():
        raise DlgmmError("decode returned non-finite logits for prior samples")
    return means


def tile(images: np.ndarray, grid: int, pad: int = PAD, pad_value: float = PAD_VALUE) -> np.ndarray:
    """Arrange ``grid * grid`` images (N, 784) row by row into one square array with separators."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape != (grid * grid, SIDE * SIDE):
        raise DlgmmError(f"sample grid: expected {grid * grid} images of {SIDE * SIDE} pixels, got {images.shape}")
    side = grid * SIDE + (grid + 1) * pad
    canvas = np.full((side, side), pad_value, dtype=np.float32)
    for index, image in enumerate(images):
        row, col = divmod(index, grid)
        top, left = pad + row * (SIDE + pad), pad + col * (SIDE + pad)
        canvas[top:top + SIDE, left:left + SIDE] = image.reshape(SIDE, SIDE)
    return np.clip(canvas, 0.0, 1.0)


def _title_lines(title: str, width_px: int) -> list[str]:
    return textwrap.wrap(title, width=max(20, int(width_px / CHAR_PX))) or [""]


def grid_png_size(grid: int, title: str, scale: int = SCALE) -> tuple[int, int]:
    """``(width, height)`` in pixels of the PNG :func:`save_grid` writes for this grid and title."""
    width = (grid * SIDE + (grid + 1) * PAD) * scale
    band = LINE_PX * len(_title_lines(title, width)) + TITLE_MARGIN_PX
    return width, width + band


def save_grid(path: str | os.PathLike, images: np.ndarray, grid: int, title: str, scale: int = SCALE) -> Path:
    """Write the ``grid`` x ``grid`` images (N, 784 in [0, 1]) as a PNG under ``title``, atomically.

    The PNG is exactly :func:`grid_png_size` pixels; each image pixel is a
    ``scale`` x ``scale`` block (grey levels, white = 1).
    """
    from matplotlib.figure import Figure

    canvas = np.kron(tile(images, grid), np.ones((scale, scale), dtype=np.float32))
    width, height = grid_png_size(grid, title, scale)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    fig.figimage(canvas, xo=0, yo=0, origin="upper", cmap="gray", vmin=0.0, vmax=1.0, resize=False)
    lines = _title_lines(title, width)
    band = height - canvas.shape[0]
    fig.text(0.5, 1.0 - (band / 2) / height, "\n".join(lines), ha="center", va="center", fontsize=FONT_PT,
             linespacing=1.2)
    return save_figure(fig, path, dpi=DPI)


def digit_shape(images: np.ndarray) -> dict[str, float | int]:
    """Width and ink of images (N, 784 Bernoulli means): the numbers behind "thin" and "wide" digits.

    ``width``: the mean over images of the number of pixel columns holding
    ink (a Bernoulli mean of at least :data:`INK_LEVEL`), with its standard
    error ``width_se``; ``ink``: the mean number of ink pixels per image.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 2 or images.shape[1] != SIDE * SIDE or images.shape[0] < 2:
        raise DlgmmError(f"digit_shape: expected at least 2 images of {SIDE * SIDE} pixels, got {images.shape}")
    ink = images.reshape(-1, SIDE, SIDE) >= INK_LEVEL
    width = ink.any(axis=1).sum(axis=1).astype(np.float64)  # columns with an ink pixel
    return {"images": int(images.shape[0]), "width": float(width.mean()),
            "width_se": float(width.std(ddof=1) / np.sqrt(width.size)), "ink": float(ink.sum(axis=(1, 2)).mean())}


def digit_classes(images: np.ndarray, x_train: np.ndarray, y_train: np.ndarray) -> list[int]:
    """How many of ``images`` (N, 784 Bernoulli means) a Euclidean :data:`DIGIT_NEIGHBORS`-NN classifier in pixel
    space, fitted on the labelled ``x_train`` (binary images), assigns to each class: one count per class
    ``0 .. max(y_train)``."""
    predicted = knn_predictions(x_train, y_train, images, [DIGIT_NEIGHBORS], chunk=500)[DIGIT_NEIGHBORS]
    return np.bincount(predicted, minlength=int(np.max(y_train)) + 1).tolist()


def digit_classifier(data: dict[str, np.ndarray]) -> dict[str, float | int]:
    """The classifier of :func:`digit_classes` fitted on ``data``'s training split: its neighbours, training
    images and test error (%) on the first :data:`DIGIT_TEST_IMAGES` test images."""
    x_test, y_test = data["x_test"][:DIGIT_TEST_IMAGES], data["y_test"][:DIGIT_TEST_IMAGES]
    error = knn_errors(data["x_train"], data["y_train"], x_test, y_test, [DIGIT_NEIGHBORS], chunk=500)
    return {"neighbors": DIGIT_NEIGHBORS, "train_images": int(data["x_train"].shape[0]),
            "test_images": int(x_test.shape[0]), "test_error": error[DIGIT_NEIGHBORS]}


def save_component_grids(folder: str | os.PathLike, model: Any, grid: int, label: str,
                         labelled: dict[str, np.ndarray] | None = None) -> list[Path]:
    """Figure 2a/2b: one grid per prior component, ``component_1.png`` ... ``component_K.png`` in ``folder``.

    Beside them, ``components.json``: each component's prior mean and the
    :func:`digit_shape` of its grid's images; with ``labelled`` (prepared data
    with class labels), also the :func:`digit_classes` of those images and the
    classifier's test error (:func:`digit_classifier`). The folder is
    replaced as a whole (atomically); ``K`` comes from the model's config.
    Returns the written grids' paths.
    """
    count = model_components(model)
    written, shapes = [], []
    with atomic_dir(folder) as tmp:
        for k in range(count):
            means = prior_bernoulli_means(model, grid * grid, component=k)
            title = (f"{label}: component {k + 1} of {count}, prior mean {prior_mean(model, k):+.2f} "
                     f"(Bernoulli means of {grid * grid} prior samples)")
            save_grid(component_figure_in(tmp, k + 1), means, grid, title)
            written.append(component_figure_in(folder, k + 1))
            classes = {} if labelled is None else {"classes": digit_classes(means, labelled["x_train"],
                                                                            labelled["y_train"])}
            shapes.append({"component": k + 1, "prior_mean": prior_mean(model, k), **digit_shape(means), **classes})
        classifier = None if labelled is None else digit_classifier(labelled)
        ComponentShapes(INK_LEVEL, shapes, classifier).write(Path(tmp, COMPONENT_SHAPES))
    return written
