"""dvc.yaml against the code: every stage's outputs and inputs are the paths of dlgmm_core.layout, every
module a stage's script imports is among its deps, and the training fingerprint hashes exactly the
training stages' code deps."""
from __future__ import annotations

import ast
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from dlgmm_core import layout
from dlgmm_core.errors import DlgmmError
from dlgmm_core.results import cluster_result, per_image_path
from dlgmm_core.io import read_json

ROOT = Path(__file__).resolve().parents[1]
#: Where the code a stage runs lives; every other dep is data.
CODE_ROOTS = ("stages", layout.PACKAGE)
TRAIN_SCRIPT = layout.script("train")


def dvc_stages() -> list[dict]:
    """Every stage of dvc.yaml as DVC itself expands it (matrix, ``${item.*}``)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return [{"name": stage.name, "cmd": stage.cmd,
                 "deps": [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)],
                 "outs": {o.def_path for o in stage.outs if not o.metric and not o.plot},
                 "metrics": {o.def_path for o in stage.outs if o.metric},
                 "plots": {o.def_path for o in stage.outs if o.plot}}
                for stage in repo.index.stages]


STAGES = dvc_stages()


def command(stage: dict) -> tuple[str, dict[str, str]]:
    """``(script, {"dataset": ..., "model": ...})`` of a stage's ``python stages/<x>.py --key value ...``."""
    words = shlex.split(stage["cmd"])
    assert words[0] == "python" and len(words) % 2 == 0, stage["cmd"]
    options = dict(zip(words[2::2], words[3::2]))
    return words[1], {key.removeprefix("--"): value for key, value in options.items()}


def is_code(dep: str) -> bool:
    return Path(dep).parts[0] in CODE_ROOTS


def expected(script: str, args: dict[str, str]) -> dict:
    """What the layout says the stage running ``script`` with ``args`` is named, writes and reads."""
    p, d, m = args.get("protocol"), args.get("dataset"), args.get("model")
    s = int(args["seed"]) if "seed" in args else None
    npz, meta = layout.prepared(d) if d else (None, None)
    stage = Path(script).stem
    if stage == "resolve":
        return {"name": layout.resolve_stage(), "outs": {layout.stage_params_dir()}, "metrics": set(), "plots": set(),
                "data": set()}
    want = _expected_without_params(stage, p, s, d, m, npz, meta)
    want["data"] = want["data"] | {layout.stage_params(want["name"])}
    return want


def _expected_without_params(stage: str, p, s, d, m, npz, meta) -> dict:
    if stage == "prepare":
        return {"name": layout.prepare_stage(d), "outs": {npz, meta}, "metrics": set(), "plots": set(), "data": set()}
    ckpt = layout.checkpoint(p, s, d, m) if p else None
    if stage == "train":
        return {"name": layout.train_stage(p, s, d, m), "outs": {ckpt},
                "metrics": {layout.train_metrics(p, s, d, m)}, "plots": {layout.train_plots(p, s, d, m)},
                "data": {npz}}
    if stage == "marginal_likelihood":
        result = layout.nll_result(p, s, d, m)
        return {"name": layout.nll_stage(p, s, d, m), "outs": {result, per_image_path(result)}, "metrics": set(),
                "plots": set(), "data": {ckpt, npz}}
    if stage == "knn":
        result = layout.knn_result(p, s, d, m)
        return {"name": layout.knn_stage(p, s, d, m), "outs": {result, per_image_path(result)}, "metrics": set(),
                "plots": set(), "data": {ckpt, npz, meta}}
    if stage == "tsne":
        clusters = cluster_result(p, s, d, m)
        return {"name": layout.tsne_stage(p, s, m), "outs": {layout.tsne_figure(p, s, d, m), per_image_path(clusters)},
                "metrics": {clusters}, "plots": set(), "data": {ckpt, npz, meta}}
    if stage == "samples":
        out = layout.qualitative_dir(p, s) if m == "qualitative" else layout.samples_figure(p, s, d, m)
        # the component samples' digits are classified against the labelled training images
        return {"name": layout.samples_stage(p, s, d, m), "outs": {out}, "metrics": set(), "plots": set(),
                "data": {ckpt, npz} if m == "qualitative" else {ckpt}}
    if stage == "report":
        return {"name": "report", "outs": {layout.report_readme(), layout.training_figures_dir()},
                "metrics": {layout.report_metrics()}, "plots": set(),
                "data": {layout.nll_dir(), layout.knn_dir(), layout.tsne_dir(), layout.samples_dir(),
                         layout.qualitative_root(), layout.logs_dir()}}
    raise AssertionError(f"a stage script the layout does not know: {stage}")


def covered(path: Path, deps: list[str]) -> bool:
    """Whether ``path`` is a file dep or lies in a folder dep."""
    return any(path == Path(dep) or Path(dep) in path.parents for dep in deps)


