"""Explain stage: exact TreeSHAP from XGBoost itself, per-lead drivers, global importance.

Reads a model bundle and a feature frame (training/holdout rows or a scoring batch); writes the
importance CSV, a summary plot, the comparison with a previous model's ranking and the cohort
report into a reports folder (``explain_model``). Contributions come from
``booster.predict(..., pred_contribs=True)`` for every row: no sampling, no ``shap`` package.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.config import ScoreConfig
from leadscore.explain.assemble import DriverColumns
from leadscore.explain.contributions import (
    ExplainedRows,
    compute_contributions,
    explain_rows,
    fold_contributions,
)
from leadscore.explain.drivers import Driver, display_of, join_drivers, pick_drivers
from leadscore.io import atomic_path, write_json
from leadscore.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from leadscore.bundle import Bundle
    from leadscore.catalog import Catalog

#: Leads (dots per feature) in the SHAP summary plot; importance uses every row.
PLOT_POINTS = 600


def lead_drivers(
    folded: pd.DataFrame,
    df: pd.DataFrame,
    catalog: Catalog,
    cfg: ScoreConfig,
) -> list[tuple[list[Driver], list[Driver], str]]:
    """Per row: (top positive drivers, top negative drivers, joined text that fits the field).

    NumPy picks each row's candidates (strongest first, ties by feature name, as
    :func:`pick_drivers` orders them); only those few become words.
    """
    names = [str(c) for c in folded.columns]
    labels = {name: display_of(catalog, name) for name in names}
    name_rank = np.argsort(np.argsort(np.array(names)))
    contrib = folded.to_numpy(dtype=float)
    values = df.reindex(columns=folded.columns).to_numpy(dtype=object)
    out = []
    for row, vals in zip(contrib, values, strict=True):
        up = np.lexsort((name_rank, -row))[: cfg.drivers_positive]
        down = np.lexsort((name_rank, row))[: cfg.drivers_negative]
        keep = [j for j in up if row[j] > 0] + [j for j in down if row[j] < 0]
        pos, neg = pick_drivers(
            {names[j]: float(row[j]) for j in keep},
            {names[j]: vals[j] for j in keep},
            catalog,
            cfg.drivers_positive,
            cfg.drivers_negative,
            labels,
        )
        out.append((pos, neg, join_drivers(pos, neg, cfg.max_drivers_chars)))
    return out


def global_importance(folded: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per source feature, ranked (1 = most important; ties by name)."""
    mean_abs = folded.abs().mean(axis=0)
    table = pd.DataFrame({"feature": mean_abs.index.astype(str), "mean_abs_shap": mean_abs.values})
    table = table.sort_values(["mean_abs_shap", "feature"], ascending=[False, True])
    total = float(table["mean_abs_shap"].sum())
    table["share"] = table["mean_abs_shap"] / total if total > 0 else 0.0
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


@dataclass(frozen=True)
class ReferenceComparison:
    """How our ranking compares with a previous model's (its top 25 against ours)."""

    n_reference: int
    overlap_top10: list[str]
    overlap_top25: list[str]
    top10_size: int
    top25_size: int
    spearman: float | None
    n_shared: int
    rose: list[dict[str, Any]]
    fell: list[dict[str, Any]]
    missing_from_ours: list[str]
    new_in_our_top25: list[str]
    previous_top: str
    previous_top_rank_now: int | None
    previous_top_still_top: bool
    our_top: str
    shared: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_reference(path: Path) -> pd.DataFrame:
    """A previous model's ranking: CSV with ``rank,feature`` (and usually ``gain``)."""
    ref = pd.read_csv(path)
    missing = {"rank", "feature"} - set(ref.columns)
    if missing:
        raise ValueError(f"{path}: reference ranking lacks column(s) {sorted(missing)}")
    return ref.sort_values("rank").reset_index(drop=True)


