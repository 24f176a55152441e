"""The tiering policy: cut-offs, rules with their effects, conflicts between rules, review, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.policy import PolicyError, parse_policy
from tests.models.factories import feature_frame


@pytest.fixture
def clean() -> pd.DataFrame:
    """Entities on no list, with no adverse record, registered years ago: no rule fires."""
    rows = feature_frame(4, seed=1).drop(columns=["outcome"])
    adverse = [c for c in rows.columns if c.startswith(("adverse", "abnormal", "malicious"))]
    return (
        rows.assign(**dict.fromkeys(adverse, 0))
        .assign(
            age_years=5.0,
            on_red_list=False,
            on_untrustworthy_list=False,
            on_serious_violation_list=False,
            on_abnormal_operation_list=False,
            adverse_all=0,
            adverse_36m=0,
            abnormal_patent_filing_12m=0,
            malicious_trademark_filing_12m=0,
        )
        .reset_index(drop=True)
    )


def test_cut_offs_on_the_calibrated_probability(policy, clean):
    scores = np.array([0.0, 0.0299, 0.03, 0.2999])
    assert list(policy.apply(scores, clean)["model_tier"]) == ["A", "A", "B", "C"]
    assert list(policy.model_tiers([0.1, 0.3, 0.99])) == ["C", "D", "D"]


def test_no_rule_no_change(policy, clean):
    out = policy.apply(np.array([0.01, 0.05, 0.2, 0.5]), clean)
    assert list(out["tier"]) == list(out["model_tier"]) == ["A", "B", "C", "D"]
    assert list(out["rules"]) == ["", "", "", ""]
    assert not out["review"].any()


def test_serious_violation_list_forces_D_and_flags_review(policy, clean):
    rows = clean.assign(on_serious_violation_list=True, adverse_all=1, adverse_36m=1)
    out = policy.apply(np.array([0.01, 0.05, 0.2, 0.5]), rows)
    assert list(out["tier"]) == ["D"] * 4
    assert list(out["rules"]) == ["SV_LIST"] * 4
    assert list(out["review"]) == [True, True, False, False]  # A->D and B->D differ by two levels or more


def test_untrustworthy_and_filings_floor_at_C(policy, clean):
    rows = clean.copy()
    rows.loc[0, "on_untrustworthy_list"] = True
    rows.loc[1, "abnormal_patent_filing_12m"] = 1
    rows.loc[2, "malicious_trademark_filing_12m"] = 2
    rows[["adverse_all", "adverse_36m"]] = 1
    out = policy.apply(np.array([0.01, 0.01, 0.5, 0.01]), rows)
    assert list(out["tier"]) == ["C", "C", "D", "A"]  # a floor never lowers: D stays D
    assert list(out["rules"]) == ["UNTRUSTWORTHY", "UNTRUSTWORTHY", "UNTRUSTWORTHY", ""]


def test_new_entity_without_adverse_record_is_B(policy, clean):
    rows = clean.assign(age_years=[0.5, 0.5, 0.5, 1.5])
    rows.loc[2, ["adverse_all", "adverse_36m"]] = 1
    out = policy.apply(np.array([0.01, 0.6, 0.01, 0.01]), rows)
    assert list(out["tier"]) == ["B", "B", "B", "A"]
    assert list(out["rules"]) == ["NEW_ENTITY", "NEW_ENTITY", "NEW_ENTITY_ADVERSE", ""]


def test_a_first_violation_never_lowers_a_young_entitys_tier(policy, clean):
    # Clean and young: forced to B. With its first record the model may still say A; the tier must not drop.
    scores = np.linspace(0.0, 0.99, 4)
    young = clean.assign(age_years=0.4)
    before = policy.apply(scores, young)["tier"]
    after = policy.apply(scores, young.assign(adverse_all=1, adverse_36m=1, adverse_12m=1))["tier"]
    assert (after.to_numpy() >= before.to_numpy()).all(), (list(before), list(after))


def test_red_list_gives_A_only_when_the_model_agrees(policy, clean):
    rows = clean.assign(on_red_list=True)
    out = policy.apply(np.array([0.01, 0.05, 0.2, 0.5]), rows)
    assert list(out["tier"]) == ["A", "B", "B", "B"]
    rows_with_record = rows.assign(adverse_36m=1, adverse_all=1)
    assert list(policy.apply(np.array([0.5] * 4), rows_with_record)["tier"]) == ["D"] * 4


def test_conflicts_the_stricter_tier_wins(policy, clean):
    # red list (cap B) with the abnormal-operation list (floor C): C
    both = clean.assign(on_red_list=True, on_abnormal_operation_list=True)
    assert set(policy.apply(np.array([0.01, 0.5, 0.2, 0.05]), both)["tier"]) == {"C"}
    # new entity (force B) and abnormal-operation list (floor C): a force never goes below a fired floor
    young = clean.assign(age_years=0.3, on_abnormal_operation_list=True)
    out = policy.apply(np.array([0.01, 0.01, 0.5, 0.05]), young)
    assert list(out["tier"]) == ["C"] * 4
    assert set(out["rules"]) == {"ABNORMAL_OPERATION;NEW_ENTITY"}
    # serious violation (force D) on a red-listed entity: D
    listed = clean.assign(on_red_list=True, on_serious_violation_list=True)
    assert set(policy.apply(np.array([0.01] * 4), listed)["tier"]) == {"D"}


def test_policy_version_changes_with_the_text(policy):
    from serving.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "models" / "policy.toml").read_text(encoding="utf-8")
    assert parse_policy(text).version_tag == policy.version_tag
    assert parse_policy(text + "\n# edited\n").version_tag != policy.version_tag


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("upper_bounds = { A = 0.03, B = 0.10, C = 0.30 }", "upper_bounds = { A = 0.10, B = 0.03, C = 0.30 }"),
            "0 < A < B < C < 1",
        ),
        (('feature = "on_serious_violation_list"', 'feature = "on_some_list"'), "feature catalogue"),
        (('code = "RED_LIST"', 'code = "SV_LIST"'), "unique"),
        (('effect = "cap"', 'effect = "lower"'), "effect"),
        (("basis = ", "# basis = "), "basis"),
    ],
)
def test_invalid_policies_are_refused_with_the_field(edit, message):
    from serving.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "models" / "policy.toml").read_text(encoding="utf-8")
    old, new = edit
    assert old in text
    with pytest.raises(PolicyError, match=message):
        parse_policy(text.replace(old, new, 1), source="edited.toml")
