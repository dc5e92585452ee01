"""README.md and docs/: what they promise is what the committed files hold, and every reference resolves in a clone.

A reference is a markdown link (with its #anchor), a mention of a repository file (``dlgmm_core/report/paper.py``,
``docs/protocols.md``; a bare ``name.md`` anywhere in the repository), a Python name (``dlgmm_core.results.Knn``, ``python -m dlgmm_core.config``) or a
section of a document (``README, "Speed"``, ``the report's section "..."``), in README.md, every document under
docs/, benchmarks/ and tests/, data/README.md, the committed report, params.yaml's comments and the code (the
library, the stages, the tools, the benchmarks).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The top-level folders and files a file mention can name: the sources of a clone (outputs are not checked).
SOURCES = r"(?:dlgmm_core|stages|tools|tests|benchmarks|docs|\.ci)/[\w./-]*|[\w-]+\.md|params\.yaml|dvc\.yaml|" \
          r"pyproject\.toml|Makefile"
MENTION = re.compile(rf"(?<![\w/.<>{{}}@$-])(?:\.\./)*({SOURCES})(?![\w<>{{}}*@$])")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PYTHON_NAME = re.compile(r"(?<![\w./])(dlgmm_core(?:\.\w+)+)")
SECTION = re.compile(r"((?:[\w.-]+/)*README(?:\.md)?|(?:[\w.-]+/)*[\w-]+\.md)[,:]\s+(?:section\s+)?\"([^\"]+)\"")
COMMAND = re.compile(r"python -m (dlgmm_core[\w.]*)")
REPORT_SECTION = re.compile(r"the report's (?:section )?\"([^\"]+)\"")


def _files() -> set[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode:
        pytest.skip("not a git checkout")
    return set(out.stdout.splitlines())


FILES = _files()
FOLDERS = {str(parent) for name in FILES for parent in Path(name).parents}
DOCUMENTS = sorted(name for name in FILES if name.endswith(".md") and (
    "/" not in name or name.startswith(("docs/", "benchmarks/", "tests/", "data/")) or name == "reports/README.md"))
CODE = sorted(name for name in FILES if name.endswith(".py") and name.startswith(
    ("dlgmm_core/", "stages/", "tools/", "benchmarks/")))


def _exists(path: str) -> bool:
    path = path.rstrip("/").removeprefix("./")
    return path in FILES or path in FOLDERS


def _text(name: str) -> str:
    """The file's prose: its comments for params.yaml, all of it otherwise; lines joined."""
    text = (ROOT / name).read_text()
    if name == "params.yaml":
        text = "\n".join(line.partition("#")[2] for line in text.splitlines() if "#" in line)
    return re.sub(r"\s*\n\s*#?\s*", " ", text)


def _headings(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.lstrip("#").strip() for line in lines if re.match(r"#{1,6} ", line)]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _has_section(name: str, section: str) -> bool:
    return any(h == section or h.startswith((section + ":", section + " (")) for h in _headings(name))


def _resolve(source: str, target: str) -> str:
    """``target`` (relative to ``source``'s folder, or to the root for a bare top-level name) as a root path."""
    candidate = (Path(source).parent / target).as_posix()
    parts = []
    for part in candidate.split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part not in (".", ""):
            parts.append(part)
    local = "/".join(parts)
    return local if _exists(local) or "/" in target else target


