"""Run the pipeline's independent stages side by side: ``python tools/schedule.py --jobs 2``.

DVC runs one stage at a time, but it lets separate ``dvc repro --single-item``
processes run independent stages concurrently: each takes the repository lock
only while it checks and records its stage, releases it while the command runs,
and locks its own outputs (shared reads of common inputs are allowed). This
module reads DVC's own stage graph and starts each stage as soon as every stage
it depends on has finished, ``jobs`` at a time: among the ready stages, those of
the headline protocol (the first of ``params.yaml``'s ``protocols``) first, then
the next protocol's; within a protocol MNIST's before Omniglot's (every
table of the paper has MNIST cells, so a run cut short still fills them), and
then the most expensive first (longest-first keeps the two cores busy until the
end; a further protocol's stages fill a core the headline leaves idle, so the
headline's results are never delayed by another protocol's). A stage's cost is
the time its last run logged in its outputs (:func:`logged_seconds`: a training
log's epoch times, a result's ``seconds``), else a default. Each stage is a
plain ``dvc --wait-for-lock repro --single-item <stage>``, so DVC still decides
what is up to date, what reruns and what dvc.lock records; a stage that failed
stops only the stages downstream of it, and the run ends with exit status 1.

Results are bitwise those of a plain ``dvc repro``: a stage's arithmetic does
not depend on what else runs, because its thread count is a parameter
(``train.threads``, ``eval.threads``; :func:`dlgmm_core.runtime.compute_device`).
Each concurrently run stage's output goes to ``.dlgmm/logs/<stage>.log``;
the terminal shows one line per stage. ``--jobs 1`` is ``dvc repro`` itself.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core import layout  # noqa: E402
from dlgmm_core.errors import DlgmmError  # noqa: E402
from dlgmm_core.history import _read_tsv  # noqa: E402

#: The cost (seconds) of a stage whose outputs log no time: one that writes a training log (under logs/), another.
DEFAULT_SECONDS = {"training": 3600.0, "other": 60.0}
#: Seconds between checks of the running stages.
_POLL = 0.5


def _median_epoch_seconds(log_dir: Path) -> float | None:
    """The median of the per-epoch times a training log folder holds (dvclive's ``epoch_seconds.tsv``, read by the
    history's own reader), None if none."""
    try:
        _, seconds = _read_tsv(log_dir / "plots" / "metrics" / "epoch_seconds.tsv", hint="")
    except DlgmmError:
        return None
    return statistics.median(seconds.tolist())


def logged_seconds(path: Path) -> float | None:
    """The seconds the stage that wrote output ``path`` took last time, None where it logs none.

    A training log (``logs/<protocol>/seed-<seed>/<dataset>/<model>/metrics.json``, or the folder holding it): its
    typical epoch time times its epochs (``epochs``, or ``step`` while it is under way). The typical epoch time is the
    median of the per-epoch times beside it (``plots/metrics/epoch_seconds.tsv``), which a training paused for hours
    between two epochs does not inflate, else ``timing.mean_epoch_seconds``. A JSON result with a top-level
    ``seconds`` (the marginal-likelihood stage's): that.
    """
    path = path / "metrics.json" if path.is_dir() else path
    if path.suffix != ".json" or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    timing = data.get("timing") if isinstance(data.get("timing"), dict) else {}
    epochs = data.get("epochs", data.get("step"))
    values = [_median_epoch_seconds(path.parent) or timing.get("mean_epoch_seconds"), epochs] if timing else \
        [data.get("seconds"), 1]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return float(values[0]) * float(values[1])
    return None


def stage_cost(outputs: list[Path], roots: tuple[Path, ...] = (Path("."),)) -> float:
    """The cost of a stage with the outputs ``outputs`` (relative to the repository): the largest time they log
    (:func:`logged_seconds`) under the first of ``roots`` where they log one, else :data:`DEFAULT_SECONDS`
    (``training`` where an output lies under ``logs/``)."""
    for root in roots:
        logged = [seconds for seconds in (logged_seconds(root / out) for out in outputs) if seconds is not None]
        if logged:
            return max(logged)
    training = any(out.parts[:1] == layout.logs_dir().parts for out in outputs)
    return DEFAULT_SECONDS["training" if training else "other"]


def protocol_rank(name: str, protocols: tuple[str, ...]) -> int:
    """The index in ``protocols`` of stage ``name``'s protocol (the first part of its item, as in
    ``train@corrected-1234-mnist-dlgmm``); 0 for a stage of no protocol (``resolve``, ``prepare@mnist``, ``report``)."""
    protocol = name.partition("@")[2].split("-")[0]
    return protocols.index(protocol) if protocol in protocols else 0


def _stage_dataset(name: str) -> str:
    """The dataset in stage ``name``'s item (``train@corrected-1234-omniglot-dlgmm``, ``prepare@omniglot``); ``mnist``
    for a stage of no dataset (``tsne@…`` and the qualitative model's stages are MNIST's)."""
    from dlgmm_core.params.stage import DATASETS

    return next((p for p in name.partition("@")[2].split("-") if p in DATASETS), "mnist")


def dataset_rank(name: str) -> int:
    """The index in :data:`dlgmm_core.params.stage.DATASETS` (MNIST first) of stage ``name``'s dataset
    (:func:`_stage_dataset`)."""
    from dlgmm_core.params.stage import DATASETS

    return DATASETS.index(_stage_dataset(name))


def read_protocols() -> tuple[str, ...]:
    """``params.yaml``'s ``protocols`` list, () when it is not a list of names (the resolve stage then
    reports what is wrong)."""
    from dlgmm_core.params.read import read_params_tree

    names = read_params_tree().get("protocols")
    return tuple(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else ()


def first_protocol(protocols: tuple[str, ...], first: str | None) -> tuple[str, ...]:
    """``protocols`` with ``first`` moved to the front (the order the scheduler runs them in); unchanged for None.

    DlgmmError when ``first`` is not one of ``protocols``.
    """
    if first is None:
        return protocols
    if first not in protocols:
        raise DlgmmError(f"--first {first}: not one of params.yaml's protocols ({', '.join(protocols) or 'none'})")
    return (first, *(p for p in protocols if p != first))


def stage_graph(targets: list[str] | None = None) -> tuple[dict[str, set[str]], dict[str, list[Path]]]:
    """``({stage: the stages it depends on}, {stage: its outputs})`` from DVC's graph, restricted to ``targets``
    and their upstream."""
    from dvc.repo import Repo

    with Repo() as repo:
        graph = repo.index.graph
        upstream = {stage.addressing: {dep.addressing for dep in graph.successors(stage)} for stage in graph.nodes}
        outputs = {stage.addressing: [Path(out.def_path) for out in stage.outs] for stage in graph.nodes}
    if not targets:
        return upstream, outputs
    unknown = [t for t in targets if t not in upstream]
    if unknown:
        raise DlgmmError(f"dvc.yaml: no stage named {', '.join(map(repr, unknown))}")
    keep, todo = set(), deque(targets)
    while todo:
        name = todo.popleft()
        if name not in keep:
            keep.add(name)
            todo.extend(upstream[name])
    return {name: deps & keep for name, deps in upstream.items() if name in keep}, outputs


def run_graph(upstream: dict[str, set[str]], start, *, jobs: int, report=print,
              protocols: tuple[str, ...] = (), costs: dict[str, float] | None = None) -> list[str]:
    """Run every stage of ``upstream`` once its dependencies succeeded, at most ``jobs`` at a time.

    ``start(name)`` launches a stage and returns an object with ``poll()``
    (``None`` while running, else the exit status), like :class:`subprocess.Popen`.
    Ready stages start in the order of their protocol in ``protocols`` (:func:`protocol_rank`), then of their
    dataset (:func:`dataset_rank`), then costliest first (``costs``, seconds: :func:`stage_cost`; a stage without
    one costs :data:`DEFAULT_SECONDS` ``other``), then by name. Returns the failed
    stages; the stages downstream of a failure are not started.
    """
    waiting = {name: set(deps) for name, deps in upstream.items()}
    downstream: dict[str, set[str]] = {name: set() for name in upstream}
    for name, deps in upstream.items():
        for dep in deps:
            downstream[dep].add(name)
    def priority(name: str) -> tuple[int, int, float, str]:
        cost = (costs or {}).get(name, DEFAULT_SECONDS["other"])
        return protocol_rank(name, protocols), dataset_rank(name), -cost, name

    ready = [priority(n) for n, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    running: dict[str, tuple[object, float]] = {}
    failed: list[str] = []
    skipped: set[str] = set()
    done = 0
    while ready or running:
        while ready and len(running) < jobs:
            name = heapq.heappop(ready)[-1]
            running[name] = (start(name), time.monotonic())
            report(f"[{done}/{len(upstream)}] started  {name}")
        if running:
            time.sleep(_POLL)
        for name, (proc, began) in list(running.items()):
            status = proc.poll()
            if status is None:
                continue
            del running[name]
            done += 1
            seconds = time.monotonic() - began
            if status == 0:
                report(f"[{done}/{len(upstream)}] finished {name} ({seconds:.0f} s)")
                for child in downstream[name]:
                    waiting[child].discard(name)
                    if not waiting[child] and child not in skipped:
                        heapq.heappush(ready, priority(child))
            else:
                failed.append(name)
                report(f"[{done}/{len(upstream)}] FAILED   {name} (exit {status}, {seconds:.0f} s)")
                todo = deque(downstream[name])
                while todo:
                    child = todo.popleft()
                    if child not in skipped:
                        skipped.add(child)
                        done += 1
                        todo.extend(downstream[child])
    if skipped:
        report(f"not run (downstream of a failure): {', '.join(sorted(skipped))}")
    return failed


def _dvc_command(dvc: str, *flags: str) -> list[str]:
    return [dvc, "--wait-for-lock", "repro", "--single-item", *flags]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="stages to reproduce with their upstream (default: all)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="stages at a time (1: plain dvc repro)")
    parser.add_argument("--dvc", default="dvc", help="the dvc executable")
    parser.add_argument("--costs-from", metavar="DIR", action="append", default=[], type=Path,
                        help="a further checkout whose logged stage times rank the stages where this one logs none "
                             "(`make quick`: the workspace's paper-budget run)")
    parser.add_argument("--first", metavar="PROTOCOL",
                        help="run this protocol's stages before the headline's (e.g. when the headline's results are "
                             "already committed and another protocol's are missing); the report is unchanged")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip a stage whose only change is a cached output missing here (DVC's flag): continue "
                             "a committed run on a machine without its DVC cache instead of retraining what it "
                             "trained (prepare the data first: `dvc repro prepare`)")
    args = parser.parse_args(argv)
    flags = ["--allow-missing"] if args.allow_missing else []
    if args.jobs < 1:
        print(f"schedule: --jobs must be at least 1 (got {args.jobs})", file=sys.stderr)
        return 2
    if args.jobs == 1:
        if args.first:
            print("schedule: --first orders the stages run side by side; with --jobs 1 the order is dvc repro's",
                  file=sys.stderr)
            return 2
        return subprocess.call([args.dvc, "repro", *flags, *args.targets])
    try:
        upstream, outputs = stage_graph(args.targets)
        protocols = first_protocol(read_protocols(), args.first)
    except DlgmmError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log_dir = layout.stage_logs_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    processes: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        log = open(layout.stage_log(name), "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([*_dvc_command(args.dvc, *flags), name], stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        processes.append(proc)
        return proc

    began = time.monotonic()
    print(f"running {len(upstream)} stages, {args.jobs} at a time; each stage's output: {log_dir}/<stage>.log",
          flush=True)
    try:
        costs = {name: stage_cost(outputs[name], (Path("."), *args.costs_from)) for name in upstream}
        failed = run_graph(upstream, start, jobs=args.jobs, report=lambda line: print(line, flush=True),
                           protocols=protocols, costs=costs)
    except KeyboardInterrupt:
        for proc in processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in processes:
            proc.wait()
        print("interrupted: the running stages were stopped (training resumes from its last epoch)",
              file=sys.stderr)
        return 130
    minutes = (time.monotonic() - began) / 60
    for name in failed:
        tail = Path(layout.stage_log(name)).read_text(errors="replace").splitlines()[-12:]
        print(f"\n--- {name} (last lines of {layout.stage_log(name)}):\n" + "\n".join(tail), file=sys.stderr)
    if failed:
        print(f"\n{len(failed)} stage(s) failed after {minutes:.1f} min: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(upstream)} stages up to date ({minutes:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
