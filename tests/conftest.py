"""Suite-wide settings; the order of the test files; the ``cuda`` marker: tests that need a CUDA device are skipped
where torch sees none."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny test models gain nothing from threads, and CPU results are then reproducible bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _subnormals_kept_between_tests():
    """``runtime.compute_device`` (what the stages and the training loop call) flushes subnormals to zero for
    the process; each test starts from torch's default, so no result depends on which test ran before."""
    yield
    torch.set_flush_denormal(False)


#: The test files that run the tiny DVC pipeline (``tests/fixtures_pipeline.py``), minutes each: they run first, so
#: that none of them is left to run alone at the end of ``make test``. pytest-xdist gives a worker its next file when
#: at most two of its tests are left: the two long files first, one per worker (both build a tiny pipeline), then
#: each worker takes one of the two sweep files as it nears the end of its first, and the short tests fill the rest.
PIPELINE_FILES = ("test_pipeline.py", "test_dvc_mechanics.py", "test_sweep.py", "test_sweep_failures.py")


def pytest_configure(config):
    """pytest-xdist hands out test files (``--dist loadfile``) in collection order, not most tests first."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """The files of :data:`PIPELINE_FILES` first, in that order, the others as collected; skip the tests marked
    ``cuda`` (registered in pyproject.toml) where torch sees no CUDA device."""
    first = {name: rank for rank, name in enumerate(PIPELINE_FILES)}
    items.sort(key=lambda item: first.get(Path(str(item.fspath)).name, len(first)))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch sees none here); benchmarks/gpu_check.py runs it")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)
