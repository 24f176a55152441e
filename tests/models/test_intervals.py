"""Honest evaluation on small data: bootstrap intervals over entities, and a gate that reads them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.config import GateConfig
from models.evaluate import interval_table
from models.gate import gate
from models.metrics import Resamples, auc_gain, auc_or_nan, ece_increase

GOOD = {"auc": 0.83, "ece": 0.01, "tier_rates_rise": 1.0, "industry_auc_min": 0.74}


def test_resamples_draw_whole_entities_and_are_reproducible():
    groups = np.repeat(np.arange(50), 3)  # every entity has three rows
    a, b = Resamples(groups, 20, seed=4), Resamples(groups, 20, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.indices, b.indices, strict=True))
    for index in a.indices:
        assert len(index) == len(groups)
        counts = np.bincount(groups[index], minlength=50)
        assert np.all(counts % 3 == 0)  # an entity's rows come together or not at all


def test_the_interval_covers_the_estimate_and_narrows_with_more_entities():
    rng = np.random.default_rng(0)

    def width(n: int) -> float:
        p = rng.random(n)
        y = (rng.random(n) < p).astype(float)
        low, high = Resamples(np.arange(n), 200, seed=1).interval(auc_or_nan, y, p)
        assert low <= auc_or_nan(y, p) <= high
        return high - low

    assert width(4000) < width(400) / 2


def test_an_undefined_metric_gives_no_interval():
    y = np.zeros(30)
    assert all(math.isnan(v) for v in Resamples(np.arange(30), 50).interval(auc_or_nan, y, np.random.rand(30)))


def test_paired_gain_interval_on_the_same_rows():
    rng = np.random.default_rng(2)
    n = 3000
    truth = rng.random(n)
    y = (rng.random(n) < truth).astype(float)
    better, worse = truth + rng.normal(0, 0.05, n), truth + rng.normal(0, 0.5, n)
    low, high = Resamples(np.arange(n), 200, seed=3).interval(auc_gain, y, better, worse)
    assert 0 < low <= auc_gain(y, better, worse) <= high


def test_a_challenger_credibly_worse_is_refused_even_with_a_point_gain():
    champion = {"auc": 0.829, "ece": 0.01, "gain_low": -0.02, "gain_high": 0.022}
    decision = gate(GOOD, champion, GateConfig())
    assert not decision.passed
    assert "95 % interval [-0.0200, +0.0220]" in decision.describe()
    assert gate(GOOD, champion | {"gain_low": -0.003}, GateConfig()).passed
    assert gate(GOOD, {"auc": 0.82, "ece": 0.01}, GateConfig()).passed  # recorded metrics: no interval to read


def test_calibration_against_the_champion_reads_the_paired_interval_of_the_ece_increase():
    champion = {"auc": 0.80, "ece": 0.010, "gain_low": 0.01, "gain_high": 0.05}
    worse = GOOD | {"ece": 0.018}  # 0.008 worse than the champion on the same rows: past the 0.005 tolerance
    assert not gate(worse, champion, GateConfig()).passed  # no interval: the point estimate decides
    # on a small fold the increase is within what resampling gives: not credibly worse
    noisy = gate(worse, champion | {"ece_increase_low": -0.004, "ece_increase_high": 0.021}, GateConfig())
    [check] = [c for c in noisy.checks if c["name"] == "calibration"]
    assert check["passed"] and "paired 95 % interval of the increase [-0.0040, +0.0210]" in check["detail"]
    # on a large fold it is credibly worse
    assert not gate(worse, champion | {"ece_increase_low": 0.006, "ece_increase_high": 0.010}, GateConfig()).passed


def test_the_paired_ece_increase_is_positive_for_the_worse_calibrated_model():
    rng = np.random.default_rng(4)
    n = 4000
    truth = rng.beta(1.2, 7, n)
    y = (rng.random(n) < truth).astype(float)
    worse = np.clip(truth + 0.04, 0, 1)
    low, high = Resamples(np.arange(n), 200, seed=2).interval(ece_increase, y, worse, truth)
    assert 0 < low <= ece_increase(y, worse, truth) <= high


def test_the_lead_over_a_baseline_is_read_from_its_paired_interval():
    # A model a little ahead of a baseline that ranks almost as it does: their own intervals overlap, but
    # on every resample the model is ahead, and the paired interval of the lead says so.
    rng = np.random.default_rng(5)
    n = 4000
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(signal - 2)))).astype(float)
    model = signal + rng.normal(scale=0.5, size=n)
    baseline = model + rng.normal(scale=0.6, size=n)  # what the model reads, and more noise
    table = interval_table(y, {"model": model, "baseline": baseline}, Resamples(np.arange(n), 200, seed=6), ece_bins=10)
    rows = table.set_index(["scorer", "metric"])
    ours, theirs, lead = rows.loc[("model", "auc")], rows.loc[("baseline", "auc")], rows.loc[("baseline", "auc_lead")]
    assert lead["value"] == pytest.approx(ours["value"] - theirs["value"])
    assert ours["low"] < theirs["high"]  # the separate intervals overlap
    assert 0 < lead["low"] <= lead["value"] <= lead["high"]  # the paired one lies above zero
    assert ("model", "auc_lead") not in rows.index  # the model is the reference, not a baseline of itself


def test_the_evaluation_reports_intervals_for_auc_ece_and_tier_rates(evaluation):
    model = evaluation.intervals.set_index(["scorer", "metric"]).loc[("model", "auc")]
    assert model["low"] <= model["value"] <= model["high"]
    assert set(evaluation.intervals["scorer"]) >= {"model", "rules_points_card", "binned_scorecard"}
    populated = evaluation.tiers[evaluation.tiers["count"] > 50]
    assert (
        (populated["rate_low"] <= populated["outcome_rate"]) & (populated["outcome_rate"] <= populated["rate_high"])
    ).all()
    summary = evaluation.summary()
    assert summary["test_auc_low"] <= summary["test_auc"] <= summary["test_auc_high"]
    for baseline in ("scorecard", "rules_card"):
        lead = summary[f"{baseline}_test_auc_lead"]
        assert lead == pytest.approx(summary["test_auc"] - summary[f"{baseline}_test_auc"])
        assert summary[f"{baseline}_test_auc_lead_low"] <= lead <= summary[f"{baseline}_test_auc_lead_high"]


def test_the_fast_auc_is_roc_auc_score():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(9)
    p = np.round(rng.random(500), 2)  # many ties
    y = rng.random(500) < p
    assert auc_or_nan(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_the_gate_refuses_an_unfairer_challenger_and_a_stale_one():
    champion = {"auc": 0.82, "ece": 0.01, "fairness_flags": 1.0}
    unfair = gate(GOOD | {"fairness_flags": 3.0}, champion, GateConfig())
    assert not unfair.passed and "3 groups flagged against the champion's 1" in unfair.describe()
    assert gate(GOOD | {"fairness_flags": 1.0}, champion, GateConfig()).passed
    stale = gate(GOOD | {"score_psi": 0.4}, None, GateConfig())
    assert not stale.passed and "score PSI" in stale.describe()
    assert gate(GOOD | {"score_psi": 0.02}, None, GateConfig()).passed


def test_the_evaluation_measures_fairness_flags_and_drift_for_the_gate(evaluation):
    assert {"group", "value", "flagged", "share_CD_low", "auc_high"} <= set(evaluation.fairness_flags.columns)
    assert evaluation.drift["feature"].iloc[0] == "score"
    summary = evaluation.summary()
    assert summary["fairness_flags"] >= 0 and summary["test_score_psi"] >= 0
