"""Serve stage: the FastAPI application (``leadscore serve`` runs it on uvicorn).

Endpoints: ``POST /v1/score`` (one lead), ``POST /v1/score/batch``, ``GET /health``,
``GET /metrics`` (Prometheus text). Every scoring call goes through the batch scorer's own
row checks and ``score_frame``, so an answer equals the stored batch score bit for bit.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from leadscore.bundle import Bundle, BundleError
from leadscore.catalog import Catalog, load_catalog
from leadscore.config import Settings
from leadscore.registry.records import RegistryError
from leadscore.score.batch import PIT_STATUS_DETAIL, ScoreRejected, score_frame, score_one
from leadscore.score.checks import check_rows
from leadscore.serve.lookup import crd_features, lead_features
from leadscore.serve.metrics import ServeMetrics
from leadscore.serve.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorItem,
    ScoreRequest,
    ScoreResponse,
)
from leadscore.serve.source import ModelSource
from leadscore.warehouse import Warehouse, WarehouseError, open_warehouse, tables

Clock = Callable[[], datetime]
_ENDPOINTS = frozenset({"/v1/score", "/v1/score/batch", "/health", "/metrics"})


class LeadNotScored(Exception):
    """A lead that cannot be scored: HTTP status, a reason code and words."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class _Service:
    cfg: Settings
    catalog: Catalog
    models: ModelSource
    metrics: ServeMetrics
    clock: Clock

    @contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        """A read-only connection for one request (the daily job may hold the writer lock)."""
        try:
            wh = open_warehouse(self.cfg.warehouse, read_only=True)
        except (WarehouseError, PermissionError, OSError) as exc:
            raise LeadNotScored(503, "warehouse_unavailable", _first_line(exc)) from None
        try:
            yield wh
        finally:
            wh.close()

    def bundle(self) -> Bundle:
        try:
            return self.models.current()
        except (FileNotFoundError, BundleError, RegistryError, WarehouseError) as exc:
            raise LeadNotScored(503, "model_unavailable", _first_line(exc)) from None

    def score(self, req: ScoreRequest) -> ScoreResponse:
        bundle = self.bundle()
        if req.features is not None:
            try:
                out = score_one(bundle, req.features, self.catalog, self.cfg.score)
            except ScoreRejected as exc:
                raise LeadNotScored(422, exc.reason, exc.detail) from None
            return ScoreResponse(lead_id=req.lead_id, drivers_text=out["drivers_text"],
                                 **{k: out[k] for k in ("probability", "score", "bucket", "tier",
                                                        "drivers", "model_version")})  # fmt: skip
        with self.warehouse() as wh:
            try:
                frame = self._features(wh, req)
            except WarehouseError as exc:
                raise LeadNotScored(503, "warehouse_error", _first_line(exc)) from None
        return self._score_row(bundle, frame, req.lead_id)

    def _features(self, wh: Warehouse, req: ScoreRequest) -> pd.DataFrame:
        if req.crd is not None and req.contact_ts is not None:
            return crd_features(wh, self.cfg, self.catalog, req.crd, req.contact_ts, req.lead_id)
        return lead_features(wh, self.cfg, self.catalog, str(req.lead_id), self.clock())

    def _score_row(
        self, bundle: Bundle, frame: pd.DataFrame, lead_id: str | None
    ) -> ScoreResponse:
        if frame.empty:
            raise LeadNotScored(404, "unknown_lead", f"no contacted lead with Id {lead_id!r}")
        status = str(frame["pit_status"].iloc[0] or "ok")
        if status != "ok":
            raise LeadNotScored(422, status, PIT_STATUS_DETAIL.get(status, "no vintage"))
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
            drivers=json.loads(row["drivers_json"]),
            model_version=str(bundle.version),
            reps_snapshot_quarter=_date(frame["reps_snapshot_quarter"].iloc[0]),
            firms_snapshot_quarter=_date(frame["firms_snapshot_quarter"].iloc[0]),
        )


