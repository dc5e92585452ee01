"""params.yaml read as DVC reads it: YAML 1.2 (``1e-3`` is a number, ``yes`` a string), in plain Python types."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DlgmmError

#: The parameter file, relative to the repository root (where the stages run).
DEFAULT_PATH = Path("params.yaml")
SOURCE = "params.yaml"


def parse_yaml(text: str, source: str = SOURCE) -> Any:
    """``text`` read as DVC reads params.yaml (YAML 1.2, ruamel.yaml's safe loader), in plain Python types.

    Raises :class:`DlgmmError` naming ``source`` if ``text`` is not valid YAML.
    """
    from ruamel.yaml import YAML, YAMLError

    try:
        return _plain(YAML(typ="safe", pure=True).load(text))
    except YAMLError as err:
        detail = " ".join(str(err).split())
        raise DlgmmError(f"{source}: not valid YAML ({detail})") from None


def read_yaml(path: str | Path) -> Any:
    """The YAML file ``path`` read by :func:`parse_yaml`; a missing file is a :class:`DlgmmError` naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DlgmmError(f"{path}: file not found") from None
    return parse_yaml(text, str(path))


def _plain(value: Any) -> Any:
    """``value`` with every mapping a dict, every sequence a list and every str, bool, int or float of its base type."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    for kind in (str, bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def read_params_tree(path: str | Path = DEFAULT_PATH) -> dict:
    """The parameter file ``path`` as read (YAML 1.2), before any validation; DlgmmError if missing or no mapping."""
    path = Path(path)
    source = str(path)
    if path == DEFAULT_PATH and not path.exists():
        raise DlgmmError(f"{source}: file not found in {Path.cwd()}; run the stages from the repository root "
                         f"(where dvc.yaml is)")
    tree = read_yaml(path)
    if not isinstance(tree, dict):
        raise DlgmmError(f"{source}: expected a mapping of sections at the top level")
    return tree
