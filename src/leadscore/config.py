"""Typed configuration, read from ``leadscore.toml``.

One frozen pydantic model per stage, nested in :class:`Settings`. Unknown keys, wrong types and
impossible values fail with a message naming the key. No I/O happens at import time.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CONFIG_FILE = "leadscore.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectConfig(_Section):
    """Where the project keeps its files, and the one seed every random step takes."""

    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    reports_dir: Path = Path("reports")
    global_seed: int = Field(42, ge=0)
    truth_file: Path | None = Field(
        None,
        description="Synthetic world only: true probabilities, read by evaluation for the oracle"
        " comparison and never by training.",
    )
    reference_importance: Path | None = Field(
        None, description="A previous model's ranking (rank,feature,gain); default: m5's."
    )


class WarehouseConfig(_Section):
    """Which warehouse holds the tables. DuckDB is embedded; BigQuery is production."""

    backend: Literal["duckdb", "bigquery"] = "duckdb"
    path: Path = Path("data/leadscore.duckdb")
    project: str | None = None
    dataset: str = "LeadScoring"
    location: str = "US"
    threads: int = Field(2, ge=1)
    memory_limit: str = "8GB"


class CrmConfig(_Section):
    """Mapping from our names to the Salesforce export's column names."""

    lead_id_col: str = "Id"
    crd_col: str = "FA_CRD__c"
    contacted_ts_col: str = "Stage_Entered_Contacting__c"
    converted_ts_col: str = "Stage_Entered_Call_Scheduled__c"
    owner_col: str = "OwnerId"
    lead_source_col: str = "LeadSource"
    status_col: str = "Status"
    created_ts_col: str = "CreatedDate"
    modified_ts_col: str = "LastModifiedDate"
    task_lead_col: str = "WhoId"
    task_owner_col: str = "OwnerId"
    task_ts_col: str = "CreatedDate"
    task_type_col: str = "Type"
    dial_type: str = "Call"
    timestamp_zone: str | None = Field(
        None, description="IANA zone assumed for CRM timestamps written without one."
    )


class VendorConfig(_Section):
    """Vendor snapshot deliveries."""

    delivery_lag_days: int = Field(
        45,
        ge=0,
        description="Availability = snapshot_as_of + this lag when processed_at is absent.",
    )
    timestamp_zone: str | None = None


class DatasetConfig(_Section):
    """Training and scoring set construction (DESIGN rules 1-3)."""

    label_window_days: int = Field(30, ge=1, le=365)
    as_of: datetime | None = Field(
        None, description="Extraction time of the data (UTC). Right-censoring is relative to it."
    )
    join: Literal["asof", "quarter"] = "asof"

    @field_validator("as_of")
    @classmethod
    def _as_of_is_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("as_of must carry a time zone, e.g. 2025-11-01T00:00:00Z")
        return value


class ValidateConfig(_Section):
    """Thresholds of the data gates."""

    min_imbalance_ratio: float = Field(15.0, gt=0)
    max_imbalance_ratio: float = Field(30.0, gt=0)
    min_crd_match_rate: float = Field(0.90, ge=0, le=1)
    min_completeness_critical: float = Field(0.95, ge=0, le=1)
    suspicious_auc: float = Field(0.90, gt=0.5, le=1)
    max_pairwise_correlation: float = Field(0.95, gt=0, le=1)
    allow_list: dict[str, str] = Field(
        default_factory=dict, description="feature -> reason it may pass the suspicious scan"
    )

    @model_validator(mode="after")
    def _ratio_order(self) -> ValidateConfig:
        if self.min_imbalance_ratio > self.max_imbalance_ratio:
            raise ValueError("min_imbalance_ratio must not exceed max_imbalance_ratio")
        return self


class TrainConfig(_Section):
    """Model selection and training (DESIGN rule 4)."""

    cv_folds: int = Field(5, ge=2, le=20)
    cv_gap_days: int = Field(30, ge=0)
    holdout_fraction: float = Field(0.15, gt=0, lt=0.5)
    evaluation_metric: Literal["aucpr"] = "aucpr"
    iv_min: float = Field(0.02, ge=0)
    vif_max: float = Field(10.0, gt=1)
    n_trials: int = Field(12, ge=1)
    imbalance_strategies: tuple[Literal["none", "scale_pos_weight", "smote"], ...] = (
        "none",
        "scale_pos_weight",
        "smote",
    )
    calibration: Literal["platt", "isotonic"] = "platt"
    bootstrap_samples: int = Field(500, ge=10)


