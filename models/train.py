"""Training: out-of-time split, monotone LightGBM, calibration on held-out data, the two baselines.

The protocol (docs/model.md has the reasoning):

    as-of dates, oldest to newest
    | train ............ | purged | valid (early stopping, calibration) | test (evaluation only) |

- ``test``: the latest ``test_quarters`` as-of dates. Touched once, to evaluate; never fitted on.
- ``valid``: the ``valid_quarters`` before them. Early stopping picks the number of trees on it, the tree
  size is chosen on it (``[search]``: each ``num_leaves`` fitted, plain and pretrained on the denser
  ``outcome_records``, on all training dates and on the latest ``recent_quarters`` design's alone, the best
  validation AUC kept), and the calibrator is fitted on it. Using one fold for all three is mildly
  optimistic *on that fold*, which is why the reported numbers come from ``test``.
- ``purged``: training snapshots whose 12-month outcome window reaches past the first held-out date. A
  model deployed on that date could not have known those outcomes, and keeping them would let the same
  future events label both a training row and a held-out row of the same entity.

What is evaluated is what is registered: the booster trained on ``train``, stopped and calibrated on
``valid``. ``train_model`` only fits; ``models.evaluate.evaluate_model`` measures what it fitted on the
``test`` fold, and the CLI composes the two with the registry (train -> evaluate -> log and register).
The refit policy (docs/model.md) retrains quarterly as a new quarter's outcomes complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from features.build import model_matrix
from features.catalogue import CATEGORICAL, FEATURE_NAMES, monotone_constraints
from features.columns import feature_columns
from features.errors import InvalidInput
from features.snapshots import OUTCOME_MONTHS
from models.baselines import BaselineUnavailable, BinnedScorecard, CalibratedBaseline, RulesPointsCard
from models.calibration import Calibrator
from models.config import TrainConfig
from models.monitoring import Reference
from models.policy import Policy
from models.scorer import Scorer

FOLDS = ("train", "valid", "test")
MIN_FOLD_OUTCOMES = 10  # fewer positives (or negatives) than this in a fold cannot be fitted or judged


class TrainingError(InvalidInput):
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

    def folds(self, snapshots: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The ``train``, ``valid`` and ``test`` rows of ``snapshots`` (purged rows belong to none)."""
        as_of = pd.to_datetime(snapshots["as_of"]).dt.date.to_numpy()
        return {name: snapshots.loc[np.isin(as_of, getattr(self, name))] for name in FOLDS}


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


@dataclass
class TrainedModel:
    """What training fitted: the scorer (booster and calibrator) and the calibrated baselines."""

    scorer: Scorer
    config: TrainConfig
    split: Split
    best_iteration: int
    baselines: dict[str, CalibratedBaseline]  # "rules_points_card", "binned_scorecard": those that could be fitted
    timings: dict[str, float]  # seconds per step: fit, calibrate, baselines
    data: dict[str, Any]  # as given, with the rows and outcome rate of each fold
    unavailable: dict[str, str] = field(default_factory=dict)  # baseline -> why it could not be fitted

    @property
    def search(self) -> list[dict[str, Any]]:
        """The models fitted and compared on the validation fold (``config.search``), kept with the scorer:
        ``num_leaves``, ``trees``, ``valid_auc``, and for a pretrained one ``pretrained``, ``pretrain_trees``."""
        return self.scorer.metadata.get("tree_search", [])

    @property
    def pretrain_trees(self) -> int:
        """How many of the booster's first trees learnt ``outcome_records`` (0: a plain model): the chosen
        trial's."""
        search = self.search
        return int(search[chosen_trial(search)].get("pretrain_trees", 0)) if search else 0

    def trees_text(self) -> str:
        """``414 trees of 7 leaves (the first 288 on outcome_records)``, as the CLI and the model card say it."""
        first = f" (the first {self.pretrain_trees} on outcome_records)" if self.pretrain_trees else ""
        return f"{self.best_iteration} trees of {self.config.lightgbm.num_leaves} leaves{first}"


def chosen_trial(search: list[dict[str, Any]]) -> int:
    """The index of the kept trial: the best validation AUC, a tie going to the earlier (smaller, plainer) one."""
    return max(range(len(search)), key=lambda i: (search[i]["valid_auc"], -i))


