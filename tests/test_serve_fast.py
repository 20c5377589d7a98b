"""The service's fast paths on the small trained world: a feature payload typed with NumPy and
a lead id answered from the lead index give the stored batch score bit for bit, every lead;
rows that are not plainly valid get the batch checks' own words; the index answers only for
the warehouse state it read; the refresher follows the champion."""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.bundle import Bundle
from leadscore.catalog import load_catalog
from leadscore.config import Settings, load_settings
from leadscore.pipeline import latest_bundle_path
from leadscore.score.batch import ScoreRejected, score_one
from leadscore.serve.index import warehouse_stamp
from leadscore.serve.lookup import lead_features
from leadscore.serve.schemas import ScoreRequest, ScoreResponse
from leadscore.serve.service import LeadNotScored, ScoringService
from leadscore.serve.source import ModelSource
from leadscore.warehouse import open_warehouse

NOW = datetime(2025, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def cfg(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the session's trained and batch-scored small world (these tests write to
    its warehouse and move its champion)."""
    folder = tmp_path_factory.mktemp("serve_fast") / "project"
    shutil.copytree(finished_run, folder)
    return load_settings(folder / "leadscore.toml")


@pytest.fixture(scope="module")
def batch(cfg: Settings) -> pd.DataFrame:
    """The champion's stored batch scores."""
    version = _service(cfg).bundle().version
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        scores = wh.query("SELECT * FROM lead_scores ORDER BY lead_id").to_pandas()
    finally:
        wh.close()
    return scores[scores["model_version"] == version].reset_index(drop=True)


def _service(cfg: Settings, clock: datetime = NOW, background: bool = False) -> ScoringService:
    models = ModelSource(lambda: latest_bundle_path(cfg, read_only=True), 3600.0,
                         background=background)  # fmt: skip
    return ScoringService(cfg, load_catalog(), models, lambda: clock)


def _answers(svc: ScoringService, path: str) -> float:
    got = svc.metrics.registry.get_sample_value("leadscore_answers_total", {"path": path})
    return got or 0.0


def _assert_is_the_batch_score(got: ScoreResponse, row: pd.Series) -> None:
    assert got.probability == row["probability"]  # exact, not approximately
    assert (got.score, got.bucket, got.tier) == (row["score"], row["bucket"], row["tier"])
    assert got.drivers_text == row["drivers_text"]
    assert got.drivers == json.loads(row["drivers_json"])
    assert got.model_version == row["model_version"]


def _plain(value: object) -> object:
    """A value as a JSON client sends it (NaN becomes null)."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and value != value else value


def test_stored_driver_json_is_strict_json(batch: pd.DataFrame) -> None:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    assert len(batch) > 100
    for text in batch["drivers_json"]:
        json.loads(text, parse_constant=refuse)


def test_every_lead_by_id_from_the_index_is_its_batch_score(
    cfg: Settings, batch: pd.DataFrame
) -> None:
    svc = _service(cfg)
    index = svc.refresh_index()
    assert index is not None and len(index) >= len(batch)
    for _, row in batch.iterrows():
        got = svc.score(ScoreRequest(lead_id=row["lead_id"]))
        _assert_is_the_batch_score(got, row)
        assert got.reps_snapshot_quarter == row["reps_snapshot_quarter"]
        assert got.firms_snapshot_quarter == row["firms_snapshot_quarter"]
    assert _answers(svc, "index") == len(batch)
    assert _answers(svc, "warehouse") == 0


def test_every_feature_payload_takes_the_fast_path_to_its_batch_score(
    cfg: Settings, batch: pd.DataFrame
) -> None:
    svc = _service(cfg)
    index = svc.refresh_index()
    assert index is not None
    names = [*svc.bundle().features, "aum_tier"]
    for _, row in batch.iterrows():
        values = index.row(row["lead_id"])
        assert values is not None
        payload = {name: _plain(values[name]) for name in names}
        _assert_is_the_batch_score(svc.score(ScoreRequest(features=payload)), row)
    assert _answers(svc, "fast") == len(batch)
    assert _answers(svc, "checked") == 0


def _odd_values(bundle: Bundle) -> dict[str, tuple[str, object]]:
    """Values the fast path leaves to the batch checks: one feature per kind of problem."""
    from leadscore.score.checks import bundle_contract

    contract = {c.name: c for c in bundle_contract(bundle, load_catalog()).columns}
    out: dict[str, tuple[str, object]] = {}
    for name in bundle.features:
        col, kind = contract.get(name), bundle.feature_types.get(name, "numeric")
        found: dict[str, object] = {}
        if kind == "numeric":
            found.update({"text for a number": "lots", "infinity": float("inf"), "flag": True})
            if col is not None and col.valid_range is not None and col.valid_range[1]:
                found["over the range"] = col.valid_range[1] + 1
            if col is not None and col.dtype == "int":
                found["fraction for an int"] = 2.5
        elif kind == "bool":
            found.update({"number for a flag": 1, "text for a flag": "yes"})
        else:
            found["number for a category"] = 7
        if col is not None and not col.nullable:
            found["null where not nullable"] = None
        for problem, value in found.items():
            out.setdefault(problem, (name, value))
    return out


def test_rows_that_are_not_plainly_valid_get_the_batch_checks_words(
    cfg: Settings, batch: pd.DataFrame
) -> None:
    svc = _service(cfg)
    index = svc.refresh_index()
    assert index is not None
    bundle = svc.bundle()
    values = index.row(batch["lead_id"].iloc[0])
    assert values is not None
    base = {name: _plain(values[name]) for name in [*bundle.features, "aum_tier"]}
    odd = _odd_values(bundle)
    assert len(odd) >= 8
    for name, value in odd.values():
        payload = {**base, name: value}
        try:
            expected: object = score_one(bundle, payload, load_catalog(), cfg.score)["probability"]
        except ScoreRejected as exc:
            expected = (exc.reason, exc.detail)
        try:
            got: object = svc.score(ScoreRequest(features=payload)).probability
        except LeadNotScored as exc:
            assert exc.status == 422
            got = (exc.reason, exc.detail)
        assert got == expected, (name, value)
    assert (_answers(svc, "fast"), _answers(svc, "checked")) == (0, len(odd))
    without_segment = {k: v for k, v in base.items() if k != "aum_tier"}
    with pytest.raises(LeadNotScored, match="aum_tier"):
        svc.score(ScoreRequest(features=without_segment))


def _same(a: object, b: object) -> bool:
    return bool(pd.isna(a) and pd.isna(b)) if pd.isna(a) or pd.isna(b) else a == b


def test_the_index_holds_the_rows_the_one_lead_sql_reads(cfg: Settings) -> None:
    svc = _service(cfg)
    index = svc.refresh_index()
    assert index is not None
    status = index.columns["pit_status"]
    ids = list(index.positions)
    picked = ids[:: max(1, len(ids) // 25)] + [ids[k] for k in np.flatnonzero(status != "ok")[:5]]
    assert any(index.row(i)["pit_status"] != "ok" for i in picked)  # type: ignore[index]
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        for lead in picked:
            frame = lead_features(wh, cfg, svc.catalog, lead, NOW)
            held = index.row(lead)
            assert held is not None and len(frame) == 1
            for name, value in held.items():
                assert _same(value, frame[name].iloc[0]), (lead, name)
    finally:
        wh.close()


def test_the_index_answers_only_for_what_it_read(cfg: Settings, batch: pd.DataFrame) -> None:
    contacts = pd.to_datetime(batch["contact_ts"], utc=True)
    middle = contacts.sort_values().iloc[len(batch) // 2].to_pydatetime()
    svc = _service(cfg, clock=middle)
    index = svc.refresh_index()
    assert index is not None
    early = batch[contacts <= middle].iloc[0]
    late = batch[contacts > middle].iloc[0]
    _assert_is_the_batch_score(svc.score(ScoreRequest(lead_id=early["lead_id"])), early)
    assert late["lead_id"] not in index.positions and late["lead_id"] in index.known
    with contextlib.suppress(LeadNotScored):  # scored as of the clock, or refused:
        svc.score(ScoreRequest(lead_id=late["lead_id"]))  # the one-lead SQL decides
    assert (_answers(svc, "index"), _answers(svc, "warehouse")) == (1, 1)
    with pytest.raises(LeadNotScored, match="no contacted lead"):
        svc.score(ScoreRequest(lead_id="00Q000000000000XYZ"))  # unknown: the index says so
    # any write to the warehouse: the index stops answering until it is read again
    wh = open_warehouse(cfg.warehouse)
    try:
        wh.execute("CREATE TABLE serve_fast_touch AS SELECT 1 AS x")
        wh.execute("DROP TABLE serve_fast_touch")
    finally:
        wh.close()
    assert not index.answers(warehouse_stamp(cfg), middle)
    before = _answers(svc, "warehouse")
    _assert_is_the_batch_score(svc.score(ScoreRequest(lead_id=early["lead_id"])), early)
    assert _answers(svc, "warehouse") == before + 1
    assert _answers(svc, "index") == 2
    assert svc.refresh_index() is not index
    assert svc.index is not None and svc.index.answers(warehouse_stamp(cfg), middle)


def test_the_refresher_follows_the_champion_and_refuses_a_tampered_one(
    cfg: Settings, batch: pd.DataFrame
) -> None:
    from leadscore.registry.lifecycle import promote, rollback
    from leadscore.registry.store import register

    svc = _service(cfg, background=True)
    original = svc.bundle().version
    current = latest_bundle_path(cfg)
    other = cfg.project.models_dir / "v-fast-other"
    shutil.copytree(current, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "version": "v-fast-other"}))
    request = ScoreRequest(lead_id=batch["lead_id"].iloc[0])
    wh = open_warehouse(cfg.warehouse)
    try:
        register(wh, other, NOW)
        promote(wh, cfg, "v-fast-other", NOW, override_reason="serve test: same model, new name")
    finally:
        wh.close()
    assert svc.score(request).model_version == original  # requests never read the registry
    svc.refresh()
    assert svc.score(request).model_version == "v-fast-other"
    wh = open_warehouse(cfg.warehouse)
    try:
        rollback(wh, NOW, "serve test")
    finally:
        wh.close()
    svc.refresh()
    assert svc.score(request).model_version == original
    victim = current / "calibration.json"
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved + b" ")
        svc.refresh()  # the warehouse did not change: only the files are checked again
        with pytest.raises(LeadNotScored) as refused:
            svc.score(request)
        assert refused.value.status == 503 and refused.value.reason == "model_unavailable"
    finally:
        victim.write_bytes(saved)
    svc.refresh()
    assert svc.score(request).model_version == original