def _date(value: object) -> date | None:
    """A vintage quarter cell (date, Timestamp or missing) as a date."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return pd.Timestamp(str(value)).date()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


_BEARER = HTTPBearer(auto_error=False)


def _auth(tokens: tuple[str, ...]) -> Callable[..., None]:
    def check(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        if not tokens:
            return
        given = (creds.credentials if creds else "").encode()
        # compare with every token, so timing says nothing about which one nearly matched
        ok = [hmac.compare_digest(given, t.encode()) for t in tokens]
        if not any(ok):
            raise HTTPException(401, "missing or invalid bearer token",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    return check


def create_app(
    cfg: Settings,
    models: ModelSource,
    *,
    tokens: tuple[str, ...],
    clock: Clock = lambda: datetime.now(UTC),
    catalog: Catalog | None = None,
) -> FastAPI:
    """The API. ``tokens`` empty means no authentication (``serve --no-auth``, local use)."""
    svc = _Service(cfg, catalog or load_catalog(), models, ServeMetrics(), clock)
    app = FastAPI(title="leadscore", version="1", summary="Lead scores with their reasons.")
    auth = [Depends(_auth(tokens))]
    app.middleware("http")(_limits(svc))

    @app.post("/v1/score", dependencies=auth)
    def score(req: ScoreRequest) -> ScoreResponse:
        """Score one lead: by ``lead_id``, by ``crd`` + ``contact_ts``, or by ``features``."""
        try:
            out = svc.score(req)
        except LeadNotScored as exc:
            svc.metrics.errors.labels(exc.reason).inc()
            raise HTTPException(exc.status, {"error": exc.reason, "detail": exc.detail}) from None
        svc.metrics.scores.labels(out.bucket).inc()
        return out

    @app.post("/v1/score/batch", dependencies=auth)
    def score_batch(req: BatchRequest) -> BatchResponse:
        """Score several leads; each answer is a score or the reason there is none."""
        if len(req.leads) > cfg.serve.max_batch:
            raise HTTPException(413, f"at most {cfg.serve.max_batch} leads per batch")
        results: list[ScoreResponse | ErrorItem] = []
        for lead in req.leads:
            try:
                results.append(svc.score(lead))
                svc.metrics.scores.labels(results[-1].bucket).inc()  # type: ignore[union-attr]
            except LeadNotScored as exc:
                svc.metrics.errors.labels(exc.reason).inc()
                results.append(ErrorItem(lead_id=lead.lead_id, error=exc.reason,
                                         detail=exc.detail))  # fmt: skip
        return BatchResponse(results=results)

    @app.get("/health")
    def health() -> dict[str, object]:
        """Model loaded, warehouse reachable, age of the newest vendor vintage."""
        return _health(svc)

    @app.get("/metrics", dependencies=auth)
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _health(svc: _Service) -> dict[str, object]:
    out: dict[str, object] = {"model_loaded": False, "warehouse_reachable": False}
    try:
        bundle = svc.bundle()
        out.update(model_loaded=True, model_version=bundle.version)
        svc.metrics.model.clear()
        svc.metrics.model.labels(bundle.version).set(1)
    except LeadNotScored as exc:
        out["model_error"] = exc.detail
    try:
        with svc.warehouse() as wh:
            newest = (
                wh.query(f"SELECT MAX(available_at) AS t FROM {tables.REPS_ALL_VINTAGES}")
                .column("t")[0]
                .as_py()
            )
        out["warehouse_reachable"] = True
        if newest is not None:
            out["newest_vintage_available_at"] = newest.isoformat()
            out["vintage_age_days"] = round((svc.clock() - newest).total_seconds() / 86400, 1)
    except (LeadNotScored, WarehouseError) as exc:
        out["warehouse_error"] = _first_line(exc)
    out["status"] = "ok" if out["model_loaded"] and out["warehouse_reachable"] else "degraded"
    return out


def _limits(
    svc: _Service,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Refuse oversized bodies before reading them; time and count every request."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        endpoint = request.url.path if request.url.path in _ENDPOINTS else "other"
        if request.method == "POST":
            length = request.headers.get("content-length", "")
            if not length.isdigit():
                return _count(svc, endpoint, started, Response(status_code=411))
            if int(length) > svc.cfg.serve.max_body_bytes:
                body = json.dumps({"detail": f"body over {svc.cfg.serve.max_body_bytes} bytes"})
                too_big = Response(body, 413, media_type="application/json")
                return _count(svc, endpoint, started, too_big)
        return _count(svc, endpoint, started, await call_next(request))

    return middleware


def _count(svc: _Service, endpoint: str, started: float, response: Response) -> Response:
    svc.metrics.requests.labels(endpoint, str(response.status_code)).inc()
    svc.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
    return response
