"""Out-of-time evaluation: metrics beside the baselines, the tier table, fairness, rules-vs-model agreement.

``evaluate_model`` measures what ``models.train.train_model`` fitted, on the test fold it never read. Every
table function takes plain frames and arrays and returns a frame, so the CLI prints them, MLflow logs them,
the model card quotes them and the notebook shows them without recomputing anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_NAMES, FEATURES
from features.columns import feature_columns
from models.gate import ece_limit
from models.metrics import (
    Resamples,
    auc_or_nan,
    binary_metrics,
    calibrated_ece,
    calibration_bins,
    expected_calibration_error,
    group_auc,
    rate_or_nan,
)
from models.monitoring import Reference, drift_table, fairness_frame
from models.policy import TIER_LABELS, TIERS, Policy
from models.train import TrainedModel

HIGH_TIERS = ("C", "D")


def metrics_table(y: np.ndarray, scores: dict[str, np.ndarray], *, ece_bins: int = 10) -> pd.DataFrame:
    """One row of ``binary_metrics`` per scorer (the model and the baselines, on the same rows)."""
    rows = [{"scorer": name, **binary_metrics(y, p, ece_bins=ece_bins)} for name, p in scores.items()]
    return pd.DataFrame(rows)


def tier_table(y: np.ndarray, score: np.ndarray, tiers: np.ndarray) -> pd.DataFrame:
    """Count, share, observed outcome rate and mean score per tier (A to D, empty tiers included)."""
    frame = pd.DataFrame({"tier": np.asarray(tiers), "y": np.asarray(y, dtype=float), "score": score})
    grouped = frame.groupby("tier", observed=True).agg(
        count=("y", "size"), outcome_rate=("y", "mean"), mean_score=("score", "mean")
    )
    table = grouped.reindex(list(TIERS)).reset_index()
    table["count"] = table["count"].fillna(0).astype(int)
    table["share"] = table["count"] / max(len(frame), 1)
    table["label"] = table["tier"].map(TIER_LABELS)
    return table[["tier", "label", "count", "share", "outcome_rate", "mean_score"]]


def interval_table(
    y: np.ndarray, scores: dict[str, np.ndarray], resamples: Resamples, *, ece_bins: int
) -> pd.DataFrame:
    """Bootstrap intervals (95 %, resampling entities) of AUC and ECE per scorer, on the same resamples;
    and for every scorer after the first (the model), ``auc_lead``: the first's AUC minus its own, with the
    paired interval of that difference (the two AUCs draw by draw), which is what says whether the model
    is ahead where the two separate intervals overlap."""
    y = np.asarray(y, dtype=float)
    rows, auc_draws, auc_values = [], {}, {}
    for name, p in scores.items():
        p = np.asarray(p, dtype=float)
        for metric, fn in (("auc", auc_or_nan), ("ece", lambda a, b: expected_calibration_error(a, b, ece_bins))):
            draws = resamples.draws(fn, y, p)
            low, high = resamples.bounds(draws)
            rows.append({"scorer": name, "metric": metric, "value": fn(y, p), "low": low, "high": high})
            if metric == "auc":
                auc_draws[name], auc_values[name] = draws, rows[-1]["value"]
    first, *others = list(scores)
    for name in others:
        low, high = resamples.bounds(auc_draws[first] - auc_draws[name])
        lead = auc_values[first] - auc_values[name]
        rows.append({"scorer": name, "metric": "auc_lead", "value": lead, "low": low, "high": high})
    return pd.DataFrame(rows, columns=["scorer", "metric", "value", "low", "high"])


def with_rate_intervals(table: pd.DataFrame, y: np.ndarray, tiers: np.ndarray, resamples: Resamples) -> pd.DataFrame:
    """The tier table with a 95 % bootstrap interval of each tier's outcome rate."""
    y, tiers = np.asarray(y, dtype=float), np.asarray(tiers)
    bounds = [resamples.interval(lambda a, t, tier=tier: rate_or_nan(a, t == tier), y, tiers) for tier in TIERS]
    return table.assign(rate_low=[b[0] for b in bounds], rate_high=[b[1] for b in bounds])


