"""Serve stage: which model answers. Follows the champion without a restart.

Reads the champion's bundle folder (verifying its checksums on every load); writes nothing.
A promotion or rollback changes what ``locate`` returns; the next request after
``check_seconds`` loads the new bundle, and requests in flight finish on the old one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from leadscore.bundle import Bundle, load_bundle
from leadscore.warehouse.base import WarehouseBusy


class ModelSource:
    """The current champion bundle, re-resolved at most every ``check_seconds``."""

    def __init__(self, locate: Callable[[], Path], check_seconds: float = 5.0) -> None:
        self._locate = locate
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._bundle: Bundle | None = None
        self._checked = float("-inf")

    def current(self) -> Bundle:
        """The champion bundle (loaded on first use).

        Raises:
            FileNotFoundError: there is no champion yet.
            BundleError: the champion's files no longer match its checksums.
        """
        with self._lock:
            now = time.monotonic()
            if self._bundle is None or now - self._checked >= self._check_seconds:
                try:
                    path = self._locate()
                except WarehouseBusy:
                    if self._bundle is None:
                        raise
                    return self._bundle  # the daily job is writing: keep the model we have
                if self._bundle is None or Path(path) != Path(self._bundle.path):
                    self._bundle = load_bundle(path)
                self._checked = now
            return self._bundle

    def loaded(self) -> Bundle | None:
        """The bundle in memory, without checking for a newer champion."""
        return self._bundle
