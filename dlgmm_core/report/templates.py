"""The report's prose: markdown templates shipped beside this module (``templates/*.md``), filled by name.

A template is :class:`string.Template` text with ``$slot`` placeholders. A
file may hold several named blocks, each opened by a line ``@@ <name>`` and
running to the next such line; its trailing blank lines are not part of it.
A markdown table file (``differences.md``, ``not_reproduced.md``) is data
the report reads back as rows (:func:`table_rows`).
"""
from __future__ import annotations

import functools
import string
from importlib import resources

from ..errors import DlgmmError

#: The line that opens a named block.
BLOCK = "@@ "


@functools.cache
def text(name: str) -> str:
    """The template file ``templates/<name>`` as text."""
    path = resources.files(__package__).joinpath("templates", name)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise DlgmmError(f"{path}: report template not readable ({err}); reinstall the package") from None


@functools.cache
def blocks(name: str) -> dict[str, str]:
    """The named blocks of ``templates/<name>``: ``{block name: text}``."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text(name).split("\n"):
        if line.startswith(BLOCK):
            current = line[len(BLOCK):].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {key: "\n".join(lines).rstrip("\n") for key, lines in out.items()}


def fill(name: str, block: str | None = None, /, **slots: object) -> str:
    """Template ``name`` (or its block ``block``) with every ``$slot`` filled; a slot left unfilled is an error."""
    if block is not None and block not in blocks(name):
        raise DlgmmError(f"templates/{name}: no block '@@ {block}'; reinstall the package")
    template = text(name) if block is None else blocks(name)[block]
    try:
        return string.Template(template).substitute({key: str(value) for key, value in slots.items()})
    except (KeyError, ValueError) as err:
        raise DlgmmError(f"templates/{name}{'' if block is None else ' @@ ' + block}: slot {err} not filled") \
            from None


@functools.cache
def table_rows(name: str) -> tuple[tuple[str, ...], ...]:
    """The body rows of the markdown table in ``templates/<name>``, cells stripped (header and rule left out)."""
    lines = [line for line in text(name).splitlines() if line.startswith("|")]
    return tuple(tuple(cell.strip() for cell in line.strip().strip("|").split(" | ")) for line in lines[2:])


def phrase(block: str, /, **slots: object) -> str:
    """The block ``block`` of ``templates/phrases.md``, filled."""
    return fill("phrases.md", block, **slots)


def paragraphs(*parts: str) -> str:
    """``parts`` as markdown paragraphs (separated by one blank line), empty parts left out."""
    return "\n\n".join(part for part in parts if part)