def rates_rise(table: pd.DataFrame, min_rows: int) -> tuple[bool, str]:
    """Whether the observed outcome rate rises strictly from tier to tier, A to D, and how it was judged.

    Only tiers with at least ``min_rows`` rows are judged (``evaluation.min_tier_rows``): an empty tier (a
    ladder whose A no entity reaches) or a handful of rows has no rate to speak of, and is named instead.
    Fewer than two such tiers leave nothing to compare, which is said and does not fail.
    """
    counts = table["count"].to_numpy(dtype=int)
    large = counts >= min_rows
    left_out = ", ".join(f"{t} ({n:,} rows)" for t, n in zip(table["tier"], counts, strict=True) if n < min_rows)
    if large.sum() < 2:
        return True, f"not measured: fewer than two tiers have {min_rows:,} rows ({left_out})"
    rates = table["outcome_rate"].to_numpy(dtype=float)[large]
    rises = bool(np.all(np.diff(rates) > 0))
    verdict = "rise" if rises else "do not rise"
    if large.all():
        return rises, f"outcome rates {verdict} strictly from A to D"
    judged = ", ".join(table["tier"][large])
    return rises, f"outcome rates {verdict} strictly over {judged}; under {min_rows:,} rows, not judged: {left_out}"


def fairness_table(
    y: np.ndarray,
    score: np.ndarray,
    tiers: np.ndarray,
    groups: pd.DataFrame,
    *,
    min_rows: int,
    min_positives: int,
) -> pd.DataFrame:
    """Per value of each column of ``groups`` (industry, region, kind): rows, outcome rate, mean score,
    calibration gap (mean score - outcome rate), share in tier D and in C or D, and AUC where estimable."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    tiers = np.asarray(tiers)
    rows = []
    for column in groups.columns:
        values = groups[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            rows.append(
                {
                    "group": column,
                    "value": value,
                    "rows": int(mask.sum()),
                    "share": float(mask.mean()),
                    "positives": int(y[mask].sum()),
                    "outcome_rate": float(y[mask].mean()),
                    "mean_score": float(score[mask].mean()),
                    "calibration_gap": float(score[mask].mean() - y[mask].mean()),
                    "share_D": float((tiers[mask] == "D").mean()),
                    "share_CD": float(np.isin(tiers[mask], HIGH_TIERS).mean()),
                    "auc": group_auc(y[mask], score[mask], min_rows=min_rows, min_positives=min_positives),
                }
            )
    return pd.DataFrame(rows)


def agreement_tables(
    y: np.ndarray, rule_fired: np.ndarray, model_tier: np.ndarray, tier: np.ndarray, policy: Policy
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """How the model alone compares with each rule, and a summary (``rule_fired``: ``Policy.fired``).

    Per rule: how often it fires, the outcome rate where it does, and the share of those rows that the
    model alone already puts in C or D (for rules raising risk) or in A or B (for rules lowering it).
    Summary: the share of rows flagged by any risk-raising rule that the model puts in C or D, and the
    rule-free rows the model puts in D with their outcome rate (what the model finds that the rules miss).
    """
    y = np.asarray(y, dtype=float)
    model_tier = np.asarray(model_tier)
    tier = np.asarray(tier)
    model_high = np.isin(model_tier, HIGH_TIERS)
    any_fired = np.zeros(len(y), dtype=bool)
    raising = np.zeros(len(y), dtype=bool)
    rows = []
    for r, rule in enumerate(policy.rules):
        fired = rule_fired[:, r]
        any_fired |= fired
        raises = rule.effect != "cap" and TIERS.index(rule.tier) >= TIERS.index("C")
        if raises:
            raising |= fired
        agrees = model_high[fired] if raises else ~model_high[fired]
        rows.append(
            {
                "rule": rule.code,
                "effect": f"{rule.effect} {rule.tier}",
                "fired": int(fired.sum()),
                "share": float(fired.mean()),
                "outcome_rate": float(y[fired].mean()) if fired.any() else float("nan"),
                "model_agrees": float(agrees.mean()) if fired.any() else float("nan"),
                "model_tier_mix": _mix(model_tier[fired]),
                "final_tier_mix": _mix(tier[fired]),
            }
        )
    free = ~any_fired
    free_d = free & (model_tier == "D")
    summary = {
        "rule_flagged_rows": int(raising.sum()),
        "rule_flagged_model_CD_share": float(model_high[raising].mean()) if raising.any() else float("nan"),
        "rule_flagged_outcome_rate": float(y[raising].mean()) if raising.any() else float("nan"),
        "rule_free_rows": int(free.sum()),
        "rule_free_model_D_rows": int(free_d.sum()),
        "rule_free_model_D_share": float(free_d.sum() / max(free.sum(), 1)),
        "rule_free_model_D_outcome_rate": float(y[free_d].mean()) if free_d.any() else float("nan"),
        "rule_free_outcome_rate": float(y[free].mean()) if free.any() else float("nan"),
        "tier_changed_by_rules_share": float((tier != model_tier).mean()) if len(tier) else float("nan"),
    }
    return pd.DataFrame(rows), summary


def _mix(tiers: np.ndarray) -> str:
    if len(tiers) == 0:
        return ""
    counts = pd.Series(tiers).value_counts()
    return " ".join(f"{t}{counts.get(t, 0) / len(tiers):.0%}" for t in TIERS)


def tier_crosstab(model_tier: np.ndarray, tier: np.ndarray) -> pd.DataFrame:
    """Rows: the model's tier; columns: the final tier after the rules."""
    table = pd.crosstab(pd.Series(model_tier, name="model_tier"), pd.Series(tier, name="tier"))
    return table.reindex(index=list(TIERS), columns=list(TIERS), fill_value=0)


