"""The report's prose lives in dlgmm_core/report/templates/: every block the code asks for exists, every block is
used, and a slot left unfilled is an error naming it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlgmm_core.errors import DlgmmError
from dlgmm_core.report import templates
from dlgmm_core.verdicts import Verdict

PACKAGE = Path(templates.__file__).parent


def _asked() -> set[str]:
    """The blocks of phrases.md the report's modules name: ``phrase("<block>", ...)`` and every verdict of the rule."""
    code = "".join(path.read_text() for path in PACKAGE.glob("*.py"))
    asked = set(re.findall(r'phrase\("([\w.]+)"', code))
    asked |= {f"verdict.{verdict.value}" for verdict in Verdict}
    asked |= {f"estimator.{name}" for name in ("authors", "ours")}  # phrase(f"estimator.{headline}")
    return asked


def test_every_block_asked_for_exists_and_every_block_is_used():
    blocks = set(templates.blocks("phrases.md"))
    assert _asked() - blocks == set()
    assert blocks - _asked() == set()


def test_an_unfilled_slot_or_an_unknown_block_is_named():
    with pytest.raises(DlgmmError, match=r"templates/phrases.md @@ incomplete: slot 'stages' not filled"):
        templates.phrase("incomplete", protocol="authors")
    with pytest.raises(DlgmmError, match=r"templates/phrases.md: no block '@@ nothing'"):
        templates.phrase("nothing")


def test_blocks_and_paragraphs():
    assert templates.phrase("verdict.supported") == "supported"
    assert templates.phrase("verdict.not_run") == "not run yet"
    assert templates.phrase("headline") == " (headline)"  # a block keeps its leading space
    assert templates.paragraphs("a", "", "b") == "a\n\nb"
    assert templates.table_rows("not_reproduced.md")[0][0] == "minibatch order"
