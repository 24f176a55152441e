"""Training snapshots: outcomes recorded in the year after D, dates whose outcome window is complete."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from features.errors import InvalidInput
from features.snapshots import SNAPSHOTS, build_outcomes, build_snapshots, snapshot_dates

D = date(2022, 6, 30)


def test_outcome_window_is_recorded_dates_in_d_to_d_plus_12_months(history):
    ids = [history.entity() for _ in range(4)]
    history.event(ids[0], "infringement_penalty", D - timedelta(days=30), D)  # known at D: not the outcome
    history.event(ids[1], "infringement_penalty", D - timedelta(days=30), D + timedelta(days=1))
    history.event(ids[2], "infringement_judgment", D, D + relativedelta(months=12))
    history.event(ids[3], "infringement_penalty", D, D + relativedelta(months=12) + timedelta(days=1))
    history.event(ids[3], "complaint_received", D, D + timedelta(days=5))  # a signal is not adverse
    outcomes = build_outcomes(history.dataset(), D).set_index("entity_id")["outcome"]
    assert [outcomes[i] for i in ids] == [0, 1, 1, 0]


def test_snapshots_only_use_dates_with_a_complete_outcome_window(history):
    eid = history.entity(registered_on=date(2016, 1, 1))
    history.event(eid, "patent_filed", date(2016, 2, 1))
    history.event(eid, "infringement_penalty", date(2023, 11, 1), date(2023, 12, 31))
    ds = history.dataset()
    dates = snapshot_dates(ds, count=4)
    assert dates == [date(2022, 3, 31), date(2022, 6, 30), date(2022, 9, 30), date(2022, 12, 31)]
    snaps = build_snapshots(ds, dates)
    assert len(snaps) == 4
    assert snaps["outcome"].tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="needs outcomes up to 2024-03-31"):
        build_snapshots(ds, [date(2023, 3, 31)])


def test_snapshot_dates_end_at_as_of_end_and_default_to_sixteen_quarters(history):
    eid = history.entity(registered_on=date(2010, 1, 1))
    history.event(eid, "patent_filed", date(2010, 2, 1))
    history.event(eid, "infringement_penalty", date(2023, 11, 1), date(2023, 12, 31))
    ds = history.dataset()
    latest = snapshot_dates(ds)
    assert len(latest) == SNAPSHOTS == 16
    assert latest[-1] == date(2022, 12, 31) and latest[0] == date(2019, 3, 31)
    assert snapshot_dates(ds, as_of_end=date(2021, 8, 15), count=3) == [
        date(2020, 12, 31),
        date(2021, 3, 31),
        date(2021, 6, 30),
    ]
    # an as_of_end past the last complete outcome window changes nothing
    assert snapshot_dates(ds, as_of_end=date(2030, 1, 1)) == latest


def test_snapshot_dates_start_at_the_first_registration(history):
    eid = history.entity(registered_on=date(2021, 5, 1))
    history.event(eid, "infringement_penalty", date(2023, 11, 1), date(2023, 12, 31))
    quarter_ends = ["2021-06-30", "2021-09-30", "2021-12-31", "2022-03-31", "2022-06-30", "2022-09-30", "2022-12-31"]
    assert snapshot_dates(history.dataset(), count=8) == [date.fromisoformat(d) for d in quarter_ends]


def test_a_date_without_its_whole_outcome_window_is_invalid_input(history):
    eid = history.entity(registered_on=date(2016, 1, 1))
    history.event(eid, "infringement_penalty", date(2023, 11, 1), date(2023, 12, 31))
    with pytest.raises(InvalidInput, match="needs outcomes up to"):
        build_snapshots(history.dataset(), [D + timedelta(days=365)])