def importance_table(contributions: np.ndarray, names: list[str], labels: dict[str, str]) -> pd.DataFrame:
    """Global importance: mean |SHAP| per feature (log-odds), largest first."""
    mean_abs = np.abs(contributions).mean(axis=0)
    mean = contributions.mean(axis=0)
    table = pd.DataFrame(
        {"feature": names, "label": [labels[n] for n in names], "mean_abs_shap": mean_abs, "mean_shap": mean}
    )
    return table.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


@dataclass
class Evaluation:
    """Everything measured on the evaluation (test) fold, plus the model on every fold."""

    metrics: pd.DataFrame  # model, uncalibrated model and baselines on the test fold
    folds: pd.DataFrame  # the model on train / valid / test
    tiers: pd.DataFrame  # final tier (after rules)
    model_tiers: pd.DataFrame  # the model's own tier
    crosstab: pd.DataFrame
    fairness: pd.DataFrame
    agreement: pd.DataFrame
    agreement_summary: dict[str, Any]
    calibration: pd.DataFrame  # equal-mass bins per scorer
    intervals: pd.DataFrame  # bootstrap intervals of AUC and ECE per scorer (empty without resamples)
    importance: pd.DataFrame
    # Test-fold rows kept for plots and the notebook: features, outcome, scores, tiers.
    test_frame: pd.DataFrame = field(repr=False)
    # TreeSHAP of a sample of the test fold: contributions, base values and the rows.
    shap_sample: tuple[np.ndarray, np.ndarray, pd.DataFrame] = field(repr=False)
    checks: dict[str, bool] = field(default_factory=dict)
    tier_rates: str = ""  # how the final tiers' rates were judged (``rates_rise``): the gate's words
    # The ECE a perfectly calibrated model would show on the test fold by chance (``calibrated_ece``; NaN
    # without resamples): the gate's ECE limit is never set below it.
    ece_chance: float = float("nan")
    # Fairness with intervals and flags (models.monitoring.fairness_frame) and the drift of the test fold
    # from the training reference: what the gate reads besides the metrics.
    fairness_flags: pd.DataFrame = field(default_factory=pd.DataFrame)
    fairness_groups: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)  # per test_frame row
    drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0

    def metric(self, scorer: str, name: str) -> float:
        return float(self.metrics.loc[self.metrics["scorer"] == scorer, name].iloc[0])

    def industry_auc_min(self) -> float:
        values = self.fairness.loc[self.fairness["group"] == "industry", "auc"].dropna()
        return float(values.min()) if len(values) else float("nan")

    def summary(self) -> dict[str, float]:
        """Flat metrics for MLflow and the JSON line: ``test_auc``, ``scorecard_test_auc``, ``tier_rate_A``…"""
        out: dict[str, float] = {}
        prefixes = {
            "model": "",
            "model_uncalibrated": "uncalibrated_",
            "rules_points_card": "rules_card_",
            "binned_scorecard": "scorecard_",
        }
        for row in self.metrics.to_dict("records"):
            prefix = prefixes.get(row["scorer"], f"{row['scorer']}_")
            for key in ("auc", "pr_auc", "ks", "brier", "ece", "lift_top_decile"):
                out[f"{prefix}test_{key}"] = float(row[key])
        for row in self.folds.to_dict("records"):
            out[f"{row['fold']}_auc"] = float(row["auc"])
            out[f"{row['fold']}_rows"] = float(row["rows"])
            out[f"{row['fold']}_outcome_rate"] = float(row["outcome_rate"])
        for row in self.tiers.to_dict("records"):
            out[f"tier_rate_{row['tier']}"] = float(row["outcome_rate"])
            out[f"tier_share_{row['tier']}"] = float(row["share"])
        for row in self.intervals.to_dict("records"):
            prefix = prefixes.get(row["scorer"], f"{row['scorer']}_")
            if row["metric"] == "auc_lead":  # the model's AUC minus this scorer's: not in the metrics table
                out[f"{prefix}test_auc_lead"] = float(row["value"])
            out[f"{prefix}test_{row['metric']}_low"] = float(row["low"])
            out[f"{prefix}test_{row['metric']}_high"] = float(row["high"])
        for row in self.tiers.to_dict("records"):
            if "rate_low" in row:
                out[f"tier_rate_{row['tier']}_low"] = float(row["rate_low"])
                out[f"tier_rate_{row['tier']}_high"] = float(row["rate_high"])
        out["industry_auc_min"] = self.industry_auc_min()
        out["test_ece_chance"] = self.ece_chance
        if len(self.fairness_flags):
            out["fairness_flags"] = float(self.fairness_flags["flagged"].sum())
        if len(self.drift):
            out["test_score_psi"] = float(self.drift.loc[self.drift["feature"] == "score", "psi"].iloc[0])
        out.update({k: float(v) for k, v in self.agreement_summary.items()})
        out.update({f"check_{k}": float(v) for k, v in self.checks.items()})
        return out


