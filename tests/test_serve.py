"""The HTTP scoring service on a small trained world: parity with batch scores, auth, limits,
errors, health, metrics, following the champion, and a real uvicorn process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from leadscore.config import Settings, load_settings
from leadscore.pipeline import latest_bundle_path
from leadscore.serve import create_app
from leadscore.serve.source import ModelSource
from leadscore.warehouse import open_warehouse

TOKEN = "test-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2025, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def project(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained and batch-scored small world (this module moves the
    champion pointer, so it works on its own copy)."""
    folder = tmp_path_factory.mktemp("serve") / "project"
    shutil.copytree(finished_run, folder)
    return folder


@pytest.fixture(scope="module")
def cfg(project: Path) -> Settings:
    return load_settings(project / "leadscore.toml")


@pytest.fixture(scope="module")
def batch(cfg: Settings) -> pd.DataFrame:
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        return wh.query("SELECT * FROM lead_scores ORDER BY lead_id").to_pandas()
    finally:
        wh.close()


def _without_nan(drivers: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    """Stored driver JSON may carry NaN for a missing value; the API sends null (valid JSON)."""
    return {
        side: [{k: (None if v != v else v) for k, v in d.items()} for d in items]
        for side, items in drivers.items()
    }


def _client(cfg: Settings, tokens: tuple[str, ...] = (TOKEN,), **kw: float) -> TestClient:
    models = ModelSource(
        lambda: latest_bundle_path(cfg, read_only=True), kw.get("check_seconds", 0.0)
    )
    return TestClient(create_app(cfg, models, tokens=tokens, clock=lambda: NOW))


def test_answers_equal_the_batch_scores_bit_for_bit(cfg: Settings, batch: pd.DataFrame) -> None:
    client = _client(cfg)
    for row in batch.iloc[:: max(1, len(batch) // 25)].itertuples():
        got = client.post("/v1/score", json={"lead_id": row.lead_id}, headers=AUTH)
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["probability"] == row.probability  # exact, not approximately
        assert (body["score"], body["bucket"], body["tier"]) == (row.score, row.bucket, row.tier)
        assert body["drivers_text"] == row.drivers_text
        assert body["drivers"] == _without_nan(json.loads(row.drivers_json))
        assert body["model_version"] == row.model_version
        assert body["reps_snapshot_quarter"] == str(row.reps_snapshot_quarter)


def test_crd_and_contact_time_go_through_the_same_point_in_time_join(
    cfg: Settings, batch: pd.DataFrame
) -> None:
    client = _client(cfg)
    row = batch.iloc[len(batch) // 2]
    contact = pd.Timestamp(row.contact_ts).isoformat()
    got = client.post("/v1/score", json={"crd": int(row.RepCRD), "contact_ts": contact},
                      headers=AUTH)  # fmt: skip
    assert got.status_code == 200, got.text
    assert got.json()["probability"] == row.probability
    assert got.json()["drivers_text"] == row.drivers_text


def test_a_full_feature_payload_scores_like_the_batch(cfg: Settings, batch: pd.DataFrame) -> None:
    from leadscore.catalog import load_catalog
    from leadscore.dataset import PitContext, pit_sql

    row = batch.iloc[3]
    ctx = PitContext.from_settings(cfg, join="asof", training=False, as_of=NOW,
                                   lead_ids=(row.lead_id,))  # fmt: skip
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        frame = wh.query(pit_sql(ctx, load_catalog())).to_pandas()
    finally:
        wh.close()
    bundle = ModelSource(lambda: latest_bundle_path(cfg)).current()
    record = frame.iloc[0]
    features = {f: (None if pd.isna(record[f]) else record[f]) for f in bundle.features}
    features["aum_tier"] = record["aum_tier"]
    payload = json.loads(pd.Series(features).to_json())
    got = _client(cfg).post("/v1/score", json={"features": payload}, headers=AUTH)
    assert got.status_code == 200, got.text
    assert got.json()["probability"] == pytest.approx(row.probability, abs=1e-12)
    assert got.json()["bucket"] == row.bucket


def test_tokens_are_required_and_checked(cfg: Settings, batch: pd.DataFrame) -> None:
    client = _client(cfg, tokens=("other", TOKEN))
    body = {"lead_id": batch.lead_id.iloc[0]}
    assert client.post("/v1/score", json=body).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.post("/v1/score", json=body, headers=bad).status_code == 401
    assert client.post("/v1/score", json=body, headers=AUTH).status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/health").status_code == 200  # liveness needs no token


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"lead_id": "00Q000000000000XYZ", "features": {}}, 422, "exactly one"),
        ({"crd": 1234567}, 422, "go together"),
        ({"crd": 1234567, "contact_ts": "2025-06-01T10:00:00"}, 422, "time zone"),
        ({"lead_id": "00Q000000000000XYZ"}, 404, "unknown_lead"),
        ({"features": {"aum_tier": "Small"}}, 422, "missing_feature"),
        ({"lead_id": "x", "surprise": 1}, 422, "extra"),
        ({"crd": 99999998, "contact_ts": "2025-06-01T10:00:00Z"}, 422, "crd_not_found"),
    ],
)
def test_bad_payloads_get_clear_4xx_answers(
    cfg: Settings, body: dict[str, object], status: int, needle: str
) -> None:
    got = _client(cfg).post("/v1/score", json=body, headers=AUTH)
    assert got.status_code == status
    assert needle in got.text


