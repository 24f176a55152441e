"""Calibration and the metrics, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from models.calibration import Calibrator
from models.metrics import (
    binary_metrics,
    calibrated_ece,
    calibration_bins,
    expected_calibration_error,
    ks_statistic,
    top_decile_lift,
)


def _known(n=200_000, a=0.6, b=-1.2, seed=0):
    """Log-odds z whose true probability is sigmoid(a z + b): a miscalibrated model with a known fix."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, n)
    p = 1 / (1 + np.exp(-(a * z + b)))
    return z, (rng.random(n) < p).astype(int), p


def test_platt_recovers_the_known_recalibration():
    z, y, p = _known()
    calibrator = Calibrator("platt").fit(z, y)
    assert calibrator.slope_ == pytest.approx(0.6, abs=0.02)
    assert calibrator.intercept_ == pytest.approx(-1.2, abs=0.03)
    assert np.abs(calibrator.transform(z) - p).max() < 0.02
    assert expected_calibration_error(y, calibrator.transform(z)) < 0.01
    assert expected_calibration_error(y, 1 / (1 + np.exp(-z))) > 0.05  # the uncalibrated log-odds are off


def test_isotonic_is_monotone_and_calibrated():
    z, y, _ = _known(seed=1)
    calibrator = Calibrator("isotonic").fit(z, y)
    grid = np.linspace(-8, 8, 2001)
    assert np.all(np.diff(calibrator.transform(grid)) >= 0)
    assert 0 < calibrator.transform(np.array([-50.0]))[0] < 1e-3  # never exactly zero
    assert expected_calibration_error(y, calibrator.transform(z)) < 0.01


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_state_round_trips_through_json(method):
    import json

    z, y, _ = _known(n=5000, seed=2)
    calibrator = Calibrator(method).fit(z, y)
    again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    np.testing.assert_array_equal(again.transform(z), calibrator.transform(z))


def test_errors_are_worded_for_people():
    with pytest.raises(NotFittedError):
        Calibrator().transform(np.zeros(3))
    with pytest.raises(ValueError, match="both outcomes"):
        Calibrator().fit(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="method must be"):
        Calibrator("beta").fit(np.zeros(4), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="must rank risk"):
        Calibrator().fit(np.array([-2.0, -1.0, 1.0, 2.0] * 50), np.array([1, 1, 0, 0] * 50))


def test_ece_of_a_constant_offset_is_the_offset():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.5, 400_000)
    y = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.003
    assert expected_calibration_error(y, p + 0.02) == pytest.approx(0.02, abs=0.003)
    bins = calibration_bins(y, p, 10)
    assert len(bins) == 10 and bins["rows"].nunique() == 1  # equal-mass bins


def test_the_ece_chance_gives_a_calibrated_model_shrinks_with_the_rows():
    rng = np.random.default_rng(5)
    small, large = rng.beta(1.2, 7, 1_000), rng.beta(1.2, 7, 100_000)
    # the 95th percentile of a perfectly calibrated model's ECE, checked against outcomes drawn apart
    seen = [expected_calibration_error(rng.random(small.size) < small, small) for _ in range(400)]
    chance = calibrated_ece(small, 10, 400, seed=1)
    assert np.quantile(seen, 0.90) < chance < np.quantile(seen, 0.99)
    assert chance > 0.02 > 0.005 > calibrated_ece(large, 10, 50)  # 0.02 is noise on 1,000 rows, not on 100,000
    # a model 0.05 too high is out of reach of chance on 1,000 rows
    assert expected_calibration_error(rng.random(small.size) < small, np.clip(small + 0.05, 0, 1)) > chance
    assert np.isnan(calibrated_ece(small, 10, 0)) and np.isnan(calibrated_ece(np.array([]), 10, 50))


def test_ks_and_lift_on_hand_made_cases():
    y = np.array([0, 0, 0, 0, 1, 1])
    assert ks_statistic(y, np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])) == 1.0  # perfectly separated
    assert ks_statistic(y, np.full(6, 0.5)) == 0.0  # all tied: no separation
    y = np.r_[np.ones(10), np.zeros(90)]
    p = np.r_[np.linspace(0.9, 0.99, 10), np.linspace(0.0, 0.5, 90)]
    assert top_decile_lift(y, p) == pytest.approx(10.0)  # all positives in the top 10 %: lift 1 / 0.1
    metrics = binary_metrics(y, p)
    assert metrics["auc"] == 1.0 and metrics["rows"] == 100 and metrics["outcome_rate"] == 0.1
