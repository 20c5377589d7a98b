"""Typed configuration, read from ``leadscore.toml``.

One frozen pydantic model per stage, nested in :class:`Settings`. Unknown keys, wrong types and
impossible values fail with a message naming the key. No I/O happens at import time.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import datetime
from itertools import pairwise
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


class IngestConfig(_Section):
    """What a delivery may contain before ingest refuses it."""

    max_cast_failure_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Per file and column: the share of non-blank values that may fail to cast"
        " (become NULL). Above it (at 95% confidence) ingest fails; below it, a warning.",
    )


class DatasetConfig(_Section):
    """Training and scoring set construction (point in time, label, one row per lead)."""

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
    """Model selection and training (time-ordered, honest evaluation)."""

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
    """Model gates; the defaults are the business's ship thresholds."""

    min_aucpr: float = Field(0.20, ge=0, le=1)
    ship_threshold_aucpr: float = Field(0.35, ge=0, le=1)
    ship_threshold_precision_at_10pct: float = Field(0.15, ge=0, le=1)
    max_ece: float = Field(0.05, ge=0, le=1)
    max_train_test_gap: float = Field(0.10, ge=0)
    max_cv_cov: float = Field(0.15, ge=0)
    max_ks: float = Field(0.10, ge=0, le=1)
    calibration_min_rows: int = Field(
        300,
        ge=1,
        description="A tier's calibration is gated only with at least this many holdout leads"
        " (and calibration_min_positives conversions); smaller tiers are reported, not gated.",
    )
    calibration_min_positives: int = Field(10, ge=1)
    ece_noise_quantile: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="The ECE gate fails when the observed ECE is above this quantile of the ECE a"
        " perfectly calibrated model would show on the same rows (outcomes simulated from the"
        " model's own probabilities).",
    )
    ece_noise_samples: int = Field(200, ge=20)
    stability_min_train_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="The KS stability gate compares the out-of-sample scores of the holdout and"
        " of the CV blocks whose fold model trained on at least this share of the development"
        " rows (every block's figure is reported too).",
    )
    min_brier_skill: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="The model's Brier score must be at least this fraction below the Brier of"
        " the base-rate predictor on the same rows (1 - brier / base-rate brier).",
    )


class ScoreConfig(_Section):
    """Daily scoring."""

    drivers_positive: int = Field(5, ge=0, le=20)
    drivers_negative: int = Field(3, ge=0, le=20)
    max_drivers_chars: int = Field(255, ge=20)


class BucketConfig(_Section):
    """Score buckets, hottest first, and the call tier of each.

    ``shares_from_top`` gives, for every bucket but the last, the share of leads at or above
    its lower cut (cumulative from the top); the last bucket takes the rest.
    """

    names: tuple[str, ...] = ("Very Hot", "Hot", "Warm", "Cool", "Cold")
    shares_from_top: dict[str, float] = Field(
        default_factory=lambda: {"Very Hot": 0.05, "Hot": 0.15, "Warm": 0.40, "Cool": 0.70}
    )
    tier_of_bucket: dict[str, str] = Field(
        default_factory=lambda: {
            "Very Hot": "A",
            "Hot": "A",
            "Warm": "B",
            "Cool": "C",
            "Cold": "C",
        }
    )

    @model_validator(mode="after")
    def _consistent(self) -> BucketConfig:
        if list(self.shares_from_top) != list(self.names[:-1]):
            raise ValueError("shares_from_top must name every bucket but the last, in order")
        shares = list(self.shares_from_top.values())
        if any(not 0 < s < 1 for s in shares) or shares != sorted(set(shares)):
            raise ValueError("shares_from_top must rise strictly within (0, 1)")
        if set(self.tier_of_bucket) != set(self.names):
            raise ValueError("tier_of_bucket must give a tier for every bucket")
        return self

    def describe(self) -> str:
        """One sentence for the reports: each bucket's share and each tier's buckets."""
        parts, above = [], 0.0
        for i, name in enumerate(self.names[:-1]):
            share = self.shares_from_top[name]
            parts.append(f"{name} {'next' if i else 'top'} {100 * (share - above):.0f}%")
            above = share
        tiers = ", ".join(
            f"{t} = {' + '.join(b for b in self.names if self.tier_of_bucket[b] == t)}"
            for t in self.tiers
        )
        return f"{', '.join(parts)}, {self.names[-1]} the rest. Tier {tiers}."

    @property
    def tiers(self) -> tuple[str, ...]:
        """The call tiers, in order of first appearance from the hottest bucket."""
        return tuple(dict.fromkeys(self.tier_of_bucket[b] for b in self.names))


#: The bucket definition every stage reads (calibration cuts, bundle, Salesforce picklists).
#: Not yet a ``Settings`` section: adding one changes ``config_hash`` and so every model version.
DEFAULT_BUCKETS = BucketConfig()


class PushConfig(_Section):
    """Salesforce Bulk API 2.0 push (credentials come from LEADSCORE_SF_* variables only)."""

    object_name: str = "Lead"
    external_id_field: str = "Id"
    chunk_size: int = Field(10_000, ge=1, le=150_000)
    max_retries: int = Field(5, ge=0, le=20)
    backoff_seconds: float = Field(1.0, ge=0)
    poll_seconds: float = Field(2.0, ge=0)
    poll_timeout_seconds: float = Field(600.0, gt=0)


