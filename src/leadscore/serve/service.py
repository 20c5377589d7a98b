"""Serve stage: score one request (by features, by lead id, or by CRD and contact time).

Reads the champion bundle (through :class:`~leadscore.serve.source.ModelSource`), the lead
index (:mod:`leadscore.serve.index`) and, when the index cannot answer, the warehouse
(read-only, the point-in-time SQL of training and batch scoring); writes nothing.

Two paths give one answer. The fast path (:class:`~leadscore.serve.fast.FastScorer`) types
a plainly valid row with NumPy and scores it with the bundle's booster; any other row goes
through the batch scorer's own ``check_rows`` and ``score_frame``, which also word every
rejection. Both equal the batch score bit for bit (``tests/test_serve.py``).
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pandas as pd

from leadscore.bundle import Bundle
from leadscore.catalog import Catalog, segment_column
from leadscore.config import Settings
from leadscore.score.batch import PIT_STATUS_DETAIL, ScoreRejected, score_frame, score_one
from leadscore.score.checks import check_rows
from leadscore.serve.fast import FastScorer, TypedRow
from leadscore.serve.index import LeadIndex, Stamp, build_index, warehouse_stamp
from leadscore.serve.lookup import crd_features, lead_features
from leadscore.serve.metrics import ServeMetrics
from leadscore.serve.schemas import ScoreRequest, ScoreResponse
from leadscore.serve.source import UNAVAILABLE, ModelSource
from leadscore.warehouse import Warehouse, WarehouseError, open_warehouse

Clock = Callable[[], datetime]


class LeadNotScored(Exception):
    """A lead that cannot be scored: HTTP status, a reason code and words."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


