"""``key=value`` edits of params.yaml that keep its comments; the result is validated before the file is replaced.

``tools/params.py set`` runs :func:`set_params` (``make quick`` uses it to switch the budget).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from ..errors import DlgmmError
from .load import params_from_tree
from .read import parse_yaml
from .reader import MISSING, did_you_mean, leaf_paths


def set_params(path: str | Path, assignments: list[str]) -> None:
    """Set ``key=value`` pairs (dotted keys, YAML values) in ``path``, keeping its comments.

    A key segment that holds dots is quoted or bracketed
    (``data.omniglot.known_sha256."images_background_small1.zip"`` or
    ``data.omniglot.known_sha256[images_background_small1.zip]``). A value
    set where the file holds a string stays a string (a sha256 of digits
    only, a folder named ``2016``). The result is validated before the file
    is replaced, so a bad value leaves ``path`` untouched. ``make quick``
    uses this to switch the budget.
    """
    from ruamel.yaml import YAML

    from ..io import atomic_path

    path = Path(path)
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    try:
        content = path.read_text()
    except FileNotFoundError:
        raise DlgmmError(f"{path}: file not found") from None
    parse_yaml(content, str(path))  # a syntax error named as load_params names it
    document = rt.load(content)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise DlgmmError(f"expected key=value, got {assignment!r}")
        parts = _key_parts(key, path)
        node = document
        for part in parts[:-1]:
            node = node.get(part, MISSING) if isinstance(node, dict) else MISSING
        if not isinstance(node, dict) or parts[-1] not in node:
            raise DlgmmError(f"{path}: unknown key {key}{_protocol_hint(document, parts) or _set_hint(document, parts)}")
        value = parse_yaml(text, f"{path}: the value of {key}") if text else ""
        if isinstance(node[parts[-1]], str) and isinstance(value, (bool, int, float)):
            value = text.strip()
        node[parts[-1]] = "" if value is None else value
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            rt.dump(document, handle)
        params_from_tree(parse_yaml(tmp.read_text(), str(path)), source=str(path))


#: A segment of a key given to :func:`set_params` after a dot (or first): double- or single-quoted, or plain.
_DOTTED_SEGMENT = r'"([^"]+)"|\'([^\']+)\'|([^.\[\]"\']+)'
#: A segment in brackets, after any other.
_BRACKETED_SEGMENT = r'\[([^\]]+)\]'
_SEGMENT = re.compile(f"{_DOTTED_SEGMENT}|{_BRACKETED_SEGMENT}")
_KEY = re.compile(f"(?:{_DOTTED_SEGMENT})(?:\\.(?:{_DOTTED_SEGMENT})|{_BRACKETED_SEGMENT})*")


def _key_parts(key: str, path: Path) -> list[str]:
    """The segments of ``key``: split at dots outside quotes (``a."b.zip"``) and brackets (``a[b.zip]``)."""
    if not _KEY.fullmatch(key):
        raise DlgmmError(f"{path}: cannot read the key {key}: quote or bracket a segment that holds a dot "
                         f"(known_sha256.\"a.zip\" or known_sha256[a.zip])")
    return [next(group for group in match.groups() if group is not None) for match in _SEGMENT.finditer(key)]


def _as_key(parts: Iterable[Any]) -> str:
    """``parts`` as a key :func:`set_params` reads: dotted, a segment holding a dot quoted."""
    return ".".join(f'"{part}"' if "." in str(part) else str(part) for part in parts)


def _set_hint(document: Any, parts: list[str]) -> str:
    """``" (did you mean <key>?)"``: the key of ``document`` nearest ``parts``, a protocol setting also by its section's key."""
    known: dict[str, str] = {}
    for leaf in leaf_paths(document):
        known[".".join(map(str, leaf))] = known[_as_key(leaf)] = _as_key(leaf)
        if leaf[0] == "protocol" and len(leaf) > 2:
            known.setdefault(".".join(map(str, leaf[2:])), _as_key(leaf))
    return did_you_mean(".".join(parts), known)


def _protocol_hint(document: Any, parts: list[str]) -> str:
    """``" (a protocol setting: protocol.<name>.<key>)"`` if a protocol of ``document`` sets ``parts``, else ``""``."""
    definitions = document.get("protocol") if isinstance(document, dict) else None
    for name, definition in (definitions or {}).items():
        node = definition
        for part in parts:
            node = node.get(part, MISSING) if isinstance(node, dict) else MISSING
        if node is not MISSING:
            return f" (a protocol setting: protocol.{name}.{_as_key(parts)})"
    return ""