def code_dep_sources(deps: list[str]) -> set[Path]:
    """The Python sources a stage's code deps name: its file deps and every .py file in its folder deps."""
    out = set()
    for dep in filter(is_code, deps):
        if (ROOT / dep).is_dir():
            out |= {p.relative_to(ROOT) for p in (ROOT / dep).rglob("*.py")}
        else:
            out.add(Path(dep))
    return out


def test_every_stage_script_has_a_stage():
    scripts = {command(stage)[0] for stage in STAGES}
    assert scripts == {p.relative_to(ROOT).as_posix() for p in (ROOT / "stages").glob("*.py")}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # per protocol and seed: 9 trainings, 8 marginal likelihoods, 8 kNN, 4 t-SNE, 9 sample grids; then resolve,
    # 2 prepare, report
    assert len(STAGES) == 38 * len(params["protocols"]) * len(params["seeds"]) + 4


@pytest.mark.parametrize("stage", STAGES, ids=[s["name"] for s in STAGES])
def test_stage_paths_are_the_layout(stage):
    script, args = command(stage)
    want = expected(script, args)
    assert stage["name"] == want["name"]
    for kind in ("outs", "metrics", "plots"):
        assert {Path(p) for p in stage[kind]} == want[kind], kind
    assert {Path(d) for d in stage["deps"] if not is_code(d)} == want["data"]


@pytest.mark.parametrize("stage", STAGES, ids=[s["name"] for s in STAGES])
def test_stage_imports_are_declared_deps(stage):
    script = command(stage)[0]
    for dep in filter(is_code, stage["deps"]):
        assert (ROOT / dep).exists(), f"{stage['name']}: dep {dep} does not exist"
    undeclared = [str(p) for p in layout.stage_sources(script, ROOT) if not covered(p, stage["deps"])]
    assert not undeclared, f"{stage['name']} runs {undeclared}, which dvc.yaml does not declare as deps"


def test_training_fingerprint_covers_exactly_the_training_code_deps():
    """The training stage fingerprints the sources its script runs (stages/train.py passes
    ``code_sha256(stage_sources(script("train")))`` to the loop): exactly every training stage's code deps."""
    train = [s for s in STAGES if command(s)[0] == TRAIN_SCRIPT.as_posix()]
    assert {s["name"] for s in train} >= {"train@authors-1234-mnist-gauss_vae", "train@authors-1234-mnist-dlgmm",
                                        "train_qualitative@authors-1234-mnist-qualitative"}
    assert "code_sha256(stage_sources(script(\"train\"), ROOT), ROOT)" in (ROOT / TRAIN_SCRIPT).read_text()
    for stage in train:
        assert code_dep_sources(stage["deps"]) == set(layout.stage_sources(TRAIN_SCRIPT, ROOT)), stage["name"]


def test_the_training_loop_does_not_import_the_layout():
    """The loop gets its code fingerprint from the stage: training, resume and history know no pipeline layout."""
    for name in ("training", "resume", "history"):
        tree = ast.parse((ROOT / layout.PACKAGE / f"{name}.py").read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    for alias in node.names} | {node.module for node in ast.walk(tree)
                                                if isinstance(node, ast.ImportFrom) and node.module}
        assert "layout" not in imported and "stage_sources" not in imported, name


def test_training_states_are_ignored_by_git_and_dvc_and_outside_every_output():
    """Queued and temporary experiments and fresh clones lack untracked files: a state must not be an output."""
    from dvc.repo import Repo

    declared = [out for s in STAGES for kind in ("outs", "metrics", "plots") for out in s[kind]]
    states = [layout.train_state(args["protocol"], int(args["seed"]), args["dataset"], args["model"])
              for script, args in map(command, STAGES) if script == TRAIN_SCRIPT.as_posix()]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert len(set(states)) == len(states) == 9 * len(params["protocols"]) * len(params["seeds"])
    with Repo(str(ROOT)) as repo:
        for state in states:
            assert layout.train_state_dir() in state.parents, state
            assert not covered(state, declared), f"{state} lies in a declared output"
            assert repo.dvcignore.is_ignored_file(str(ROOT / state)), f"{state}: not in .dvcignore"
            assert repo.scm.is_ignored(str(ROOT / state)), f"{state}: not in .gitignore"


