"""One point-in-time rule: the SQL the DuckDB build runs and the pandas mask of the in-memory path agree,
and the feature version moves with every change to the code that computes a value."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import features
from features import pointintime
from features.pointintime import EVENT_COUNTS, LIST_IN_FORCE, SERIOUS_VIOLATION_LAPSE, UNTRUSTWORTHY_LAPSE
from features.schema import LIST_NAMES
from features.version import FEATURE_MODULES, FEATURE_VERSION, code_fingerprint

DAYS = st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 12, 31))


def _sql_keep(rule, frame: pd.DataFrame, as_of: date) -> list[bool]:
    con = duckdb.connect()
    con.register("t", frame.assign(_i=range(len(frame))))
    rows = con.execute(f"SELECT _i, {pointintime.sql(rule, as_of, 't')} FROM t ORDER BY _i").fetchall()
    return [bool(keep) for _, keep in rows]


def _sqlalchemy_keep(rule, frame: pd.DataFrame, as_of: date) -> list[bool]:
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    table = sa.Table(
        "t",
        meta,
        sa.Column("_i", sa.Integer),
        *(sa.Column(c, sa.Date if c.endswith("_on") else sa.String) for c in frame),
    )
    meta.create_all(engine)
    rows = [
        {"_i": i, **{c: (None if pd.isna(v) else v.date() if c.endswith("_on") else v) for c, v in r.items()}}
        for i, r in enumerate(frame.to_dict("records"))
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
        got = conn.execute(sa.select(table.c._i, pointintime.clause(rule, table, as_of)).order_by(table.c._i)).all()
    return [bool(keep) for _, keep in got]


def _dated(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return frame


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(DAYS, st.one_of(st.none(), st.integers(0, 2000))), min_size=1, max_size=30),
    as_of=DAYS,
)
def test_event_rule_is_the_same_in_sql_and_pandas(rows, as_of):
    recorded = [r for r, _ in rows]
    repaired = [None if gap is None else r + timedelta(days=gap) for r, gap in rows]
    frame = _dated(pd.DataFrame({"recorded_on": recorded, "repaired_on": repaired}), ("recorded_on", "repaired_on"))
    expected = [r <= as_of and (p is None or p > as_of) for r, p in zip(recorded, repaired, strict=True)]
    assert pointintime.mask(EVENT_COUNTS, frame, as_of).tolist() == expected
    assert _sql_keep(EVENT_COUNTS, frame, as_of) == expected
    assert _sqlalchemy_keep(EVENT_COUNTS, frame, as_of) == expected


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(LIST_NAMES), DAYS, st.one_of(st.none(), st.integers(0, 3000))),
        min_size=1,
        max_size=30,
    ),
    as_of=DAYS,
)
def test_list_rule_is_the_same_in_sql_pandas_and_sqlalchemy(rows, as_of):
    frame = pd.DataFrame(
        {
            "list": [name for name, _, _ in rows],
            "entered_on": [entered for _, entered, _ in rows],
            "removed_on": [None if gap is None else entered + timedelta(days=gap) for _, entered, gap in rows],
        }
    )
    frame = _dated(frame, ("entered_on", "removed_on"))
    keep = pointintime.mask(LIST_IN_FORCE, frame, as_of).tolist()
    assert keep == _sql_keep(LIST_IN_FORCE, frame, as_of) == _sqlalchemy_keep(LIST_IN_FORCE, frame, as_of)
    # An oracle written apart from the rule: calendar arithmetic by DuckDB's own interval addition.
    con = duckdb.connect()
    con.register("t", frame.assign(_i=range(len(frame))))
    oracle = con.execute(
        "SELECT entered_on <= ? AND (removed_on IS NULL OR removed_on > ?) AND NOT (list = 'serious_violation' "
        f"AND entered_on + INTERVAL {SERIOUS_VIOLATION_LAPSE.years} YEAR <= ?) AND NOT (list = 'untrustworthy' "
        f"AND entered_on + INTERVAL {UNTRUSTWORTHY_LAPSE.years} YEAR <= ?) FROM t ORDER BY _i",
        [as_of, as_of, as_of, as_of],
    ).fetchall()
    assert keep == [bool(k) for (k,) in oracle]


@pytest.mark.parametrize(
    ("list_name", "entered", "as_of", "in_force"),
    [
        ("serious_violation", date(2020, 2, 29), date(2023, 2, 27), True),
        ("serious_violation", date(2020, 2, 29), date(2023, 2, 28), False),  # 29 February's anniversary
        ("serious_violation", date(2021, 6, 30), date(2024, 6, 29), True),
        ("serious_violation", date(2021, 6, 30), date(2024, 6, 30), False),
        ("untrustworthy", date(2024, 2, 29), date(2025, 2, 27), True),
        ("untrustworthy", date(2024, 2, 29), date(2025, 2, 28), False),
        ("untrustworthy", date(2025, 1, 10), date(2026, 1, 9), True),  # the management period: a year
        ("untrustworthy", date(2025, 1, 10), date(2026, 1, 10), False),
    ],
)
def test_an_entry_lapses_on_the_anniversary_of_its_period_in_every_engine(list_name, entered, as_of, in_force):
    frame = _dated(
        pd.DataFrame({"list": [list_name], "entered_on": [entered], "removed_on": [None]}),
        ("entered_on", "removed_on"),
    )
    assert pointintime.mask(LIST_IN_FORCE, frame, as_of).tolist() == [in_force]
    assert _sql_keep(LIST_IN_FORCE, frame, as_of) == [in_force]
    assert _sqlalchemy_keep(LIST_IN_FORCE, frame, as_of) == [in_force]
    lapses_on = pointintime.lapses_on(list_name, entered)
    assert (as_of < lapses_on) is in_force
    assert lapses_on == min(
        d
        for d in (SERIOUS_VIOLATION_LAPSE.ends_on(list_name, entered), UNTRUSTWORTHY_LAPSE.ends_on(list_name, entered))
        if d
    )
    removed = date(2024, 12, 1)
    assert pointintime.list_entry_ends(list_name, entered, removed) == min(removed, lapses_on)
    assert pointintime.lapses_on("red", entered) is None and SERIOUS_VIOLATION_LAPSE.ends_on("red", entered) is None


def _copy_feature_code(tmp_path: Path) -> Path:
    here = Path(features.__file__).parent
    for name in FEATURE_MODULES:
        shutil.copy(here / name, tmp_path / name)
    return tmp_path


def test_feature_version_ignores_comments_and_docstrings(tmp_path):
    copy = _copy_feature_code(tmp_path)
    assert code_fingerprint(copy) == code_fingerprint()
    build = copy / "build.py"
    text = build.read_text(encoding="utf-8")
    build.write_text(text.replace('"""Point-in-time', '# a new comment\n"""Point-in-time', 1), encoding="utf-8")
    assert code_fingerprint(copy) == code_fingerprint()
    assert code_fingerprint() in FEATURE_VERSION


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("schema.py", "SERIOUS_VIOLATION_LAPSE_YEARS = 3", "SERIOUS_VIOLATION_LAPSE_YEARS = 2"),  # a lapse period
        ("pointintime.py", 'not_ended_by("repaired_on")', 'not_ended_by("recorded_on")'),  # a filter
        ("build.py", "days / 365.25", "days / 365.0"),
        ("catalogue.py", "YEARS_SINCE_CAP", "YEARS_SINCE_CAP_"),
        ("single.py", "/ 365.25", "/ 365.0"),  # the what-if path's own computation
        ("columns.py", "np.dtype(np.float64)", "np.dtype(np.float32)"),
    ],
)
def test_feature_version_changes_with_any_code_that_computes_a_value(tmp_path, module, old, new):
    copy = _copy_feature_code(tmp_path)
    path = copy / module
    text = path.read_text(encoding="utf-8")
    if old not in text:
        pytest.fail(f"{module} no longer contains {old!r}: update this test to another line of that module")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert code_fingerprint(copy) != code_fingerprint()