def _python_name_exists(dotted: str) -> bool:
    """Whether ``dotted`` names a module of the package or an attribute of one."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif hasattr(obj, "__path__") and importlib.util.find_spec(".".join(parts[:i + 1])) is not None:
            obj = importlib.import_module(".".join(parts[:i + 1]))
        else:
            return False
    return True


def broken_references(name: str) -> list[str]:
    """Every reference in file ``name`` that does not resolve in a clone."""
    text, out = _text(name), []
    if name.endswith(".md"):
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            path = _resolve(name, path) if path else name
            if not _exists(path):
                out.append(f"link {target}")
            elif anchor and path.endswith(".md") and anchor not in {_slug(h) for h in _headings(path)}:
                out.append(f"anchor {target}")
    for mention in MENTION.findall(text):
        mention = mention.rstrip(".,;:")
        bare = "/" not in mention and any(f == mention or f.endswith("/" + mention) for f in FILES)
        if mention and not bare and not _exists(_resolve(name, mention)) and not _exists(mention):
            out.append(f"file {mention}")
    for dotted in PYTHON_NAME.findall(text):
        if not _python_name_exists(dotted):
            out.append(f"python name {dotted}")
    for module in COMMAND.findall(text):
        spec = importlib.util.find_spec(module) if _python_name_exists(module) else None
        if spec is not None and spec.submodule_search_locations:
            spec = importlib.util.find_spec(module + ".__main__")
        if spec is None or "__main__" not in Path(spec.origin).read_text():
            out.append(f"command python -m {module}")
    for document, section in SECTION.findall(text):
        document = "README.md" if document == "README" else document
        target = _resolve(name, document) if _exists(_resolve(name, document)) else document
        if not _exists(target) or not _has_section(target, section):
            out.append(f"section {document}, \"{section}\"")
    for section in REPORT_SECTION.findall(text):
        if not _has_section("reports/README.md", section):
            out.append(f"section of the report \"{section}\"")
    return out


@pytest.mark.parametrize("name", DOCUMENTS + ["params.yaml"] + CODE)
def test_every_reference_resolves_in_a_clone(name):
    assert broken_references(name) == []


def test_the_checker_finds_what_is_missing(tmp_path, monkeypatch):
    page = ROOT / "docs" / "protocols.md"
    text = ("[a](missing.md) [b](pipeline.md#no-such-section) see `dlgmm_core/gone.py` and PAPER.md; "
            "`python -m dlgmm_core.report results`, dlgmm_core.results.Nothing; README, \"Performance\"; "
            "the report's section \"Nowhere\"; [fine](pipeline.md#data-sources), `dlgmm_core/results.py`, "
            "dlgmm_core.results.Knn, README.md, \"Layout\"")
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == page else
                        Path.read_bytes(self).decode())
    assert broken_references("docs/protocols.md") == [
        "link missing.md", "anchor pipeline.md#no-such-section", "file missing.md", "file dlgmm_core/gone.py",
        "file PAPER.md",
        "python name dlgmm_core.results.Nothing", "command python -m dlgmm_core.report",
        "section README.md, \"Performance\"", "section of the report \"Nowhere\""]




def test_the_readme_fits_a_first_screen():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_the_readme_verdict_is_what_the_committed_metrics_say():
    """README.md's verdict: each claim's verdict as the committed report judged it, and under `authors` the
    DLGMM's, DLDPMM's and Gauss-VAE's MNIST -log p(x) within a nat of the paper's and the SB-VAE's not."""
    from dlgmm_core.params.read import read_params_tree
    from dlgmm_core.report import PAPER, readme_claims_digest

    metrics = json.loads((ROOT / "reports/metrics.json").read_text())
    digest = readme_claims_digest(metrics, read_params_tree(ROOT / "params.yaml"))
    readme = (ROOT / "README.md").read_text()
    assert digest in readme, f"README.md: update the claims' verdicts (python tools/results.py --claims):\n{digest}"
    close = {m: abs(metrics[f"authors.mnist.{m}.nll"] - PAPER["mnist"][m]["nll"]) <= 1.0
             for m in ("dlgmm", "dldpmm", "gauss_vae", "sb_vae")}
    assert close == {"dlgmm": True, "dldpmm": True, "gauss_vae": True, "sb_vae": False}
    assert "the published\nMNIST likelihoods of the DLGMM, the DLDPMM and the Gauss-VAE lie within a nat" in readme


def test_the_protocols_epoch_table_is_the_committed_logs():
    spec = importlib.util.spec_from_file_location("results_tool", ROOT / "tools" / "results.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    table = tool.epochs_table(ROOT)
    assert table in (ROOT / "docs" / "protocols.md").read_text(), \
        f"docs/protocols.md: update the epochs table (python tools/results.py --epochs):\n{table}"


def test_the_epochs_table_marks_an_epoch_a_run_has_not_logged(tmp_path):
    """A training under way (or stopped early) has no validation ELBO at the later epochs: "—", not a traceback."""
    import shutil

    from dlgmm_core.params.read import read_params_tree

    spec = importlib.util.spec_from_file_location("results_tool", ROOT / "tools" / "results.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    seed = read_params_tree(ROOT / "params.yaml")["seeds"][0]
    for protocol in ("authors", "corrected"):
        shutil.copytree(ROOT / f"logs/{protocol}/seed-{seed}/mnist", tmp_path / f"logs/{protocol}/seed-{seed}/mnist")
    log = tmp_path / f"logs/corrected/seed-{seed}/mnist/dlgmm/plots/metrics/valid/elbo.tsv"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:6]))  # the header and epochs 1 to 5
    rows = {line.split(" | ")[0].lstrip("| "): line.strip(" |").split(" | ")[1:]
            for line in tool.epochs_table(tmp_path).splitlines()[2:]}
    assert rows["DLGMM, `corrected`"][2:] == ["—", "—"]
    assert "—" not in rows["DLGMM, `corrected`"][:2] + rows["DLGMM, `authors`"]