def search_summary(search: list[dict[str, Any]]) -> str:
    """The models compared, as the CLI, the model card and MLflow show them; the chosen one marked ``*``."""
    best = chosen_trial(search) if search else -1

    def one(i: int, t: dict[str, Any]) -> str:
        pretrained = t.get("pretrained", False)
        name = f"{t['num_leaves']} leaves{' pretrained' if pretrained else ''}"
        if "train_dates" in t:
            name = f"{t['train_dates']} training dates, {name}"
        kind = f", {t['pretrain_trees']} of them on outcome_records" if pretrained else ""
        mark = "*" if i == best and len(search) > 1 else ""
        return f"{mark}{name}: valid AUC {t['valid_auc']:.4f}, {t['trees']} trees{kind}"

    return " · ".join(one(i, t) for i, t in enumerate(search))


def _histories(
    snapshots: pd.DataFrame, split: Split, folds: dict[str, pd.DataFrame], config: TrainConfig
) -> list[tuple[Split, pd.DataFrame]]:
    """The training designs the search compares: all dates, and first - so that a tie keeps it - the design of
    the latest ``search.recent_quarters`` dates (fewer training dates, the same valid and test dates) when the
    snapshots hold more and its training fold can be fitted."""
    full = [(split, folds["train"])]
    dates = sorted({*split.train, *split.purged, *split.valid, *split.test})
    recent = config.search.recent_quarters
    if not recent or len(dates) <= recent:
        return full
    try:
        short = out_of_time_split(dates[-recent:], config)
    except TrainingError:  # the latest dates alone cannot carry the design: all of them only
        return full
    train = short.folds(snapshots)["train"]
    positives = int(train["outcome"].sum())
    if len(short.train) >= len(split.train) or min(positives, len(train) - positives) < MIN_FOLD_OUTCOMES:
        return full
    return [(short, train), *full]


def _can_pretrain(folds: dict[str, pd.DataFrame]) -> bool:
    """Pretraining needs ``outcome_records`` in train and valid, and some rows with more than the outcome says
    (a count that only repeats the 0/1 outcome teaches nothing new)."""
    frames = [folds[name] for name in ("train", "valid")]
    if any("outcome_records" not in f.columns for f in frames):
        return False
    counts = pd.concat([pd.to_numeric(f["outcome_records"], errors="coerce") for f in frames])
    if counts.isna().any() or (counts < 0).any():
        return False
    train = frames[0]
    return bool((train["outcome_records"] > train["outcome"]).any())


class _Fitter:
    """Fits one candidate of the search: a tree size, plain or pretrained, early-stopped on valid."""

    def __init__(self, config: TrainConfig, matrices: dict[str, pd.DataFrame], y, counts) -> None:
        self.config, self.matrices, self.y, self.counts = config, matrices, y, counts
        # one Dataset pair, binned once, for every plain fit; pretrained fits build their own binary pair
        # (LightGBM sets the first stage's scores on a Dataset as its starting point, which needs the raw rows)
        self.plain = self._datasets(y, free_raw_data=True)

    @cached_property
    def records(self) -> tuple[lgb.Dataset, lgb.Dataset]:
        """The first stage's Dataset pair, ``outcome_records`` as the label: binned once for every tree size."""
        counts = {name: np.asarray(c, dtype=np.float64) for name, c in self.counts.items()}
        return self._datasets(counts, free_raw_data=True)

    def _datasets(self, labels, *, free_raw_data: bool) -> tuple[lgb.Dataset, lgb.Dataset]:
        train = lgb.Dataset(
            self.matrices["train"], labels["train"], categorical_feature=CATEGORICAL, free_raw_data=free_raw_data
        )
        valid = lgb.Dataset(
            self.matrices["valid"],
            labels["valid"],
            reference=train,
            categorical_feature=CATEGORICAL,
            free_raw_data=free_raw_data,
        )
        return train, valid

    def _train(self, params: dict[str, Any], sets: tuple[lgb.Dataset, lgb.Dataset], init=None) -> lgb.Booster:
        return lgb.train(
            self.config.lightgbm_params() | {"monotone_constraints": monotone_constraints()} | params,
            sets[0],
            num_boost_round=self.config.boosting.max_rounds,
            valid_sets=[sets[1]],
            valid_names=["valid"],
            init_model=init,
            callbacks=[
                lgb.early_stopping(self.config.boosting.early_stopping_rounds, first_metric_only=True, verbose=False)
            ],
        )

    def __call__(self, leaves: int, pretrained: bool) -> tuple[lgb.Booster, int, dict[str, Any]]:
        binary = {"num_leaves": leaves, "metric": ["binary_logloss", "auc"]}
        trial: dict[str, Any] = {"num_leaves": leaves}
        first = None
        if pretrained:
            stage = self._train({"num_leaves": leaves, "objective": "poisson", "metric": ["poisson"]}, self.records)
            done = stage.best_iteration or stage.current_iteration()
            first = lgb.Booster(model_str=stage.model_to_string(num_iteration=done))
            trial |= {"pretrained": True, "pretrain_trees": done}
        sets = self._datasets(self.y, free_raw_data=False) if pretrained else self.plain
        booster = self._train(binary, sets, init=first)
        # early stopping counts the first stage's trees too: ``trees`` is the whole model
        trees = booster.best_iteration or booster.current_iteration()
        trial |= {"trees": trees, "valid_auc": float(booster.best_score["valid"]["auc"])}
        return booster, trees, trial


