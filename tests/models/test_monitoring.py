"""Monitoring: drift flagged where it is and only there, performance estimated before outcomes, unbiased
violation rates from random draws, fairness flags only where an interval says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.monitoring import (
    Reference,
    drift_table,
    expected_auc,
    expected_performance,
    fairness_frame,
    group_violation_rates,
    migration_matrix,
    psi_noise_floor,
    violation_rates,
)
from tests.models.factories import feature_frame


@pytest.fixture(scope="module")
def reference():
    train = feature_frame(20_000, seed=1)
    scores = np.random.default_rng(1).beta(1, 9, len(train))
    return Reference.fit(train, scores)


def test_the_same_process_drifts_nowhere(reference):
    month = feature_frame(5_000, seed=2)
    table = drift_table(reference, month, np.random.default_rng(2).beta(1, 9, len(month)))
    assert not table["flagged"].any(), table[table["flagged"]]


def test_an_injected_drift_is_flagged_and_the_rest_is_not(reference):
    month = feature_frame(5_000, seed=3)
    month["complaint_received_12m"] = month["complaint_received_12m"] * 3 + 2  # a changed event rate
    month["industry"] = pd.Categorical(["F"] * len(month), categories=month["industry"].cat.categories)  # new mix
    table = drift_table(reference, month, np.random.default_rng(3).beta(1, 9, len(month))).set_index("feature")
    assert table.loc["complaint_received_12m", "flagged"] and table.loc["industry", "flagged"]
    assert table.loc["industry", "band"] == "major"
    others = table.drop(index=["complaint_received_12m", "industry"])
    assert not others["flagged"].any(), others[others["flagged"]]


def test_a_small_region_does_not_alarm_by_chance(reference):
    flagged = banded = tested = 0
    for seed in range(20):
        month = feature_frame(150, seed=100 + seed)
        table = drift_table(reference, month, np.random.default_rng(seed).beta(1, 9, len(month)))
        flagged += int(table["flagged"].sum())
        banded += int((table["psi"] >= 0.1).sum())
        tested += len(table)
    # The floor is the 99th percentile of chance: at most 1 % of the feature-months alarm (4 of 1,080 here,
    # since sparse counts keep their zeros in a bin of their own), where the bands alone flag ten times as many.
    assert flagged <= 0.01 * tested and banded > 5 * max(flagged, 1)
    shares = np.full(10, 0.1)
    assert psi_noise_floor(shares, 150, 20_000) > 0.1 > psi_noise_floor(shares, 50_000, 20_000)


def test_the_reference_round_trips(reference):
    again = Reference.from_dict(reference.to_dict())
    month = feature_frame(1_000, seed=4)
    scores = np.full(len(month), 0.1)
    pd.testing.assert_frame_equal(drift_table(again, month, scores), drift_table(reference, month, scores))


def test_expected_auc_is_the_mean_auc_of_outcomes_drawn_from_the_scores():
    rng = np.random.default_rng(5)
    p = np.round(rng.beta(1, 6, 3000), 3)  # ties included
    simulated = [roc_auc_score(rng.random(len(p)) < p, p) for _ in range(300)]
    assert expected_auc(p) == pytest.approx(np.mean(simulated), abs=0.003)
    table = expected_performance(p, np.where(p < 0.1, "A", "C"))
    assert table.set_index("tier").loc["A", "expected_rate"] == pytest.approx(p[p < 0.1].mean())


def test_violation_rates_from_random_draws_cover_the_true_rate():
    """Tiers sampled at different ratios, inside a tier at different probabilities by region: the Hájek
    interval covers each tier's true rate in about 95 % of draws."""
    rng = np.random.default_rng(6)
    n = 20_000
    tiers = rng.choice(list("ABCD"), n, p=[0.4, 0.35, 0.2, 0.05])
    true_rate = {"A": 0.03, "B": 0.08, "C": 0.2, "D": 0.5}
    violates = rng.random(n) < np.vectorize(true_rate.get)(tiers)
    truth = {t: violates[tiers == t].mean() for t in "ABCD"}
    ratio = {"A": 0.03, "B": 0.1, "C": 0.35, "D": 0.8}
    region_factor = np.where(rng.random(n) < 0.5, 0.5, 1.5)
    covered = {t: 0 for t in "ABCD"}
    draws = 200
    for _ in range(draws):
        pi = np.minimum(1.0, np.vectorize(ratio.get)(tiers) * region_factor)
        chosen = rng.random(n) < pi
        table = violation_rates(tiers[chosen], violates[chosen], pi[chosen]).set_index("tier")
        for t in "ABCD":
            covered[t] += int(table.loc[t, "low"] <= truth[t] <= table.loc[t, "high"])
    for t in "ABCD":
        assert 0.90 <= covered[t] / draws <= 0.99, (t, covered[t])
    with pytest.raises(ValueError, match="inclusion_probability"):
        violation_rates(np.array(["A"]), np.array([1]), np.array([0.0]))


