"""The promotion gate of models.registry (issue 3, section 5), as a pure decision."""

from __future__ import annotations

import math

import pytest

from models.config import GateConfig
from models.gate import gate

GOOD = {"auc": 0.83, "ece": 0.010, "tier_rates_rise": 1.0, "industry_auc_min": 0.72}


def failed(decision) -> set[str]:
    return {c["name"] for c in decision.checks if not c["passed"]}


def test_first_version_needs_only_its_own_checks():
    decision = gate(GOOD, None, GateConfig())
    assert decision.passed and {c["name"] for c in decision.checks} == {"ece_limit", "tier_rates", "industry_auc_floor"}


def test_better_auc_with_calibration_no_worse_passes():
    decision = gate(GOOD, {"auc": 0.82, "ece": 0.008}, GateConfig())
    assert decision.passed, decision.describe()


@pytest.mark.parametrize(
    ("candidate", "champion", "reasons"),
    [
        (GOOD, {"auc": 0.83, "ece": 0.010}, {"auc"}),  # equal is not better
        (GOOD, {"auc": 0.85, "ece": 0.010}, {"auc"}),
        (GOOD | {"ece": 0.019}, {"auc": 0.80, "ece": 0.010}, {"calibration"}),
        (GOOD | {"ece": 0.03}, {"auc": 0.80, "ece": 0.029}, {"ece_limit"}),
        (GOOD | {"tier_rates_rise": 0.0}, {"auc": 0.80, "ece": 0.010}, {"tier_rates"}),
        (GOOD | {"industry_auc_min": 0.60}, {"auc": 0.80, "ece": 0.010}, {"industry_auc_floor"}),
    ],
    ids=["tie", "worse-auc", "worse-calibration", "ece-limit", "tiers-flat", "industry-floor"],
)
def test_each_check_can_stop_a_promotion(candidate, champion, reasons):
    decision = gate(candidate, champion, GateConfig())
    assert not decision.passed
    assert failed(decision) == reasons
    assert "FAIL" in decision.describe()


def test_no_measurable_industry_does_not_block():
    decision = gate(GOOD | {"industry_auc_min": math.nan}, None, GateConfig())
    assert decision.passed


def test_thresholds_come_from_the_config():
    strict = GateConfig(min_auc_gain=0.02)
    assert not gate(GOOD, {"auc": 0.82, "ece": 0.01}, strict).passed
    assert gate(GOOD, {"auc": 0.80, "ece": 0.01}, strict).passed
