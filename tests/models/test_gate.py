"""The promotion gate of models.registry (issue 3, section 5), as a pure decision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.config import GateConfig
from models.evaluate import rates_rise, tier_table
from models.gate import FIRST_VERSION, gate, gate_caveat
from models.registry import _gate_tags

GOOD = {"auc": 0.83, "ece": 0.010, "tier_rates_rise": 1.0, "industry_auc_min": 0.72}


def failed(decision) -> set[str]:
    return set(decision.failed)


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


def test_the_ece_limit_is_never_below_what_chance_gives_a_calibrated_model():
    small = GOOD | {"ece": 0.031, "ece_chance": 0.037}  # 1,000 rows: a calibrated model reaches 0.037 by chance
    [check] = [c for c in gate(small, None, GateConfig()).checks if c["name"] == "ece_limit"]
    assert check["passed"] and "up to 0.0370 on these rows by chance" in check["detail"]
    assert not gate(small | {"ece": 0.045}, None, GateConfig()).passed
    large = GOOD | {"ece": 0.021, "ece_chance": 0.003}  # on many rows the configured limit decides
    assert not gate(large, None, GateConfig()).passed
    assert gate(GOOD | {"ece": 0.019, "ece_chance": math.nan}, None, GateConfig()).passed


def _tiers(rows: dict[str, tuple[int, int]]):
    """A tier table from (rows, positives) per tier."""
    tiers = np.concatenate([np.full(n, t) for t, (n, _) in rows.items()])
    y = np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for n, k in rows.values()])
    return tier_table(y, np.full(len(y), 0.5), tiers)


@pytest.mark.parametrize(
    ("rows", "rises", "words"),
    [
        ({"A": (400, 8), "B": (400, 20), "C": (400, 60), "D": (400, 150)}, True, "rise strictly from A to D"),
        ({"A": (400, 8), "B": (400, 30), "C": (400, 20), "D": (400, 150)}, False, "do not rise strictly from A to D"),
        # a ladder whose A no entity reaches on the test fold (the sparse profile): B, C and D are judged
        (
            {"B": (900, 50), "C": (900, 150), "D": (300, 110)},
            True,
            "rise strictly over B, C, D; under 300 rows, not judged: A (0 rows)",
        ),
        ({"B": (900, 160), "C": (900, 150), "D": (300, 110)}, False, "do not rise strictly over B, C, D"),
        # 40 rows of D with fewer findings than C: too few to say anything, named instead
        ({"A": (900, 5), "B": (900, 50), "C": (900, 150), "D": (40, 2)}, True, "not judged: D (40 rows)"),
        (
            {"A": (20, 0), "B": (500, 40), "C": (100, 30), "D": (0, 0)},
            True,
            "not measured: fewer than two tiers have 300 rows",
        ),
    ],
    ids=["all-rise", "all-flat", "empty-A", "empty-A-flat", "small-D", "one-tier"],
)
def test_tier_rates_are_judged_over_the_tiers_large_enough_to_measure(rows, rises, words):
    judged, said = rates_rise(_tiers(rows), 300)
    assert judged is rises and words in said, said
    decision = gate(GOOD | {"tier_rates_rise": float(judged), "tier_rates": said}, None, GateConfig())
    [check] = [c for c in decision.checks if c["name"] == "tier_rates"]
    assert check["passed"] is rises and check["detail"] == said


def test_a_version_that_failed_its_gate_is_read_with_the_checks_it_failed_and_why_it_scores():
    assert gate_caveat({}, "3") is None  # a scorer from a directory, never registered: nothing to say
    assert gate_caveat({"gate": "passed", "gate_failed": []}, "3") is None
    first = {"gate": "failed", "gate_failed": ["ece_limit"], "promotion_reason": f"{FIRST_VERSION}; gate failed …"}
    assert gate_caveat(first, "1").startswith(
        "model version 1 failed its promotion gate (ece_limit); "
        "it became champion only because it was the first version."
    )
    by_hand = {"gate": "failed", "gate_failed": ["auc", "calibration"], "promotion_reason": "audit 2026-11: keep" * 50}
    said = gate_caveat(by_hand, "4")
    assert "(auc, calibration); it was promoted by hand: audit 2026-11: keep" in said
    assert len(said) < 400  # the reason is quoted, not pasted whole
    # A version registered before the failed checks had a tag of their own: they are read from the detail.
    legacy = _gate_tags(
        {
            "gate": "failed",
            "gate_detail": "gate failed (first version: no champion): ok ece_limit: ECE 0.01; FAIL tier_rates: flat; "
            "FAIL industry_auc_floor: lowest industry AUC 0.6",
        }
    )
    assert legacy["gate_failed"] == ["tier_rates", "industry_auc_floor"]
    assert "(tier_rates, industry_auc_floor); it was not promoted through the gate" in gate_caveat(legacy, "2")
    assert _gate_tags({"feature_version": "x"}) == {}  # a run logged without a gate
