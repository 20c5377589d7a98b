"""Expected failures at the command line: one line on stderr, a documented exit code, no
traceback (``--debug`` shows it). Config, model bundle, busy warehouse, permission."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from leadscore.cli import app
from leadscore.errors import ExitCode
from leadscore.io import sha256_file
from test_bundle import _train


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_one_line(result: Result, code: int, *needles: str) -> str:
    """The run failed with ``code`` and said why in one stderr line, without a traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- config
def test_named_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = invoke("validate", "--config", str(missing))
    assert_one_line(result, ExitCode.BAD_INPUT, str(missing), "does not exist")
    assert not (tmp_path / "data").exists()  # no warehouse created beside it


def test_no_config_says_where_the_defaults_put_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = invoke("ingest", "--raw", "empty")
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: no leadscore.toml in {tmp_path}; using defaults "
        f"(warehouse {tmp_path / 'data' / 'leadscore.duckdb'})"
    ]
    assert_one_line(result, ExitCode.BAD_INPUT, "no vendor/ or crm/ files")


def test_invalid_config_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "leadscore.toml"
    config.write_text("[train]\ncv_folds = 1\nn_trials = 'x'\n")
    assert_one_line(invoke("validate", "--config", str(config)), 1, "train.cv_folds", "n_trials")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = invoke("--debug", "validate", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "Traceback" in result.stderr and "does not exist" in result.stderr.splitlines()[-1]
    os.environ.pop("LEADSCORE_DEBUG", None)


# --------------------------------------------------------------------------- model bundle
@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose models/LATEST names a real bundle."""
    root = tmp_path_factory.mktemp("cli")
    _, _, bundle = _train(root, root / "project" / "models")
    (root / "project" / "models" / "LATEST").write_text(bundle.name + "\n")
    (root / "project" / "leadscore.toml").write_text("[project]\nglobal_seed = 42\n")
    return root / "project"


def _rechecksum(path: Path) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"] = {n: sha256_file(path / n) for n in manifest["files"]}
    (path / "manifest.json").write_text(json.dumps(manifest))


def _tamper(bundle: Path, change: str) -> None:
    target = bundle / "calibration.json"
    if change == "flip_byte":
        data = bytearray(target.read_bytes())
        data[10] ^= 1
        target.write_bytes(bytes(data))
    elif change == "delete_file":
        (bundle / "model.ubj").unlink(missing_ok=True)
        (bundle / "model.json").unlink(missing_ok=True)
    elif change == "extra_file":
        (bundle / "extra.bin").write_bytes(b"x")
    elif change == "no_manifest":
        (bundle / "manifest.json").unlink()
    elif change == "garbage_manifest":
        (bundle / "manifest.json").write_text("{not json")
    elif change == "rechecksummed_garbage":
        target.write_text("[]")
        _rechecksum(bundle)


@pytest.mark.parametrize(
    "change",
    ["flip_byte", "delete_file", "extra_file", "no_manifest", "garbage_manifest",
     "rechecksummed_garbage"],
)  # fmt: skip
def test_tampered_or_incomplete_bundle_is_refused_in_one_line(
    project: Path, tmp_path: Path, change: str
) -> None:
    copy = Path(shutil.copytree(project, tmp_path / "p"))
    bundle = copy / "models" / (copy / "models" / "LATEST").read_text().strip()
    _tamper(bundle, change)
    result = invoke(
        "score", "--as-of", "2025-01-01T00:00:00Z", "--config", str(copy / "leadscore.toml")
    )
    assert_one_line(result, ExitCode.TAMPERED_BUNDLE, str(bundle))
    assert not (copy / "data").exists()  # refused before the warehouse was opened


# --------------------------------------------------------------------------- warehouse busy
def test_second_run_says_which_process_holds_the_warehouse(tmp_path: Path) -> None:
    db = tmp_path / "data" / "leadscore.duckdb"
    db.parent.mkdir()
    config = tmp_path / "leadscore.toml"
    config.write_text("[project]\nglobal_seed = 42\n")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
         " time.sleep(120)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        (tmp_path / "raw").mkdir()
        result = invoke("ingest", "--raw", str(tmp_path / "raw"), "--config", str(config))
        assert_one_line(result, ExitCode.WAREHOUSE_BUSY, str(db), f"PID {holder.pid}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


# --------------------------------------------------------------------------- permission
def _unwritable(tmp_path: Path) -> Path:
    """A folder this process may not create files in (as root, chmod does not stop us; the
    kernel refuses new entries under /sys)."""
    if os.geteuid() == 0:
        return Path("/sys/leadscore-test-unwritable")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_warehouse_in_a_folder_we_may_not_write_is_one_line(tmp_path: Path) -> None:
    folder = _unwritable(tmp_path)
    config = tmp_path / "leadscore.toml"
    config.write_text(f'[warehouse]\npath = "{folder}/sub/wh.duckdb"\n')
    (tmp_path / "raw").mkdir()
    result = invoke("ingest", "--raw", str(tmp_path / "raw"), "--config", str(config))
    assert_one_line(result, ExitCode.PERMISSION, str(folder))


def test_report_folder_we_may_not_write_is_one_line(tmp_path: Path) -> None:
    from test_ingest import make_delivery

    folder = _unwritable(tmp_path)
    config = tmp_path / "leadscore.toml"
    config.write_text(f'[project]\nreports_dir = "{folder}/reports"\n')
    delivery = make_delivery(tmp_path / "delivery")
    result = invoke("ingest", "--raw", str(delivery), "--config", str(config))
    assert_one_line(result, ExitCode.PERMISSION, str(folder))


def test_score_before_ingest_is_one_line(project: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(project, tmp_path / "p"))
    result = invoke(
        "score", "--as-of", "2025-01-01T00:00:00Z", "--config", str(copy / "leadscore.toml")
    )
    line = assert_one_line(result, ExitCode.BAD_INPUT, "crm_leads does not exist")
    assert "SELECT" not in line
