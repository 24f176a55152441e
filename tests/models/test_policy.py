"""The tiering policy: cut-offs, rules with their effects, conflicts between rules, review, validation."""

from __future__ import annotations

import math
import operator
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalogue import FEATURES
from features.columns import feature_columns
from features.errors import InvalidInput
from features.files import SMALL_FILE_BYTES
from models.config import load_config
from models.policy import TIERS, PolicyError, compiled, load_policy, parse_policy
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


# ---- the engine against the rules read one row at a time ------------------------------------------------

_OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _plain_tier(policy, score: float, row: dict) -> tuple[str, str, str, bool]:
    """One row, the obvious way: Python comparisons on the row's values, then caps, floors and forces."""

    def holds(condition) -> bool:
        return bool(_OPS[condition.op](row[condition.feature], condition.value))

    fired = [r for r in policy.rules if all(map(holds, r.when_all)) and (not r.when_any or any(map(holds, r.when_any)))]
    model = sum(score >= policy.tiers.upper_bounds[t] for t in "ABC")
    level = min([model] + [TIERS.index(r.tier) for r in fired if r.effect == "cap"])
    floor = max([-1] + [TIERS.index(r.tier) for r in fired if r.effect == "floor"])
    forced = max([-1] + [TIERS.index(r.tier) for r in fired if r.effect == "force"])
    level = max(forced, floor) if forced >= 0 else max(level, floor)
    review = abs(level - model) >= policy.tiers.review_gap
    return TIERS[model], TIERS[level], ";".join(r.code for r in fired), review


def _rule_edges(features: pd.DataFrame, policy) -> pd.DataFrame:
    """Rows that sit on every rule condition's threshold, just below and above it, and NaN."""
    rng = np.random.default_rng(7)
    frame = pd.concat([features] * 3, ignore_index=True)
    for rule in policy.rules:
        for condition in [*rule.when_all, *rule.when_any]:
            name, dtype = condition.feature, FEATURES[condition.feature].dtype
            if dtype == "bool":
                values = rng.random(len(frame)) < 0.5
            else:
                value = float(condition.value)
                choices = np.array([value, value - 1, value + 1, value - 0.5, value + 0.5, 0.0])
                values = rng.choice(choices, len(frame))
                if dtype == "int":
                    values = np.floor(values).astype(np.int64)
                else:
                    values[rng.random(len(frame)) < 0.05] = np.nan
            frame[name] = values
    return frame


def test_the_engine_is_the_rules_row_by_row(policy):
    frame = _rule_edges(feature_frame(400, seed=3).drop(columns=["outcome"]), policy)
    score = np.random.default_rng(3).beta(0.6, 5, len(frame))
    score[:4] = [policy.tiers.upper_bounds[t] for t in "ABC"] + [0.0]  # exactly on the cut-offs
    columns = feature_columns(frame)
    got = policy.tiering(score, columns)
    rows = frame.to_dict("records")
    expected = [_plain_tier(policy, float(s), row) for s, row in zip(score, rows, strict=True)]
    assert got.model_tier.tolist() == [e[0] for e in expected]
    assert got.tier.tolist() == [e[1] for e in expected]
    assert got.rules.tolist() == [e[2] for e in expected]
    assert got.review.tolist() == [e[3] for e in expected]
    assert got.fired.shape == (len(frame), len(policy.rules))
    assert got.fired.tolist() == policy.fired(columns).tolist()
    assert np.mean([bool(e[2]) for e in expected]) > 0.3, "the rows must fire rules for this to mean much"
    assert any(math.isnan(v) for row in rows for v in row.values() if isinstance(v, float)), "NaN must be tried"


def test_the_frame_form_is_the_columns_form(policy, clean):
    rows = clean.assign(on_red_list=[True, False, True, False], age_years=[0.5, 0.5, 3.0, 3.0])
    scores = np.array([0.01, 0.2, 0.5, 0.05])
    framed = policy.apply(scores, rows.set_axis([7, 8, 9, 10]))
    tiering = policy.tiering(scores, feature_columns(rows))
    assert list(framed.index) == [7, 8, 9, 10]
    for name in ("model_tier", "tier", "rules", "review"):
        assert framed[name].tolist() == getattr(tiering, name).tolist(), name
    assert list(policy.model_tiers(scores)) == framed["model_tier"].tolist()


