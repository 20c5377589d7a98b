"""The command line: one name per concept, choices shown as choices, config keys honoured."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SmallWorld
from leadscore.cli import app

COMMANDS = ("synth", "ingest", "build", "validate", "train", "explain", "score", "run", "demo")


def help_text(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command: str) -> None:
    lines = [ln for ln in help_text(command).splitlines() if re.match(r"│\s*\*?\s*--", ln)]
    assert lines
    for line in lines:
        # "│ --name  -c  <type>  help text  │": something follows the type.
        after_type = line.split(">", 1)[-1].strip(" │")
        assert after_type, line


def test_the_raw_delivery_folder_is_raw_everywhere() -> None:
    for command in ("synth", "ingest", "run"):
        assert "--raw" in help_text(command), command
    assert "--out" not in help_text("synth")
    assert "--workdir" in help_text("demo") and "--raw" not in help_text("demo")


def test_choices_are_shown_as_choices() -> None:
    assert "asof|quarter" in help_text("build")
    assert "default|weak" in help_text("synth") and "default|weak" in help_text("demo")
    result = CliRunner().invoke(app, ["build", "--join", "monthly"])
    assert result.exit_code != 0 and "monthly" in result.output


def _project(small_world: SmallWorld, tmp_path: Path, join: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(small_world.project, project)
    config = project / "leadscore.toml"
    text = config.read_text().replace("[dataset]\n", f'[dataset]\njoin = "{join}"\n')
    config.write_text(text)
    return config


def test_build_uses_the_configured_join(small_world: SmallWorld, tmp_path: Path) -> None:
    config = _project(small_world, tmp_path, "quarter")
    result = CliRunner().invoke(app, ["build", "--config", str(config)])
    # The quarter join leaks, so the leakage gate stops it (exit 2) after the build.
    assert "quarter join" in result.output, result.output
    assert result.exit_code == 2 and "temporal_leakage" in result.output
    assert (config.parent / "reports" / "build" / "build_quarter.json").exists()
    assert not (config.parent / "reports" / "build" / "build_asof.json").exists()


def test_join_option_overrides_the_config(small_world: SmallWorld, tmp_path: Path) -> None:
    config = _project(small_world, tmp_path, "quarter")
    result = CliRunner().invoke(app, ["build", "--join", "asof", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (config.parent / "reports" / "build" / "build_asof.json").exists()
    assert not (config.parent / "reports" / "build" / "build_quarter.json").exists()