def test_size_limits(cfg: Settings, batch: pd.DataFrame) -> None:
    client = _client(cfg)
    huge = {"lead_id": "x" * 10, "pad": "y" * (cfg.serve.max_body_bytes + 1)}
    assert client.post("/v1/score", json=huge, headers=AUTH).status_code == 413
    many = {"leads": [{"lead_id": "a"}] * (cfg.serve.max_batch + 1)}
    assert client.post("/v1/score/batch", json=many, headers=AUTH).status_code == 413


def test_batch_endpoint_keeps_order_and_reasons(cfg: Settings, batch: pd.DataFrame) -> None:
    ids = [batch.lead_id.iloc[0], "00Q000000000000XYZ", batch.lead_id.iloc[1]]
    got = _client(cfg).post("/v1/score/batch", json={"leads": [{"lead_id": i} for i in ids]},
                            headers=AUTH)  # fmt: skip
    results = got.json()["results"]
    assert [r.get("lead_id") for r in results] == ids
    assert results[1]["error"] == "unknown_lead"
    assert results[2]["probability"] == batch.probability.iloc[1]


def test_health_and_metrics(cfg: Settings, batch: pd.DataFrame) -> None:
    client = _client(cfg)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model_loaded"] and health["warehouse_reachable"]
    assert health["model_version"] == batch.model_version.iloc[0]
    assert 0 < health["vintage_age_days"] < 200
    for lead in batch.lead_id.iloc[:4]:
        client.post("/v1/score", json={"lead_id": lead}, headers=AUTH)
    client.post("/v1/score", json={"lead_id": "00Q000000000000XYZ"}, headers=AUTH)
    text = client.get("/metrics", headers=AUTH).text
    assert 'leadscore_requests_total{endpoint="/v1/score",status="200"} 4.0' in text
    assert 'leadscore_errors_total{reason="unknown_lead"} 1.0' in text
    assert "leadscore_request_seconds_bucket" in text
    assert sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith("leadscore_scores_total{")
    ) == 4.0  # fmt: skip