def test_training_fingerprint_follows_the_sources(tmp_path):
    from dlgmm_core.resume import code_sha256

    for folder in CODE_ROOTS:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))

    def fingerprint() -> str:
        return code_sha256(layout.stage_sources(TRAIN_SCRIPT, tmp_path), tmp_path)

    before = fingerprint()
    assert fingerprint() == before
    lazily_imported = tmp_path / "dlgmm_core/data/omniglot.py"  # imported inside prepare_dataset only
    lazily_imported.write_text(lazily_imported.read_text() + "\n")
    assert fingerprint() != before
    changed = fingerprint()
    (tmp_path / "dlgmm_core/report.py").write_text("")  # not run by the training stage
    assert fingerprint() == changed


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_stage_sources_follows_every_kind_of_import(tmp_path):
    write_files(tmp_path, {
        "dlgmm_core/__init__.py": "from .errors import E\n_LAZY = {'thing': 'lazy_mod', 'other': 'other_mod'}\n",
        "dlgmm_core/errors.py": "E = 1\n",
        "dlgmm_core/lazy_mod.py": "thing = 1\n",
        "dlgmm_core/other_mod.py": "other = 1\n",
        "dlgmm_core/unused.py": "",
        "dlgmm_core/a.py": "def f():\n    from . import b\n    return b\n",
        "dlgmm_core/b.py": "import os\n",
        "dlgmm_core/sub/__init__.py": "",
        "dlgmm_core/sub/c.py": "from .. import thing\nfrom ..errors import E\n",
        "stages/one.py": "import sys\nfrom dlgmm_core.a import f\nfrom dlgmm_core.sub import c\n",
        "stages/bare.py": "import dlgmm_core\n",
    })
    assert layout.stage_sources("stages/one.py", tmp_path) == sorted(Path(p) for p in [
        "stages/one.py", "dlgmm_core/__init__.py", "dlgmm_core/errors.py", "dlgmm_core/a.py", "dlgmm_core/b.py",
        "dlgmm_core/sub/__init__.py", "dlgmm_core/sub/c.py", "dlgmm_core/lazy_mod.py"])
    assert layout.stage_sources("stages/bare.py", tmp_path) == sorted(Path(p) for p in [
        "stages/bare.py", "dlgmm_core/__init__.py", "dlgmm_core/errors.py", "dlgmm_core/lazy_mod.py",
        "dlgmm_core/other_mod.py"])
    with pytest.raises(DlgmmError, match=r"stages/missing\.py: stage script not found"):
        layout.stage_sources("stages/missing.py", tmp_path)


def test_stage_sources_of_the_training_stage():
    sources = {p.as_posix() for p in layout.stage_sources(TRAIN_SCRIPT, ROOT)}
    # build_model through dlgmm_core's _LAZY table; the data sources through imports inside functions
    assert {"stages/train.py", "dlgmm_core/models/mixture.py", "dlgmm_core/data/omniglot.py",
            "dlgmm_core/training.py", "dlgmm_core/checkpoint.py"} <= sources
    assert not any(p.startswith("dlgmm_core/evaluation/") for p in sources)


def test_paths_are_below_the_root(tmp_path):
    assert layout.checkpoint("authors", 1234, "mnist", "dlgmm") == Path("models/authors/seed-1234/mnist/dlgmm.pt")
    assert str(layout.nll_result("corrected", 7, "omniglot", "sb_vae")) == \
        "reports/nll/corrected/seed-7/omniglot/sb_vae.json"
    assert layout.prepared("mnist", tmp_path) == (tmp_path / "data/prepared/mnist.npz",
                                                 tmp_path / "data/prepared/mnist.json")
    assert layout.train_curve("authors", 1234, "mnist", "dlgmm", "valid", tmp_path) == \
        tmp_path / "logs/authors/seed-1234/mnist/dlgmm/plots/metrics/valid/elbo.tsv"
    assert layout.qualitative_figure("authors", 1234, 5) == \
        Path("reports/figures/qualitative/authors/seed-1234/component_5.png")
    assert layout.train_stage("authors", 1234, "mnist", "qualitative") == "train_qualitative@authors-1234-mnist-qualitative"
    assert layout.samples_stage("corrected", 7, "mnist", "qualitative") == "samples_qualitative@corrected-7"


def test_evaluation_modules_do_not_import_their_package():
    """The package's __init__ re-exports its modules; none of them imports back from it (no cycle)."""
    for path in sorted((ROOT / "dlgmm_core/evaluation").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert node.module, f"{path.name}:{node.lineno} imports from its own package's __init__"


# --------------------------------------------------------------------------
# the JSON inputs of the stages
# --------------------------------------------------------------------------
def test_read_json_names_the_file_and_the_remedy(tmp_path):
    path = tmp_path / "result.json"
    with pytest.raises(DlgmmError) as err:
        read_json(path, "run its stage")
    assert str(err.value) == f"{path}: not found; run its stage"
    path.write_text("{broken")
    with pytest.raises(DlgmmError, match=r"result\.json: not readable JSON \(.*\); run its stage$"):
        read_json(path, "run its stage")
    path.write_text("[1, 2]")
    with pytest.raises(DlgmmError) as err:
        read_json(path, "run its stage")
    assert str(err.value) == f"{path}: expected a JSON object; run its stage"
    path.write_text('{"nll": 1.5}')
    assert read_json(path, "run its stage") == {"nll": 1.5}


def test_resolve_writes_exactly_one_parameter_file_per_stage(tmp_path):
    """Every stage but resolve reads data/params/<its name>.json, and resolve writes those and no others."""
    from dlgmm_core.params.views import resolve

    resolve(ROOT / "params.yaml", tmp_path)
    written = {p.name for p in layout.stage_params_dir(tmp_path).iterdir()}
    assert written == {layout.stage_params(s["name"]).name for s in STAGES if s["name"] != layout.resolve_stage()}