def test_fairness_flags_a_miscalibrated_group_and_not_a_small_one():
    rng = np.random.default_rng(7)
    n = 6000
    region = rng.choice(["210600", "410100", "999999"], n, p=[0.48, 0.48, 0.04])
    p = rng.beta(1, 8, n)
    y = rng.random(n) < np.where(region == "410100", np.minimum(1, p * 2.0), p)  # scores too low there
    tiers = np.where(p < 0.05, "A", np.where(p < 0.15, "B", "C"))
    table = fairness_frame(y, p, tiers, pd.DataFrame({"region": region}), min_rows=300, n_boot=100).set_index("value")
    assert table.loc["410100", "flagged"] and "calibration_gap" in table.loc["410100", "flags"]
    assert not table.loc["210600", "flagged"]
    assert not table.loc["999999", "measured"] and not table.loc["999999", "flagged"]


def test_migration_matrix_counts_entities_in_both_runs():
    previous = pd.Series({"e1": "A", "e2": "B", "e3": "D"})
    current = pd.Series({"e1": "B", "e2": "B", "e4": "A"})
    table = migration_matrix(previous, current)
    assert table.loc["A", "B"] == 1 and table.loc["B", "B"] == 1 and table.to_numpy().sum() == 2


def test_the_trained_model_carries_its_drift_reference(trained, factory_snapshots, policy, tmp_path):
    from models.scorer import Scorer

    reference = Reference.from_dict(Scorer.load(trained.scorer.save(tmp_path)).metadata["reference"])
    # Fixed from the latest training dates only: the population as the model last saw it.
    as_of = pd.to_datetime(factory_snapshots["as_of"]).dt.date
    latest = sorted(trained.split.train)[-4:]
    assert reference.rows == as_of.isin(latest).sum() <= trained.data["rows"]["train"]
    assert list(reference.rule_rates) == [rule.code for rule in policy.rules]
    test = factory_snapshots[pd.to_datetime(factory_snapshots["as_of"]).dt.date.isin(trained.split.test)]
    table = drift_table(reference, test, trained.scorer.predict_proba(test))
    assert table["feature"].iloc[0] == "score" and len(table) == 1 + len(reference.features)


def test_the_reference_rows_are_the_latest_training_dates_or_all_of_them():
    from models.train import reference_rows

    dates = pd.to_datetime(["2020-03-31", "2020-06-30", "2020-09-30", "2020-12-31"])
    train = pd.DataFrame({"as_of": np.repeat(dates, 3)[::-1]})  # any row order
    assert reference_rows(train, 2).tolist() == [True] * 6 + [False] * 6
    assert reference_rows(train, 0).all() and reference_rows(train, 9).all()


def test_findings_rates_by_group_flag_a_group_whose_rate_departs_and_not_a_small_one():
    rng = np.random.default_rng(8)
    n = 40_000
    region = rng.choice(["210600", "320500", "410100", "150800"], n, p=[0.45, 0.45, 0.099, 0.001])
    truth = np.where(np.isin(region, ["410100", "150800"]), 0.30, 0.12)  # the small region as bad as Zhengzhou
    breach = rng.random(n) < truth
    pi = np.where(region == "210600", 0.05, 0.15)  # inspected three times as much outside Dandong
    inspected = rng.random(n) < pi
    table = group_violation_rates(
        pd.DataFrame({"region": region[inspected]}), breach[inspected].astype(float), pi[inspected]
    ).set_index("value")
    for value, rate in (("210600", 0.12), ("320500", 0.12), ("410100", 0.30)):
        assert table.loc[value, "low"] <= rate <= table.loc[value, "high"], value
    assert abs(table["overall"].iloc[0] - (0.9 * 0.12 + 0.1 * 0.30)) < 0.01  # weighted: intensity undone
    assert table.loc["410100", "flagged"] and not table.loc[["210600", "320500"], "flagged"].any()
    assert not table.loc["150800", "measured"] and not table.loc["150800", "flagged"]


def test_a_seasonal_feature_is_shown_but_never_flagged():
    # The month of D and this year's inspections follow the calendar: a January run against a reference of
    # four quarter ends differs by construction, and a flag every January would teach people to ignore flags.
    from features.catalogue import SEASONAL

    assert {"as_of_month", "inspection_failed_this_year", "inspection_passed_this_year"} == SEASONAL
    training = feature_frame(4000, seed=31)
    training["as_of_month"] = np.resize([3, 6, 9, 12], len(training))
    reference = Reference.fit(training, np.linspace(0.01, 0.9, len(training)))
    january = feature_frame(4000, seed=32).assign(as_of_month=1, inspection_passed_this_year=0)
    january["complaint_received_12m"] = january["complaint_received_12m"] * 3 + 2  # a real change beside them
    table = drift_table(reference, january, np.linspace(0.01, 0.9, len(january))).set_index("feature")
    assert table.loc["as_of_month", "psi"] > 1 and table.loc["as_of_month", "seasonal"]
    assert not table.loc[list(SEASONAL), "flagged"].any()
    assert table.loc["complaint_received_12m", "flagged"] and not table.loc["complaint_received_12m", "seasonal"]