def run_metrics(model: TrainedModel, evaluation: Evaluation) -> dict[str, float]:
    """The flat metrics of a training run (``Evaluation.summary`` and the number of trees), as MLflow logs
    them and ``ipcredit train`` prints them."""
    return {**evaluation.summary(), "best_iteration": float(model.best_iteration)}


def evaluate_model(
    model: TrainedModel,
    snapshots: pd.DataFrame,
    policy: Policy,
    *,
    groups: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Measure ``model`` on the folds of its split of ``snapshots`` (the frame it was trained on).

    On the out-of-time test fold: the model, the uncalibrated model and both baselines, the tier tables,
    fairness, rules-vs-model agreement, calibration bins and global SHAP importance; the model alone on
    every fold. ``groups``: per ``entity_id``, the attributes of the fairness table (``region``,
    ``kind``…); industry and kind fall back to the features when absent.
    """
    say = progress or (lambda _message: None)
    say("evaluating on the out-of-time test fold")
    t0 = time.perf_counter()
    config, scorer = model.config, model.scorer
    folds = model.split.folds(snapshots)
    y = {name: frame["outcome"].to_numpy(dtype=np.int8) for name, frame in folds.items()}
    raw = {name: scorer.log_odds(frame) for name, frame in folds.items()}
    scores = {name: scorer.calibrator.transform(z) for name, z in raw.items()}
    test = folds["test"]
    baseline_scores = {name: baseline.predict_proba(test) for name, baseline in model.baselines.items()}
    tiering = policy.tiering(scores["test"], feature_columns(test))
    bins = config.evaluation.ece_bins
    metrics = metrics_table(
        y["test"],
        {"model": scores["test"], "model_uncalibrated": 1 / (1 + np.exp(-raw["test"])), **baseline_scores},
        ece_bins=bins,
    )
    fold_rows = [{"fold": name, **binary_metrics(y[name], scores[name], ece_bins=bins)} for name in folds]
    resamples = Resamples(test["entity_id"].to_numpy(), config.evaluation.bootstrap, seed=config.lightgbm.seed)
    tiers = with_rate_intervals(tier_table(y["test"], scores["test"], tiering.tier), y["test"], tiering.tier, resamples)
    model_tiers = tier_table(y["test"], scores["test"], tiering.model_tier)
    intervals = interval_table(y["test"], {"model": scores["test"], **baseline_scores}, resamples, ece_bins=bins)
    agreement, agreement_summary = agreement_tables(y["test"], tiering.fired, tiering.model_tier, tiering.tier, policy)
    calibration = pd.concat(
        [
            calibration_bins(y["test"], p, bins).assign(scorer=name)
            for name, p in {"model": scores["test"], **baseline_scores}.items()
        ],
        ignore_index=True,
    )
    rng = np.random.default_rng(config.lightgbm.seed)
    sample = np.sort(rng.choice(len(test), min(config.evaluation.shap_sample, len(test)), replace=False))
    sample_frame = test.iloc[sample]
    contrib, base = scorer.contributions(sample_frame)
    test_frame = test[["entity_id", "as_of", *FEATURE_NAMES, "outcome"]].assign(
        score=scores["test"],
        log_odds=raw["test"],
        model_tier=tiering.model_tier,
        tier=tiering.tier,
        rules=tiering.rules,
        review=tiering.review,
        **{f"{name}_score": p for name, p in baseline_scores.items()},
    )
    evaluation = Evaluation(
        metrics=metrics,
        folds=pd.DataFrame(fold_rows),
        tiers=tiers,
        model_tiers=model_tiers,
        crosstab=tier_crosstab(tiering.model_tier, tiering.tier),
        fairness=fairness_table(
            y["test"],
            scores["test"],
            tiering.tier,
            _groups(test, groups),
            min_rows=config.evaluation.min_group_rows,
            min_positives=config.evaluation.min_group_positives,
        ),
        agreement=agreement,
        agreement_summary=agreement_summary,
        calibration=calibration,
        intervals=intervals,
        importance=importance_table(contrib, FEATURE_NAMES, {n: FEATURES[n].label_en for n in FEATURE_NAMES}),
        test_frame=test_frame.reset_index(drop=True),
        shap_sample=(contrib, base, sample_frame.reset_index(drop=True)),
    )
    evaluation.fairness_groups = _groups(test, groups).reset_index(drop=True)
    evaluation.fairness_flags = fairness_frame(
        y["test"],
        scores["test"],
        tiering.tier,
        evaluation.fairness_groups,
        min_rows=config.evaluation.min_group_rows,
        n_boot=config.evaluation.bootstrap,
        seed=config.lightgbm.seed,
    )
    if "reference" in scorer.metadata:
        evaluation.drift = drift_table(Reference.from_dict(scorer.metadata["reference"]), test, scores["test"])
    model_auc = evaluation.metric("model", "auc")
    min_rows = config.evaluation.min_tier_rows
    tiers_rise, evaluation.tier_rates = rates_rise(tiers, min_rows)
    evaluation.ece_chance = calibrated_ece(scores["test"], bins, config.evaluation.bootstrap, seed=config.lightgbm.seed)
    beats = {"rules_points_card": "beats_rules_card_auc", "binned_scorecard": "beats_scorecard_auc"}
    evaluation.checks = {
        **{
            check: model_auc > evaluation.metric(name, "auc")
            for name, check in beats.items()
            if name in model.baselines
        },
        "ece_within_limit": evaluation.metric("model", "ece") <= ece_limit(config.gate.max_ece, evaluation.ece_chance),
        "tier_rates_rise": tiers_rise,
        "model_tier_rates_rise": rates_rise(model_tiers, min_rows)[0],
    }
    evaluation.seconds = time.perf_counter() - t0
    return evaluation


def _groups(test: pd.DataFrame, groups: pd.DataFrame | None) -> pd.DataFrame:
    """Industry, region and kind for each test row (region only when ``groups`` gives it)."""
    out = pd.DataFrame(index=test.index)
    out["industry"] = test["industry"].astype(object).fillna("?").to_numpy()
    kind = np.where(test["is_agency"].to_numpy(dtype=bool), "agency", "enterprise")
    if groups is not None and len(groups):
        attrs = groups.drop_duplicates("entity_id").set_index("entity_id")
        joined = attrs.reindex(test["entity_id"].to_numpy())
        for column in ("region", "kind"):
            if column in joined.columns:
                out[column] = joined[column].astype(object).fillna("?").to_numpy()
    if "kind" not in out.columns:
        out["kind"] = kind
    return out[[c for c in ("industry", "region", "kind") if c in out.columns]]
