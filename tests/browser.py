"""Headless Chromium for the tests that look at a rendered page (Debian's chromium)."""

from __future__ import annotations

import subprocess
import tempfile

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)  # fmt: skip


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile (no network beyond the page's own)."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            ["chromium", *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
