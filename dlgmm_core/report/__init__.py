"""The final report: our numbers beside the paper's under every protocol, flat DVC metrics, training curves.

:func:`write_report` reads, for every protocol of ``params.yaml``'s ``protocols`` list, what the evaluation
stages wrote (``reports/nll/...``, ``reports/knn/...``, the figures and their measurements under
``reports/figures/``; formats in :mod:`dlgmm_core.results`) and the training logs (``logs/<protocol>/...``),
and writes

- ``reports/README.md``: ``templates/report.md`` filled (the sentences are the blocks of
  ``templates/phrases.md``);
- ``reports/metrics.json``: flat, sorted keys ``<protocol>.<dataset>.<model>.<metric>``, every seed's
  ``<protocol>.seed-<seed>.<dataset>.<model>.<metric>`` and the claims' ``claims.<claim>.<protocol>.verdict``
  (+1 / 0 / -1) with their intervals, numbers only, for ``dvc metrics diff``;
- ``reports/figures/training/``: the training curves, and ours beside the authors' logs.

Modules, in reading order: :mod:`.paper` (the paper's values and names), :mod:`.inputs` (reading),
:mod:`.analysis` (numbers, and the claims judged by :mod:`dlgmm_core.claims`), :mod:`.tables`, :mod:`.figures`,
:mod:`.claims_section`, :mod:`.sections` and :mod:`.render` (the markdown), :mod:`.templates` (the template
files).
"""
from .analysis import differing_settings, flat_metrics
from .claims_section import claims_digest, readme_claims_digest
from .inputs import Inputs, ProtocolInputs, RunHistory, read_inputs
from .paper import DATASET_NAMES, MODELS, NOT_REPRODUCED, PAPER, ReportModel, registered_models
from .render import render_readme, write_report
from .tables import format_cell, markdown_table, results_table

__all__ = ["DATASET_NAMES", "MODELS", "NOT_REPRODUCED", "PAPER", "Inputs", "ProtocolInputs", "ReportModel",
           "RunHistory", "claims_digest", "differing_settings", "flat_metrics", "format_cell", "markdown_table",
           "read_inputs", "readme_claims_digest", "registered_models", "render_readme", "results_table",
           "write_report"]