def _check_snapshots(snapshots: pd.DataFrame) -> None:
    missing = [c for c in ("entity_id", "as_of", *FEATURE_NAMES, "outcome") if c not in snapshots.columns]
    if missing:
        raise TrainingError(
            f"snapshots must have entity_id, as_of, every catalogue feature and outcome; missing {missing}"
        )
    values = set(pd.unique(snapshots["outcome"]))
    if not values <= {0, 1}:
        raise TrainingError(f"outcome must be 0 or 1; got values {sorted(values)[:5]}")


def reference_rows(train: pd.DataFrame, quarters: int) -> np.ndarray:
    """Which training rows fix the drift reference: those of the latest ``quarters`` training dates (0: all).

    The population as the model last saw it. Whole-history totals and times since an event grow with the
    calendar, so a reference pooled over ten years of dates would flag them in every later month.
    """
    as_of = pd.to_datetime(train["as_of"]).to_numpy()
    if quarters == 0:
        return np.ones(len(train), dtype=bool)
    return as_of >= np.unique(as_of)[-quarters:][0]  # np.unique sorts


def train_model(
    snapshots: pd.DataFrame,
    policy: Policy,
    *,
    config: TrainConfig,
    feature_version: str,
    data: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainedModel:
    """Fit and calibrate the model and both baselines on point-in-time ``snapshots``.

    ``snapshots``: ``entity_id``, ``as_of``, every catalogue feature, ``outcome`` (``build_snapshots``).
    The model and the baselines are fitted on the ``train`` fold and calibrated on ``valid``; the
    ``test`` fold is not read. ``data`` is recorded as is (source, fingerprint…).
    """
    say = progress or (lambda _message: None)
    timings: dict[str, float] = {}
    _check_snapshots(snapshots)
    split = out_of_time_split(list(set(pd.to_datetime(snapshots["as_of"]).dt.date)), config)
    folds = split.folds(snapshots)
    for name, frame in folds.items():
        positives = int(frame["outcome"].sum())
        negatives = len(frame) - positives
        if min(positives, negatives) < MIN_FOLD_OUTCOMES:
            raise TrainingError(
                f"the {name} fold ({split.describe()[name]}) needs at least {MIN_FOLD_OUTCOMES} rows of both outcomes; "
                f"got {positives} positives in {len(frame):,} rows. Deliver more entities or more history with "
                "adverse records, or change the design with --config (split.*)"
            )
    y = {name: folds[name]["outcome"].to_numpy(dtype=np.int8) for name in ("train", "valid")}

    sizes = config.tree_sizes()
    histories = _histories(snapshots, split, folds, config)
    say(
        f"training LightGBM on {len(folds['train']):,} rows ({split.describe()['train']}), "
        f"{' / '.join(map(str, sizes))} leaves, plain and pretrained where the counts allow"
        f"{', on all and on the latest training dates,' if len(histories) > 1 else ''} compared on the validation fold"
    )
    t0 = time.perf_counter()
    matrices = {"valid": model_matrix(folds["valid"])}
    search: list[dict[str, Any]] = []
    booster, best, chosen, best_auc, kept = None, 0, sizes[0], -np.inf, None
    for history, train in histories:
        fit = _Fitter(
            config,
            {"train": model_matrix(train), "valid": matrices["valid"]},
            {"train": train["outcome"].to_numpy(dtype=np.int8), "valid": y["valid"]},
            {"train": train.get("outcome_records"), "valid": folds["valid"].get("outcome_records")},
        )
        pretrain = config.search.pretrain and _can_pretrain({"train": train, "valid": folds["valid"]})
        for leaves in sizes:
            for pretrained in (False, True) if pretrain else (False,):
                candidate, trees, trial = fit(leaves, pretrained)
                if len(histories) > 1:
                    trial["train_dates"] = len(history.train)
                search.append(trial)
                if trial["valid_auc"] > best_auc:  # strictly better: a tie keeps the smaller, plainer model
                    # Keep exactly the chosen trees: what is saved, explained and evaluated is one and the same model.
                    booster = lgb.Booster(model_str=candidate.model_to_string(num_iteration=trees))
                    best, chosen, best_auc, kept = trees, leaves, trial["valid_auc"], (history, train, fit)
    if len(search) > 1:
        say(f"chosen on the validation fold: {search_summary(search)}")
    # Everything after the search - calibration's inputs aside - describes the chosen design's training rows.
    split, folds["train"], fit = kept
    matrices["train"], y["train"] = fit.matrices["train"], fit.y["train"]
    config = config.model_copy(update={"lightgbm": config.lightgbm.model_copy(update={"num_leaves": chosen})})
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        calibrator = Calibrator(config.calibration.method).fit(
            booster.predict(matrices["valid"], raw_score=True), y["valid"]
        )
    except ValueError as exc:
        raise TrainingError(
            f"the model cannot be calibrated on the validation fold ({len(y['valid']):,} rows, "
            f"{int(y['valid'].sum())} positives): {exc}. The training fold did not teach it anything that holds "
            "out of time; deliver more entities or more history"
        ) from exc
    timings["calibrate"] = time.perf_counter() - t0
    scorer = Scorer(
        booster=booster,
        calibrator=calibrator,
        feature_names=list(FEATURE_NAMES),
        feature_version=feature_version,
        metadata={
            "best_iteration": best,
            "tree_search": search,
            "split": split.describe(),
            "calibration": repr(calibrator),
            "data": data or {},
        },
    )
    # The drift reference: bins and shares of every feature and of the score in the latest training dates'
    # rows, kept with the model so that every later month is measured on the same bins (models/monitoring.py).
    latest = reference_rows(folds["train"], config.evaluation.reference_quarters)
    reference = folds["train"].loc[latest]
    train_scores = calibrator.transform(booster.predict(matrices["train"].loc[latest], raw_score=True))
    fired = policy.fired(feature_columns(reference))
    rule_rates = {rule.code: float(fired[:, r].mean()) for r, rule in enumerate(policy.rules)}
    scorer.metadata["reference"] = Reference.fit(reference, train_scores, rule_rates=rule_rates).to_dict()

    say("fitting the baselines: rules points card, optbinning scorecard")
    t0 = time.perf_counter()
    candidates = {
        "rules_points_card": RulesPointsCard(policy),
        "binned_scorecard": BinnedScorecard(max_rows=config.evaluation.scorecard_max_rows, seed=config.lightgbm.seed),
    }
    baselines: dict[str, CalibratedBaseline] = {}
    unavailable: dict[str, str] = {}
    for name, baseline in candidates.items():
        try:
            baseline.fit(folds["train"], y["train"])
            baselines[name] = CalibratedBaseline.fit(
                baseline, folds["valid"], y["valid"], method=config.calibration.method
            )
        except BaselineUnavailable as exc:
            unavailable[name] = str(exc)
            say(f"baseline {name} unavailable: {exc}")
    timings["baselines"] = time.perf_counter() - t0
    return TrainedModel(
        scorer=scorer,
        config=config,
        split=split,
        best_iteration=best,
        baselines=baselines,
        unavailable=unavailable,
        timings=timings,
        data={
            **(data or {}),
            "rows": {name: len(frame) for name, frame in folds.items()},
            "outcome_rate": {name: float(frame["outcome"].mean()) for name, frame in folds.items()},
        },
    )
