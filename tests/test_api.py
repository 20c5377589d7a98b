"""The notebook API: lazy imports, and docs/notebook.md run top to bottom."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import leadscore

DOC = Path(__file__).resolve().parents[1] / "docs" / "notebook.md"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, leadscore as ls; "
        "heavy = [m for m in ('xgboost', 'pandas', 'duckdb', 'leadscore.config') "
        "if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    assert set(leadscore.__all__) == {"__version__", *leadscore._EXPORTS}
    for name in leadscore.__all__:
        assert getattr(leadscore, name) is not None
    with pytest.raises(AttributeError):
        _ = leadscore.no_such_stage  # type: ignore[attr-defined]


def test_python_blocks_are_found() -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 6
    assert "import leadscore as ls" in blocks[0]


def test_notebook_doc_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of docs/notebook.md, in one namespace, as a notebook would."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__notebook__"}
    for i, block in enumerate(python_blocks(DOC.read_text())):
        exec(compile(block, f"{DOC.name}[block {i}]", "exec"), namespace)
    result = namespace["result"]
    run = namespace["run"]
    assert result.version == namespace["bundle"].version  # type: ignore[attr-defined]
    assert run.n_scored > 0  # type: ignore[attr-defined]


def test_stage_functions_survive_importing_the_stage_packages() -> None:
    import leadscore.explain.shap
    import leadscore.ingest.load
    import leadscore.score.batch
    import leadscore.train.fit
    import leadscore.validate.run

    for name in ("run_ingest", "run_validate", "run_train", "run_explain", "run_score"):
        assert callable(getattr(leadscore, name)), name
