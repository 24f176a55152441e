"""Training on seeded snapshots: the fitted model, its evaluation tables, the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import FEATURE_VERSION, model_matrix
from features.catalogue import FEATURE_NAMES
from models.config import parse_config
from models.evaluate import run_metrics
from models.policy import TIERS
from models.scorer import ModelError, Scorer
from models.train import TrainingError, train_model
from tests.models.conftest import FAST


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
    # Every size of config.search beside lightgbm.num_leaves was fitted, smallest first, and the kept one
    # has the best validation AUC (a tie keeps the smaller tree).
    assert [t["num_leaves"] for t in trained.search] == fast_config.tree_sizes() == [7, 15]
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
    again = train_model(frame, policy, config=fast_config, feature_version=FEATURE_VERSION)
    assert again.search == trained.search
    assert again.scorer.booster.model_to_string() == trained.scorer.booster.model_to_string()


def test_an_empty_search_fits_the_configured_tree_alone(factory_snapshots, policy):
    config = parse_config({**FAST, "search": {"num_leaves": []}, "lightgbm": {"num_threads": 1, "num_leaves": 9}})
    model = train_model(factory_snapshots, policy, config=config, feature_version=FEATURE_VERSION)
    assert [t["num_leaves"] for t in model.search] == [9] and model.config.lightgbm.num_leaves == 9
