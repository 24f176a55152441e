"""The monthly report: drift flagged where it was injected, honest rates, estimates that track matured
outcomes, deterministic bytes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.columns import feature_columns
from models.monitoring import Reference
from models.report import MonthInputs, build_report, render_html, write_report
from tests.models.factories import feature_frame

AS_OF = date(2025, 6, 30)


def _month(trained, policy, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    scored = trained.scorer.score(frame, policy, details=False)
    rng = np.random.default_rng(seed)
    return frame.assign(
        score=scored["score"].to_numpy(),
        tier=scored["tier"].to_numpy(),
        rules=scored["rules"].to_numpy(),
        region=rng.choice(["210600", "410100"], len(frame)),
        kind=np.where(frame["is_agency"], "agency", "enterprise"),
    )


@pytest.fixture(scope="module")
def inputs(trained, policy):
    reference = Reference.from_dict(trained.scorer.metadata["reference"])
    return reference, policy


def _inputs(trained, reference, run, **extra) -> MonthInputs:
    return MonthInputs(
        as_of=AS_OF, run_id=7, model_version="3", policy_version="p", reference=reference, run=run, **extra
    )


def test_a_month_like_training_flags_nothing_and_a_drifted_one_flags_what_drifted(trained, inputs):
    reference, policy = inputs
    calm = _month(trained, policy, feature_frame(6000, seed=21), seed=1)
    assert build_report(_inputs(trained, reference, calm), n_boot=0)["drift_flagged"] == []
    drifted = feature_frame(6000, seed=22)
    drifted["industry"] = pd.Categorical(
        np.where(np.arange(6000) % 2, "F", "I"), categories=drifted["industry"].cat.categories
    )
    for name in ("complaint_received_3m", "complaint_received_12m", "complaints_decayed"):
        drifted[name] = drifted[name] * 3 + 2  # a changed event rate
    report = build_report(_inputs(trained, reference, _month(trained, policy, drifted, seed=2)), n_boot=0)
    flagged = set(report["drift_flagged"])
    assert {"industry", "complaint_received_12m"} <= flagged
    assert flagged <= {"industry", "complaint_received_3m", "complaint_received_12m", "complaints_decayed", "score"}


def test_random_draw_rates_sit_beside_the_predicted_rates_and_targeted_ones_are_left_out(trained, inputs):
    reference, policy = inputs
    frame = feature_frame(8000, seed=23)
    run = _month(trained, policy, frame, seed=3)
    rng = np.random.default_rng(4)
    ratio = run["tier"].map({"A": 0.05, "B": 0.1, "C": 0.35, "D": 0.8}).to_numpy()
    chosen = rng.random(len(run)) < ratio
    inspections = pd.DataFrame(
        {
            "entity_id": run["entity_id"][chosen],
            "tier": run["tier"][chosen],
            "finding": frame["outcome"][chosen],
            "inclusion_probability": ratio[chosen],
            "random": True,
        }
    )
    targeted = inspections.head(30).assign(random=False, finding=1)
    report = build_report(_inputs(trained, reference, run, inspections=pd.concat([inspections, targeted])), n_boot=0)
    rates = pd.DataFrame(report["violation_rates"]).set_index("tier")
    assert report["targeted_excluded"] == 30
    truth = frame.assign(tier=run["tier"]).groupby("tier")["outcome"].mean()
    for tier in truth.index:
        if rates.loc[tier, "inspected"] >= 30:
            assert rates.loc[tier, "low"] <= truth[tier] <= rates.loc[tier, "high"], tier


def test_the_estimate_before_outcomes_tracks_the_realised_rate(trained, inputs):
    reference, policy = inputs
    frame = feature_frame(10_000, seed=24)
    run = _month(trained, policy, frame, seed=5)
    matured = run.assign(outcome=frame["outcome"].to_numpy())
    report = build_report(_inputs(trained, reference, run, matured=matured), n_boot=0)
    past = pd.DataFrame(report["matured"]).set_index("tier")
    assert past.loc["all", "expected_rate"] == pytest.approx(past.loc["all", "realised_rate"], abs=0.02)
    assert past.loc["all", "expected_auc"] == pytest.approx(past.loc["all", "realised_auc"], abs=0.03)


def test_the_report_is_the_same_bytes_for_the_same_inputs(trained, inputs, tmp_path):
    reference, policy = inputs
    run = _month(trained, policy, feature_frame(2000, seed=25), seed=6)
    previous = run[["entity_id"]].assign(tier=np.roll(run["tier"].to_numpy(), 1))
    month = _inputs(trained, reference, run, previous=previous, provincial={"objections_decided": 3})
    first = write_report(build_report(month, n_boot=50), tmp_path / "a")
    second = write_report(build_report(month, n_boot=50), tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    page = first[1].read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "tier migration" in page and "objections_decided" in page
    assert "<script" not in page and "http" not in page.split("<svg", 1)[0]
    assert render_html(build_report(month, n_boot=0)).startswith("<!doctype html>")
    assert "data_caveat" not in build_report(month, n_boot=0) and "data caveat" not in page
    # A run scored long after its delivery's last record says so at the top, before any drift is read.
    stale = _inputs(trained, reference, run, data_caveat="the delivery's last record is of 2025-06-30, 184 days <")
    report = build_report(stale, n_boot=0)
    assert report["data_caveat"].startswith("the delivery's last record")
    assert "data caveat</strong>: the delivery&#x27;s last record is of 2025-06-30, 184 days &lt;" in render_html(
        report
    )
    assert "model_caveat" not in report and "model caveat" not in page
    # A run of a model that failed its promotion gate says so too, and first: it bears on every figure.
    failed = _inputs(trained, reference, run, data_caveat=stale.data_caveat, model_caveat="model version 1 failed …")
    report = build_report(failed, n_boot=0)
    assert report["model_caveat"] == "model version 1 failed …"
    page = render_html(report)
    assert page.index("model caveat</strong>: model version 1 failed …") < page.index("data caveat</strong>")


def test_rule_rates_are_compared_with_training(trained, inputs):
    reference, policy = inputs
    run = _month(trained, policy, feature_frame(3000, seed=26), seed=7)
    rates = {r["rule"]: r for r in build_report(_inputs(trained, reference, run), n_boot=0)["rule_rates"]}
    fired = policy.fired(feature_columns(run))
    code = policy.rules[0].code
    assert rates[code]["rate"] == pytest.approx(fired[:, 0].mean())
