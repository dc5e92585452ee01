"""The authors' logged MNIST training runs: where the paper's 96.50 (DLGMM, K = 3) and 96.80 (Gauss-VAE) appear.

The files under ``dlgmm_core/reference/`` are byte copies of two training logs
of the authors' repository (MIT licence), pinned by sha256 (:data:`SOURCES`).
Each line ``Epoch N.  Train ELBO: x,  Validation ELBO: y`` is one epoch (1-based;
``***`` marks a new best validation ELBO, whose weights the code saved), and the
last line gives the 50-draw marginal likelihoods of the best weights on the
validation and test sets. The report lays our training under protocol
``authors`` beside them (:func:`dlgmm_core.report.sections.authors_log_section`), which
separates the training from the data and the estimator as causes of a gap.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DlgmmError

REPOSITORY = "https://github.com/enalisnick/mixture_density_VAEs"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@dataclass(frozen=True)
class LogSource:
    """One copied log: the file here, its path and commit in :data:`REPOSITORY`, its sha256."""

    file: str
    path: str
    commit: str
    sha256: str

    @property
    def url(self) -> str:
        return f"{REPOSITORY}/blob/{self.commit}/{self.path}"


#: The logs of the runs behind the paper's MNIST numbers, by params.yaml model key.
SOURCES: dict[str, LogSource] = {
    "dlgmm": LogSource(
        "authors_mnist_dlgmm.txt",
        "MNIST/train_logs/gaussMM_vae_trainResults_K_3_hidden_d_500_latent_d_25_mu_0.0-0.0-0.0_sigma_1.0-1.0-1.0"
        "_dirichlet_alpha_1.0_adamLR_0.0003.txt",
        "b3d84b248a84dc338b992d8880cc97472496d10d",
        "b0a508387b7010e6c53c64a9efd4bd260f465c428675822049cf5e36617b6992"),
    "gauss_vae": LogSource(
        "authors_mnist_gauss_vae.txt",
        "MNIST/train_logs/gauss_regVae_trainResults_hidden_d_500_latent_d_25_mu_0.0_sigma_1.0__adamLR_0.0003.txt",
        "cf1ce2bf8c894ab23c3db37e8c0f76011784f480",
        "7ac064d8bfa15083034ecbd77c8ad35a13d73f019872cb12615019106ff837ef"),
}

_EPOCH = re.compile(r"^Epoch (\d+)\.\s+Train ELBO: (-?[\d.]+),\s+Validation ELBO: (-?[\d.]+)\s*(\*\*\*)?\s*$")
_RESULT = re.compile(r"^Validation Marginal Likelihood: (-?[\d.]+),\s+Test Marginal Likelihood: (-?[\d.]+)\s*$")


@dataclass(frozen=True)
class AuthorsLog:
    """One parsed log. ``epoch`` is 1-based; ``*_nll`` are the log's marginal likelihoods negated (nats)."""

    epoch: np.ndarray
    train_elbo: np.ndarray
    valid_elbo: np.ndarray
    best_epoch: int
    valid_nll: float
    test_nll: float

    @property
    def epochs(self) -> int:
        return int(self.epoch[-1])

    @property
    def best_valid_elbo(self) -> float:
        return float(self.valid_elbo[self.best_epoch - 1])


def parse(text: str, name: str) -> AuthorsLog:
    """An :class:`AuthorsLog` from a log's text; DlgmmError naming ``name`` for anything else."""
    rows, best, result = [], None, None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if (match := _EPOCH.match(line)) is not None:
            epoch = int(match.group(1))
            if epoch != len(rows) + 1:
                raise DlgmmError(f"{name}: line {number}: epoch {epoch} where {len(rows) + 1} was expected")
            rows.append((float(match.group(2)), float(match.group(3))))
            if match.group(4):
                best = epoch
        elif (match := _RESULT.match(line)) is not None:
            result = (-float(match.group(1)), -float(match.group(2)))
        else:
            raise DlgmmError(f"{name}: line {number}: not an epoch or marginal-likelihood line: {line[:60]!r}")
    if not rows or best is None or result is None:
        raise DlgmmError(f"{name}: expected epoch lines, a best epoch (***) and the marginal-likelihood line")
    train, valid = (np.array(column) for column in zip(*rows))
    return AuthorsLog(np.arange(1, len(rows) + 1), train, valid, best, *result)


def read(model: str, directory: Path = REFERENCE_DIR) -> AuthorsLog:
    """The authors' log of ``model`` (a key of :data:`SOURCES`), checked against its sha256."""
    source = SOURCES[model]
    path = directory / source.file
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DlgmmError(f"{path}: cannot read the authors' log ({err.strerror}); restore it from {source.url}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise DlgmmError(f"{path}: sha256 {digest} is not the pinned {source.sha256}; restore it from {source.url}")
    return parse(data.decode("utf-8"), str(path))
