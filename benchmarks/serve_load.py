"""Load test of ``leadscore serve`` on loopback: a fixed arrival rate, latency percentiles.

First, in this process, the scoring path alone: ``ScoringService.score`` on single-lead
requests (a feature payload, then a lead id answered from the lead index), p50/p95/p99.
Then it starts the real server (``leadscore serve``, one uvicorn process), waits until its
lead index is current, and sends single-lead requests at ``--rps`` for ``--seconds`` from an
open-loop generator (a request is sent on schedule whether or not earlier ones have returned,
so a slow server cannot slow the load down and hide its own latency). Request kinds, one
after the other: ``features`` (a full feature payload, the real-time path) and ``lead_id``
(a lead in the warehouse). Every answer carries its drivers. Writes ``serve_load.json`` into
the project folder and the ``serve`` section of ``BENCHMARKS.md``. Target: p99 <= 20 ms and
no error at 50 requests/s for 5 minutes.

    python -m benchmarks.serve_load --workdir demo --rps 50 --seconds 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.report import describe_machine, load_average, replace_section
from leadscore.catalog import load_catalog
from leadscore.config import load_settings
from leadscore.dataset import PitContext, pit_sql
from leadscore.io import write_json
from leadscore.pipeline import latest_bundle_path
from leadscore.serve.schemas import ScoreRequest
from leadscore.serve.service import ScoringService
from leadscore.serve.source import ModelSource
from leadscore.warehouse import open_warehouse

REPO = Path(__file__).resolve().parents[1]
TOKEN = "benchmark-token"
TARGET_P99_MS = 20.0


def _payloads(workdir: Path, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` feature payloads and ``n`` lead-id payloads of leads the champion scored (a
    seeded sample)."""
    cfg = load_settings(workdir / "leadscore.toml")
    bundle = ModelSource(lambda: latest_bundle_path(cfg, read_only=True)).current()
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        ids = [r["lead_id"] for r in wh.query(
            "SELECT lead_id FROM (SELECT DISTINCT lead_id FROM lead_scores WHERE model_version"
            f" = '{bundle.version}') USING SAMPLE {n} ROWS (reservoir, 42) ORDER BY lead_id"
        ).to_pylist()]  # fmt: skip
        ctx = PitContext.from_settings(cfg, join=cfg.dataset.join, training=False,
                                       as_of=cfg.dataset.as_of, lead_ids=tuple(ids))  # fmt: skip
        frame = wh.query(pit_sql(ctx, load_catalog())).to_pandas()
    finally:
        wh.close()
    cols = [*bundle.features, "aum_tier"]
    features = json.loads(frame[cols].to_json(orient="records", double_precision=15))
    return [{"features": f} for f in features], [{"lead_id": i} for i in ids]


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    out = {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}
    return {**out, "max_ms": round(float(ms.max()), 2)}


def in_process(workdir: Path, bodies: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    """``ScoringService.score`` alone, ``n`` calls per kind (after 50 warm-up calls)."""
    cfg = load_settings(workdir / "leadscore.toml")
    models = ModelSource(lambda: latest_bundle_path(cfg, read_only=True), 3600.0)
    svc = ScoringService(cfg, load_catalog(), models, lambda: datetime.now(UTC))
    index = svc.refresh_index()
    out: dict[str, Any] = {"index_seconds": round(index.seconds, 1) if index else None}
    for kind, items in bodies.items():
        requests = [ScoreRequest.model_validate(b) for b in items]
        for req in requests[:50]:
            svc.score(req)
        took = []
        for k in range(n):
            started = time.perf_counter()
            svc.score(requests[k % len(requests)])
            took.append(time.perf_counter() - started)
        out[kind] = {"calls": n, **_percentiles(took)}
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(
    url: str, bodies: list[dict[str, Any]], rps: float, seconds: float
) -> dict[str, Any]:
    """Open-loop load: request k is sent at ``k / rps`` seconds, whatever came back before."""
    n = int(rps * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    load_before = load_average()
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:
        start = time.perf_counter()

        async def one(k: int) -> None:
            await asyncio.sleep(max(0.0, start + k / rps - time.perf_counter()))
            sent = time.perf_counter()
            try:
                r = await c.post("/v1/score", json=bodies[k % len(bodies)])
                key = None if r.status_code == 200 else f"HTTP {r.status_code}"
                if key is None and "drivers" not in r.json():
                    key = "answer without drivers"
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - sent)
            if key:
                errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(one(k) for k in range(n)))
        wall = time.perf_counter() - start
    return {
        "requests": n, "seconds": round(wall, 1), "achieved_rps": round(n / wall, 1),
        "errors": errors, **_percentiles(latencies), "load_before": load_before,
    }  # fmt: skip


