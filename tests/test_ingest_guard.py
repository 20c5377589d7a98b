"""Ingest guards: cast-failure limit, unrecognised files, re-deliveries, messages without raw
input lines (a marker PII value in a bad line appears nowhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.config import Settings, parse_settings
from leadscore.errors import ExitCode
from leadscore.ingest import load as ingest
from leadscore.ingest.guard import rate_lower_bound, safe_reason
from leadscore.ingest.load import ingest_directory
from leadscore.ingest.quality import IngestError
from leadscore.warehouse.duckdb import DuckDBWarehouse
from test_ingest import make_delivery, rep, write_crm, write_vintage

MARKER = "Zelda-Quixote-4471"  # stands for a name, a home ZIP, a LinkedIn URL


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "wh.duckdb")


def _reps(n: int, junk: int) -> list[dict[str, str]]:
    values = ["Osseo", "n/a", "twelve", "??"]
    return [
        rep(str(i + 1), MilesToWork=values[i % 4] if i < junk else "12.5", FirstName=MARKER)
        for i in range(n)
    ]


# --------------------------------------------------------------------------- cast failures
@pytest.mark.parametrize(
    ("n", "junk", "refused"),
    [(5, 4, True), (200, 12, True), (200, 1, False), (77, 1, False), (400, 3, False)],
)
def test_cast_failures_above_the_limit_fail_below_it_warn(
    tmp_path: Path, wh: DuckDBWarehouse, n: int, junk: int, refused: bool
) -> None:
    write_vintage(tmp_path / "d", 2024, 1, reps=_reps(n, junk))
    cfg = Settings().resolve(tmp_path)
    if refused:
        with pytest.raises(IngestError) as caught:
            ingest_directory(wh, tmp_path / "d", cfg)
        message = str(caught.value)
        assert message.startswith(f"vendor/reps_2024_q1.csv: column MilesToWork: {junk} of {n}")
        assert "'Osseo', 'n/a', 'twelve'" in message and "1.00% allowed" in message
        assert MARKER not in message  # values of the column only, never the line
        assert not wh.table_exists("snapshot_reps_2024_q1")
    else:
        result = ingest_directory(wh, tmp_path / "d", cfg)
        assert result.warnings == (
            f"vendor/reps_2024_q1.csv: {junk} value(s) failed to cast and are NULL "
            f"(MilesToWork {junk}); see the quality report",
        )


def test_the_limit_is_a_config_key(tmp_path: Path, wh: DuckDBWarehouse) -> None:
    write_vintage(tmp_path / "d", 2024, 1, reps=_reps(400, 3))
    strict = parse_settings({"ingest": {"max_cast_failure_rate": 0.0}}).resolve(tmp_path)
    with pytest.raises(IngestError, match="column MilesToWork: 3 of 400"):
        ingest_directory(wh, tmp_path / "d", strict)


def test_lower_bound_is_the_exact_binomial_one() -> None:
    from scipy.stats import binom

    bound = rate_lower_bound(12, 200)
    assert binom.sf(11, 200, bound) == pytest.approx(0.05, abs=1e-9)  # P(X >= 12) = 5%
    assert rate_lower_bound(0, 100) == 0.0
    assert 0.01 < rate_lower_bound(12, 200) < 0.06


# --------------------------------------------------------------------------- unknown files
@pytest.mark.parametrize("name", ["crm/lead.csv", "crm/Lead.CSV", "crm/Leads.csv", "Lead.csv"])
def test_files_no_rule_recognises_are_an_error(
    tmp_path: Path, wh: DuckDBWarehouse, name: str
) -> None:
    root = make_delivery(tmp_path / "d")
    (root / name).write_text("Id\n1\n")
    with pytest.raises(IngestError, match=f"1 file\\(s\\) no rule recognises: {name}"):
        ingest_directory(wh, root, Settings().resolve(tmp_path))
    assert wh.list_tables() == []


def test_wrong_case_lead_file_alone_is_refused_not_skipped(
    tmp_path: Path, wh: DuckDBWarehouse
) -> None:
    root = tmp_path / "d"
    write_crm(root)
    (root / "crm" / "Lead.csv").rename(root / "crm" / "lead.csv")
    with pytest.raises(IngestError, match=r"crm/lead\.csv; expected crm/Lead\.csv"):
        ingest_directory(wh, root, Settings().resolve(tmp_path))


# --------------------------------------------------------------------------- no raw lines
def _ragged(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines[2] = lines[2] + f",{MARKER},https://linkedin.com/in/{MARKER}"
    path.write_text("\n".join(lines) + "\n")


def _bad_bytes(path: Path) -> None:
    lines = path.read_text().splitlines()
    data = "\n".join(lines).encode()
    path.write_bytes(data.replace(MARKER.encode(), MARKER.encode() + b"\xff\xfe", 1) + b"\n")


def _open_quote(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(MARKER, f'"{MARKER}', 1)
    path.write_text("\n".join(lines) + "\n")


GARBLERS = {"ragged": _ragged, "bad bytes": _bad_bytes, "open quote": _open_quote}


@pytest.mark.parametrize("backend", ["duckdb", "arrow"])
@pytest.mark.parametrize("garble", list(GARBLERS))
def test_a_garbled_line_is_never_echoed(
    tmp_path: Path, garble: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "arrow":
        monkeypatch.setattr(ingest, "_stage_with_duckdb", ingest._stage_with_arrow)
    root = tmp_path / "d"
    write_vintage(root, 2024, 1, reps=_reps(4, 0))
    GARBLERS[garble](root / "vendor" / "reps_2024_q1.csv")
    config = tmp_path / "leadscore.toml"
    config.write_text("[project]\nglobal_seed = 42\n")
    result = CliRunner().invoke(app, ["ingest", "--raw", str(root), "--config", str(config)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "vendor/reps_2024_q1.csv: not a readable CSV" in result.stderr
    assert MARKER not in result.output and "Traceback" not in result.output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "d" not in p.parts[-3:-1]]
    for path in written:
        if path.suffix in (".md", ".json", ".log", ".txt"):
            assert MARKER not in path.read_text(errors="replace"), path


def test_safe_reason_keeps_the_line_number_and_drops_the_line() -> None:
    duck = (
        "Invalid Input Error: CSV Error on Line: 3\nOriginal Line: 4,Ann Smith,55401,6\n"
        "Expected Number of Columns: 3 Found: 4\nPossible fixes:\n* x\n  file = a.csv"
    )
    assert safe_reason(duck) == "error on line 3; Expected Number of Columns: 3 Found: 4"
    arrow = "CSV parse error: Expected 3 columns, got 4: 4,Ann Smith,55401,6"
    assert safe_reason(arrow) == "CSV parse error: Expected 3 columns, got 4"
