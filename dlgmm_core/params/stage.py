"""What a stage reads: its own parameters, as the ``resolve`` stage wrote them, and its command line.

A stage never reads params.yaml: ``data/params/<stage>.json`` holds exactly
the values it reads (:mod:`.views`), validated when they were written. Standard
library only, so the data stages import it without the models.
"""
from __future__ import annotations

import argparse
import copy
import os
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import DlgmmError

DATASETS = ("mnist", "omniglot")


@dataclass(frozen=True)
class Params:
    """Validated parameters of one protocol.

    ``tree`` is the effective tree (protocol ``protocol``'s settings merged
    into their sections, then the quick overrides applied), or a stage's view
    of it; ``source`` the file errors name.
    """

    tree: dict
    source: str
    protocol: str

    @property
    def seed(self) -> int:
        """The seed of one stage's run (a stage's view holds one; the whole tree lists ``seeds``)."""
        return self.tree["seed"]

    @property
    def seeds(self) -> list[int]:
        """The seeds the pipeline runs every model with; the first is the one a single-seed reading shows."""
        return list(self.tree["seeds"])

    @property
    def budget(self) -> str:
        return self.tree["budget"]

    @property
    def k(self) -> int:
        return self.tree["k"]

    @property
    def protocols(self) -> list[str]:
        """The protocols the pipeline runs; the first is the report's headline."""
        return list(self.tree["protocols"])

    def data(self, dataset: str) -> dict:
        """The ``data.<dataset>`` section."""
        if dataset not in DATASETS:
            raise DlgmmError(f"{self.source}: unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
        return copy.deepcopy(self.tree["data"][dataset])

    @property
    def train(self) -> dict:
        return copy.deepcopy(self.tree["train"])

    @property
    def eval(self) -> dict:
        return copy.deepcopy(self.tree["eval"])


def load_stage_params(stage: str, root: str | os.PathLike = ".") -> Params:
    """The parameters of the DVC stage ``stage``, as the ``resolve`` stage wrote them (validated there).

    ``data/params/<stage>.json`` holds exactly the values the stage reads
    (:mod:`.views`).
    """
    from .. import layout
    from ..io import read_json

    path = layout.stage_params(stage, root)
    if not path.is_file():
        raise DlgmmError(f"{path}: not found; resolve the parameters first: `python {layout.script('resolve')}` "
                         f"(or `dvc repro {layout.resolve_stage()}`), from the repository root")
    view = read_json(path, f"run `python {layout.script('resolve')}` again")
    protocol = view["protocol"] if isinstance(view.get("protocol"), str) else (view.get("protocols") or [""])[0]
    return Params(tree=view, source=str(path), protocol=protocol)


def stage_arguments(doc: str, models: Iterable[str], default_dataset: str | None = None) -> Any:
    """Parse a per-(protocol, seed, dataset, model) stage's ``--protocol --seed --dataset --model``.

    ``models``: the model keys the stage takes (sections of
    :data:`dlgmm_core.registry.SECTIONS`). The stage then reads its parameters
    with :func:`load_stage_params`. ``doc`` is the stage's module docstring
    (its first line is the description).
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--protocol", required=True, help="the protocol (a name defined under protocol: in the params)")
    parser.add_argument("--seed", required=True, type=int, help="the seed (one of params.yaml's seeds)")
    parser.add_argument("--dataset", required=default_dataset is None, default=default_dataset,
                        choices=DATASETS)
    parser.add_argument("--model", required=True, choices=list(models))
    return parser.parse_args()
