"""Load test of ``leadscore serve`` on loopback: a fixed arrival rate, latency percentiles.

Starts the real server (uvicorn, one process) on a trained project folder, then sends
single-lead requests at ``--rps`` for ``--seconds`` from an open-loop generator (a request is
sent on schedule whether or not earlier ones have returned, so a slow server cannot slow the
load down and hide its own latency). Two request kinds, run one after the other:
``features`` (a full feature payload, the real-time path) and ``lead_id`` (the warehouse
lookup through the point-in-time SQL). Writes ``serve_load.json`` into the project folder.

    python -m benchmarks.serve_load --workdir demo --seconds 300 --rps 50
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
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from leadscore.catalog import load_catalog
from leadscore.config import load_settings
from leadscore.dataset import PitContext, pit_sql
from leadscore.io import write_json
from leadscore.pipeline import latest_bundle_path
from leadscore.serve.source import ModelSource
from leadscore.warehouse import open_warehouse

TOKEN = "benchmark-token"


def _payloads(workdir: Path, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` feature payloads and ``n`` lead-id payloads of scored leads (seeded sample)."""
    cfg = load_settings(workdir / "leadscore.toml")
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        ids = [r["lead_id"] for r in wh.query(
            f"SELECT lead_id FROM lead_scores USING SAMPLE {n} ROWS (reservoir, 42)"
        ).to_pylist()]  # fmt: skip
        ctx = PitContext.from_settings(cfg, join="asof", training=False,
                                       as_of=cfg.dataset.as_of, lead_ids=tuple(ids))  # fmt: skip
        frame = wh.query(pit_sql(ctx, load_catalog())).to_pandas()
    finally:
        wh.close()
    bundle = ModelSource(lambda: latest_bundle_path(cfg)).current()
    cols = [*bundle.features, "aum_tier"]
    features = json.loads(frame[cols].to_json(orient="records"))
    return [{"features": f} for f in features], [{"lead_id": i} for i in ids]


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
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:
        start = time.perf_counter()

        async def one(k: int) -> None:
            await asyncio.sleep(max(0.0, start + k / rps - time.perf_counter()))
            sent = time.perf_counter()
            try:
                r = await c.post("/v1/score", json=bodies[k % len(bodies)])
                key = None if r.status_code == 200 else f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - sent)
            if key:
                errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(one(k) for k in range(n)))
        wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000
    return {
        "requests": n, "seconds": round(wall, 1), "achieved_rps": round(n / wall, 1),
        "errors": errors, "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
    }  # fmt: skip


def run(workdir: Path, rps: float, seconds: float, kinds: list[str]) -> dict[str, Any]:
    """Start the server, load it with each request kind, stop it; return the figures."""
    features, by_id = _payloads(workdir, 500)
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
        out: dict[str, Any] = {"rps": rps, "seconds": seconds}
        for kind in kinds:
            bodies = features if kind == "features" else by_id
            out[kind] = asyncio.run(_load(url, bodies, rps, seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def _wait_ready(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("demo"))
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--kinds", default="features,lead_id")
    args = parser.parse_args()
    result = run(args.workdir.resolve(), args.rps, args.seconds, args.kinds.split(","))
    write_json(args.workdir / "serve_load.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
