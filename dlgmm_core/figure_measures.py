"""Where the figure stages write what their figures show, in numbers, for the report to read.

The paper reads Figure 2 by eye; the t-SNE and component-sample stages also
measure what the eye is asked to see (:func:`dlgmm_core.evaluation.cluster_errors`,
:func:`dlgmm_core.evaluation.digit_shape`) and write it beside the figure.
"""
from __future__ import annotations

from pathlib import Path

from .layout import Root, qualitative_dir, tsne_figure

#: The file of the component grids' measurements, in the folder of the grids.
COMPONENT_SHAPES = "components.json"


def cluster_result(protocol: str, dataset: str, model: str, root: Root = ".") -> Path:
    """``reports/figures/tsne/<protocol>/<dataset>_<model>.json``: how the t-SNE map beside it clusters by class."""
    return tsne_figure(protocol, dataset, model, root).with_suffix(".json")


def component_shapes(protocol: str, root: Root = ".") -> Path:
    """``reports/figures/qualitative/<protocol>/components.json``: the width and ink of each component's samples."""
    return qualitative_dir(protocol, root) / COMPONENT_SHAPES
