"""The one-history fast path (``features.single``) gives ``build_features_from_frames``'s row, bit for bit.

Differential tests on random valid histories and on hand-made edge cases: no events, events recorded or
occurred after the date, repairs on and after it, removed and lapsed list entries (serious-violation and
untrustworthy, 29 February entries), quantities above one, missing amounts and capital, an entity
registered after the date.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features_from_frames
from features.schema import EVENT_CODES, INDUSTRIES, KINDS, LIST_NAMES, MAX_LOCATIONS
from features.single import feature_values, single_features
from tests.conftest import History

_START = date(1995, 1, 1)
_day = st.integers(0, 11_500).map(lambda n: _START + timedelta(days=n))
# Several records of one type in one window, so that summation order would show (amounts, decayed weights).
_CROWDED = ("infringement_penalty", "complaint_received")
_amount = st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False), st.integers(0, 10**6).map(lambda n: n / 100))


def as_records(h: History) -> tuple[SimpleNamespace, list[SimpleNamespace], list[SimpleNamespace]]:
    return (
        SimpleNamespace(**h.entities[0]),
        [SimpleNamespace(**row) for row in h.events],
        [SimpleNamespace(**row) for row in h.lists],
    )


def assert_same_row(h: History, as_of: date) -> pd.DataFrame:
    frames = h.frames()
    expected = build_features_from_frames(frames["entities"], frames["events"], frames["lists"], as_of)
    got = single_features(*as_records(h), as_of)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    return got


@st.composite
def histories(draw) -> tuple[History, date]:
    as_of = draw(st.one_of(_day, st.sampled_from([date(2024, 2, 29), date(2025, 2, 28), date(2023, 12, 31)])))
    h = History()
    entity = h.entity(
        kind=draw(st.sampled_from(KINDS)),
        industry=draw(st.sampled_from(INDUSTRIES)),
        registered_on=draw(st.one_of(_day, st.just(as_of))),
        registered_capital=draw(st.one_of(st.none(), st.floats(0, 1e12, allow_nan=False))),
        online_seller=draw(st.booleans()),
        locations=draw(st.one_of(st.none(), st.integers(1, MAX_LOCATIONS))),
    )
    near = st.integers(-1200, 400).map(lambda n: as_of + timedelta(days=n))
    for _ in range(draw(st.integers(0, 25))):
        occurred = draw(st.one_of(_day, near))
        recorded = occurred + timedelta(days=draw(st.integers(0, 500)))
        repaired = draw(st.one_of(st.none(), st.just(as_of), st.integers(0, 900).map(lambda n: timedelta(days=n))))
        if isinstance(repaired, timedelta):
            repaired = recorded + repaired
        elif repaired is not None and repaired < recorded:
            repaired = recorded
        h.event(
            entity,
            draw(st.one_of(st.sampled_from(EVENT_CODES), st.sampled_from(_CROWDED))),
            occurred,
            recorded,
            quantity=draw(st.one_of(st.just(1), st.integers(1, 10_000_000))),
            amount=draw(_amount),
            repaired_on=repaired,
        )
    for _ in range(draw(st.integers(0, 6))):
        entered = draw(st.one_of(_day, near, st.sampled_from([date(2020, 2, 29), date(2021, 2, 28)])))
        removed = draw(st.one_of(st.none(), st.integers(0, 1500).map(lambda n, e=entered: e + timedelta(days=n))))
        h.listing(entity, draw(st.sampled_from(LIST_NAMES)), entered, removed)
    return h, as_of


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_random_histories_give_the_batch_row(case):
    h, as_of = case
    assert_same_row(h, as_of)


def test_edge_cases_give_the_batch_row_and_the_rule():
    as_of = date(2024, 2, 29)
    h = History()
    e = h.entity(registered_on=date(2020, 2, 29), kind="agency", registered_capital=None, industry="M")
    h.event(e, "infringement_penalty", date(2023, 5, 1), amount=None)
    h.event(e, "infringement_penalty", date(2023, 6, 1), amount=0.1)
    h.event(e, "infringement_penalty", date(2023, 7, 1), amount=0.2)
    h.event(e, "counterfeit_patent_penalty", date(2023, 8, 1), repaired_on=as_of)  # repaired on D: gone
    h.event(e, "counterfeit_patent_penalty", date(2023, 9, 1), repaired_on=as_of + timedelta(days=1))
    h.event(e, "false_materials", date(2024, 2, 1), date(2024, 3, 1))  # recorded after D
    h.event(e, "complaint_received", date(2024, 2, 20), quantity=7)
    h.event(e, "patent_filed", date(2023, 12, 1), quantity=40)
    h.event(e, "patent_granted", date(2023, 12, 2), quantity=9)
    h.event(e, "inspection_passed", date(2019, 3, 1))
    h.listing(e, "serious_violation", date(2021, 2, 28))  # lapsed on 2024-02-28
    h.listing(e, "untrustworthy", date(2023, 3, 1))  # in force: lapses 2024-03-01
    h.listing(e, "red", date(2022, 1, 1), removed_on=as_of)  # removed on D
    h.listing(e, "abnormal_operation", date(2024, 3, 1))  # entered after D
    row = assert_same_row(h, as_of).iloc[0]
    assert row["infringement_penalty_36m"] == 3 and row["counterfeit_patent_penalty_36m"] == 1
    assert row["fines_36m"] == 0.1 + 0.2 and row["false_materials_36m"] == 0
    assert row["complaint_received_3m"] == 7 and row["grant_ratio_36m"] == 9 / 40
    assert bool(row["on_untrustworthy_list"]) and not row["on_serious_violation_list"]
    assert not row["on_red_list"] and not row["on_abnormal_operation_list"] and bool(row["is_agency"])
    assert row["related_entities"] == 0


def test_an_empty_history_and_one_registered_after_the_date():
    h = History()
    h.entity(registered_on=date(2019, 1, 1))
    row = assert_same_row(h, date(2024, 6, 30)).iloc[0]
    assert row["years_since_adverse"] == 10.0 and row["adverse_all"] == 0
    late = History()
    late.entity(registered_on=date(2024, 7, 1))
    assert feature_values(*as_records(late), date(2024, 6, 30)) is None
    assert single_features(*as_records(late), date(2024, 6, 30)).empty


def test_rows_of_another_entity_are_ignored():
    h = History()
    e = h.entity(registered_on=date(2019, 1, 1))
    h.event(e, "inspection_failed", date(2024, 1, 5))
    expected = single_features(*as_records(h), date(2024, 6, 30))
    entity, events, lists = as_records(h)
    stray = SimpleNamespace(**{**h.events[0], "entity_id": "someone-else", "event_id": "X"})
    listed = SimpleNamespace(entity_id="someone-else", list="red", entered_on=date(2020, 1, 1), removed_on=None)
    got = single_features(entity, [*events, stray], [*lists, listed], date(2024, 6, 30))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
