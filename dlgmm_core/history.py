"""A training run's history, one row per epoch: written as dvclive logs by the loop, read back by the report.

A row holds ``epoch``, ``train_elbo``, ``valid_elbo``, ``seconds`` and
``examples_per_second``. The logs of a run folder (:func:`dlgmm_core.layout.train_logs`)
are ``plots/metrics/{train/elbo,valid/elbo,epoch_seconds,examples_per_second}.tsv``
(one row per epoch, ``step`` = epoch) and ``metrics.json``
(:func:`summarize`): a function of the history alone, rebuilt from it on a
resumed run. dvclive is imported only when a writer opens, so the training
code imports without it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import DlgmmError
from .io import read_json


def summarize(history: list[dict]) -> dict:
    """The final summary of ``metrics.json``: deterministic ELBO keys, timings under ``timing``."""
    if not history:
        return {}
    best = max(range(len(history)), key=lambda i: (history[i]["valid_elbo"], -i))
    seconds = [row["seconds"] for row in history]
    rates = [row["examples_per_second"] for row in history]
    return {
        "best_valid_elbo": history[best]["valid_elbo"],
        "best_epoch": history[best]["epoch"],
        "epochs": history[-1]["epoch"],
        "train": {"elbo": history[-1]["train_elbo"]},
        "valid": {"elbo": history[-1]["valid_elbo"]},
        "timing": {"mean_epoch_seconds": sum(seconds) / len(seconds),
                   "examples_per_second": sum(rates) / len(rates)},
    }


class HistoryWriter:
    """The dvclive logs of one run under ``log_dir``.

    Opening clears the folder and replays ``history``, so the logs depend on
    the history alone. No dvc.yaml, no report, no experiment is written.
    """

    def __init__(self, log_dir: str | os.PathLike, history: Iterable[dict] = ()):
        from dvclive import Live

        self.live = Live(dir=str(log_dir), resume=False, report=None, save_dvc_exp=False, dvcyaml=None)
        for row in history:
            self.append(row)

    def append(self, row: dict) -> None:
        live = self.live
        live.step = int(row["epoch"])
        live.log_metric("train/elbo", float(row["train_elbo"]))
        live.log_metric("valid/elbo", float(row["valid_elbo"]))
        live.log_metric("epoch_seconds", float(row["seconds"]))
        live.log_metric("examples_per_second", float(row["examples_per_second"]))
        live.make_summary()

    def finish(self, history: list[dict]) -> None:
        self.live.summary = summarize(history)
        if history:
            self.live.summary["step"] = int(history[-1]["epoch"])
        self.live.end()


@dataclass
class RunHistory:
    """One run's logs as read back: the final summary and the per-epoch ELBO curves ``(step, value)``."""

    summary: dict
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]

    @property
    def epochs(self) -> int:
        for key in ("epochs", "step"):
            if isinstance(self.summary.get(key), (int, float)):
                return int(self.summary[key])
        return int(len(self.valid[0]))

    @property
    def best_valid_elbo(self) -> float:
        value = self.summary.get("best_valid_elbo")
        if isinstance(value, (int, float)):
            return float(value)
        return float(np.max(self.valid[1]))

    @property
    def finished(self) -> bool:
        """Whether training has stopped: the summary's epoch count is written only then (the logs and the best
        checkpoint are rewritten every epoch)."""
        return "epochs" in self.summary


def read_history(log_dir: str | os.PathLike, hint: str) -> RunHistory:
    """The logs :class:`HistoryWriter` wrote under ``log_dir``; a missing or bad file is a DlgmmError ending in
    ``hint`` (what to run)."""
    log_dir = Path(log_dir)
    curves = log_dir / "plots" / "metrics"
    return RunHistory(summary=read_json(log_dir / "metrics.json", hint),
                      train=_read_tsv(curves / "train" / "elbo.tsv", hint),
                      valid=_read_tsv(curves / "valid" / "elbo.tsv", hint))


def _read_tsv(path: Path, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """``(step, value)`` of a dvclive metric file (header ``step<TAB><name>``, maybe ``timestamp``)."""
    import pandas as pd

    if not path.is_file():
        raise DlgmmError(f"{path}: not found; {hint}")
    try:
        frame = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as err:
        raise DlgmmError(f"{path}: not a readable dvclive .tsv ({err}); {hint}") from None
    columns = [c for c in frame.columns if c not in ("step", "timestamp")]
    if "step" not in frame.columns or len(columns) != 1 or frame.empty:
        raise DlgmmError(f"{path}: expected a header 'step<TAB><metric>' and at least one row; {hint}")
    return frame["step"].to_numpy(dtype=np.float64), frame[columns[0]].to_numpy(dtype=np.float64)
