"""Training snapshots: outcomes recorded in the year after D, dates whose outcome window is complete."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from dateutil.relativedelta import relativedelta

from features.errors import InvalidInput
from features.snapshots import SNAPSHOTS, build_outcomes, build_snapshots, plan_snapshots, snapshot_dates

D = date(2022, 6, 30)


def test_outcome_window_is_recorded_dates_in_d_to_d_plus_12_months(history):
    ids = [history.entity() for _ in range(4)]
    history.event(ids[0], "infringement_penalty", D - timedelta(days=30), D)  # known at D: not the outcome
    history.event(ids[1], "infringement_penalty", D - timedelta(days=30), D + timedelta(days=1))
    history.event(ids[2], "infringement_judgment", D, D + relativedelta(months=12))
    history.event(ids[3], "infringement_penalty", D, D + relativedelta(months=12) + timedelta(days=1))
    history.event(ids[3], "complaint_received", D, D + timedelta(days=5))  # a signal is not adverse
    outcomes = build_outcomes(history.dataset(), D).set_index("entity_id")
    assert [outcomes.loc[i, "outcome"] for i in ids] == [0, 1, 1, 0]
    # the pretraining count: adverse and signal records in the same window (the complaint counts, the
    # penalty recorded a day after the window does not)
    assert [outcomes.loc[i, "outcome_records"] for i in ids] == [0, 1, 1, 1]


def test_the_record_count_counts_adverse_and_signal_records_not_activity(history):
    eid = history.entity()
    for code in ("complaint_received", "platform_takedown", "annual_report_late", "inspection_failed"):
        history.event(eid, code, D, D + timedelta(days=10))
    for code in ("patent_filed", "inspection_passed", "commitment_signed"):
        history.event(eid, code, D, D + timedelta(days=10))
    row = build_outcomes(history.dataset(), D).set_index("entity_id").loc[eid]
    assert (row["outcome"], row["outcome_records"]) == (1, 4)


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


def _sparse_dataset(**kwargs):
    from features.dataset import Dataset
    from features.synth_sparse import generate_sparse

    world = generate_sparse(1500, seed=2, **kwargs)
    return Dataset.from_frames(world.entities, world.events, world.lists)


def test_the_plan_skips_outcome_windows_that_fall_in_a_gap_and_says_why():
    ds = _sparse_dataset()  # no record at all in 2013-2016
    plan = plan_snapshots(ds, count=200)
    assert plan.dates and all(not date(2012, 1, 1) <= d <= date(2016, 9, 30) for d in plan.dates)
    reasons = dict(plan.skipped)
    assert "no record at all" in reasons[date(2014, 6, 30)]
    assert "under 80%" in reasons[date(2016, 6, 30)]  # a window only a quarter inside the data
    assert plan.dates[0] == date(2006, 12, 31)  # a year of history before the first date
    assert any(line.startswith("skipped 2012-12-31..2015-12-31") for line in plan.describe())


def test_a_stray_record_decades_before_the_rest_leaves_the_plan_as_it_was():
    # One record of 1950 (a legacy entry, a mistyped year) neither begins the history (the months before the
    # real data would count as a year of history) nor, with some 220 empty windows, sets "usual" records
    from features.dataset import Dataset
    from features.synth_sparse import generate_sparse

    world = generate_sparse(1500, seed=2)
    stray = world.events.iloc[[0]].assign(
        event_id="STRAY", occurred_on=date(1950, 3, 1), recorded_on=date(1950, 3, 2), event_type="inspection_passed"
    )
    events = pd.concat([stray, world.events], ignore_index=True)
    with_stray = plan_snapshots(Dataset.from_frames(world.entities, events, world.lists), count=200)
    assert with_stray.dates == plan_snapshots(_sparse_dataset(), count=200).dates
    assert with_stray.first_record == date(1950, 3, 1)


def test_a_gap_over_most_of_the_span_leaves_the_years_around_it_usable():
    # Records in 2006-2007 and 2023-2025 only: four of five candidate windows are empty, so "usual" comes
    # from the windows holding records rather than being nothing (which would refuse every date).
    plan = plan_snapshots(_sparse_dataset(gap_years=(2008, 2022)), count=200)
    assert plan.dates and plan.dates[-1] == date(2024, 12, 31)
    assert all(d < date(2008, 1, 1) or d >= date(2022, 12, 31) for d in plan.dates)
    assert "no record at all" in dict(plan.skipped)[date(2015, 6, 30)]


def test_the_plan_takes_the_latest_usable_dates_up_to_the_cap():
    ds = _sparse_dataset()
    plan = plan_snapshots(ds, count=6)
    quarter_ends = ["2023-09-30", "2023-12-31", "2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31"]
    assert plan.dates == [date.fromisoformat(d) for d in quarter_ends]
    assert any("raise --quarters" in reason for _, reason in plan.skipped)
    ended = plan_snapshots(ds, count=4, as_of_end=date(2019, 8, 1))
    assert ended.dates[-1] == date(2019, 6, 30) and len(ended.dates) == 4


def test_a_window_without_any_adverse_record_is_not_a_snapshot(history):
    eid = history.entity(registered_on=date(2015, 1, 1))
    for year in range(2016, 2024):
        history.event(eid, "inspection_passed", date(year, 5, 1))
    history.event(eid, "inspection_failed", date(2023, 5, 1))
    history.event(eid, "inspection_passed", date(2024, 6, 1))  # the data ends here
    plan = plan_snapshots(history.dataset(), count=50)
    assert plan.dates == [date(2022, 6, 30), date(2022, 9, 30), date(2022, 12, 31), date(2023, 3, 31)]
    assert all("no adverse record" in reason for d, reason in plan.skipped if d < date(2022, 6, 30))


def test_no_events_gives_no_plan(history):
    history.entity()
    plan = plan_snapshots(history.dataset())
    assert plan.dates == [] and plan.describe() == ["no usable as-of date"]


def test_dates_older_than_the_latest_sixteen_stay_within_the_row_budget():
    ds = _sparse_dataset()  # 1,500 entities, usable quarter ends 2006-2011 and 2016-2024
    everything = plan_snapshots(ds, count=200)
    assert len(everything.dates) > 20
    registered = pd.to_datetime(ds.con.execute("SELECT registered_on FROM entities").df()["registered_on"])

    def entities(d):
        return int((registered <= pd.Timestamp(d)).sum())

    budget = 20 * 1500
    rows = plan_snapshots(ds, count=200, max_rows=budget)
    # the latest 16 always; older dates, newest first, only while the rows (entities registered by each
    # date) stay within the budget
    kept = len(rows.dates)
    assert 16 < kept < len(everything.dates) and rows.dates == everything.dates[-kept:]
    total = sum(entities(d) for d in rows.dates)
    assert total <= budget < total + entities(everything.dates[-kept - 1])
    assert any("raise --max-rows" in reason for _, reason in rows.skipped)
    tight = plan_snapshots(ds, count=200, max_rows=0)
    assert tight.dates == everything.dates[-16:]


def _growing_registry(gap_years):
    """A sparse world whose registry grows 15 % a year from 2016 on with entities that never leave a record
    (new registrations that never file, closed ones never deregistered): records per registered entity
    fall year after year."""
    import numpy as np

    from features.dataset import Dataset
    from features.synth_sparse import generate_sparse

    world = generate_sparse(1500, seed=2, gap_years=gap_years)
    silent = generate_sparse(6000, seed=3, gap_years=None).entities
    years = np.arange(2016, 2025)
    per_year = np.diff(np.round(1500 * 1.15 ** (years - 2015)).astype(int), prepend=0)
    per_year[0] -= 1500
    day = np.concatenate(
        [pd.date_range(f"{y}-01-01", f"{y}-12-31", periods=k) for y, k in zip(years, per_year, strict=True)]
    )
    silent = silent.iloc[: len(day)].assign(registered_on=pd.DatetimeIndex(day).date)
    entities = pd.concat([world.entities, silent], ignore_index=True)
    return Dataset.from_frames(entities, world.events, world.lists)


def test_a_registry_growing_faster_than_its_records_keeps_its_latest_dates():
    # Measured per registered entity alone, every window after 2016 was "under 80 %" and the plan ended in
    # 2016; the windows' records do not fall, and the recent years are the present the model is for.
    plan = plan_snapshots(_growing_registry(gap_years=None), count=200)
    assert plan.dates[-1] == date(2024, 12, 31)
    assert not [d for d, reason in plan.skipped if "under 80%" in reason and d >= date(2016, 1, 1)]
    # a gap still thins the windows around it against both: they are skipped as before
    gapped = plan_snapshots(_growing_registry(gap_years=(2013, 2016)), count=200)
    assert gapped.dates[-1] == date(2024, 12, 31)
    assert "under 80%" in dict(gapped.skipped)[date(2016, 6, 30)]
    assert all(not date(2012, 1, 1) <= d <= date(2016, 9, 30) for d in gapped.dates)


def test_the_plan_says_what_it_left_out_on_either_side_of_the_dates_it_used(history):
    # One adverse record (2019) in a yearly record of 2011-2024: the dates whose window holds it are used,
    # and the dates left out before and after them are two runs, not one that spans the dates used.
    eid = history.entity(registered_on=date(2010, 1, 1))
    for year in range(2011, 2025):
        history.event(eid, "inspection_passed", date(year, 5, 1))
    history.event(eid, "inspection_failed", date(2019, 5, 1))
    plan = plan_snapshots(history.dataset(), count=50)
    assert plan.dates == [date(2018, 6, 30), date(2018, 9, 30), date(2018, 12, 31), date(2019, 3, 31)]
    lines = plan.describe()
    assert lines[0] == "using 4 quarterly as-of dates 2018-06-30..2019-03-31"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "skipped 2012-06-30..2018-03-31",
        "skipped 2019-06-30..2023-03-31",
    ]
    assert plan.skipped_by_reason() == [("no adverse record in its outcome window", len(plan.skipped))]