class ServeConfig(_Section):
    """The HTTP scoring service (tokens come from LEADSCORE_API_TOKENS only)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1_000)
    max_batch: int = Field(500, ge=1, le=10_000)
    model_check_seconds: float = Field(5.0, ge=0)


class ExperimentConfig(_Section):
    """The A/B test of score-ordered calling: plan, assignment, monitoring, analysis."""

    experiment_id: str = Field("ab1", min_length=1, max_length=40)
    unit: Literal["lead", "sga"] = "lead"
    salt: str = Field("leadscore-ab", min_length=1)
    start: datetime | None = Field(
        None, description="First contact time in the test (UTC); leads contacted earlier are out."
    )
    target_lift: float = Field(0.5, gt=0, description="Relative lift of MQLs per 100 dials.")
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.8, gt=0.5, lt=1)
    adoption: float = Field(0.6, gt=0, le=1, description="Share of treatment following scores.")
    planned_weeks: int = Field(4, ge=1, le=104)
    baseline_weeks: int = Field(26, ge=2, description="Matured weeks that give the baseline.")
    flow_weeks: int = Field(13, ge=1, description="Recent weeks that give the weekly flow.")
    looks: tuple[float, ...] = Field(
        (0.25, 0.5, 0.75, 1.0), description="Information fractions of the interim/final looks."
    )
    planned_leads_per_arm: int | None = Field(
        None, ge=10, description="Default: the power plan's leads per arm for this design."
    )
    srm_alpha: float = Field(0.001, gt=0, lt=1)

    @field_validator("start")
    @classmethod
    def _start_is_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("start must carry a time zone, e.g. 2025-11-01T00:00:00Z")
        return value

    @field_validator("looks")
    @classmethod
    def _looks_increase_to_one(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or value[-1] != 1.0 or any(b <= a for a, b in pairwise(value)):
            raise ValueError("looks must increase and end at 1.0")
        if value[0] <= 0:
            raise ValueError("looks must be positive fractions")
        return value


class RegistryConfig(_Section):
    """Model lifecycle: champion/challenger comparison, shadow period, retraining triggers."""

    max_aucpr_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Promotion refused when the challenger's AUC-PR on the shared matured"
        " leads is below the champion's by more than this.",
    )
    non_inferiority: bool = Field(
        True,
        description="Also require the lower end of the paired bootstrap interval of the"
        " AUC-PR difference to stay above -max_aucpr_drop (needs thousands of shared leads;"
        " small worlds need an override).",
    )
    max_ece: float | None = Field(
        None, ge=0, le=1, description="ECE limit on the shared leads (default: gates.max_ece)."
    )
    bootstrap_samples: int = Field(1000, ge=50)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    shadow_days: int = Field(7, ge=0, description="Days a challenger shadows before promotion.")
    max_model_age_days: int = Field(120, ge=1, description="Refresh when the champion is older.")
    refresh_on_new_vintage: bool = True
    refresh_on_performance_alert: bool = True


class MonitorConfig(_Section):
    """Monitoring and alert rules (run after each daily run and by ``leadscore monitor``)."""

    enabled: bool = Field(True, description="Run the monitor at the end of each daily run.")
    window_days: int = Field(
        28,
        ge=1,
        description="Rolling window of scored leads for PSI, by contact time; rounded to whole "
        "weeks (at least one) so every weekday counts equally.",
    )
    min_sample: int = Field(
        300, ge=1, description="Below this many leads PSI and rates are reported, not alerted."
    )
    min_span_days: int = Field(
        7,
        ge=1,
        description="PSI is reported, not alerted, until the binned scores span this "
        "many days (a weekday feature needs whole weeks).",
    )
    rate_window_days: int = Field(
        56,
        ge=7,
        description="Window of matured leads (contacted before the label window ended) for the "
        "positive-rate and performance rules: at seed volume, 8 weeks hold about 170 expected "
        "MQLs, enough to see a one-third drop at the per-run alpha.",
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
    clear_runs: int = Field(
        3,
        ge=1,
        description="An open alert closes only after this many consecutive runs without it "
        "(hysteresis: a value hovering at the threshold does not open and close daily).",
    )
    estimate_draws: int = Field(500, ge=50)
    webhook_url: str | None = Field(None, description="JSON POST (Slack-compatible) per alert.")


class Settings(_Section):
    """All of leadscore's settings."""

    project: ProjectConfig = Field(default_factory=ProjectConfig)
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    vendor: VendorConfig = Field(default_factory=VendorConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    train: TrainConfig = Field(default_factory=TrainConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)

    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _gap_covers_label_window(self) -> Settings:
        # A training row's label matures up to label_window_days after contact; a shorter gap
        # lets training labels come from the test fold's period.
        gap, window = self.train.cv_gap_days, self.dataset.label_window_days
        if gap < window:
            raise ValueError(
                f"train.cv_gap_days ({gap}) must be at least dataset.label_window_days ({window}):"
                " otherwise training labels overlap the test fold"
            )
        return self

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
            if not key:  # a rule across sections names its keys in the message
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"invalid config {source}:\n  " + "\n  ".join(problems)) from None


def load_settings(path: Path | None = None) -> Settings:
    """Read ``path`` (default ``./leadscore.toml``) anchored at its folder.

    Without ``path`` and without ``./leadscore.toml`` the defaults apply, anchored at the
    current folder.

    Raises:
        ConfigError: ``path`` was given and is not a file, or the file is invalid.
    """
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    path = path or Path.cwd() / CONFIG_FILE
    if not path.exists():
        return Settings().resolve(path.parent)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid config {path}: {exc}") from None
    return parse_settings(data, str(path)).resolve(path.parent.resolve())
