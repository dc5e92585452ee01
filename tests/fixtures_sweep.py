"""What the sweep tests share: README's "Sweeps" commands as DVC runs them, the stages a sweep of ``k`` may run (read
from a clone's ``dvc.lock``: a stage's command names its script and model, not a list written here), and the
committed files a sweep must leave byte-identical."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import yaml

from dlgmm_core import layout
from dlgmm_core.claims import CLAIMS
from fixtures_pipeline import DVC, ROOT, _env, _run

#: The model a sweep of ``k`` changes: the only one whose resolved parameters hold ``k``.
SWEPT = "dlgmm"

def readme_sweep_commands() -> list[str]:
    """The commands of the fenced block of README's "Sweeps" section, in order, without their comments."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Sweeps\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _dvc_args(command: str, **placeholders: str) -> list[str]:
    """A README ``dvc ...`` line as this interpreter's DVC runs it, ``<name>`` placeholders filled in."""
    words = shlex.split(command)
    assert words[0] == "dvc", command
    return [*DVC, *[placeholders.get(word.strip("<>"), word) if word.startswith("<") else word
                    for word in words[1:]]]


def _lock_stages(work: Path) -> dict[str, str]:
    """Every stage of the committed ``dvc.lock``, with its command."""
    return {name: entry["cmd"] for name, entry in yaml.safe_load((work / "dvc.lock").read_text())["stages"].items()}


def _preparation(work: Path) -> set[str]:
    return {name for name, cmd in _lock_stages(work).items() if str(layout.script("prepare")) in cmd}


def _swept_stages(work: Path) -> set[str]:
    """The stages a sweep of ``k`` may run: the swept model's, ``resolve`` (params.yaml changed) and ``report``."""
    swept = {name for name, cmd in _lock_stages(work).items() if f"--model {SWEPT} " in f"{cmd} "}
    return swept | {layout.resolve_stage(), layout.report_stage()}


def _swept_trainings(work: Path) -> set[str]:
    return {name for name, cmd in _lock_stages(work).items()
            if str(layout.script("train")) in cmd and f"--model {SWEPT} " in f"{cmd} "}


def _tracked(work: Path) -> dict[str, bytes | None]:
    """Every git-tracked file's bytes (None: missing)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=work, capture_output=True, check=True).stdout
    return {name: (work / name).read_bytes() if (work / name).is_file() else None
            for name in names.decode().split("\0") if name}


def _assert_nothing_committed_changed(work: Path, before: dict[str, bytes | None], what: str) -> None:
    after = _tracked(work)
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert not changed and set(after) == set(before), f"{what} changed committed files: {changed[:20]}"
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], work)
    assert not status.strip(), f"{what}:\n{status}"


def _dvc(args: list[str], work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=work, env=_env(work), capture_output=True, text=True)


def _of_swept_model(key: str) -> bool:
    """Whether a metric of reports/metrics.json may change when only the swept model changes: one of its own
    (``.dlgmm.``), or a claim that compares it with another model (``claims.<claim>...``)."""
    on_swept = {claim.key for claim in CLAIMS if any(SWEPT in (case.better, case.than) for case in claim.cases)}
    return f".{SWEPT}." in key or (key.startswith("claims.") and key.split(".")[1] in on_swept)


def _experiment_file(work: Path, name: str, path: str) -> bytes:
    """A file as experiment ``name`` committed it."""
    refs = _run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], work).split()
    ref = next(ref for ref in refs if ref.endswith(f"/{name}"))
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=work, capture_output=True, check=True).stdout



def sweep_commands() -> list[str]:
    """README's sweep commands after the environment's activation, which the tests' DVC stands for."""
    commands = readme_sweep_commands()
    assert commands[0] == "source .venv/bin/activate", commands
    return commands[1:]