class GatesConfig(_Section):
    """Model gates; the plan's thresholds are the defaults."""

    min_aucpr: float = Field(0.20, ge=0, le=1)
    ship_threshold_aucpr: float = Field(0.35, ge=0, le=1)
    ship_threshold_precision_at_10pct: float = Field(0.15, ge=0, le=1)
    max_ece: float = Field(0.05, ge=0, le=1)
    max_train_test_gap: float = Field(0.10, ge=0)
    max_cv_cov: float = Field(0.15, ge=0)
    max_ks: float = Field(0.10, ge=0, le=1)


class ScoreConfig(_Section):
    """Daily scoring."""

    drivers_positive: int = Field(5, ge=0, le=20)
    drivers_negative: int = Field(3, ge=0, le=20)
    max_drivers_chars: int = Field(255, ge=20)


class MonitorConfig(_Section):
    """Monitoring and alert rules (run after each daily run and by ``leadscore monitor``)."""

    enabled: bool = Field(True, description="Run the monitor at the end of each daily run.")
    window_days: int = Field(28, ge=1, description="Rolling window of scored leads for PSI.")
    min_sample: int = Field(
        300, ge=1, description="Below this many leads PSI and rates are reported, not alerted."
    )
    min_span_days: int = Field(
        7,
        ge=1,
        description="PSI is reported, not alerted, until the binned scores span this "
        "many days (a weekday feature needs whole weeks).",
    )
    psi_warning: float = Field(0.10, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    failure_rate: float = Field(0.05, gt=0, lt=1, description="Scoring failures above: alert.")
    performance_drop: float = Field(
        0.10, gt=0, lt=1, description="Relative drop of realized vs expected performance."
    )
    vintage_max_age_days: int = Field(150, ge=1, description="Newest vintage older: alert.")
    alpha: float = Field(
        0.001, gt=0, lt=1,
        description="Family-wise false-alarm level per run; split (Bonferroni) over the tests.",
    )  # fmt: skip
    estimate_draws: int = Field(500, ge=50)
    webhook_url: str | None = Field(None, description="JSON POST (Slack-compatible) per alert.")


class Settings(_Section):
    """All of leadscore's settings."""

    project: ProjectConfig = Field(default_factory=ProjectConfig)
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    vendor: VendorConfig = Field(default_factory=VendorConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    train: TrainConfig = Field(default_factory=TrainConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def config_hash(self) -> str:
        """SHA-256 of the settings as canonical JSON (provenance of every artefact)."""
        payload = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def resolve(self, root: Path) -> Settings:
        """Return a copy whose relative paths are anchored at ``root``."""
        project = self.project.model_copy(
            update={
                name: _anchor(root, getattr(self.project, name))
                for name in (
                    "data_dir",
                    "models_dir",
                    "reports_dir",
                    "truth_file",
                    "reference_importance",
                )
                if getattr(self.project, name) is not None
            }
        )
        warehouse = self.warehouse.model_copy(update={"path": _anchor(root, self.warehouse.path)})
        return self.model_copy(update={"project": project, "warehouse": warehouse})


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key."""


def _anchor(root: Path, path: Path) -> Path:
    return path if path.is_absolute() else root / path


def parse_settings(data: dict[str, object], source: str = "<config>") -> Settings:
    """Validate a config mapping, turning pydantic's errors into one message naming each key."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"invalid config {source}:\n  " + "\n  ".join(problems)) from None


def load_settings(path: Path | None = None) -> Settings:
    """Read ``leadscore.toml`` (or defaults when there is none) anchored at its folder."""
    path = path or Path.cwd() / CONFIG_FILE
    if not path.exists():
        return Settings().resolve(path.parent)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid config {path}: {exc}") from None
    return parse_settings(data, str(path)).resolve(path.parent.resolve())
