"""Point-in-time features: what was known at D, and nothing else, decides every feature at D."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import (
    _USES,
    _code_positions,
    _EventColumns,
    _ordered_sums,
    _scatter,
    _windowed_counts,
    _windowed_latest,
    _windowed_sums,
    build_features,
    build_features_from_frames,
    model_matrix,
)
from features.catalogue import CATALOGUE, FEATURE_NAMES, FEATURES, Source
from features.dataset import Dataset, load_dataset
from features.schema import ADVERSE_CODES, EVENT_CODES, LIST_NAMES
from tests.conftest import History

D = date(2022, 6, 30)


def row(history: History, as_of: date = D, entity: int = 0) -> pd.Series:
    frame = build_features(history.dataset(), as_of)
    return frame.set_index("entity_id").loc[history.entities[entity]["entity_id"]]


def test_columns_follow_the_catalogue(history):
    history.entity()
    frame = build_features(history.dataset(), D)
    assert list(frame.columns) == ["entity_id", "as_of", *FEATURE_NAMES]
    assert frame["as_of"].iloc[0] == D
    matrix = model_matrix(frame)
    assert list(matrix.columns) == FEATURE_NAMES
    assert isinstance(matrix["industry"].dtype, pd.CategoricalDtype)


def test_windows_count_by_occurrence_and_bounds_are_exact(history):
    eid = history.entity()
    history.event(eid, "infringement_penalty", D - relativedelta(months=12))  # just outside 12m
    history.event(eid, "infringement_penalty", D - relativedelta(months=12) + timedelta(days=1))
    history.event(eid, "infringement_penalty", D, amount=20_000.0)  # recorded on D: known at D
    history.event(eid, "complaint_received", D - timedelta(days=10), quantity=4)
    r = row(history)
    assert r["adverse_3m"] == 1
    assert r["adverse_12m"] == 2
    assert r["adverse_36m"] == 3
    assert r["infringement_penalty_36m"] == 3
    assert r["fines_36m"] == 20_000.0
    assert r["complaint_received_3m"] == 4
    assert r["years_since_adverse"] == 0.0
    assert r["adverse_types_36m"] == 1


def test_the_inspection_year_counts_by_calendar_year_and_knows_the_month(history):
    eid = history.entity()
    history.event(eid, "inspection_passed", date(2021, 1, 1))  # first day of last year
    history.event(eid, "inspection_failed", date(2021, 12, 31))  # last day of last year
    history.event(eid, "inspection_failed", date(2020, 12, 31))  # the year before: in neither
    history.event(eid, "inspection_passed", date(2022, 1, 1))  # this year
    history.event(eid, "inspection_failed", D)  # this year, on D
    history.event(eid, "inspection_failed", D - timedelta(days=5), recorded_on=D + timedelta(days=1))  # not known
    history.event(eid, "inspection_passed", date(2021, 3, 1), repaired_on=D)  # repaired by D: gone
    r = row(history)
    assert (r["inspection_failed_this_year"], r["inspection_passed_this_year"]) == (1, 1)
    assert (r["inspection_failed_last_year"], r["inspection_passed_last_year"]) == (1, 1)
    assert r["as_of_month"] == 6
    # On New Year's Eve the whole year is this year's; a day later it is last year's.
    eve = row(history, date(2021, 12, 31))
    assert eve[["inspection_failed_this_year", "inspection_passed_this_year", "as_of_month"]].tolist() == [1, 2, 12]
    new_year = row(history, date(2022, 1, 1))
    assert new_year[["inspection_failed_last_year", "inspection_passed_last_year"]].tolist() == [1, 2]
    assert new_year[["inspection_passed_this_year", "inspection_failed_this_year", "as_of_month"]].tolist() == [1, 0, 1]


def test_entities_registered_after_the_date_are_left_out(history):
    history.entity(registered_on=D)
    history.entity(registered_on=D + timedelta(days=1))
    frame = build_features(history.dataset(), D)
    assert frame["entity_id"].tolist() == [history.entities[0]["entity_id"]]
    assert frame["age_years"].iloc[0] == 0.0


def test_a_record_repaired_on_or_before_the_date_has_no_effect(history):
    eid = history.entity()
    baseline = row(history)
    history.event(eid, "abnormal_patent_filing", date(2022, 1, 5), repaired_on=D, quantity=40)
    assert row(history).equals(baseline)
    # Repaired only after D: it still counted at D.
    history.events[-1]["repaired_on"] = D + timedelta(days=1)
    r = row(history)
    assert r["abnormal_patent_filing_12m"] == 1
    assert r["adverse_12m"] == 1


def test_serious_violation_entry_lapses_three_years_after_entry(history):
    eid = history.entity()
    entered = date(2019, 7, 1)
    history.listing(eid, "serious_violation", entered)
    assert row(history, entered)["on_serious_violation_list"]
    assert row(history, entered + relativedelta(years=3) - timedelta(days=1))["on_serious_violation_list"]
    assert not row(history, entered + relativedelta(years=3))["on_serious_violation_list"]
    assert not row(history, entered - timedelta(days=1))["on_serious_violation_list"]


def test_list_removal_and_other_lists_do_not_lapse(history):
    eid = history.entity()
    history.listing(eid, "untrustworthy", D - timedelta(days=200))  # no removal, within its year: in force
    history.listing(eid, "abnormal_operation", date(2021, 1, 1), removed_on=D)  # removed on D: not in force
    history.listing(eid, "red", date(2015, 1, 1), removed_on=D + timedelta(days=1))  # red never lapses
    lapsed = history.entity()
    history.listing(lapsed, "untrustworthy", date(2015, 3, 1))  # no removal, its management period long over
    r = row(history)
    assert r["on_untrustworthy_list"]
    assert not r["on_abnormal_operation_list"]
    assert r["on_red_list"]
    assert not row(history, entity=1)["on_untrustworthy_list"]


def test_red_list_entries_count_every_entry_made_by_d_in_force_or_ended(history):
    eid = history.entity(registered_on=date(2010, 1, 1))
    history.listing(eid, "red", date(2015, 1, 1), removed_on=date(2018, 1, 1))  # ran its term
    history.listing(eid, "red", date(2019, 1, 1), removed_on=D)  # ended on D
    history.listing(eid, "red", D + timedelta(days=1))  # made after D: not yet
    history.listing(eid, "untrustworthy", D - timedelta(days=30))  # another list
    r = row(history)
    assert r["red_list_entries"] == 2
    assert not r["on_red_list"]
    assert row(history, date(2016, 6, 30))["red_list_entries"] == 1
    assert row(history, date(2014, 12, 31))["red_list_entries"] == 0
    assert row(history, D + timedelta(days=1))["red_list_entries"] == 3


def test_empty_lists_and_no_events(history):
    history.entity()
    r = row(history)
    assert not r[[f.name for f in CATALOGUE if f.source == "lists"]].any()
    assert r["adverse_all"] == 0
    assert r["years_since_adverse"] == 10.0
    assert pd.isna(r["grant_ratio_36m"])


def test_csv_and_parquet_give_identical_features(history, tmp_path):
    a, b = history.entity(online_seller=True), history.entity(registered_capital=None, kind="agency", industry="L")
    history.event(a, "patent_filed", date(2021, 3, 1), quantity=30)
    history.event(a, "patent_granted", date(2022, 1, 1), quantity=12)
    history.event(b, "agency_misconduct", date(2021, 5, 1), date(2021, 9, 1), amount=50_000.5)
    history.event(b, "infringement_judgment", date(2021, 5, 1), date(2022, 9, 1))
    history.listing(b, "untrustworthy", date(2021, 9, 1), basis=None)
    history.write(tmp_path / "p", fmt="parquet")
    history.write(tmp_path / "c", fmt="csv")
    from_parquet = build_features(load_dataset(tmp_path / "p"), D)
    from_csv = build_features(load_dataset(tmp_path / "c"), D)
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    assert from_parquet.set_index("entity_id").loc[b, "agency_misconduct_36m"] == 1
    assert from_parquet.set_index("entity_id").loc[b, "infringement_judgment_36m"] == 0  # recorded after D


def test_monotone_feature_directions_are_consistent_with_more_violations(history):
    # One more unrepaired violation never moves a +1 feature down or a -1 feature up.
    eid = history.entity()
    history.event(eid, "infringement_penalty", date(2020, 1, 1), amount=10_000.0)
    before = row(history)
    history.event(eid, "abnormal_patent_filing", date(2022, 3, 1))
    after = row(history)
    for f in CATALOGUE:
        if f.direction == 1:
            assert after[f.name] >= before[f.name], f.name
        elif f.direction == -1:
            assert after[f.name] <= before[f.name], f.name


def test_in_memory_path_matches_the_dataset_path_on_a_simulated_world():
    from features.synth import generate

    world = generate(600, seed=11)
    ds = Dataset.from_frames(world.entities, world.events, world.lists)
    for as_of in (date(2019, 3, 31), date(2024, 12, 31)):
        expected = build_features(ds, as_of)
        got = build_features_from_frames(world.entities, world.events, world.lists, as_of)
        pd.testing.assert_frame_equal(got, expected)


def test_reason_text_is_bilingual():
    zh, en = FEATURES["abnormal_patent_filing_12m"].describe(3)
    assert zh == "近12个月非正常专利申请 3次"
    assert en == "abnormal patent filings found in the last 12 months: 3"
    zh, en = FEATURES["on_serious_violation_list"].describe(True)
    assert zh.endswith("是") and en.endswith("yes")


# Property: nothing recorded after D changes any feature at D.
_day = st.integers(0, 3650).map(lambda n: date(2016, 1, 1) + timedelta(days=n))


@st.composite
def _events(draw, entity_count: int, after: date | None = None):
    out = []
    for _ in range(draw(st.integers(0, 12))):
        occurred = draw(_day)
        lag = draw(st.integers(0, 400))
        recorded = occurred + timedelta(days=lag)
        if after is not None and recorded <= after:
            recorded = after + timedelta(days=draw(st.integers(1, 500)))
            occurred = min(occurred, recorded)
        repaired = draw(st.one_of(st.none(), st.integers(0, 900).map(lambda n, r=recorded: r + timedelta(days=n))))
        out.append(
            {
                "entity": draw(st.integers(0, entity_count - 1)),
                "event_type": draw(st.sampled_from(EVENT_CODES)),
                "occurred_on": occurred,
                "recorded_on": recorded,
                "quantity": draw(st.integers(1, 50)),
                "amount": draw(st.one_of(st.none(), st.floats(0, 1e6))),
                "repaired_on": repaired,
            }
        )
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_nothing_recorded_after_the_date_changes_a_feature(data):
    as_of = data.draw(_day)
    h = History()
    ids = [h.entity(registered_on=date(2014, 1, 1)) for _ in range(3)]
    for e in data.draw(_events(3)):
        if e["recorded_on"] <= as_of:
            h.event(ids[e.pop("entity")], e.pop("event_type"), e.pop("occurred_on"), e.pop("recorded_on"), **e)
    for _ in range(data.draw(st.integers(0, 3))):
        entered = data.draw(_day)
        if entered <= as_of:
            h.listing(ids[data.draw(st.integers(0, 2))], data.draw(st.sampled_from(LIST_NAMES)), entered)
    before = build_features(h.dataset(), as_of)
    for e in data.draw(_events(3, after=as_of)):
        h.event(ids[e.pop("entity")], e.pop("event_type"), e.pop("occurred_on"), e.pop("recorded_on"), **e)
    for _ in range(data.draw(st.integers(0, 3))):
        entered = as_of + timedelta(days=data.draw(st.integers(1, 900)))
        h.listing(ids[data.draw(st.integers(0, 2))], data.draw(st.sampled_from(LIST_NAMES)), entered)
    h.entity(registered_on=as_of + timedelta(days=1))  # registered later: never in the table at as_of
    after = build_features(h.dataset(), as_of)
    pd.testing.assert_frame_equal(before, after)
    frames = h.frames()
    in_memory = build_features_from_frames(frames["entities"], frames["events"], frames["lists"], as_of)
    pd.testing.assert_frame_equal(in_memory, after)


def test_adverse_codes_are_the_outcome():
    assert set(ADVERSE_CODES) == {
        "abnormal_patent_filing",
        "malicious_trademark_filing",
        "infringement_penalty",
        "counterfeit_patent_penalty",
        "infringement_judgment",
        "agency_misconduct",
        "false_materials",
        "commitment_breach",
        "refusal_to_comply",
        "inspection_failed",
    }


# ---- the compiled kernels against the numpy expressions they replace ----------------------------------


def _window(ago, lower, upper):
    return (ago >= lower) & ((upper < 0) | (ago < upper))


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.integers(-40, 4_000),
            st.sampled_from([0.0, 1.0, 2.0, 0.1, 0.2, 0.3, 1e-9, 1e9, 12_345.67, 5e-324]),
        ),
        max_size=60,
    ),
    lower=st.integers(0, 400),
    span=st.integers(-1, 4_000),
)
def test_the_compiled_kernels_give_the_numpy_answers_bit_for_bit(records, lower, span):
    n = 9  # entity 8 never has a record
    idx = np.array([r[0] for r in records], dtype=np.int32)
    ago = np.array([r[1] for r in records], dtype=np.int32)
    values = np.array([r[2] for r in records], dtype=np.float64)
    upper = -1 if span < 0 else lower + span
    inside = _window(ago, lower, upper)

    counts = np.bincount(idx[inside], minlength=n).astype(np.float64)
    np.testing.assert_array_equal(_windowed_counts(idx, ago, lower, upper, n), counts)
    sums = np.bincount(idx[inside], weights=values[inside], minlength=n)
    assert _windowed_sums(idx, ago, values, lower, upper, n).tobytes() == sums.tobytes()
    latest = np.full(n, np.inf)
    np.minimum.at(latest, idx[inside], ago[inside])
    np.testing.assert_array_equal(_windowed_latest(idx, ago, lower, upper, n), latest)
    order = np.lexsort((values, idx))
    ordered = np.bincount(idx[order], weights=values[order], minlength=n)
    assert _ordered_sums(idx, values, n).tobytes() == ordered.tobytes()


@settings(max_examples=50, deadline=None)
@given(codes=st.lists(st.integers(0, len(EVENT_CODES) - 1), max_size=80))
def test_records_partitioned_by_type_keep_their_order_within_a_type(codes):
    code = np.array(codes, dtype=np.uint8)
    bounds, positions = _code_positions(code, len(EVENT_CODES))
    order = np.argsort(code, kind="stable")
    np.testing.assert_array_equal(
        bounds, np.concatenate([[0], np.cumsum(np.bincount(code, minlength=len(EVENT_CODES)))])
    )
    values = np.arange(len(code), dtype=np.float64) * 1.5
    np.testing.assert_array_equal(_scatter(values, positions), values[order])


def test_a_pass_keeps_only_the_aggregates_still_to_be_asked_for():
    """Each per-type aggregate is dropped after its last use: a million entities' pass holds the few that
    are shared, not the hundred or so it computes (8 MB each at a million entities)."""
    columns = {
        "idx": np.zeros(1, dtype=np.int32),
        "code": np.zeros(1, dtype=np.uint8),
        "ago": np.full(1, 30, dtype=np.int32),
        "quantity": np.ones(1),
        "amount": np.zeros(1),
    }
    aggregates = _EventColumns(columns, 1, D)
    held = 0
    for f in CATALOGUE:
        if f.source not in (Source.ENTITY, Source.LISTS, Source.RELATIONS):
            aggregates.evaluate(f.spec)
            held = max(held, len(aggregates._cache))
    assert 0 < held <= sum(uses > 1 for uses in _USES.values()) < len(_USES) / 2
    assert not aggregates._cache
