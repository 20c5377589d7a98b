"""Serve stage: the FastAPI application (``leadscore serve`` runs it on uvicorn).

Endpoints: ``POST /v1/score`` (one lead), ``POST /v1/score/batch``, ``GET /health``,
``GET /metrics`` (Prometheus text). Scoring is :class:`~leadscore.serve.service.
ScoringService`'s: the fast path or the batch scorer's own row checks and ``score_frame``, so
an answer equals the stored batch score bit for bit. With a background
:class:`~leadscore.serve.source.ModelSource`, a refresher thread (started with the app)
follows the champion and re-reads the lead index when the warehouse changes.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadscore.catalog import Catalog, load_catalog
from leadscore.config import Settings
from leadscore.serve.index import warehouse_stamp
from leadscore.serve.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorItem,
    ScoreRequest,
    ScoreResponse,
)
from leadscore.serve.service import Clock, LeadNotScored, ScoringService, first_line
from leadscore.serve.source import ModelSource
from leadscore.warehouse import WarehouseError, tables

_ENDPOINTS = frozenset({"/v1/score", "/v1/score/batch", "/health", "/metrics"})
_LOG = logging.getLogger("leadscore.serve")


_BEARER = HTTPBearer(auto_error=False)


def _auth(tokens: tuple[str, ...]) -> Callable[..., Awaitable[None]]:
    async def check(
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
    svc = ScoringService(cfg, catalog or load_catalog(), models, clock)
    app = FastAPI(title="leadscore", version="1", summary="Lead scores with their reasons.",
                  lifespan=_refresher(svc))  # fmt: skip
    app.state.service = svc
    auth = [Depends(_auth(tokens))]
    app.add_middleware(_Limits, svc=svc)

    @app.post("/v1/score", dependencies=auth)
    async def score(req: ScoreRequest) -> ScoreResponse:
        """Score one lead: by ``lead_id``, by ``crd`` + ``contact_ts``, or by ``features``."""
        try:
            # the fast path (about a millisecond of CPU) runs on the event loop; anything that
            # reads the warehouse or the registry runs in the thread pool
            out = svc.score_now(req)
            if out is None:
                out = await run_in_threadpool(svc.score, req)
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


def _health(svc: ScoringService) -> dict[str, object]:
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
        out["warehouse_error"] = first_line(exc)
    index = svc.index
    if index is not None:
        out["lead_index"] = {
            "leads": len(index),
            "as_of": index.as_of.isoformat(),
            "current": index.answers(warehouse_stamp(svc.cfg), svc.clock()),
            "build_seconds": round(index.seconds, 2),
        }
    out["status"] = "ok" if out["model_loaded"] and out["warehouse_reachable"] else "degraded"
    return out


def _refresher(
    svc: ScoringService,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: with a background model source, a thread that follows the
    champion and keeps the lead index current, every ``check_seconds``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if svc.models.background:
            worker = threading.Thread(target=_refresh_loop, args=(svc, stop), daemon=True,
                                      name="leadscore-refresher")  # fmt: skip
            worker.start()
        try:
            yield
        finally:
            stop.set()

    return lifespan


def _refresh_loop(svc: ScoringService, stop: threading.Event) -> None:
    while True:
        try:
            svc.refresh()
        except (LeadNotScored, WarehouseError, OSError, ValueError) as exc:
            _LOG.warning("refresh failed (kept what was loaded): %s", first_line(exc))
        if stop.wait(max(svc.models.check_seconds, 0.5)):
            return


class _Limits:
    """ASGI middleware: refuse oversized bodies before reading them; time and count every
    request (plain ASGI: no extra task or thread per request)."""

    def __init__(self, app: ASGIApp, svc: ScoringService) -> None:
        self.app, self.svc = app, svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"
        early = self._refusal(scope) if scope["method"] == "POST" else None
        if early is not None:
            await early(scope, receive, send)
            self._count(endpoint, early.status_code, started)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._count(endpoint, status, started)

    def _refusal(self, scope: Scope) -> Response | None:
        length = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
        if not length.isdigit():
            return Response(status_code=411)
        limit = self.svc.cfg.serve.max_body_bytes
        if int(length) > limit:
            body = json.dumps({"detail": f"body over {limit} bytes"})
            return Response(body, 413, media_type="application/json")
        return None

    def _count(self, endpoint: str, status: int, started: float) -> None:
        self.svc.metrics.requests.labels(endpoint, str(status)).inc()
        self.svc.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