def serve_and_load(
    workdir: Path, bodies: dict[str, list[dict[str, Any]]], rps: float, seconds: float
) -> dict[str, Any]:
    """Start the server, wait for its lead index, load it with each kind, stop it."""
    port = _free_port()
    env = {**os.environ, "LEADSCORE_API_TOKENS": TOKEN, "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve",
         "--config", str(workdir / "leadscore.toml"), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
        return {
            kind: asyncio.run(_load(url, items, rps, seconds)) for kind, items in bodies.items()
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_ready(url: str) -> None:
    """Until ``/health`` says the model is loaded and the lead index is current."""
    for _ in range(1200):
        try:
            health = httpx.get(url + "/health", timeout=5).json()
            if health.get("model_loaded") and health.get("lead_index", {}).get("current"):
                return
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError("the server did not get ready (model and lead index) in 5 minutes")


def render(results: dict[str, Any]) -> str:
    """The Markdown section for BENCHMARKS.md."""
    rps, seconds = results["rps"], results["seconds"]
    lines = [
        f"Measured {results['measured']}, `{results['command']}` on a demo project of scale "
        f"{results['scale']}: one `leadscore serve` process (uvicorn) on loopback, single-lead "
        f"requests with drivers, open-loop at {rps:g} requests/s for {seconds:g} s per kind. "
        f"Target: p99 <= {TARGET_P99_MS:g} ms and no error at 50 requests/s for 300 s.",
        "",
        "| kind | requests | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | errors |"
        " target met | load before |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for kind, r in results["server"].items():
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        met = r["p99_ms"] <= TARGET_P99_MS and not r["errors"] and rps >= 50 and seconds >= 300
        lines.append(
            f"| {kind} | {r['requests']:,} | {r['achieved_rps']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | {errors} | "
            f"{'yes' if met else 'no'} | {' / '.join(str(x) for x in r['load_before'])} |"
        )
    local = results["in_process"]
    parts = [
        f"{kind} p50 {r['p50_ms']} / p95 {r['p95_ms']} / p99 {r['p99_ms']} ms"
        for kind, r in local.items()
        if isinstance(r, dict)
    ]
    lines += [
        "",
        f"In-process (`ScoringService.score` alone, {local['features']['calls']:,} calls per "
        f"kind): {'; '.join(parts)}. The lead index took {local['index_seconds']} s to read.",
    ]
    return "\n".join(lines)


def update_markdown(path: Path, section: str) -> None:
    """Replace (or append) the serve section of BENCHMARKS.md."""
    replace_section(path, "serve", f"## Scoring API under load\n\n{section}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo"))
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--kinds", default="features,lead_id")
    parser.add_argument("--calls", type=int, default=2000, help="in-process calls per kind")
    parser.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    features, by_id = _payloads(workdir, 500)
    bodies = {k: {"features": features, "lead_id": by_id}[k] for k in args.kinds.split(",")}
    manifest = json.loads((workdir / "raw" / "manifest.json").read_text())
    results = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),  # a record, not an input
        "command": "python -m benchmarks.serve_load "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "scale": manifest["scale"],
        "rps": args.rps,
        "seconds": args.seconds,
        "machine": describe_machine(),
        "in_process": in_process(workdir, bodies, args.calls),
        "server": serve_and_load(workdir, bodies, args.rps, args.seconds),
    }
    write_json(workdir / "serve_load.json", results)
    if not args.no_markdown:
        update_markdown(REPO / "BENCHMARKS.md", render(results))
    print(render(results))


if __name__ == "__main__":
    main()