def test_a_policy_is_compiled_once(policy):
    from serving.settings import PROJECT_ROOT

    assert compiled(policy) is compiled(policy)
    again = parse_policy((PROJECT_ROOT / "models" / "policy.toml").read_text(encoding="utf-8"))
    assert again == policy and compiled(again) is not compiled(policy)  # an equal policy, its own program


def test_a_policy_error_is_invalid_input():
    with pytest.raises(InvalidInput, match=r"edited\.toml: not valid TOML"):
        parse_policy("version = ", source="edited.toml")


@pytest.mark.parametrize("load", [load_policy, load_config], ids=["policy", "config"])
def test_a_policy_or_config_path_that_is_no_small_text_file_is_refused_with_words(load, tmp_path):
    # Each would otherwise be read until memory ran out (a device), waited on for ever (a pipe) or
    # parsed as whatever it holds (a data file given by mistake).
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    large = tmp_path / "large.toml"
    large.write_bytes(b"# " + b"x" * SMALL_FILE_BYTES)
    binary = tmp_path / "data.toml"
    binary.write_bytes(b"PAR1\xff\xfe\x00")
    for path, words in (
        (Path("/dev/zero"), "not a regular file"),
        (pipe, "not a regular file"),
        (tmp_path, "not a regular file"),
        (tmp_path / "missing.toml", "No such file or directory"),
        (large, "larger than 1,048,576 bytes"),
        (binary, "not a text file (byte 4 is not UTF-8)"),
    ):
        with pytest.raises(InvalidInput, match=re.escape(f"{path}: ")) as caught:
            load(path)
        assert words in str(caught.value), (path, str(caught.value))


# ---- repair rules and list lifecycles (issue 9) --------------------------------------------------------


def test_repair_rules_say_what_can_be_repaired_when_and_on_what_evidence(policy):
    from datetime import date

    from models.policy import RepairRule, Unrepairable

    penalty = policy.repair_rule(event_type="infringement_penalty")
    assert isinstance(penalty, RepairRule) and penalty.after_months == 6 and penalty.basis
    assert penalty.possible_from(date(2025, 8, 31)) == date(2026, 2, 28)  # calendar months
    assert set(penalty.requires) <= set(policy.repair_requirements)
    assert policy.repair_rule(list_name="serious_violation").after_months == 12
    assert policy.repair_rule(list_name="untrustworthy").after_months == 6
    assert isinstance(policy.repair_rule(event_type="infringement_judgment"), Unrepairable)
    assert policy.repair_rule(event_type="patent_filed") is None  # nothing to repair
    assert policy.lifecycle.untrustworthy_management_years == 1
    assert policy.lifecycle.serious_violation_lapse_years == 3


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("untrustworthy_management_years = 1", "untrustworthy_management_years = 2", "features are built with"),
        ("serious_violation_lapse_years = 3", "serious_violation_lapse_years = 5", "retrained model"),
        (
            'requires = ["cause_removed"]\nbasis = "《企业信息公示',
            'requires = ["a_form"]\nbasis = "《企业信息公示',
            "a_form",
        ),
        ('event_types = ["annual_report_late"]', 'event_types = ["infringement_penalty"]', "two repair rules"),
        ('event_types = ["annual_report_late"]', 'event_types = ["no_such_type"]', "event catalogue"),
        ('list = "red"', 'list = "blue"', "list must be one of"),
        ('event_types = ["infringement_judgment", ', 'event_types = ["infringement_penalty", ', "unrepairable"),
        ("after_months = 12", "after_months = -1", "after_months"),
    ],
)
def test_an_inconsistent_repair_or_lifecycle_section_is_refused(old, new, message):
    from serving.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "models" / "policy.toml").read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(PolicyError, match=message):
        parse_policy(text.replace(old, new, 1), source="edited.toml")