class ScoringService:
    """What the endpoints call: the model, the lead index, the warehouse, the metrics."""

    def __init__(self, cfg: Settings, catalog: Catalog, models: ModelSource, clock: Clock) -> None:
        self.cfg, self.catalog, self.models, self.clock = cfg, catalog, models, clock
        self.metrics = ServeMetrics()
        self.index: LeadIndex | None = None
        self._registry_stamp: Stamp | None = None  # warehouse state of the last registry read
        self._fast: FastScorer | None = None
        self._frozen: LeadIndex | None = None
        self._lock = threading.Lock()

    @contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        """A read-only connection for one request (the daily job may hold the writer lock)."""
        try:
            wh = open_warehouse(self.cfg.warehouse, read_only=True)
        except (WarehouseError, PermissionError, OSError) as exc:
            raise LeadNotScored(503, "warehouse_unavailable", first_line(exc)) from None
        try:
            yield wh
        finally:
            wh.close()

    def bundle(self) -> Bundle:
        """The champion bundle, or 503 ``model_unavailable``."""
        try:
            return self.models.current()
        except UNAVAILABLE as exc:
            raise LeadNotScored(503, "model_unavailable", first_line(exc)) from None

    def fast(self, bundle: Bundle) -> FastScorer:
        """The fast scorer of ``bundle`` (built once per loaded bundle)."""
        scorer = self._fast
        if scorer is None or scorer.bundle is not bundle:
            with self._lock:
                scorer = self._fast
                if scorer is None or scorer.bundle is not bundle:
                    scorer = self._fast = FastScorer(bundle, self.catalog, self.cfg.score)
        return scorer

    def refresh(self) -> None:
        """One tick of the refresher thread: follow the champion, build the fast scorer of a
        new one, and re-read the lead index when the warehouse changed.

        The registry lives in the warehouse, so while the warehouse file is unchanged since
        the last successful registry read, the champion is the same: only its files are
        re-verified (reading the registry opens the warehouse, which holds the interpreter
        for tens of milliseconds and would stall the requests in flight)."""
        stamp = warehouse_stamp(self.cfg)
        if stamp is None or stamp != self._registry_stamp or self.models.failed:
            self.models.refresh()
            self._registry_stamp = None if self.models.failed else stamp
        else:
            self.models.verify()
        bundle = self.models.loaded()
        if bundle is not None:
            self.fast(bundle)  # built here, not by the first request after a promotion
        if self.refresh_index() is not self._frozen:
            self._frozen = self.index
            gc.freeze()  # the index's objects live long: keep them out of every collection

    def refresh_index(self) -> LeadIndex | None:
        """Read the lead index again when the warehouse changed since it was read."""
        if warehouse_stamp(self.cfg) is None:
            return None
        index = self.index
        if index is not None and index.stamp == warehouse_stamp(self.cfg):
            return index
        with self.warehouse() as wh:
            stamp = warehouse_stamp(self.cfg)  # taken while this reader holds the file
            assert stamp is not None
            index = build_index(wh, self.cfg, self.catalog, self.clock(), stamp)
        self.index = index
        return index

    def score_now(self, req: ScoreRequest) -> ScoreResponse | None:
        """The fast-path answer, or None when the request needs :meth:`score` (a row that is
        not plainly valid, the warehouse, or a model source that checks inline). Never
        blocks on input or output, so the event loop may call it."""
        if not self.models.background or self.models.loaded() is None:
            return None
        bundle = self.bundle()
        if req.features is not None:
            fast = self.fast(bundle)
            typed = fast.typed(req.features)
            return None if typed is None else self._fast_answer(fast, typed, req.lead_id)
        if req.crd is None:
            return self._from_index(bundle, str(req.lead_id))
        return None

    def score(self, req: ScoreRequest) -> ScoreResponse:
        """Score one request, or raise :class:`LeadNotScored`."""
        bundle = self.bundle()
        if req.features is not None:
            return self._score_payload(bundle, req.features, req.lead_id)
        if req.crd is None:
            answer = self._from_index(bundle, str(req.lead_id))
            if answer is not None:
                return answer
        with self.warehouse() as wh:
            try:
                frame = self._features(wh, req)
            except WarehouseError as exc:
                raise LeadNotScored(503, "warehouse_error", first_line(exc)) from None
        self.metrics.paths.labels("warehouse").inc()
        return self._score_row(bundle, frame, req.lead_id)

    def _score_payload(
        self, bundle: Bundle, features: Mapping[str, Any], lead_id: str | None
    ) -> ScoreResponse:
        fast = self.fast(bundle)
        typed = fast.typed(features)
        if typed is not None:
            return self._fast_answer(fast, typed, lead_id)
        missing = [f for f in (*bundle.features, segment_column()) if f not in features]
        if missing:
            raise LeadNotScored(422, "missing_feature", f"no value given for {', '.join(missing)}")
        self.metrics.paths.labels("checked").inc()
        try:
            out = score_one(bundle, features, self.catalog, self.cfg.score)
        except ScoreRejected as exc:
            raise LeadNotScored(422, exc.reason, exc.detail) from None
        keys = ("probability", "score", "bucket", "tier", "drivers_text", "drivers")
        return ScoreResponse(lead_id=lead_id, model_version=str(bundle.version),
                             **{k: out[k] for k in keys})  # fmt: skip

    def _fast_answer(
        self, fast: FastScorer, typed: TypedRow, lead_id: str | None
    ) -> ScoreResponse:
        self.metrics.paths.labels("fast").inc()
        return ScoreResponse(lead_id=lead_id, **fast.score(typed))

    def _from_index(self, bundle: Bundle, lead_id: str) -> ScoreResponse | None:
        """The answer from the lead index, or None when the index cannot give it."""
        index = self.index
        if index is None or not index.answers(warehouse_stamp(self.cfg), self.clock()):
            return None
        row = index.row(lead_id)
        if row is None:
            if lead_id in index.known:
                return None  # in the CRM, not contacted by the build time: the SQL decides
            self.metrics.paths.labels("index").inc()
            raise LeadNotScored(404, "unknown_lead", f"no contacted lead with Id {lead_id!r}")
        if str(row["pit_status"] or "ok") != "ok":
            self.metrics.paths.labels("index").inc()
            _raise_for_status(row["pit_status"])
        fast = self.fast(bundle)
        typed = fast.typed(row)
        if typed is None:
            return None  # not plainly valid: the batch path words the reason
        self.metrics.paths.labels("index").inc()
        return ScoreResponse(
            lead_id=lead_id,
            reps_snapshot_quarter=_date(row.get("reps_snapshot_quarter")),
            firms_snapshot_quarter=_date(row.get("firms_snapshot_quarter")),
            **fast.score(typed),
        )

    def _features(self, wh: Warehouse, req: ScoreRequest) -> pd.DataFrame:
        if req.crd is not None and req.contact_ts is not None:
            return crd_features(wh, self.cfg, self.catalog, req.crd, req.contact_ts, req.lead_id)
        return lead_features(wh, self.cfg, self.catalog, str(req.lead_id), self.clock())

    def _score_row(
        self, bundle: Bundle, frame: pd.DataFrame, lead_id: str | None
    ) -> ScoreResponse:
        if frame.empty:
            raise LeadNotScored(404, "unknown_lead", f"no contacted lead with Id {lead_id!r}")
        _raise_for_status(frame["pit_status"].iloc[0])
        checked, reasons = check_rows(frame, bundle, self.catalog)
        if reasons.iloc[0] is not None:
            code, _, detail = str(reasons.iloc[0]).partition(": ")
            raise LeadNotScored(422, code, detail)
        row = score_frame(bundle, checked, self.catalog, self.cfg.score).iloc[0]
        return ScoreResponse(
            lead_id=str(frame["lead_id"].iloc[0]),
            probability=float(row["probability"]),
            score=int(row["score"]),
            bucket=str(row["bucket"]),
            tier=str(row["tier"]),
            drivers_text=str(row["drivers_text"]),
            drivers=_drivers(str(row["drivers_json"])),
            model_version=str(bundle.version),
            reps_snapshot_quarter=_date(frame["reps_snapshot_quarter"].iloc[0]),
            firms_snapshot_quarter=_date(frame["firms_snapshot_quarter"].iloc[0]),
        )


def _raise_for_status(value: object) -> None:
    status = str(value or "ok")
    if status != "ok":
        raise LeadNotScored(422, status, PIT_STATUS_DETAIL.get(status, "no vintage"))


def _drivers(text: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = json.loads(text)
    return out


def _date(value: object) -> date | None:
    """A vintage quarter cell (date, Timestamp or missing) as a date."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return pd.Timestamp(str(value)).date()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