def compare_with_reference(
    importance: pd.DataFrame, reference: pd.DataFrame, n_moves: int = 5
) -> ReferenceComparison:
    """Overlap in the top 10/25, Spearman over shared features, biggest moves, the old #1.

    Features are matched by exact name, then case-insensitively.
    """
    ours = dict(
        zip(importance["feature"].astype(str), importance["rank"].astype(int), strict=True)
    )
    lower = {name.lower(): name for name in ours}
    ref_names = [str(f) for f in reference["feature"]]
    ref_rank = dict(zip(ref_names, reference["rank"].astype(int), strict=True))
    matched = {f: f if f in ours else lower.get(f.lower()) for f in ref_names}
    shared = [f for f in ref_names if matched[f] is not None]
    our_rank = {f: ours[str(matched[f])] for f in shared}

    def overlap(k: int) -> list[str]:
        return [f for f in ref_names if ref_rank[f] <= k and f in our_rank and our_rank[f] <= k]

    rho: float | None = None
    if len(shared) >= 3:
        from scipy.stats import spearmanr  # only here: scoring imports this module

        value = spearmanr([ref_rank[f] for f in shared], [our_rank[f] for f in shared])[0]
        rho = None if np.isnan(value) else float(value)
    moves: list[dict[str, Any]] = [
        {"feature": f, "reference_rank": ref_rank[f], "our_rank": our_rank[f],
         "change": ref_rank[f] - our_rank[f]}
        for f in shared
    ]  # fmt: skip
    by_change = sorted(moves, key=lambda m: (-int(m["change"]), str(m["feature"])))
    previous_top = ref_names[0]
    ref_top25 = {str(matched[f]) for f in shared if ref_rank[f] <= 25}
    return ReferenceComparison(
        n_reference=len(ref_names),
        overlap_top10=overlap(10),
        overlap_top25=overlap(25),
        top10_size=min(10, len(ref_names)),
        top25_size=min(25, len(ref_names)),
        spearman=rho,
        n_shared=len(shared),
        rose=[m for m in by_change if m["change"] > 0][:n_moves],
        fell=[m for m in reversed(by_change) if m["change"] < 0][:n_moves],
        missing_from_ours=[f for f in ref_names if matched[f] is None],
        new_in_our_top25=[
            f
            for f, r in sorted(ours.items(), key=lambda kv: kv[1])
            if r <= 25 and f not in ref_top25
        ],
        previous_top=previous_top,
        previous_top_rank_now=our_rank.get(previous_top),
        previous_top_still_top=our_rank.get(previous_top) == 1,
        our_top=str(importance["feature"].iloc[0]) if len(importance) else "",
        shared=moves,
    )


def growth_trajectory(df: pd.DataFrame) -> pd.Series:
    """Growth cohort per row: from Positive_Growth_Trajectory / Accelerating_Growth when the
    frame has them, else from the sign of AUMGrowthRate_1Year."""
    unknown = pd.Series("Unknown", index=df.index, dtype=object)
    if {"Positive_Growth_Trajectory", "Accelerating_Growth"} <= set(df.columns):
        pos = pd.to_numeric(df["Positive_Growth_Trajectory"], errors="coerce")
        acc = pd.to_numeric(df["Accelerating_Growth"], errors="coerce")
        known = pos.notna() & acc.notna()
        label = np.where(pos > 0, "Positive", "Not positive").astype(object)
        label = label + np.where(acc > 0, ", accelerating", ", not accelerating").astype(object)
        return unknown.where(~known, pd.Series(label, index=df.index))
    if "AUMGrowthRate_1Year" in df.columns:
        g = pd.to_numeric(df["AUMGrowthRate_1Year"], errors="coerce")
        out = unknown.copy()
        out[g > 0] = "Growing (1y > 0)"
        out[g < 0] = "Shrinking (1y < 0)"
        out[g == 0] = "Flat (1y = 0)"
        return out
    return unknown


def cohort_analysis(
    df: pd.DataFrame,
    proba: np.ndarray,
    scores: np.ndarray,
    folded: pd.DataFrame,
    catalog: Catalog,
    target_col: str = "target",
    n_drivers: int = 3,
    keys: dict[str, pd.Series] | None = None,
) -> dict[str, pd.DataFrame]:
    """Conversion, mean score and top drivers by each catalog segment (AUM tier, metro area)
    and by growth trajectory.

    Each table has one row per cohort: ``cohort, n, conversions, conversion_rate,
    mean_probability, mean_score, top_drivers`` (conversion figures are NaN without a target).
    """
    keys = cohort_keys(df, catalog) if keys is None else keys
    target = (
        pd.to_numeric(df[target_col], errors="coerce")
        if target_col in df.columns
        else pd.Series(np.nan, index=df.index)
    )
    base = pd.DataFrame(
        {"target": target.to_numpy(), "p": np.asarray(proba), "score": np.asarray(scores)}
    )
    contrib = folded.reset_index(drop=True)
    return {
        name: _cohort_table(base, key.reset_index(drop=True), contrib, n_drivers)
        for name, key in keys.items()
    }


