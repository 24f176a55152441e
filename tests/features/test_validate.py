"""Validation reports every kind of fault with table, row, column and value; it never passes junk."""

from __future__ import annotations

import time
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
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


def _events_parquet(history: History, tmp_path, **columns) -> None:
    """Write the history as Parquet, with events' ``columns`` replaced by the given Arrow arrays."""
    history.write(tmp_path)
    events = pq.read_table(tmp_path / "events.parquet")
    for name, array in columns.items():
        events = events.set_column(events.schema.get_field_index(name), name, array)
    pq.write_table(events, tmp_path / "events.parquet")


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        ("quantity", "5000000000000000000", "must be at most 1,000,000,000"),
        ("quantity", "99999999999999999999", "must be at most 1,000,000,000"),  # beyond int64
        ("quantity", "1000000001", "must be at most 1,000,000,000"),
        ("amount", "1.5e308", "must be at most 1,000,000,000,000 (yuan)"),
        ("registered_capital", "2e9", "must be at most 1,000,000,000 (in 10,000 yuan)"),
    ],
)
def test_numbers_too_large_to_be_real_are_refused_as_such(history, tmp_path, column, bad, message):
    one(history)
    history.write(tmp_path, fmt="csv")
    table = "entities" if column == "registered_capital" else "events"
    frame = pd.read_csv(tmp_path / f"{table}.csv", dtype=str)
    frame.loc[0, column] = bad
    frame.to_csv(tmp_path / f"{table}.csv", index=False)
    assert problems_of(load_dataset(tmp_path)) == [(table, 1, column, message)]


@pytest.mark.parametrize(
    "quantity",
    [pa.array([1e20], pa.float64()), pa.array([2**64 - 1], pa.uint64()), pa.array([5 * 10**18], pa.int64())],
)
def test_parquet_quantities_beyond_the_bound_are_refused_as_too_large(history, tmp_path, quantity):
    one(history)
    _events_parquet(history, tmp_path, quantity=quantity)
    assert problems_of(load_dataset(tmp_path)) == [("events", 1, "quantity", "must be at most 1,000,000,000")]


def test_the_largest_quantity_and_amount_are_valid(history, tmp_path):
    eid = history.entity(registered_capital=1e9)
    history.event(eid, "infringement_penalty", date(2020, 1, 1), quantity=1_000_000_000, amount=1e12)
    history.write(tmp_path, fmt="csv")
    assert validate_dataset(load_dataset(tmp_path)).ok


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_extra_columns_named_like_internal_ones_are_ignored(history, tmp_path, fmt):
    # Validation labels its messages m_<column> and numbers rows _row: a delivery's own columns of those
    # names are extra columns like any other, ignored.
    eid = history.entity()
    for quantity in (1, 0, 2):
        history.event(eid, "patent_filed", date(2020, 1, 1), quantity=quantity)
    history.write(tmp_path, fmt=fmt)
    path = tmp_path / f"events.{fmt}"
    frame = pd.read_csv(path, dtype=str) if fmt == "csv" else pd.read_parquet(path)
    frame["m_quantity"] = "not a message"
    frame["_row"] = [7, 8, 9]
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    assert problems_of(load_dataset(tmp_path)) == [("events", 2, "quantity", "must be at least 1")]
    frames = history.frames()
    given = Dataset.from_frames(frames["entities"], frames["events"].assign(m_quantity="x", _row=[7, 8, 9]))
    assert problems_of(given) == [("events", 2, "quantity", "must be at least 1")]


def test_parquet_text_stored_as_plain_binary_reads_as_utf8(history, tmp_path):
    # Hive, Impala and older Spark write text as BYTE_ARRAY without the UTF8 annotation.
    history.entity(name="北京市测试知识产权代理有限公司")
    history.entity(name="丹东市测试科技有限公司")
    history.write(tmp_path)
    entities = pq.read_table(tmp_path / "entities.parquet")
    names = entities.column("name").cast(pa.binary())
    pq.write_table(
        entities.set_column(entities.schema.get_field_index("name"), "name", names), tmp_path / "entities.parquet"
    )
    assert pq.read_schema(tmp_path / "entities.parquet").field("name").type == pa.binary()
    ds = load_dataset(tmp_path)
    assert validate_dataset(ds).ok
    assert ds.table("entities")["name"].tolist() == ["北京市测试知识产权代理有限公司", "丹东市测试科技有限公司"]
    # bytes that are not UTF-8 (GBK here) are refused where they are, never garbled
    gbk = pa.array(["北京".encode(), "丹东".encode("gbk")], pa.binary())
    pq.write_table(
        entities.set_column(entities.schema.get_field_index("name"), "name", gbk), tmp_path / "entities.parquet"
    )
    found = problems_of(load_dataset(tmp_path))
    assert found == [
        ("entities", 2, "name", "cannot read entities.parquet: is not UTF-8 text; text must be UTF-8 encoded")
    ]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "+08:00"])
