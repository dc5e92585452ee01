"""The marginal likelihood pins glibc's mmap threshold, so its resident memory does not grow with every test example.

Each check runs in a fresh interpreter: the threshold is process-wide state, and only a fresh process shows
glibc's default behaviour (a freed 20 MB block raises the threshold, so a 10 MB block then comes from the heap).
"""
from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

try:
    ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018 - glibc >= 2.33
except (OSError, AttributeError):
    pytest.skip("needs glibc (mallinfo2) to observe the allocator", allow_module_level=True)

# Frees a 20 MB block, then reports how many bytes of a 10 MB block glibc served with pages of its own.
PROBE = textwrap.dedent("""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                  "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(libc.malloc(20 << 20))
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(10 << 20)
    print(libc.mallinfo2().hblkhd - before)
    libc.free(block)
""")

MARGINAL_LIKELIHOOD = textwrap.dedent("""
    import numpy as np, torch
    from dlgmm_core.evaluation import marginal_likelihood
    from dlgmm_core.models import build_model
    torch.manual_seed(0)
    model = build_model("gauss_vae", input_dim=784, hidden=8, encoder_activation="relu", latent=2)
    x = (np.random.default_rng(0).random((3, 784)) < 0.2).astype(np.uint8)
    marginal_likelihood(model, x, 4, [1], 40, torch.device("cpu"), progress=False, authors_samples=2)
""")


def _mmapped_bytes(setup: str) -> int:
    out = subprocess.run([sys.executable, "-c", setup + PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_glibc_raises_its_threshold_after_a_large_free_by_default():
    assert _mmapped_bytes("") == 0


def test_fix_mmap_threshold_keeps_large_blocks_off_the_heap():
    setup = "from dlgmm_core.evaluation.common import fix_mmap_threshold\nassert fix_mmap_threshold()\n"
    assert _mmapped_bytes(setup) >= 10 << 20


def test_marginal_likelihood_pins_the_threshold():
    assert _mmapped_bytes(MARGINAL_LIKELIHOOD) >= 10 << 20