def cohort_keys(df: pd.DataFrame, catalog: Catalog) -> dict[str, pd.Series]:
    """Each row's cohort by every catalog segment and by growth trajectory (what
    :func:`cohort_analysis` groups by, given as ``keys`` when already made)."""
    keys = {name: _column_or_unknown(df, name) for name in catalog.segment_names()}
    keys["growth_trajectory"] = growth_trajectory(df)
    return keys


def _column_or_unknown(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series("Unknown", index=df.index, dtype=object)
    return df[col].astype(object).where(df[col].notna(), "Unknown").astype(str)


def _cohort_table(
    base: pd.DataFrame, key: pd.Series, contrib: pd.DataFrame, n_drivers: int
) -> pd.DataFrame:
    rows = []
    for cohort, idx in key.groupby(key, sort=True).groups.items():
        part = base.loc[idx]
        mean_contrib = contrib.loc[idx].mean(axis=0).sort_values(ascending=False)
        top = [f"{f} ({v:+.3f})" for f, v in mean_contrib.head(n_drivers).items() if v > 0]
        has_target = bool(part["target"].notna().any())
        rows.append(
            {
                "cohort": str(cohort),
                "n": len(part),
                "conversions": int(part["target"].sum()) if has_target else None,
                "conversion_rate": float(part["target"].mean()) if has_target else float("nan"),
                "mean_probability": float(part["p"].mean()),
                "mean_score": float(part["score"].mean()),
                "top_drivers": "; ".join(top),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ExplainResult:
    """What ``explain_model`` computed and where it wrote it."""

    model_version: str
    n_rows: int
    max_additivity_error: float
    importance: pd.DataFrame
    comparison: ReferenceComparison | None
    cohorts: dict[str, pd.DataFrame]
    paths: dict[str, Path]


def explain_model(
    bundle: Bundle,
    df: pd.DataFrame,
    catalog: Catalog,
    reference_csv: Path | None,
    reports_dir: Path,
    *,
    score_cfg: ScoreConfig | None = None,
    target_col: str = "target",
    top_n_plot: int = 30,
    progress: ProgressFn | None = None,
) -> ExplainResult:
    """Explain a model on ``df`` and write its reports into ``reports_dir``.

    Writes ``shap_importance.csv``, ``shap_summary.png`` (top ``top_n_plot`` features),
    ``lead_drivers.parquet`` (every row's drivers), ``cohort_analysis.{md,json}``,
    ``reference_comparison.{md,json}`` when ``reference_csv`` is given, and
    ``explain_summary.json``.
    """
    from leadscore.report.explain import render_cohort_markdown, render_comparison_markdown

    score_cfg = score_cfg or ScoreConfig()
    reports_dir = Path(reports_dir)
    version = bundle.version
    report = progress or no_progress
    # the Parquet file and the plot are made on these threads beside the other steps (Arrow
    # writes Parquet, XGBoost computes and Pillow encodes the PNG, without holding the GIL)
    writers = ThreadPoolExecutor(2, thread_name_prefix="explain-files")
    summary_plot = SummaryPlot(bundle, df, top_n_plot, writers)
    # 1. exact contributions, folded to source features, and every row's drivers; additivity
    #    check against the margin (predicted from the same matrix, chunk by chunk; a chunk's
    #    drivers are assembled while the next chunk's contributions compute)
    report("exact TreeSHAP contributions", 0.0)
    early: dict[str, Any] = {}

    def meanwhile() -> None:  # what needs no contribution, made while the first ones compute
        early["held"] = held = _holdout_rows(bundle, df)
        early["rows"] = rows = df[held]
        early["keys"] = cohort_keys(rows, catalog)

    try:
        done = explain_rows(
            bundle, df, catalog, score_cfg, meanwhile=meanwhile, each=summary_plot.add
        )
    except BaseException:
        writers.shutdown(wait=True, cancel_futures=True)
        raise
    contrib, folded, drivers = done.contributions, done.folded, done.drivers
    margin = np.asarray(done.margin, dtype=np.float64)
    max_err = float(np.max(np.abs(folded.sum(axis=1).to_numpy() + contrib.bias - margin)))
    # 2. per-lead drivers (assembled in step 1) and, 3., global importance and its plot
    report("per-lead drivers and global importance", 0.3)
    written = writers.submit(_write_drivers, df, drivers, reports_dir / "lead_drivers.parquet")
    importance = global_importance(folded)
    paths = {"importance_csv": reports_dir / "shap_importance.csv"}
    _write_csv(importance, paths["importance_csv"])
    paths["summary_png"] = reports_dir / "shap_summary.png"
    paths["drivers"] = reports_dir / "lead_drivers.parquet"
    plotted = summary_plot.finish(importance, folded)
    writers.shutdown(wait=False)
    # 4. comparison with the previous model's ranking
    report("comparison with the reference model", 0.85)
    comparison = None
    if reference_csv is not None:
        comparison = compare_with_reference(importance, load_reference(Path(reference_csv)))
        paths["comparison_json"] = write_json(
            reports_dir / "reference_comparison.json",
            {"model_version": version, "reference": str(reference_csv), **comparison.to_dict()},
        )
        paths["comparison_md"] = _write_text(
            reports_dir / "reference_comparison.md",
            render_comparison_markdown(comparison, version, Path(reference_csv).name),
        )
    # 5. cohorts, on the holdout leads only: the model never trained on them, so their
    #    probabilities are out of sample (the development rows' would be in sample).
    report("cohorts", 0.9)
    held, rows = early["held"], early["rows"]
    # a row's margin does not depend on the other rows predicted with it: reuse it
    proba = np.asarray(bundle.proba_from_margin(rows, margin[held]), dtype=np.float64)
    cohorts = cohort_analysis(
        rows, proba, bundle.score(proba), folded[held], catalog, target_col, keys=early["keys"]
    )
    rows_note = (
        f"{int(held.sum()):,} holdout leads, which the model never trained on"
        if not held.all()
        else f"all {len(df):,} leads given (none is in the model's holdout)"
    )
    paths["cohort_json"] = write_json(
        reports_dir / "cohort_analysis.json",
        {name: json.loads(t.to_json(orient="records")) for name, t in cohorts.items()},
    )
    paths["cohort_md"] = _write_text(
        reports_dir / "cohort_analysis.md",
        render_cohort_markdown(cohorts, version, catalog, rows_note),
    )
    png = plotted.result()  # both files are made (or their error is raised) before the summary
    with atomic_path(paths["summary_png"]) as tmp:
        tmp.write_bytes(png)
    written.result()
    summary = {
        "model_version": version,
        "n_rows": len(df),
        "max_additivity_error": max_err,
        "top_features": importance.head(10)["feature"].tolist(),
        "paths": {k: str(v) for k, v in paths.items()},
    }
    paths["summary_json"] = write_json(reports_dir / "explain_summary.json", summary)
    report("done", 1.0)
    return ExplainResult(version, len(df), max_err, importance, comparison, cohorts, paths)


class SummaryPlot:
    """The summary plot of :func:`explain_model`, drawn while the last contributions compute.

    The plot shows the same :func:`plot_rows` whatever the ranking, so only its order of
    features waits for every row. Once the chunks put into words hold at least half the rows,
    the plot is drawn on a thread from the ranking of those rows, with the shown rows'
    contributions computed apart (a row's contributions do not depend on the rows computed with
    it). :meth:`finish` keeps that drawing only when the final ranking has the same top
    features in the same order and the shown rows' contributions equal the batch's; otherwise
    the plot is drawn again, so the file is always the plot of the final figures.
    """

    def __init__(self, bundle: Bundle, df: pd.DataFrame, top_n: int, pool: Executor) -> None:
        self._bundle, self._df, self._top_n, self._pool = bundle, df, top_n, pool
        self._shown = plot_rows(len(df))
        self._sums: np.ndarray | None = None
        self._columns: list[str] = []
        self._done = 0
        self._early: tuple[list[str], Future[tuple[pd.DataFrame, bytes]]] | None = None

    def add(self, part: ExplainedRows) -> None:
        """Count one chunk's contributions (chunks in row order, as they are put into words);
        draw the early plot once they hold at least half the rows but not all of them."""
        sums = np.abs(part.folded.to_numpy(dtype=np.float64)).sum(axis=0)
        self._sums = sums if self._sums is None else self._sums + sums
        self._columns = [str(c) for c in part.folded.columns]
        self._done += len(part.folded)
        if self._early is None and len(self._df) <= 2 * self._done < 2 * len(self._df):
            top = self._ranked()[: self._top_n]
            self._early = (top, self._pool.submit(self._draw_apart, top))

    def finish(self, importance: pd.DataFrame, folded: pd.DataFrame) -> Future[bytes]:
        """The PNG of the final ranking (on the pool): the early drawing if it is that plot."""
        top = importance.head(self._top_n)["feature"].tolist()
        shown, values = folded.iloc[self._shown], self._df.iloc[self._shown]
        if self._early is None or self._early[0] != top:
            return self._pool.submit(_render, shown, values, top)
        early = self._early[1]

        def confirmed() -> bytes:
            apart, png = early.result()
            same = apart.columns.equals(shown.columns) and np.array_equal(
                apart.to_numpy(), shown.to_numpy()
            )
            return png if same else _render(shown, values, top)

        return self._pool.submit(confirmed)

    def _ranked(self) -> list[str]:
        """Features by the summed |contribution| so far, largest first, ties by name (the
        order of :func:`global_importance`, whose means share one row count)."""
        sums, names = self._sums, self._columns
        assert sums is not None
        order = sorted(range(len(names)), key=lambda k: (-sums[k], names[k]))
        return [self._columns[k] for k in order]

    def _draw_apart(self, top: list[str]) -> tuple[pd.DataFrame, bytes]:
        rows = self._df.iloc[self._shown]
        booster = self._bundle.booster.copy()
        booster.set_param({"nthread": 1})
        apart = fold_contributions(
            compute_contributions(self._bundle, rows, booster=booster),
            list(self._bundle.features),
            rows.index,
        )
        return apart, _render(apart, rows, top)


def _render(folded: pd.DataFrame, values: pd.DataFrame, top: list[str]) -> bytes:
    from leadscore.report.explain import render_shap_summary

    return render_shap_summary(folded, values, top)


def plot_rows(n_rows: int, n_points: int = PLOT_POINTS, seed: int = 0) -> np.ndarray:
    """The rows the summary plot shows: all of them, or a seeded sample of ``n_points`` in
    row order (a dot per lead and feature; more dots only cost drawing time)."""
    rows = np.arange(n_rows)
    if n_rows <= n_points:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, n_points, replace=False))


def _holdout_rows(bundle: Bundle, df: pd.DataFrame) -> np.ndarray:
    """Rows of ``df`` in the bundle's holdout; every row when none is (e.g. new leads)."""
    if "lead_id" not in df.columns:
        return np.ones(len(df), dtype=bool)
    ids = pa.array(df["lead_id"].astype(str), pa.string())  # Arrow hashes the ids in C
    holdout = pa.array(list(bundle.folds.holdout_ids), pa.string())
    held = pc.fill_null(pc.is_in(ids, value_set=holdout), False).to_numpy(zero_copy_only=False)
    return held if held.any() else np.ones(len(df), dtype=bool)


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def _write_text(path: Path, text: str) -> Path:
    from leadscore.io import write_text

    return write_text(path, text)


def _write_drivers(df: pd.DataFrame, drivers: DriverColumns, path: Path) -> Path:
    import pyarrow.parquet as pq

    ids = df["lead_id"] if "lead_id" in df.columns else df.index.to_series()
    # the drivers are Arrow arrays already: no pandas frame of Python strings in between
    table = pa.table(
        {
            "lead_id": pa.array(ids.astype(str), pa.string()),
            "drivers_text": drivers.text,
            "drivers_json": drivers.json,
        }
    )
    with atomic_path(path) as tmp:  # one chunk per column: the same pages however it was made
        pq.write_table(table.combine_chunks(), tmp, use_dictionary=False)  # all distinct
    return path


def drivers_json(positive: list[Driver], negative: list[Driver]) -> str:
    """Structured drivers as compact JSON (kept beside the text in ``lead_scores``)."""
    payload = {
        "positive": [d.to_dict() for d in positive],
        "negative": [d.to_dict() for d in negative],
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
