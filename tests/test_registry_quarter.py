"""The registry across a quarter boundary inside the simulated future, through the commands.

A small world with a 26-day future: the first champion is trained at ``as_of`` and the daily
job runs day after day. The next vendor vintage is delivered inside the future; the daily run
that ingests it says a refresh is due, ``refresh`` trains a challenger on the data of that day,
the challenger shadows the champion through the configured number of daily runs (the default,
7), ``models promote`` makes it the champion, the next daily run scores with it, ``models
rollback`` returns the first champion and the run after that scores with it again. Every
``lead_scores`` row before, during and after names its model and its feature vintage.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_project_config
from leadscore.cli import app
from leadscore.config import Settings, load_settings
from leadscore.warehouse import open_warehouse

SCALE = 0.03
FUTURE_DAYS = 26
#: On this small world the shared matured leads are a few hundred with about 15 MQLs: the
#: comparison decides nothing (the interval of the AUC-PR difference spans tenths), and the
#: models miss the ship gate ``ship_aucpr``. The real rules refuse the challenger; the test
#: checks that they do, then records this override to carry the lifecycle on.
OVERRIDE = "small test world: a few hundred shared leads decide nothing"


@dataclass
class Quarter:
    """What the simulated weeks produced (commands' outputs, times, versions)."""

    root: Path
    raw: Path
    as_of: datetime
    delivered: datetime  # when the new vintage became available
    new_quarter: str  # its snapshot date, e.g. 2025-10-01
    ingest_day: datetime  # as_of of the daily run that merged the delivery
    shadow_days: int
    v1: str = ""
    v2: str = ""
    out: dict[str, str] = field(default_factory=dict)  # command outputs by step name
    codes: dict[str, int] = field(default_factory=dict)
    report_after_refresh: str = ""
    report_at_end: str = ""
    latest_after_refresh: dict[str, object] = field(default_factory=dict)
    latest_after_promote: dict[str, object] = field(default_factory=dict)

    @property
    def cfg(self) -> Settings:
        return load_settings(self.root / "leadscore.toml")

    @property
    def promoted_at(self) -> datetime:
        return self.ingest_day + timedelta(days=self.shadow_days)


def _day(start: datetime, k: int) -> datetime:
    return start + timedelta(days=k)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _query(cfg: Settings, sql: str) -> pd.DataFrame:
    wh = open_warehouse(cfg.warehouse, read_only=True)
    try:
        return wh.query(sql).to_pandas()
    finally:
        wh.close()


class _Cli:
    def __init__(self, q: Quarter, raw: Path) -> None:
        self.q, self.raw, self.runner = q, raw, CliRunner()
        self.config = ["--config", str(q.root / "leadscore.toml")]

    def __call__(self, step: str, *args: str, expect: int = 0) -> str:
        result = self.runner.invoke(app, [*args, *self.config])
        text = " ".join(result.output.split())  # rich wraps long lines
        self.q.out[step], self.q.codes[step] = text, result.exit_code
        assert result.exit_code == expect, (step, result.output, result.exception)
        return text

    def daily(self, as_of: datetime, expect: int = 0) -> str:
        folder = self.raw / "future" / (as_of - timedelta(days=1)).date().isoformat()
        args = ("daily", "--as-of", _iso(as_of), "--raw", str(folder))
        return self(f"daily {as_of.date()}", *args, expect=expect)


@pytest.fixture(scope="module")
def quarter(tmp_path_factory: pytest.TempPathFactory) -> Quarter:
    """Generate, train, and walk the future across the vintage delivery (see module doc)."""
    from leadscore.synthetic import generate_world

    root = tmp_path_factory.mktemp("quarter")
    raw = root / "raw"
    generate_world(raw, scale=SCALE, seed=42, future_days=FUTURE_DAYS)
    manifest = json.loads((raw / "manifest.json").read_text())
    manifest["_raw"] = str(raw)
    vintage = manifest["future_vintages"][0]
    delivered = pd.Timestamp(vintage["available_at"]).to_pydatetime()
    project = root / "project"
    project.mkdir()
    cfg = load_settings(write_project_config(project, manifest))
    assert cfg.dataset.as_of is not None
    ingest_day = datetime.combine(delivered.date() + timedelta(days=1), datetime.min.time(), UTC)
    q = Quarter(project, raw, cfg.dataset.as_of, delivered, vintage["snapshot_as_of"], ingest_day,
                cfg.registry.shadow_days)  # fmt: skip
    last = ingest_day + timedelta(days=q.shadow_days + 2)  # the last delivery folder used
    assert (raw / "future" / last.date().isoformat()).is_dir()
    cli = _Cli(q, raw)
    _train_first_champion(cli, raw)
    _walk(cli)
    return q


def _train_first_champion(cli: _Cli, raw: Path) -> None:
    q = cli.q
    cli("ingest", "ingest", "--raw", str(raw))
    cli("build", "build")
    cli("train", "train", "--override", OVERRIDE)
    cli("fallback", "fallback")
    cli("score", "score", "--as-of", _iso(q.as_of))
    q.v1 = (q.cfg.project.models_dir / "LATEST").read_text().strip()


def _walk(cli: _Cli) -> None:
    q = cli.q
    day = q.as_of + timedelta(days=1)
    while day < q.ingest_day:  # 1. the old quarter: the first champion alone
        cli.daily(day)
        day += timedelta(days=1)
    cli("due before", "models", "due", "--as-of", _iso(q.ingest_day - timedelta(days=1)))
    cli.daily(q.ingest_day)  # 2. the delivery is merged; a refresh is due
    cli("due after", "models", "due", "--as-of", _iso(q.ingest_day))
    cli("refresh", "refresh", "--as-of", _iso(q.ingest_day), "--override", OVERRIDE)
    q.v2 = json.loads(cli("list", "models", "list", "--json"))[-1]["version"]
    q.latest_after_refresh = _train_summary(q)
    cli("report", "report")
    q.report_after_refresh = (q.cfg.project.reports_dir / "report.html").read_text()
    # 3. the challenger shadows through the configured number of daily runs
    for k in range(1, q.shadow_days + 1):
        cli.daily(_day(q.ingest_day, k))
        if k == q.shadow_days - 1:
            cli("promote early", "models", "promote", q.v2, expect=2)
    cli("promote plain", "models", "promote", q.v2, expect=2)
    cli("promote", "models", "promote", q.v2, "--override", OVERRIDE)
    q.latest_after_promote = _train_summary(q)
    # 4. the challenger is champion for a day, then rolled back
    cli.daily(_day(q.promoted_at, 1))
    cli("rollback", "models", "rollback", "--reason", "quarter test")
    cli.daily(_day(q.promoted_at, 2))
    cli("report at end", "report")
    q.report_at_end = (q.cfg.project.reports_dir / "report.html").read_text()


def _train_summary(q: Quarter) -> dict[str, object]:
    summary: dict[str, object] = json.loads(
        (q.cfg.project.reports_dir / "train" / "latest.json").read_text()
    )
    return summary


def _scores(q: Quarter) -> pd.DataFrame:
    df = _query(
        q.cfg,
        "SELECT lead_id, model_version, run_id, contact_ts, scored_at, shadow, flag,"
        " CAST(reps_snapshot_quarter AS VARCHAR) AS reps_q,"
        " CAST(firms_snapshot_quarter AS VARCHAR) AS firms_q FROM lead_scores",
    )
    for col in ("contact_ts", "scored_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["shadow"] = df["shadow"].fillna(False).astype(bool)
    return df


def test_the_daily_run_that_merges_the_new_vintage_says_a_refresh_is_due(quarter: Quarter) -> None:
    q = quarter
    assert q.new_quarter == "2025-10-01" and q.ingest_day.date().isoformat() == "2025-11-17"
    assert q.out["due before"] == "no refresh due"
    due = f"refresh due: new vendor vintage {q.new_quarter} (available {q.delivered.isoformat()})"
    assert due in q.out[f"daily {q.ingest_day.date()}"] and due in q.out["due after"]
    assert "refresh due" not in q.out[f"daily {(q.ingest_day - timedelta(days=1)).date()}"]
    # while the challenger trained on it shadows, the vintage is answered; after the rollback
    # (the challenger rejected) the champion has still not seen it
    for k in range(1, q.shadow_days + 2):
        assert "refresh due" not in q.out[f"daily {_day(q.ingest_day, k).date()}"]
    assert due in q.out[f"daily {_day(q.promoted_at, 2).date()}"]
    tables = set(_query(q.cfg, "SHOW TABLES")["name"])
    assert {"snapshot_reps_2025_q4", "snapshot_firms_2025_q4"} <= tables


def test_refresh_trains_a_challenger_on_the_new_data_and_it_shadows(quarter: Quarter) -> None:
    from leadscore.registry.store import get_model, history

    q = quarter
    wh = open_warehouse(q.cfg.warehouse, read_only=True)
    try:
        v1, v2 = get_model(wh, q.v1), get_model(wh, q.v2)
        events = {v: [(e.to_status, e.at) for e in history(wh, v)] for v in (q.v1, q.v2)}
    finally:
        wh.close()
    assert v2.version != v1.version and v2.version.startswith("v20251117-")
    assert v1.as_of == q.as_of and v2.as_of == q.ingest_day
    # trained on the data of the refresh day: more rows, a later window, other data
    assert v2.n_training_rows > v1.n_training_rows
    assert v2.train_end_ts is not None and v1.train_end_ts is not None
    assert v2.train_end_ts > v1.train_end_ts
    assert v2.data_fingerprint != v1.data_fingerprint
    assert v2.vintages["reps"][-1] >= v1.vintages["reps"][-1]
    comp = v2.comparison
    assert comp is not None and comp["champion_version"] == q.v1 and comp["n_leads"] > 0
    lo, hi = comp["aucpr_diff_ci"]
    assert lo <= comp["aucpr_diff"] <= hi
    assert f"{comp['n_leads']:,} shared matured leads" in q.out["refresh"]
    assert events[q.v2][:2] == [("candidate", q.ingest_day), ("shadow", q.ingest_day)]
    assert v2.shadow_since == q.ingest_day and v2.override_reason == OVERRIDE


def test_promote_waits_for_the_shadow_days_and_the_rules(quarter: Quarter) -> None:
    q = quarter
    days = q.shadow_days
    early = q.out["promote early"]
    assert f"shadowed the champion {days - 1:.1f} of {days} days" in early
    plain = q.out["promote plain"]  # the shadow period is over; the real rules still apply
    assert plain.startswith(f"REFUSED model {q.v2} not promoted:") and "shadowed" not in plain
    assert "its model gates failed (ship_aucpr" in plain
    assert "non-inferiority not shown" in plain
    assert f"champion: {q.v2} (was {q.v1})" in q.out["promote"]
    assert f"champion: {q.v1} (rolled back from {q.v2})" in q.out["rollback"]


def test_each_score_names_its_model_and_vintage_before_during_after(quarter: Quarter) -> None:
    q = quarter
    df = _scores(q)
    v1s, v2s = {q.v1, f"{q.v1}-fallback"}, {q.v2, f"{q.v2}-fallback"}
    daily = df[df["run_id"].str.startswith("daily-")]
    old = daily["reps_q"].notna() & (daily["reps_q"] < q.new_quarter)
    new = daily["reps_q"] == q.new_quarter
    # before: the first champion, the old vintages only
    before = daily[daily["scored_at"] <= q.ingest_day]
    assert len(before) > 0 and set(before["model_version"]) <= v1s
    assert not before["shadow"].any()
    assert not new[daily["scored_at"] < q.ingest_day].any()
    # during: the champion's rows (exported) and the challenger's shadow rows
    during = daily[(daily["scored_at"] > q.ingest_day) & (daily["scored_at"] <= q.promoted_at)]
    champ, shadow = during[~during["shadow"]], during[during["shadow"]]
    assert set(champ["model_version"]) <= v1s and q.v1 in set(champ["model_version"])
    assert set(shadow["model_version"]) <= {q.v2, f"{q.v1}-fallback@{q.v2}"}
    assert q.v2 in set(shadow["model_version"])
    main = champ[champ["model_version"] == q.v1]
    for at, leads in main.groupby("scored_at")["lead_id"]:  # the same leads, the same day
        assert set(leads) <= set(shadow.loc[shadow["scored_at"] == at, "lead_id"]), at
    shadow_days = {_day(q.ingest_day, k) for k in range(1, q.shadow_days + 1)}
    assert set(main["scored_at"]) <= set(shadow["scored_at"]) <= shadow_days
    # after: the promoted challenger for a day, then (rolled back) the first champion again
    first, second = _day(q.promoted_at, 1), _day(q.promoted_at, 2)
    on_first, on_second = daily[daily["scored_at"] == first], daily[daily["scored_at"] == second]
    assert len(on_first) > 0 and set(on_first["model_version"]) <= v2s
    assert q.v2 in set(on_first["model_version"]) and not on_first["shadow"].any()
    assert len(on_second) > 0 and set(on_second["model_version"]) <= v1s
    # the vintage: leads contacted after the delivery carry the new quarter, whatever model;
    # earlier contacts keep the old one unless the row says the vendor data came later
    after = daily["contact_ts"] > q.delivered
    matched = daily["reps_q"].notna()
    assert (new[after & matched]).all() and (after & matched).sum() >= 5
    late = new & ~after
    assert daily.loc[late, "flag"].str.startswith("vendor_data_after_contact").all()
    assert (old | new | ~matched).all()
    for rows in (champ, shadow, on_first, on_second):
        assert (
            rows.loc[rows["contact_ts"] > q.delivered, "reps_q"].dropna() == q.new_quarter
        ).all()


def test_exports_name_the_champion_of_their_day(quarter: Quarter) -> None:
    q = quarter
    folder = q.cfg.project.reports_dir / "daily"
    by_day: dict[str, set[str]] = {}
    for path in folder.glob("salesforce_upsert_*.csv"):
        for row in csv.DictReader(path.open()):
            day = path.stem.removeprefix("salesforce_upsert_daily-")[:8]
            by_day.setdefault(day, set()).add(row["Lead_Score_Model_Version__c"])
    promoted_day = _day(q.promoted_at, 1).strftime("%Y%m%d")
    for day, versions in by_day.items():
        expected = q.v2 if day == promoted_day else q.v1
        assert versions <= {expected, f"{expected}-fallback"}, (day, versions)
    assert q.v2 in by_day[promoted_day]


def test_the_report_shows_the_champion_and_the_refresh_side_by_side(quarter: Quarter) -> None:
    q = quarter
    # the model section describes the champion, not the challenger trained by refresh
    assert q.latest_after_refresh["version"] == q.v1
    assert q.latest_after_promote["version"] == q.v2  # ... and follows promote and rollback
    assert _train_summary(q)["version"] == q.v1
    html = q.report_after_refresh
    section = html[html.index('<section id="refresh">') : html.index('<section id="provenance">')]
    assert f"challenger <code>{q.v2}</code> (shadow)" in section
    assert f"champion <code>{q.v1}</code>" in section
    assert "<th>champion</th><th>challenger</th>" in section and "AUC-PR" in section
    assert 'href="#refresh"' in html
    assert f'<td class="text"><code>{q.v2}</code></td><td class="text">shadow</td>' in section
    # after promote and rollback the registry table says where each model is now
    end = q.report_at_end
    for version, status in ((q.v1, "champion"), (q.v2, "rejected")):
        assert f'<code>{version}</code></td><td class="text">{status}</td>' in end
    assert f"Model {q.v1} ·" in end


def test_a_changed_champion_bundle_is_used_by_neither_daily_nor_score(quarter: Quarter) -> None:
    q = quarter
    cli = _Cli(q, q.raw)
    target = q.cfg.project.models_dir / q.v1 / "calibration.json"
    original = target.read_bytes()
    day = _day(q.promoted_at, 3)
    try:
        target.write_bytes(original.replace(b"1", b"2", 1))
        for text in (
            cli.daily(day, expect=1),
            cli("score changed", "score", "--as-of", _iso(day), expect=1),
        ):
            assert f"model {q.v1} may not be used" in text and "calibration.json" in text
            assert "Traceback" not in text
    finally:
        target.write_bytes(original)
    runs = _query(q.cfg, f"SELECT count(*) AS n FROM scoring_runs WHERE as_of = '{_iso(day)}'")
    assert runs["n"].iloc[0] == 0  # nothing was scored with it


def test_a_moved_project_scores_with_its_own_registered_bundles(quarter: Quarter) -> None:
    """The registry names each bundle's folder; a moved project finds them in its models dir
    (and still checks every file against the registration)."""
    q = quarter
    moved = q.root.with_name("moved")
    q.root.rename(moved)
    try:
        here = Quarter(moved, q.raw, q.as_of, q.delivered, q.new_quarter, q.ingest_day, 0)
        cli = _Cli(here, q.raw)
        day = _day(q.promoted_at, 3)
        text = cli.daily(day)
        assert f"({q.v1})" in text
        scored = _query(
            here.cfg,
            f"SELECT DISTINCT model_version FROM lead_scores WHERE scored_at = '{_iso(day)}'",
        )
        assert set(scored["model_version"]) <= {q.v1, f"{q.v1}-fallback"}
        assert q.v1 in cli("show", "models", "show", q.v1)
        target = moved / "models" / q.v1 / "calibration.json"
        original = target.read_bytes()
        try:  # the moved files are the ones checked
            target.write_bytes(original.replace(b"1", b"2", 1))
            out = cli("score moved", "score", "--as-of", _iso(day), expect=1)
            assert f"model {q.v1} may not be used" in out
        finally:
            target.write_bytes(original)
    finally:
        moved.rename(q.root)
