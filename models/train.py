"""Training: out-of-time split, monotone LightGBM, calibration on held-out data, evaluation, baselines.

The protocol (docs/model.md has the reasoning):

    as-of dates, oldest to newest
    | train ............ | purged | valid (early stopping, calibration) | test (evaluation only) |

- ``test``: the latest ``test_quarters`` as-of dates. Touched once, to evaluate; never fitted on.
- ``valid``: the ``valid_quarters`` before them. Early stopping picks the number of trees on it, and the
  calibrator is fitted on it. Using one fold for both is mildly optimistic *on that fold*, which is why the
  reported numbers come from ``test`` instead.
- ``purged``: training snapshots whose 12-month outcome window reaches past the first held-out date. A
  model deployed on that date could not have known those outcomes, and keeping them would let the same
  future events label both a training row and a held-out row of the same entity.

What is evaluated is what is registered: the booster trained on ``train``, stopped and calibrated on
``valid``. The refit policy (docs/model.md) retrains quarterly as a new quarter's outcomes complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from features.build import OUTCOME_MONTHS, model_matrix
from features.catalogue import CATEGORICAL, FEATURE_NAMES, FEATURES, monotone_constraints
from models.baselines import BinnedScorecard, RulesPointsCard
from models.calibration import Calibrator
from models.config import TrainConfig
from models.evaluate import (
    Evaluation,
    agreement_tables,
    fairness_table,
    importance_table,
    metrics_table,
    rates_rise,
    tier_crosstab,
    tier_table,
)
from models.metrics import binary_metrics, calibration_bins
from models.policy import Policy
from models.predict import Scorer


class TrainingError(ValueError):
    """The snapshots cannot support the configured out-of-time design."""


@dataclass(frozen=True)
class Split:
    """As-of dates of each fold."""

    train: list[date]
    purged: list[date]
    valid: list[date]
    test: list[date]

    def describe(self) -> dict[str, str]:
        def span(dates: list[date]) -> str:
            return f"{dates[0]}..{dates[-1]} ({len(dates)})" if dates else "-"

        return {fold: span(getattr(self, fold)) for fold in ("train", "purged", "valid", "test")}


def out_of_time_split(dates: list[date], config: TrainConfig) -> Split:
    """Assign sorted quarterly as-of dates to train / purged / valid / test (see the module docstring)."""
    dates = sorted(set(dates))
    s = config.split
    held = s.test_quarters + s.valid_quarters
    if len(dates) < held + s.min_train_quarters:
        raise TrainingError(
            f"the out-of-time design needs at least {held + s.min_train_quarters} as-of dates "
            f"({s.min_train_quarters} train, {s.valid_quarters} valid, {s.test_quarters} test); got {len(dates)}"
        )
    test = dates[-s.test_quarters :]
    valid = dates[-held : -s.test_quarters]
    before = dates[:-held]
    if s.purge_overlap:
        first_held = valid[0]
        train = [d for d in before if d + relativedelta(months=OUTCOME_MONTHS) <= first_held]
        purged = [d for d in before if d not in train]
    else:
        train, purged = before, []
    if len(train) < s.min_train_quarters:
        raise TrainingError(
            f"after purging the as-of dates whose outcome window overlaps the held-out period, "
            f"{len(train)} training dates remain; at least {s.min_train_quarters} are needed "
            f"(got {len(dates)} dates from {dates[0]} to {dates[-1]}; add history or set split.purge_overlap)"
        )
    return Split(train=train, purged=purged, valid=valid, test=test)


def quarterly_dates(ds, as_of_end: date | None = None, count: int = 16) -> list[date]:
    """Up to ``count`` quarter ends for training snapshots, the last at or before ``as_of_end`` (default:
    the latest whose whole 12-month outcome window lies inside the data), none before the first
    registration. ``ds`` is a ``features.dataset.Dataset``."""
    end = ds.data_end()
    if end is None:
        return []
    last = end - relativedelta(months=OUTCOME_MONTHS)
    if as_of_end is not None:
        last = min(last, as_of_end)
    first = ds.con.execute("SELECT min(registered_on) FROM entities").fetchone()[0]
    quarter_ends = pd.date_range(end=pd.Timestamp(last), periods=count, freq="QE")
    return [d.date() for d in quarter_ends if d.date() <= last and (first is None or d.date() >= first)]


@dataclass
class TrainResult:
    """The fitted scorer with everything measured about it."""

    scorer: Scorer
    config: TrainConfig
    split: Split
    evaluation: Evaluation
    best_iteration: int
    baselines: dict[str, Any]
    timings: dict[str, float]
    data: dict[str, Any]
    # Test-fold rows kept for plots and the notebook: features, outcome, scores, tiers.
    test_frame: pd.DataFrame = field(repr=False)
    shap_sample: tuple[np.ndarray, np.ndarray, pd.DataFrame] = field(repr=False)

    def metrics(self) -> dict[str, float]:
        out = self.evaluation.summary()
        out["best_iteration"] = float(self.best_iteration)
        return out


def _check_snapshots(snapshots: pd.DataFrame) -> None:
    missing = [c for c in ("entity_id", "as_of", *FEATURE_NAMES, "outcome") if c not in snapshots.columns]
    if missing:
        raise TrainingError(
            f"snapshots must have entity_id, as_of, every catalogue feature and outcome; missing {missing}"
        )
    for fold_outcomes in (snapshots["outcome"],):
        values = set(pd.unique(fold_outcomes))
        if not values <= {0, 1}:
            raise TrainingError(f"outcome must be 0 or 1; got values {sorted(values)[:5]}")


def _as_dates(column: pd.Series) -> np.ndarray:
    return pd.to_datetime(column).dt.date.to_numpy()


def train_model(
    snapshots: pd.DataFrame,
    policy: Policy,
    *,
    config: TrainConfig,
    feature_version: str,
    groups: pd.DataFrame | None = None,
    data: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fit, calibrate and evaluate the model (and both baselines) on point-in-time ``snapshots``.

    ``snapshots``: ``entity_id``, ``as_of``, every catalogue feature, ``outcome`` (``build_snapshots``).
    ``groups``: per ``entity_id``, the attributes of the fairness table (``region``, ``kind``…); industry
    and kind fall back to the features when absent. ``data`` is recorded as is (source, fingerprint…).
    """
    say = progress or (lambda _message: None)
    timings: dict[str, float] = {}
    _check_snapshots(snapshots)
    as_of = _as_dates(snapshots["as_of"])
    split = out_of_time_split(list(set(as_of)), config)
    folds = {name: snapshots.loc[np.isin(as_of, getattr(split, name))] for name in ("train", "valid", "test")}
    for name, frame in folds.items():
        positives = int(frame["outcome"].sum())
        if positives == 0 or positives == len(frame):
            raise TrainingError(f"the {name} fold needs both outcomes; got {positives} positives in {len(frame)} rows")
    y = {name: frame["outcome"].to_numpy(dtype=np.int8) for name, frame in folds.items()}

    say(f"training LightGBM on {len(folds['train']):,} rows ({split.describe()['train']})")
    t0 = time.perf_counter()
    matrices = {name: model_matrix(frame) for name, frame in folds.items()}
    params = config.lightgbm_params() | {
        "monotone_constraints": monotone_constraints(),
        "metric": ["binary_logloss", "auc"],
    }
    train_set = lgb.Dataset(matrices["train"], y["train"], categorical_feature=CATEGORICAL, free_raw_data=True)
    valid_set = lgb.Dataset(matrices["valid"], y["valid"], reference=train_set, categorical_feature=CATEGORICAL)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.boosting.max_rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(config.boosting.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    # Keep exactly the chosen trees: what is saved, explained and evaluated is one and the same model.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    raw = {name: booster.predict(m, raw_score=True) for name, m in matrices.items()}
    calibrator = Calibrator(config.calibration.method).fit(raw["valid"], y["valid"])
    timings["calibrate"] = time.perf_counter() - t0
    scorer = Scorer(
        booster=booster,
        calibrator=calibrator,
        feature_names=list(FEATURE_NAMES),
        feature_version=feature_version,
        metadata={
            "best_iteration": best,
            "split": split.describe(),
            "calibration": repr(calibrator),
            "data": data or {},
        },
    )
    scores = {name: calibrator.transform(z) for name, z in raw.items()}

    say("fitting the baselines: rules points card, optbinning scorecard")
    t0 = time.perf_counter()
    rules_card = RulesPointsCard(policy).fit(folds["train"], y["train"])
    scorecard = BinnedScorecard(max_rows=config.evaluation.scorecard_max_rows, seed=config.lightgbm.seed).fit(
        folds["train"], y["train"]
    )
    baseline_scores = {}
    for name, baseline in (("rules_points_card", rules_card), ("binned_scorecard", scorecard)):
        cal = Calibrator(config.calibration.method).fit(baseline.log_odds(folds["valid"]), y["valid"])
        baseline_scores[name] = cal.transform(baseline.log_odds(folds["test"]))
    timings["baselines"] = time.perf_counter() - t0

    say("evaluating on the out-of-time test fold")
    t0 = time.perf_counter()
    test = folds["test"]
    applied = policy.apply(scores["test"], test)
    bins = config.evaluation.ece_bins
    metrics = metrics_table(
        y["test"],
        {
            "model": scores["test"],
            "model_uncalibrated": 1 / (1 + np.exp(-raw["test"])),
            **baseline_scores,
        },
        ece_bins=bins,
    )
    fold_rows = [{"fold": name, **binary_metrics(y[name], scores[name], ece_bins=bins)} for name in folds]
    group_frame = _groups(test, groups)
    tiers = tier_table(y["test"], scores["test"], applied["tier"].to_numpy())
    model_tiers = tier_table(y["test"], scores["test"], applied["model_tier"].to_numpy())
    agreement, agreement_summary = agreement_tables(
        y["test"], test, applied["model_tier"].to_numpy(), applied["tier"].to_numpy(), policy
    )
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
    importance = importance_table(contrib, FEATURE_NAMES, {n: FEATURES[n].label_en for n in FEATURE_NAMES})
    evaluation = Evaluation(
        metrics=metrics,
        folds=pd.DataFrame(fold_rows),
        tiers=tiers,
        model_tiers=model_tiers,
        crosstab=tier_crosstab(applied["model_tier"].to_numpy(), applied["tier"].to_numpy()),
        fairness=fairness_table(
            y["test"],
            scores["test"],
            applied["tier"].to_numpy(),
            group_frame,
            min_rows=config.evaluation.min_group_rows,
            min_positives=config.evaluation.min_group_positives,
        ),
        agreement=agreement,
        agreement_summary=agreement_summary,
        calibration=calibration,
        importance=importance,
    )
    model_auc = evaluation.metric("model", "auc")
    evaluation.checks = {
        "beats_rules_card_auc": model_auc > evaluation.metric("rules_points_card", "auc"),
        "beats_scorecard_auc": model_auc > evaluation.metric("binned_scorecard", "auc"),
        "ece_within_limit": evaluation.metric("model", "ece") <= config.gate.max_ece,
        "tier_rates_rise": rates_rise(tiers),
        "model_tier_rates_rise": rates_rise(model_tiers),
    }
    timings["evaluate"] = time.perf_counter() - t0
    test_frame = test[["entity_id", "as_of", *FEATURE_NAMES, "outcome"]].assign(
        score=scores["test"],
        log_odds=raw["test"],
        model_tier=applied["model_tier"].to_numpy(),
        tier=applied["tier"].to_numpy(),
        rules=applied["rules"].to_numpy(),
        review=applied["review"].to_numpy(),
        **{f"{name}_score": p for name, p in baseline_scores.items()},
    )
    return TrainResult(
        scorer=scorer,
        config=config,
        split=split,
        evaluation=evaluation,
        best_iteration=best,
        baselines={"rules_points_card": rules_card, "binned_scorecard": scorecard},
        timings=timings,
        data={
            **(data or {}),
            "rows": {name: len(frame) for name, frame in folds.items()},
            "outcome_rate": {name: float(v.mean()) for name, v in y.items()},
        },
        test_frame=test_frame.reset_index(drop=True),
        shap_sample=(contrib, base, sample_frame.reset_index(drop=True)),
    )


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
