"""Suite-wide settings, and the ``cuda`` marker: tests that need a CUDA device are skipped where torch sees none."""
from __future__ import annotations

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


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` (registered in pyproject.toml) where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch sees none here); benchmarks/gpu_check.py runs it")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)
