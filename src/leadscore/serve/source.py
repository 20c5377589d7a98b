"""Serve stage: which model answers. Follows the champion without a restart.

Reads the champion's bundle folder (verifying its checksums on every load); writes nothing.
A promotion or rollback changes what ``locate`` returns. In the default (inline) mode the
first request after ``check_seconds`` re-resolves the champion itself; with
``background=True`` the service's refresher thread calls :meth:`ModelSource.refresh` every
``check_seconds`` and requests never wait for the registry. Either way requests in flight
finish on the bundle they started with.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from leadscore.bundle import MANIFEST, Bundle, BundleError, load_bundle, verify_bundle
from leadscore.io import sha256_file
from leadscore.registry.records import RegistryError
from leadscore.warehouse.base import WarehouseBusy, WarehouseError

#: Why a champion cannot be served (the service answers 503 ``model_unavailable``).
UNAVAILABLE = (FileNotFoundError, BundleError, RegistryError, WarehouseError)


class ModelSource:
    """The current champion bundle, re-resolved at most every ``check_seconds``."""

    def __init__(
        self, locate: Callable[[], Path], check_seconds: float = 5.0, *, background: bool = False
    ) -> None:
        self._locate = locate
        self.check_seconds = check_seconds
        self.background = background
        self._lock = threading.Lock()
        self._bundle: Bundle | None = None
        self._error: Exception | None = None
        self._manifest_sha: str | None = None
        self._checked = float("-inf")

    def current(self) -> Bundle:
        """The champion bundle (loaded on first use).

        Raises:
            FileNotFoundError: there is no champion yet.
            BundleError: the champion's files no longer match its checksums.
        """
        if self.background and self._bundle is not None:
            error = self._error
            if error is not None:
                raise error
            return self._bundle
        with self._lock:
            now = time.monotonic()
            if self._bundle is None or now - self._checked >= self.check_seconds:
                self._resolve()
                self._checked = now
            assert self._bundle is not None
            return self._bundle

    def refresh(self) -> None:
        """Re-resolve the champion now; a failure is kept and raised to the next requests
        (until a later refresh succeeds). The refresher thread's call."""
        with self._lock:
            try:
                self._resolve()
                self._error = None
            except UNAVAILABLE as exc:
                self._error = exc
            self._checked = time.monotonic()

    @property
    def failed(self) -> bool:
        """Whether the last background refresh failed (requests get its error)."""
        return self._error is not None

    def verify(self) -> None:
        """Re-check the loaded bundle's files without reading the registry: every file
        against its manifest, and the manifest against the one loaded. For a refresher that
        knows the registry cannot have changed (the warehouse file did not)."""
        with self._lock:
            bundle = self._bundle
            if bundle is None:
                return
            try:
                verify_bundle(bundle.path)
                if sha256_file(Path(bundle.path) / MANIFEST) != self._manifest_sha:
                    raise BundleError(f"{bundle.path}: {MANIFEST} changed after it was loaded")
            except BundleError as exc:
                self._error = exc
            self._checked = time.monotonic()

    def _resolve(self) -> None:
        try:
            path = self._locate()
        except WarehouseBusy:
            if self._bundle is None:
                raise
            return  # the daily job is writing: keep the model we have
        if self._bundle is None or Path(path) != Path(self._bundle.path):
            self._bundle = load_bundle(path)
            self._manifest_sha = sha256_file(Path(path) / MANIFEST)

    def loaded(self) -> Bundle | None:
        """The bundle in memory, without checking for a newer champion."""
        return self._bundle
