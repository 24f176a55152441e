"""Training on seeded snapshots: the fitted model, its evaluation tables, the baselines."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import FEATURE_VERSION, model_matrix
from features.catalogue import CATEGORICAL, FEATURE_NAMES, monotone_constraints
from models.config import parse_config
from models.evaluate import run_metrics
from models.policy import TIERS
from models.scorer import ModelError, Scorer
from models.train import TrainingError, _Fitter, chosen_trial, out_of_time_split, search_summary, train_model
from tests.models.conftest import FAST
from tests.models.factories import quarter_ends, snapshots
from tests.models.test_monotone import BASE, one_more_violation


def test_the_model_is_trained_on_train_dates_only(trained, evaluation):
    assert trained.best_iteration == trained.scorer.booster.current_iteration()
    assert set(evaluation.test_frame["as_of"]) == set(trained.split.test)
    rows = trained.data["rows"]
    assert rows["train"] == 1500 * len(trained.split.train)


def test_evaluation_tables(trained, evaluation):
    ev = evaluation
    assert list(ev.metrics["scorer"]) == ["model", "model_uncalibrated", "rules_points_card", "binned_scorecard"]
    assert {"auc", "pr_auc", "ks", "brier", "ece", "lift_top_decile"} <= set(ev.metrics.columns)
    assert list(ev.tiers["tier"]) == list(TIERS)
    assert ev.tiers["count"].sum() == len(ev.test_frame)
    assert set(ev.fairness["group"]) == {"industry", "kind"}
    assert set(ev.agreement["rule"]) == {
        "SV_LIST",
        "UNTRUSTWORTHY",
        "ABNORMAL_OPERATION",
        "NEW_ENTITY",
        "NEW_ENTITY_ADVERSE",
        "RED_LIST",
    }
    assert ev.crosstab.to_numpy().sum() == len(ev.test_frame)
    assert list(ev.importance["feature"].sort_values()) == sorted(FEATURE_NAMES)
    summary = run_metrics(trained, evaluation)
    assert {"test_auc", "test_ece", "scorecard_test_auc", "rules_card_test_auc", "tier_rate_A"} <= set(summary)


def test_the_model_beats_the_rules_alone(evaluation):
    ev = evaluation
    assert ev.metric("model", "auc") > ev.metric("rules_points_card", "auc") + 0.05
    assert ev.metric("model", "ece") < 0.05


def test_scorer_round_trips_through_files(trained, evaluation, tmp_path, policy):
    rows = evaluation.test_frame.head(300)
    saved = trained.scorer.save(tmp_path / "scorer")
    again = Scorer.load(saved, model_version="7")
    first = trained.scorer.score(rows, policy)
    second = again.score(rows, policy)
    assert (second["model_version"] == "7").all()
    assert first.drop(columns="model_version").equals(second.drop(columns="model_version"))


def test_scorer_refuses_other_feature_versions(scorer):
    scorer.check_compatible(FEATURE_VERSION)
    with pytest.raises(ModelError, match="features version"):
        scorer.check_compatible("0.0.0+other")


def test_one_class_fold_is_refused(factory_snapshots, policy, fast_config):
    snapshots = factory_snapshots.assign(outcome=np.int8(0))
    with pytest.raises(TrainingError, match="both outcomes"):
        train_model(snapshots, policy, config=fast_config, feature_version=FEATURE_VERSION)


def test_training_never_reads_the_test_fold(trained, factory_snapshots, policy, fast_config):
    # Scramble every test-fold outcome and feature: what is fitted stays the same, bit for bit.
    test = np.isin(pd.to_datetime(factory_snapshots["as_of"]).dt.date, trained.split.test)
    scrambled = factory_snapshots.copy()
    rng = np.random.default_rng(1)
    scrambled.loc[test, "outcome"] = rng.permutation(scrambled.loc[test, "outcome"].to_numpy())
    scrambled.loc[test, "adverse_12m"] = 0
    again = train_model(scrambled, policy, config=fast_config, feature_version=FEATURE_VERSION)
    assert again.scorer.booster.model_to_string() == trained.scorer.booster.model_to_string()
    assert again.scorer.calibrator.to_dict() == trained.scorer.calibrator.to_dict()
    rows = factory_snapshots.head(200)
    for name, baseline in trained.baselines.items():
        assert again.baselines[name].predict_proba(rows).tolist() == baseline.predict_proba(rows).tolist(), name


def test_evaluation_measures_the_test_fold(trained, evaluation, factory_snapshots):
    test_rows = np.isin(pd.to_datetime(factory_snapshots["as_of"]).dt.date, trained.split.test).sum()
    assert len(evaluation.test_frame) == test_rows
    assert evaluation.metrics.set_index("scorer")["rows"].eq(test_rows).all()
    assert list(evaluation.folds["fold"]) == ["train", "valid", "test"]
    assert evaluation.seconds > 0


def test_the_tree_size_is_chosen_on_the_validation_fold_and_recorded(trained, factory_snapshots, policy, fast_config):
    # Every size of config.search beside lightgbm.num_leaves was fitted, smallest first, plain and then
    # pretrained on outcome_records, and the kept one has the best validation AUC (a tie: the earlier one).
    assert fast_config.tree_sizes() == [7, 15]
    assert [(t["num_leaves"], t.get("pretrained", False)) for t in trained.search] == [
        (7, False),
        (7, True),
        (15, False),
        (15, True),
    ]
    best = max(t["valid_auc"] for t in trained.search)
    chosen = next(t for t in trained.search if t["valid_auc"] == best)
    assert trained.config.lightgbm.num_leaves == chosen["num_leaves"]
    assert trained.best_iteration == chosen["trees"] == trained.scorer.booster.current_iteration()
    assert trained.scorer.metadata["tree_search"] == trained.search
    dump = trained.scorer.booster.dump_model()
    assert max(tree["num_leaves"] for tree in dump["tree_info"]) <= chosen["num_leaves"]
    # The recorded validation AUC is the kept booster's own on the validation rows.
    valid = trained.split.folds(factory_snapshots)["valid"]
    raw = trained.scorer.booster.predict(model_matrix(valid), raw_score=True)
    assert roc_auc_score(valid["outcome"], raw) == pytest.approx(best, abs=1e-9)


def test_the_test_fold_never_steers_the_tree_size(trained, factory_snapshots, policy, fast_config):
    # Scrambling every outcome of the test fold leaves what was fitted and chosen exactly as it was.
    frame = factory_snapshots.copy()
    test = frame["as_of"].isin(trained.split.test)
    frame.loc[test, "outcome"] = np.random.default_rng(5).permutation(frame.loc[test, "outcome"].to_numpy())
    frame.loc[test, "outcome_records"] = 0
    again = train_model(frame, policy, config=fast_config, feature_version=FEATURE_VERSION)
    assert again.search == trained.search
    assert again.scorer.booster.model_to_string() == trained.scorer.booster.model_to_string()


def test_an_empty_search_fits_the_configured_tree_alone(factory_snapshots, policy):
    config = parse_config({**FAST, "search": {"num_leaves": []}, "lightgbm": {"num_threads": 1, "num_leaves": 9}})
    model = train_model(factory_snapshots, policy, config=config, feature_version=FEATURE_VERSION)
    assert [(t["num_leaves"], t.get("pretrained", False)) for t in model.search] == [(9, False), (9, True)]
    assert model.config.lightgbm.num_leaves == 9


def _fitter(snapshots: pd.DataFrame, config) -> _Fitter:
    folds = {name: frame for name, frame in train_folds(snapshots, config).items() if name != "test"}
    y = {name: frame["outcome"].to_numpy(dtype=np.int8) for name, frame in folds.items()}
    matrices = {name: model_matrix(frame) for name, frame in folds.items()}
    return _Fitter(config, matrices, y, {name: frame["outcome_records"] for name, frame in folds.items()}), matrices


def train_folds(snapshots: pd.DataFrame, config) -> dict[str, pd.DataFrame]:
    return out_of_time_split(sorted(set(snapshots["as_of"])), config).folds(snapshots)


def test_a_pretrained_model_is_one_booster_that_starts_from_the_record_trees(factory_snapshots, fast_config):
    fit, matrices = _fitter(factory_snapshots, fast_config)
    booster, trees, trial = fit(7, pretrained=True)
    first = trial["pretrain_trees"]
    assert trial["pretrained"] and 0 < first < trees <= booster.current_iteration()
    # The first trees are the Poisson model of outcome_records, fitted and stopped on its own: the booster
    # holds them, and its binary trees were boosted on top of their log-rates.
    dump = booster.dump_model()
    assert dump["objective"].startswith("binary")
    stage = lgb.train(
        fast_config.lightgbm_params()
        | {
            "num_leaves": 7,
            "objective": "poisson",
            "metric": ["poisson"],
            "monotone_constraints": monotone_constraints(),
        },
        lgb.Dataset(matrices["train"], fit.counts["train"].to_numpy(dtype=float), categorical_feature=CATEGORICAL),
        num_boost_round=first,
    )
    x = matrices["valid"].head(300)
    assert np.allclose(booster.predict(x, raw_score=True, num_iteration=first), stage.predict(x, raw_score=True))
    # Both stages keep the catalogue's directions: one more violation never lowers the pretrained score.
    before = BASE.head(200)
    after = one_more_violation(before, "infringement_penalty", 5_000.0)
    assert (
        booster.predict(model_matrix(after), raw_score=True)
        >= booster.predict(model_matrix(before), raw_score=True) - 1e-12
    ).all()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.drop(columns=["outcome_records"]), id="no count"),
        pytest.param(lambda f: f.assign(outcome_records=f["outcome"].astype("int32")), id="the count is the outcome"),
    ],
)
def test_pretraining_is_left_out_where_there_is_no_denser_count(factory_snapshots, policy, fast_config, change):
    config = parse_config({**FAST, "search": {"num_leaves": []}})
    model = train_model(change(factory_snapshots), policy, config=config, feature_version=FEATURE_VERSION)
    assert [t.get("pretrained", False) for t in model.search] == [False]


def test_pretraining_can_be_turned_off(factory_snapshots, policy):
    config = parse_config({**FAST, "search": {"num_leaves": [], "pretrain": False}})
    model = train_model(factory_snapshots, policy, config=config, feature_version=FEATURE_VERSION)
    assert [t.get("pretrained", False) for t in model.search] == [False]
    assert "pretrained" not in search_summary(model.search)


def test_the_search_summary_marks_the_chosen_model(trained):
    text = search_summary(trained.search)
    assert text.count("*") == 1 and text.count("pretrained") == 2 and "of them on outcome_records" in text


@pytest.mark.parametrize("drift", [0.0, 1.0])
def test_a_longer_history_is_weighed_against_the_latest_dates_on_the_validation_fold(policy, drift):
    # 16 quarter ends; recent_quarters = 10: the design of the latest 10 (3 training dates) is fitted first,
    # then all 16 (9 training dates), both on the same valid and test dates; the validation AUC decides and
    # everything after the search - split, rows, baselines - is the chosen design's. With the older dates
    # relabelled at random (an era that ended, drift 1.0) the latest dates alone must win.
    dates = quarter_ends("2019-03-31", 16)
    frame = snapshots(1500, dates, seed=4)
    old = frame["as_of"].isin(dates[:6])
    if drift:
        rng = np.random.default_rng(9)
        frame.loc[old, "outcome"] = rng.permutation(frame.loc[old, "outcome"].to_numpy())
        frame.loc[old, "outcome_records"] = frame.loc[old, "outcome"]
    config = parse_config(FAST | {"search": {"num_leaves": [], "pretrain": False, "recent_quarters": 10}})
    model = train_model(frame, policy, config=config, feature_version=FEATURE_VERSION)
    assert [t["train_dates"] for t in model.search] == [3, 9]
    kept = model.search[chosen_trial(model.search)]
    assert len(model.split.train) == kept["train_dates"]
    assert model.split.train == dates[-10:-7] if kept["train_dates"] == 3 else dates[:9]
    assert model.split.valid == dates[-4:-2] and model.split.test == dates[-2:]
    assert model.data["rows"]["train"] == int(frame["as_of"].isin(model.split.train).sum())
    assert "3 training dates" in search_summary(model.search) and "9 training dates" in search_summary(model.search)
    if drift:
        assert kept["train_dates"] == 3


def test_no_shorter_design_where_the_snapshots_hold_no_more_dates(factory_snapshots, policy, trained):
    # 10 dates and recent_quarters = 16: all dates only, and the trials say nothing of training dates.
    assert all("train_dates" not in t for t in trained.search)
    config = parse_config(FAST | {"search": {"num_leaves": [], "recent_quarters": 8}})
    # the latest 8 dates leave a single training date after purging: that design cannot be fitted
    model = train_model(factory_snapshots, policy, config=config, feature_version=FEATURE_VERSION)
    assert all("train_dates" not in t for t in model.search)