def test_a_timestamp_with_a_time_zone_gives_its_own_date_on_any_server(history, tmp_path, monkeypatch, zone):
    # Midnight in Beijing is the afternoon before in UTC and in New York: the date meant is the Beijing one,
    # whatever the server's zone.
    eid = history.entity()
    history.event(eid, "patent_filed", date(2024, 3, 1))
    history.write(tmp_path)
    midnight = pa.array([pd.Timestamp("2024-03-01 00:00", tz=zone)], pa.timestamp("ms", tz=zone))
    _events_parquet(history, tmp_path, occurred_on=midnight, recorded_on=midnight)
    try:
        with monkeypatch.context() as m:
            m.setenv("TZ", "America/New_York")
            time.tzset()
            ds = load_dataset(tmp_path)
            assert validate_dataset(ds).ok
            events = ds.table("events")
    finally:
        time.tzset()
    assert [d.date() for d in events["occurred_on"]] == [date(2024, 3, 1)]
    assert [d.date() for d in events["recorded_on"]] == [date(2024, 3, 1)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_whole_numbers_written_as_decimals_are_whole_numbers(history, tmp_path, fmt):
    # pandas writes an integer column with gaps as floats: 2.0, and a flag column as 0.0 / 1.0.
    eid = history.entity(online_seller=True, locations=3)
    history.entity(online_seller=False)
    history.event(eid, "patent_filed", date(2020, 1, 1), quantity=2)
    history.write(tmp_path, fmt=fmt)
    entities, events = (tmp_path / f"entities.{fmt}", tmp_path / f"events.{fmt}")
    if fmt == "csv":
        frame = pd.read_csv(events, dtype=str).assign(quantity="2.0")
        frame.to_csv(events, index=False)
        frame = pd.read_csv(entities, dtype=str).assign(locations=["3.0", ""], online_seller=["1.0", " 0.00 "])
        frame.to_csv(entities, index=False)
    else:
        pd.read_parquet(events).astype({"quantity": "float64"}).to_parquet(events)
        frame = pd.read_parquet(entities).astype({"online_seller": "float64", "locations": "float64"})
        frame.to_parquet(entities)
    ds = load_dataset(tmp_path)
    assert validate_dataset(ds).ok, validate_dataset(ds).problems
    assert ds.table("events")["quantity"].tolist() == [2]
    assert ds.table("entities")["online_seller"].tolist() == [True, False]
    assert ds.table("entities")["locations"].iloc[0] == 3
    # a fraction is still no whole number, and 0.5 no flag
    if fmt == "csv":
        pd.read_csv(events, dtype=str).assign(quantity="2.5").to_csv(events, index=False)
        pd.read_csv(entities, dtype=str).assign(online_seller=["1.0", "0.5"]).to_csv(entities, index=False)
        assert problems_of(load_dataset(tmp_path)) == [
            ("entities", 2, "online_seller", "must be true or false"),
            ("events", 1, "quantity", "must be a whole number"),
        ]
    else:
        pd.read_parquet(events).assign(quantity=2.5).to_parquet(events)
        pd.read_parquet(entities).assign(online_seller=[1.0, 0.5]).to_parquet(entities)
        assert problems_of(load_dataset(tmp_path)) == [
            ("entities", 2, "online_seller", "must be true or false"),
            ("events", 1, "quantity", "must be a whole number"),
        ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_text_in_a_nullable_column_is_null_in_either_format(history, tmp_path, fmt, blank):
    eid = history.entity()
    history.event(eid, "infringement_penalty", date(2020, 1, 1), amount=500.0, repaired_on=date(2021, 1, 1))
    history.listing(eid, "red", date(2021, 1, 1), removed_on=date(2022, 1, 1), basis="x")
    history.write(tmp_path, fmt=fmt)
    blanks = {
        "entities": ["registered_capital", "locations"],
        "events": ["amount", "repaired_on"],
        "lists": ["removed_on", "basis"],
    }
    for table, columns in blanks.items():
        path = tmp_path / f"{table}.{fmt}"
        frame = (pd.read_csv(path, dtype=str) if fmt == "csv" else pd.read_parquet(path)).assign(
            **dict.fromkeys(columns, blank)
        )
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    ds = load_dataset(tmp_path)
    assert validate_dataset(ds).ok, validate_dataset(ds).problems
    for table, columns in blanks.items():
        assert ds.table(table)[columns].isna().all().all()
    # a required column left blank is still refused as missing
    path = tmp_path / f"events.{fmt}"
    frame = (pd.read_csv(path, dtype=str) if fmt == "csv" else pd.read_parquet(path)).astype({"occurred_on": str})
    frame.assign(occurred_on=blank).to_csv(path, index=False) if fmt == "csv" else frame.assign(
        occurred_on=blank
    ).to_parquet(path)
    assert problems_of(load_dataset(tmp_path)) == [("events", 1, "occurred_on", "is required but missing")]


def test_a_csv_that_is_not_utf8_is_refused_with_the_reason(history, tmp_path):
    one(history)
    history.entity(name="北京市测试科技有限公司")
    history.write(tmp_path, fmt="csv")
    text = (tmp_path / "entities.csv").read_text(encoding="utf-8")
    (tmp_path / "entities.csv").write_bytes(text.encode("gbk"))
    found = problems_of(load_dataset(tmp_path))
    assert found == [
        (
            "entities",
            1,
            None,
            "cannot read entities.csv: Invalid unicode (byte sequence mismatch) detected: the file must be UTF-8 "
            "encoded",
        )
    ]


@pytest.mark.parametrize(("change", "message"), [(",extra", "has 9 fields"), ("", "has 7 fields")])
def test_a_csv_row_with_a_field_too_many_or_too_few_is_refused_on_its_row(history, tmp_path, change, message):
    eid = history.entity()
    for day in range(1, 4):
        history.event(eid, "patent_filed", date(2020, 1, day))
    history.write(tmp_path, fmt="csv")
    lines = (tmp_path / "events.csv").read_text().splitlines()
    lines[3] = lines[3] + change if change else lines[3].rsplit(",", 1)[0]
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    assert problems_of(load_dataset(tmp_path)) == [
        ("events", 3, None, f"cannot read events.csv: {message} where the header has 8")
    ]


def test_an_empty_csv_file_is_said_to_be_empty(history, tmp_path):
    one(history)
    history.write(tmp_path, fmt="csv")
    (tmp_path / "entities.csv").write_bytes(b"")
    found = problems_of(load_dataset(tmp_path))
    assert found == [
        (
            "entities",
            None,
            None,
            "cannot read entities.csv: the file is empty: it needs a header row naming the columns",
        )
    ]


def test_a_nul_character_in_stored_text_is_refused(history):
    """PostgreSQL cannot store a NUL character: a name or a basis holding one is refused here, where the
    row and column can be named, not when a score run is stored."""
    eid = history.entity(name="丹东市\x00测试有限公司")
    history.listing(eid, "untrustworthy", date(2021, 1, 1), basis="国知局公告第\x001号")
    problems = problems_of(history.dataset())
    assert ("entities", 1, "name", "must not be blank or hold a NUL character") in problems
    assert ("lists", 1, "basis", "must not hold a NUL character") in problems


def test_a_padded_code_is_said_to_be_padded(history, tmp_path):
    """A fixed-width (CHAR) export pads its codes with spaces: the message says so, since the value it shows
    looks right."""
    eid = history.entity()
    history.event(eid, "patent_filed", date(2020, 1, 1))
    history.write(tmp_path, fmt="csv")
    entities = pd.read_csv(tmp_path / "entities.csv", dtype=str)
    entities.assign(kind=entities["kind"].str.ljust(12)).to_csv(tmp_path / "entities.csv", index=False)
    events = pd.read_csv(tmp_path / "events.csv", dtype=str)
    events.assign(entity_id=events["entity_id"].str.ljust(20)).to_csv(tmp_path / "events.csv", index=False)
    padding = "(it has spaces around it: remove the padding)"
    assert problems_of(load_dataset(tmp_path)) == [
        ("entities", 1, "kind", f"must be one of enterprise, agency {padding}"),
        ("events", 1, "entity_id", f"refers to an entity that is not in entities {padding}"),
    ]


def test_a_title_line_above_the_csv_header_is_refused_as_such(history, tmp_path):
    one(history)
    history.write(tmp_path, fmt="csv")
    path = tmp_path / "lists.csv"
    path.write_text("# exported 2025-12-31\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    [(table, row, column, message)] = problems_of(load_dataset(tmp_path))
    assert (table, row, column) == ("lists", None, None)
    assert message == (
        "cannot read lists.csv: its first line (# exported 2025-12-31) names none of the table's columns: "
        "the header row must be the first line (no title or comment above it)"
    )
