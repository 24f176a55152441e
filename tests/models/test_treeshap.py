"""Exact TreeSHAP: the pattern-table implementation gives LightGBM's own numbers, and they add up."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.build import model_matrix
from features.catalogue import CATEGORICAL, FEATURE_NAMES, monotone_constraints
from models.treeshap import PatternTreeSHAP, _bin_matrix, _Bins, _flat_bins, numeric_matrix
from tests.models.factories import feature_frame


def _booster(frame: pd.DataFrame, **params) -> lgb.Booster:
    base = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.2,
        "min_child_samples": 20,
        "verbosity": -1,
        "seed": 1,
        "deterministic": True,
        "min_data_per_group": 10,
        "cat_smooth": 1.0,
    }
    data = lgb.Dataset(model_matrix(frame), frame["outcome"], categorical_feature=CATEGORICAL)
    return lgb.train(base | params, data, num_boost_round=40)


@pytest.fixture(scope="module")
def frame():
    frame = feature_frame(4000, seed=3)
    frame.loc[frame.index[:60], "industry"] = np.nan  # missing category: always the right child
    return frame


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"monotone_constraints": monotone_constraints(), "monotone_constraints_method": "intermediate"},
        {"zero_as_missing": True},  # missing_type "Zero": |x| <= 1e-35 takes the default direction
        {"use_missing": False},  # missing_type "None": NaN is read as 0
        {"num_leaves": 4, "max_depth": 2},
    ],
    ids=["default", "monotone", "zero-as-missing", "no-missing", "shallow"],
)
def test_pattern_treeshap_equals_pred_contrib(frame, params):
    booster = _booster(frame, **params)
    matrix = model_matrix(frame)
    expected = booster.predict(matrix, pred_contrib=True)
    got = PatternTreeSHAP(booster).contributions(numeric_matrix(matrix, booster))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_unseen_values_and_missing_values_follow_lightgbm(frame):
    booster = _booster(frame)
    probe = frame.head(200).copy()
    probe["registered_capital"] = np.nan
    probe.loc[probe.index[:50], "grant_ratio_36m"] = 1e9
    probe.loc[probe.index[50:100], "age_years"] = -5.0
    matrix = model_matrix(probe)
    expected = booster.predict(matrix, pred_contrib=True)
    got = PatternTreeSHAP(booster).contributions(numeric_matrix(matrix, booster))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_results_do_not_depend_on_what_was_explained_before(frame):
    booster = _booster(frame)
    x = numeric_matrix(model_matrix(frame), booster)
    cold = PatternTreeSHAP(booster).contributions(x)
    warm = PatternTreeSHAP(booster)
    warm.contributions(x[::7])
    assert warm.patterns_explained > 0
    np.testing.assert_array_equal(warm.contributions(x), cold)


def test_large_trees_are_refused_and_the_scorer_falls_back(frame):
    booster = _booster(frame, num_leaves=40, min_child_samples=5)
    explainer = PatternTreeSHAP(booster)
    assert not explainer.supports
    with pytest.raises(ValueError, match="at most"):
        explainer.contributions(numeric_matrix(model_matrix(frame.head(5)), booster))


def test_score_explanations_add_up_to_the_booster_log_odds(scorer, policy, factory_snapshots):
    rows = factory_snapshots.head(400)
    scored = scorer.score(rows, policy)
    raw = scorer.booster.predict(model_matrix(rows), raw_score=True)
    contributions = np.array([[json.loads(c)[n] for n in FEATURE_NAMES] for c in scored["contributions"]])
    np.testing.assert_allclose(scored["base_value"] + contributions.sum(axis=1), raw, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scored["log_odds"], raw, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scored["score"], scorer.calibrator.transform(raw), rtol=0, atol=1e-12)


def test_shap_tree_explainer_agrees(scorer, factory_snapshots):
    shap = pytest.importorskip("shap")
    rows = factory_snapshots.head(200)
    contrib, _ = scorer.contributions(rows)
    explainer = shap.TreeExplainer(scorer.booster)
    values = explainer.shap_values(model_matrix(rows))
    values = values[1] if isinstance(values, list) else values
    np.testing.assert_allclose(contrib, values, rtol=0, atol=1e-8)


def _bin_index(x: np.ndarray, edges: np.ndarray | None, n_categories: int) -> np.ndarray:
    """The bins of one feature in numpy, as the kernel once computed them feature by feature."""
    if edges is None:
        inside = ~np.isnan(x) & (x >= 0) & (x < n_categories)
        return np.where(inside, np.nan_to_num(x, nan=0.0), n_categories).astype(np.int32)
    return np.where(np.isnan(x), edges.size + 1, np.searchsorted(edges, x, side="left")).astype(np.int32)


def test_all_features_binned_at_once_are_each_feature_binned_alone():
    """``_bin_matrix`` (one compiled pass over every feature) gives numpy's bins feature by feature: values
    on, between, below and above the cut points, NaN, infinities, and categorical codes in and out of range
    (negative, fractional, past K)."""
    rng = np.random.default_rng(4)
    cuts = np.array([-2.5, 0.0, 1.0, 1e-35, 7.0])
    cuts.sort()
    bins = _Bins([cuts, None, np.zeros(0), np.array([3.0])], [0, 4, 0, 0])
    specials = [np.nan, np.inf, -np.inf, -2.5, 0.0, 1.0, 7.0, 7.5, -3.0, 1e-35, -0.0, 3.0, 3.5, 4.0, -1.0, 0.5]
    x = np.concatenate([np.repeat([specials], 4, axis=0).T, rng.normal(0, 4, size=(500, 4))])
    x[rng.random(x.shape) < 0.1] = np.nan
    expected = np.column_stack([_bin_index(x[:, f], e, k) for f, (e, k) in enumerate(zip(*bins, strict=True))])
    got = np.empty(x.shape, dtype=np.int32)
    _bin_matrix(x, *_flat_bins(bins), got)
    np.testing.assert_array_equal(got, expected)
