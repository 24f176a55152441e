"""Validation reports every kind of fault with table, row, column and value; it never passes junk."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import uscc
from features.build import build_features
from features.dataset import Dataset, load_dataset
from features.validate import validate_dataset
from tests.conftest import History, make_code


def problems_of(ds: Dataset) -> list[tuple]:
    report = validate_dataset(ds, limit=1000)
    return [
        (p.table, None if pd.isna(p.row) else int(p.row), p.column, p.message) for p in report.problems.itertuples()
    ]


def one(history: History) -> str:
    eid = history.entity()
    history.event(eid, "patent_filed", date(2020, 1, 1), quantity=3)
    history.listing(eid, "red", date(2021, 1, 1))
    return eid


def test_a_clean_history_is_valid(history):
    one(history)
    report = validate_dataset(history.dataset())
    assert report.ok, report.problems


def test_uscc_check_character_known_code():
    # A published code: 91110000600037341L.
    assert uscc.is_valid("91110000600037341L")
    assert not uscc.is_valid("91110000600037341M")
    assert "check character" in uscc.problem("91110000600037341M")
    assert uscc.problem("9111000060003734") == "must be 18 characters long; got 16"


@pytest.mark.parametrize(
    ("table", "column", "bad", "message"),
    [
        ("entities", "entity_id", "91110000600037341M", "unified social credit code"),
        ("entities", "kind", "factory", "must be one of enterprise, agency"),
        ("entities", "industry", "Z", "section letter"),
        ("entities", "region", "21060", "6-digit"),
        ("entities", "registered_on", "2020/01/01", "YYYY-MM-DD"),
        ("entities", "registered_capital", "-5", "must not be negative"),
        ("entities", "online_seller", "maybe", "true or false"),
        ("entities", "locations", "0", "must be from 1 to 1,000,000"),
        ("entities", "locations", "1000001", "must be from 1 to 1,000,000"),
        ("entities", "locations", "2.5", "whole number"),
        ("entities", "name", None, "missing"),
        ("events", "event_type", "patent_stolen", "event catalogue"),
        ("events", "quantity", "0", "at least 1"),
        ("events", "quantity", "1.5", "whole number"),
        ("events", "amount", "lots", "finite number"),
        ("events", "occurred_on", "2020-02-30", "YYYY-MM-DD"),
        ("lists", "list", "blacklist", "must be one of red"),
        ("lists", "entered_on", None, "missing"),
    ],
)
def test_each_kind_of_fault_is_reported_where_it_is(history, tmp_path, table, column, bad, message):
    one(history)
    history.write(tmp_path, fmt="csv")
    frame = pd.read_csv(tmp_path / f"{table}.csv", dtype=str)
    frame.loc[0, column] = bad
    frame.to_csv(tmp_path / f"{table}.csv", index=False)
    found = problems_of(load_dataset(tmp_path))
    # Changing an entity's id also orphans its events and list rows; every other fault is alone.
    assert len(found) == (3 if column == "entity_id" else 1), found
    got_table, got_row, got_column, got_message = found[0]
    assert (got_table, got_row, got_column) == (table, 1, column)
    assert message in got_message


def test_date_order_duplicates_and_references(history):
    eid = history.entity()
    history.entity(entity_id=eid)  # duplicate entity
    history.event(eid, "infringement_penalty", date(2020, 5, 1), recorded_on=date(2020, 4, 1))
    history.event(eid, "infringement_penalty", date(2020, 5, 1), repaired_on=date(2020, 1, 1))
    history.event(make_code(), "patent_filed", date(2020, 5, 1))  # unknown entity
    history.events[2]["event_id"] = history.events[1]["event_id"]  # duplicate event id
    history.listing(eid, "untrustworthy", date(2021, 1, 1), removed_on=date(2020, 1, 1))
    found = problems_of(history.dataset())
    assert ("entities", 2, "entity_id", "is not unique: first seen on row 1") in found
    assert ("events", 1, "recorded_on", "must be on or after occurred_on (2020-05-01)") in found
    assert ("events", 2, "repaired_on", "must be on or after recorded_on (2020-05-01)") in found
    assert ("events", 3, "event_id", "is not unique: first seen on row 2") in found
    assert ("events", 3, "entity_id", "refers to an entity that is not in entities") in found
    assert ("lists", 1, "removed_on", "must be on or after entered_on (2021-01-01)") in found
    assert len(found) == 6


def test_missing_table_and_missing_column(history, tmp_path):
    one(history)
    history.write(tmp_path)
    (tmp_path / "lists.parquet").unlink()
    events = pd.read_parquet(tmp_path / "events.parquet").drop(columns=["quantity"])
    events.to_parquet(tmp_path / "events.parquet")
    found = problems_of(load_dataset(tmp_path))
    assert ("events", None, "quantity", "required column is missing from the header") in found
    assert any(t == "lists" and "missing: expected lists.parquet or lists.csv" in m for t, _, _, m in found)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_optional_locations_column_may_be_left_out_or_given(history, tmp_path, fmt):
    # An older delivery without the column is valid and its premises are unknown; a newer one gives them.
    chain = history.entity(locations=12)
    single = history.entity()
    history.write(tmp_path, fmt=fmt)
    given = load_dataset(tmp_path)
    assert validate_dataset(given).ok
    features = build_features(given, date(2024, 12, 31)).set_index("entity_id")
    assert features.loc[chain, "locations"] == 12 and pd.isna(features.loc[single, "locations"])
    path = tmp_path / f"entities.{fmt}"
    frame = pd.read_csv(path, dtype=str) if fmt == "csv" else pd.read_parquet(path)
    frame = frame.drop(columns=["locations"])
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    left_out = load_dataset(tmp_path)
    assert validate_dataset(left_out).ok
    assert build_features(left_out, date(2024, 12, 31))["locations"].isna().all()


def test_an_empty_lists_table_is_valid(history, tmp_path):
    eid = history.entity()
    history.event(eid, "patent_filed", date(2020, 1, 1))
    history.write(tmp_path, fmt="csv")
    assert (tmp_path / "lists.csv").read_text().strip() == "entity_id,list,entered_on,removed_on,basis"
    assert validate_dataset(load_dataset(tmp_path)).ok


def test_report_is_capped_but_counts_everything(history):
    eid = history.entity()
    for _ in range(80):
        history.event(eid, "patent_filed", date(2020, 1, 1), quantity=0)
    report = validate_dataset(history.dataset(), limit=50)
    assert report.total == 80
    assert len(report.problems) == 50
    assert list(report.problems["row"][:3]) == [1, 2, 3]


def test_unreadable_csv_is_reported_not_raised(history, tmp_path):
    one(history)
    history.write(tmp_path, fmt="csv")
    with open(tmp_path / "events.csv", "a") as fh:
        fh.write('E9,"unterminated,quote\n')
    found = problems_of(load_dataset(tmp_path))
    assert found and found[0][0] == "events" and "cannot read events.csv" in found[0][3]


# Property-based: junk never crashes validation, and a dataset with a planted fault never passes.
_junk = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(-5, 5).map(str),
    st.sampled_from(
        ["2020-01-01", "2020-13-45", "true", "agency", "C", "210600", "patent_filed", "red", "1e309", "NaN"]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.sampled_from(["entities", "events", "lists"]),
    cells=st.lists(st.tuples(st.integers(0, 7), _junk), min_size=1, max_size=6),
)
def test_validation_never_crashes_on_junk(table, cells):
    h = History()
    eid = h.entity()
    h.event(eid, "patent_filed", date(2020, 1, 1))
    h.listing(eid, "red", date(2021, 1, 1))
    frames = {k: v.astype(object) for k, v in h.frames().items()}
    frame = frames[table]
    for col_index, value in cells:
        frame.iloc[0, col_index % frame.shape[1]] = value
    ds = Dataset.from_frames(
        frames["entities"].astype(str).where(frames["entities"].notna(), None), frames["events"], frames["lists"]
    )
    report = validate_dataset(ds)
    assert report.total >= 0


_FAULTS = {
    "entity_id": "91110000600037341M",
    "kind": "person",
    "industry": "U",
    "region": "12345X",
    "registered_on": "yesterday",
    "event_type": "honour",
    "quantity": "-1",
    "recorded_on": "2019-12-31",
    "entered_on": "",
}


@settings(max_examples=40, deadline=None)
@given(fault=st.sampled_from(sorted(_FAULTS)), rows=st.integers(1, 5))
def test_validation_never_passes_a_planted_fault(fault, rows):
    h = History()
    ids = [h.entity() for _ in range(rows)]
    for eid in ids:
        h.event(eid, "patent_filed", date(2020, 1, 1))
        h.listing(eid, "red", date(2021, 1, 1))
    frames = {k: v.astype(object) for k, v in h.frames().items()}
    table = next(t for t, f in frames.items() if fault in f.columns and not (t == "lists" and fault == "entity_id"))
    frames[table].loc[rows - 1, fault] = _FAULTS[fault] or None
    report = validate_dataset(Dataset.from_frames(frames["entities"], frames["events"], frames["lists"]))
    assert not report.ok


def test_validation_accepts_real_date_types_from_parquet(history, tmp_path):
    one(history)
    history.write(tmp_path)
    assert str(pd.read_parquet(tmp_path / "events.parquet")["occurred_on"].dtype).startswith("datetime64")
    assert validate_dataset(load_dataset(tmp_path)).ok


def test_booleans_written_in_csv_words(history, tmp_path):
    history.entity(online_seller=True)
    history.entity(online_seller=False)
    history.write(tmp_path, fmt="csv")
    ents = pd.read_csv(tmp_path / "entities.csv", dtype=str)
    ents["online_seller"] = ["1", "false"]
    ents.to_csv(tmp_path / "entities.csv", index=False)
    ds = load_dataset(tmp_path)
    assert validate_dataset(ds).ok
    assert ds.table("entities")["online_seller"].tolist() == [True, False]
    assert date(2015, 1, 1) == ds.table("entities")["registered_on"].iloc[0].date()


@pytest.mark.parametrize("basis", [None, "", "   "])
def test_an_untrustworthy_or_serious_violation_entry_without_a_legal_basis_is_refused(history, tmp_path, basis):
    eid = history.entity()
    history.listing(eid, "untrustworthy", date(2024, 1, 1), basis=basis)
    history.listing(eid, "serious_violation", date(2024, 2, 1), basis=basis)
    history.listing(eid, "red", date(2024, 3, 1), basis=basis)  # optional there
    history.listing(eid, "abnormal_operation", date(2024, 4, 1), basis=basis)
    found = [p for p in problems_of(history.dataset()) if p[2] == "basis"]
    assert [(p[0], p[1]) for p in found] == [("lists", 1), ("lists", 2)]
    history.write(tmp_path / "csv", fmt="csv")  # the same from a file
    assert [p[:3] for p in problems_of(load_dataset(tmp_path / "csv")) if p[2] == "basis"] == [
        ("lists", 1, "basis"),
        ("lists", 2, "basis"),
    ]


def test_dates_after_today_or_before_1900_are_refused_where_they_are(history):
    # A record cannot be made in the future, and one mistyped year (2099 for 2019) would stretch the data's
    # end and every date planned from it. A list entry's or a link's end may be fixed ahead.
    today = date(2026, 12, 6)
    eid = history.entity()
    history.entity(registered_on=date(2027, 1, 1))
    history.event(eid, "patent_filed", date(2019, 3, 1), recorded_on=date(2099, 3, 1))
    history.event(eid, "infringement_penalty", date(1899, 12, 31), recorded_on=date(2019, 1, 1))
    history.event(eid, "infringement_penalty", date(2019, 1, 1), repaired_on=date(2026, 12, 7))
    history.listing(eid, "abnormal_operation", date(2026, 12, 6), removed_on=date(2027, 6, 30))  # fixed ahead
    history.listing(eid, "red", date(2030, 1, 1))
    frames = history.frames()
    links = pd.DataFrame(
        {
            "entity_id": [eid, eid],
            "related_id": [history.entities[1]["entity_id"]] * 2,
            "relation": ["shared_address", "shareholder"],
            "from_on": pd.to_datetime(["2020-01-01", "2020-01-01"]),
            "to_on": pd.to_datetime(["2028-01-01", None]),  # an end fixed ahead is allowed
            "recorded_on": pd.to_datetime(["2020-01-02", "2031-01-02"]),
        }
    )
    ds = Dataset.from_frames(frames["entities"], frames["events"], frames["lists"], relations=links)
    report = validate_dataset(ds, limit=100, latest=today)
    found = {(p.table, int(p.row), p.column): p.message for p in report.problems.itertuples()}
    assert found == {
        ("entities", 2, "registered_on"): "must not be after today (2026-12-06): nothing is recorded ahead",
        ("events", 1, "recorded_on"): "must not be after today (2026-12-06): nothing is recorded ahead",
        ("events", 2, "occurred_on"): "must not be before 1900-01-01",
        ("events", 3, "repaired_on"): "must not be after today (2026-12-06): nothing is recorded ahead",
        ("lists", 2, "entered_on"): "must not be after today (2026-12-06): nothing is recorded ahead",
        ("relations", 2, "recorded_on"): "must not be after today (2026-12-06): nothing is recorded ahead",
    }
    # the same dataset a year later: only the date before 1900 remains
    later = validate_dataset(ds, limit=100, latest=date(2099, 12, 31))
    assert [(p.table, int(p.row), p.column) for p in later.problems.itertuples()] == [("events", 2, "occurred_on")]
