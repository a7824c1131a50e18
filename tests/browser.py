"""Helpers for the headless-Chromium tests: Debian's browser, free ports, waiting for a server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# flags measured to work offline and headless (see ../shared/ECOSYSTEM.md)
FLAGS = ["--headless", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    """Skip without Debian's chromium, unless HUMAN3R_REQUIRE_BROWSER=1 (CI), where it is a failure."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("HUMAN3R_REQUIRE_BROWSER") == "1":
            pytest.fail("HUMAN3R_REQUIRE_BROWSER=1 but Debian's chromium is not installed")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, seconds: float, what: str) -> None:
    """Poll ``url`` until it answers; fail if ``proc`` exits or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"{what} exited with code {proc.returncode}")
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{what} did not start within {seconds:.0f} s")
