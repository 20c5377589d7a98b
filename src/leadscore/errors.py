"""Expected failures and their exit codes: one line on stderr, never a traceback.

Used by the CLI around every command. A failure the user can act on (bad input, a failed gate,
a busy warehouse, a changed model bundle, a refused file) prints ``<kind>: <message>`` as one
line and exits with its code; ``--debug`` (or ``LEADSCORE_DEBUG=1``) prints the traceback too.
Anything else is a bug and keeps its traceback. The codes are listed in ``docs/failures.md``.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Final


class ExitCode(IntEnum):
    """Process exit codes of the ``leadscore`` command."""

    OK = 0
    BAD_INPUT = 1
    GATE_FAILED = 2
    WAREHOUSE_BUSY = 3
    TAMPERED_BUNDLE = 4
    PERMISSION = 5


DEBUG_ENV: Final = "LEADSCORE_DEBUG"
_MISSING_TABLE: Final = re.compile(r"Table with name \S+ does not exist")


def classify(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and label of an expected failure; None for anything else (a bug)."""
    from leadscore.bundle import BundleError
    from leadscore.config import ConfigError
    from leadscore.gates import GateFailed
    from leadscore.ingest.quality import IngestError
    from leadscore.warehouse import WarehouseBusy, WarehouseError

    kinds: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ExitCode, str], ...]
    kinds = (
        (GateFailed, ExitCode.GATE_FAILED, "GATE FAILED"),
        (WarehouseBusy, ExitCode.WAREHOUSE_BUSY, "warehouse busy"),
        (BundleError, ExitCode.TAMPERED_BUNDLE, "model bundle refused"),
        (PermissionError, ExitCode.PERMISSION, "permission denied"),
        ((ConfigError, IngestError), ExitCode.BAD_INPUT, "error"),
        ((FileNotFoundError, NotADirectoryError, ValueError), ExitCode.BAD_INPUT, "error"),
    )
    for types, code, label in kinds:
        if isinstance(exc, types):
            return code, label
    if isinstance(exc, WarehouseError) and _MISSING_TABLE.search(str(exc)):
        return ExitCode.BAD_INPUT, "error"  # e.g. `score` before `ingest`
    return None


def one_line(message: str) -> str:
    """The message on one line (indented continuation lines joined with '; ')."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    if not parts:
        return "(no message)"
    head, rest = parts[0], parts[1:]
    return head + (" " + "; ".join(rest) if rest else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PermissionError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or 'not allowed'}"
    return one_line(str(exc).split("\n-- in ")[0])  # never the SQL statement


@contextmanager
def expected_failures(debug: bool = False) -> Iterator[None]:
    """Turn an expected failure into one stderr line and its exit code (``SystemExit``)."""
    try:
        yield
    except Exception as exc:
        kind = classify(exc)
        if kind is None:
            raise
        code, label = kind
        if debug or os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"{label}: {_describe(exc)}\n")
        sys.stderr.flush()
        raise SystemExit(int(code)) from None
