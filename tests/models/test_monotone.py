"""One more unrepaired violation never lowers a score (the monotone constraints from the catalogue)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.catalogue import FEATURES
from features.schema import ADVERSE_CODES
from tests.models.factories import feature_frame

# Every adverse type, failed inspections included: only passed inspections refresh
# ``years_since_clean_inspection`` or count in ``inspection_passed_this_year`` / ``_last_year`` (free
# directions), so an adverse record touches constrained features only.
MONOTONE_TYPES = list(ADVERSE_CODES)
BASE = feature_frame(300, seed=21).drop(columns=["outcome"])


def one_more_violation(rows: pd.DataFrame, code: str, amount: float) -> pd.DataFrame:
    """The features after one more unrepaired violation of type ``code``, occurred and recorded today."""
    out = rows.copy()
    for window in ("3m", "12m", "24m", "36m", "all"):
        out[f"adverse_{window}"] += 1
    first_of_type = out[f"{code}_36m"] == 0
    out[f"{code}_36m"] += 1
    if f"{code}_12m" in out.columns:
        out[f"{code}_12m"] += 1
    out["adverse_types_36m"] += first_of_type.astype("int64")
    out["years_since_adverse"] = 0.0
    out["adverse_decayed"] += 1.0  # a record of today has its full weight
    if code == "inspection_failed":
        out["years_since_failed_inspection"] = 0.0
        out["inspection_failed_this_year"] += 1
    out["fines_36m"] += amount
    return out


def test_every_catalogue_direction_is_a_lightgbm_constraint(scorer):
    constraints = scorer.booster.params.get("monotone_constraints") or scorer.booster.dump_model().get(
        "monotone_constraints"
    )
    assert list(constraints) == [FEATURES[name].direction for name in scorer.feature_names]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.integers(0, len(BASE) - 1), min_size=1, max_size=20, unique=True),
    code=st.sampled_from(MONOTONE_TYPES),
    amount=st.sampled_from([0.0, 5_000.0, 250_000.0]),
)
def test_one_more_violation_never_lowers_the_score(scorer, rows, code, amount):
    before = BASE.iloc[rows]
    after = one_more_violation(before, code, amount)
    assert (scorer.predict_proba(after) >= scorer.predict_proba(before)).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.integers(0, len(BASE) - 1), min_size=1, max_size=20, unique=True),
    listing=st.sampled_from(["on_untrustworthy_list", "on_serious_violation_list", "on_abnormal_operation_list"]),
)
def test_entering_a_negative_list_never_lowers_the_score(scorer, rows, listing):
    before = BASE.iloc[rows]
    after = before.assign(**{listing: True})
    assert (scorer.predict_proba(after) >= scorer.predict_proba(before)).all()


def test_through_the_feature_builder(scorer, history):
    """Histories -> features -> scores: adding a recorded violation to each entity never lowers its score."""
    as_of = date(2024, 12, 31)
    rng = np.random.default_rng(4)
    ids = []
    for i in range(12):
        entity = history.entity(registered_on=date(2010 + i % 12, 1, 1), online_seller=bool(i % 2))
        ids.append(entity)
        for _ in range(i % 4):
            day = as_of - timedelta(days=int(rng.integers(30, 900)))
            history.event(entity, str(rng.choice(MONOTONE_TYPES)), day, amount=1000.0)
        if i % 3 == 0:
            history.event(entity, "complaint_received", as_of - timedelta(days=40), quantity=2)
    frames = history.frames()
    from features.dataset import Dataset

    before = build_features(Dataset.from_frames(**frames), as_of)
    for k, entity in enumerate(ids):
        history.event(entity, MONOTONE_TYPES[k % len(MONOTONE_TYPES)], as_of - timedelta(days=10), amount=2000.0)
    after = build_features(Dataset.from_frames(**history.frames()), as_of)
    assert list(before["entity_id"]) == list(after["entity_id"])
    assert (scorer.predict_proba(after) >= scorer.predict_proba(before)).all()
    assert (after["adverse_3m"] == before["adverse_3m"] + 1).all()