def test_follows_promotion_and_rollback_and_refuses_a_tampered_champion(
    cfg: Settings, batch: pd.DataFrame
) -> None:
    from leadscore.registry.lifecycle import promote, rollback
    from leadscore.registry.store import register

    current = latest_bundle_path(cfg)
    other = cfg.project.models_dir / "v-other"
    shutil.copytree(current, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "version": "v-other"}))
    client = _client(cfg)
    body = {"lead_id": batch.lead_id.iloc[0]}
    original = batch.model_version.iloc[0]
    assert client.post("/v1/score", json=body, headers=AUTH).json()["model_version"] == original
    wh = open_warehouse(cfg.warehouse)
    try:
        register(wh, other, NOW)
        promote(wh, cfg, "v-other", NOW, override_reason="serve test: same model, new name")
    finally:
        wh.close()
    assert client.post("/v1/score", json=body, headers=AUTH).json()["model_version"] == "v-other"
    wh = open_warehouse(cfg.warehouse)
    try:
        rollback(wh, NOW, "serve test")
    finally:
        wh.close()
    assert client.post("/v1/score", json=body, headers=AUTH).json()["model_version"] == original
    victim = current / "calibration.json"
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved + b" ")
        got = _client(cfg).post("/v1/score", json=body, headers=AUTH)
        assert got.status_code == 503 and got.json()["detail"]["error"] == "model_unavailable"
    finally:
        victim.write_bytes(saved)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(project: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "LEADSCORE_API_TOKENS": f"{TOKEN},second"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve",
         "--config", str(project / "leadscore.toml"), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_real_uvicorn_server_answers(server: str, batch: pd.DataFrame) -> None:
    row = batch.iloc[0]
    got = httpx.post(server + "/v1/score", json={"lead_id": row.lead_id}, headers=AUTH, timeout=10)
    assert got.status_code == 200 and got.json()["probability"] == row.probability
    assert httpx.get(server + "/openapi.json", timeout=5).json()["info"]["title"] == "leadscore"


def test_the_real_server_answers_from_its_lead_index_and_the_fast_path(
    server: str, cfg: Settings, batch: pd.DataFrame
) -> None:
    for _ in range(600):  # the refresher thread reads the lead index after start-up
        if httpx.get(server + "/health", timeout=5).json().get("lead_index", {}).get("current"):
            break
        time.sleep(0.1)
    rows = batch.iloc[:: max(1, len(batch) // 10)]
    for row in rows.itertuples():
        got = httpx.post(server + "/v1/score", json={"lead_id": row.lead_id}, headers=AUTH,
                         timeout=10).json()  # fmt: skip
        assert got["probability"] == row.probability and got["drivers_text"] == row.drivers_text
    payload = _payload(cfg, batch.lead_id.iloc[3])
    got = httpx.post(server + "/v1/score", json={"features": payload}, headers=AUTH, timeout=10)
    assert got.json()["probability"] == pytest.approx(batch.probability.iloc[3], abs=1e-12)
    text = httpx.get(server + "/metrics", headers=AUTH, timeout=5).text
    assert f'leadscore_answers_total{{path="index"}} {float(len(rows))}' in text
    assert 'leadscore_answers_total{path="fast"} 1.0' in text


def _payload(cfg: Settings, lead_id: str) -> dict[str, object]:
    """A lead's feature payload as a JSON client would send it."""
    from leadscore.catalog import load_catalog
    from leadscore.dataset import PitContext, pit_sql

    ctx = PitContext.from_settings(cfg, join="asof", training=False, as_of=NOW,
                                   lead_ids=(lead_id,))  # fmt: skip
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        record = wh.query(pit_sql(ctx, load_catalog())).to_pandas().iloc[0]
    finally:
        wh.close()
    bundle = ModelSource(lambda: latest_bundle_path(cfg, read_only=True)).current()
    names = [*bundle.features, "aum_tier"]
    payload: dict[str, object] = json.loads(pd.Series({n: record[n] for n in names}).to_json())
    return payload


def test_refuses_to_start_without_tokens(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEADSCORE_API_TOKENS"}
    done = subprocess.run(
        [sys.executable, "-c", "from leadscore.cli import main; main()", "serve",
         "--config", str(project / "leadscore.toml")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "LEADSCORE_API_TOKENS" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
