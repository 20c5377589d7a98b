"""Config: the documented defaults, and clear errors naming the key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadscore.config import ConfigError, Settings, load_settings, parse_settings


def test_defaults_are_the_plans() -> None:
    cfg = Settings()
    assert cfg.project.global_seed == 42
    assert cfg.dataset.label_window_days == 30
    assert cfg.train.cv_folds == 5
    assert cfg.train.cv_gap_days == 30
    assert cfg.train.evaluation_metric == "aucpr"
    assert cfg.gates.ship_threshold_aucpr == 0.35
    assert cfg.gates.ship_threshold_precision_at_10pct == 0.15
    assert cfg.crm.crd_col == "FA_CRD__c"
    assert cfg.crm.contacted_ts_col == "Stage_Entered_Contacting__c"
    assert cfg.crm.converted_ts_col == "Stage_Entered_Call_Scheduled__c"
    assert cfg.warehouse.backend == "duckdb"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"train": {"cv_fold": 5}}, "train.cv_fold"),
        ({"train": {"cv_folds": "five"}}, "train.cv_folds"),
        ({"train": {"cv_folds": 1}}, "train.cv_folds"),
        ({"dataset": {"label_window_days": -3}}, "dataset.label_window_days"),
        ({"gates": {"max_ece": 2.0}}, "gates.max_ece"),
        ({"warehouse": {"backend": "oracle"}}, "warehouse.backend"),
        ({"dataset": {"as_of": "2025-11-01T00:00:00"}}, "dataset.as_of"),
        ({"validate": {"min_imbalance_ratio": 40}}, "validate"),
        ({"nonsense": {}}, "nonsense"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_settings(data)


@pytest.mark.parametrize(
    ("window", "gap"), [(60, 30), (30, 0), (31, 30)]
)  # fmt: skip
def test_a_cv_gap_shorter_than_the_label_window_is_refused(window: int, gap: int) -> None:
    data = {"dataset": {"label_window_days": window}, "train": {"cv_gap_days": gap}}
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    message = str(info.value)
    assert "train.cv_gap_days" in message and "dataset.label_window_days" in message
    assert f"({gap})" in message and f"({window})" in message


def test_a_cv_gap_as_long_as_the_label_window_is_accepted() -> None:
    cfg = parse_settings({"dataset": {"label_window_days": 60}, "train": {"cv_gap_days": 60}})
    assert cfg.train.cv_gap_days == cfg.dataset.label_window_days == 60


def test_load_from_toml_resolves_paths(tmp_path: Path) -> None:
    (tmp_path / "leadscore.toml").write_text(
        '[dataset]\nas_of = "2025-11-01T00:00:00Z"\n[validate]\nsuspicious_auc = 0.95\n'
    )
    cfg = load_settings(tmp_path / "leadscore.toml")
    assert cfg.dataset.as_of == datetime(2025, 11, 1, tzinfo=UTC)
    assert cfg.validate_.suspicious_auc == 0.95
    assert cfg.warehouse.path == tmp_path.resolve() / "data" / "leadscore.duckdb"


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "leadscore.toml"
    path.write_text("[train\ncv_folds = 3")
    with pytest.raises(ConfigError, match=r"leadscore\.toml"):
        load_settings(path)


def test_config_hash_changes_with_content() -> None:
    assert Settings().config_hash() == Settings().config_hash()
    assert Settings().config_hash() != parse_settings({"train": {"cv_folds": 4}}).config_hash()


def test_settings_are_frozen() -> None:
    cfg = Settings()
    with pytest.raises(ValueError):
        cfg.train.cv_folds = 3  # type: ignore[misc]
