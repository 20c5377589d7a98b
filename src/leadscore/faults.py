"""Fault injection for crash-safety tests: kill the process at a named step boundary.

Reads the ``LEADSCORE_CRASH_AT`` environment variable (unset in normal use); writes nothing.
Stages call :func:`crash_point` at each step boundary where a crash must leave the warehouse
and the files recoverable; a test sets the variable to one step name and runs the stage in a
subprocess, which then dies by ``SIGKILL`` exactly there (no ``finally`` block, no rollback
handler and no atexit hook runs: the same as a power cut for everything but the page cache).
"""

from __future__ import annotations

import os
import signal
from typing import Final

CRASH_ENV: Final = "LEADSCORE_CRASH_AT"


def crash_point(step: str) -> None:
    """Die by SIGKILL here when ``LEADSCORE_CRASH_AT`` names ``step``; otherwise do nothing."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
