"""Check a dataset against the contract (CONTRACT section 1) and report every problem precisely.

Each problem names the table, the 1-based data row, the column, the offending value and what is wrong.
All checks are set-based DuckDB queries, one scan per table plus a hash pass for keys and references,
so tens of millions of events are checked in seconds; only the offending rows ever reach Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features import uscc
from features.dataset import REPORT_COLUMNS, Dataset, DatasetError, _q, load_dataset
from features.schema import (
    EARLIEST_DATE,
    ENTITIES,
    EVENTS,
    KINDS,
    LIST_NAMES,
    LISTS,
    MAX_AMOUNT,
    MAX_LOCATIONS,
    MAX_QUANTITY,
    MAX_REGISTERED_CAPITAL,
    REGION_PATTERN,
    RELATION_TYPES,
    RELATIONS,
    SYMMETRIC_RELATIONS,
    TABLES,
    ColumnType,
    Table,
)
from features.sql import DUCKDB, TEXT_FALSE, TEXT_TRUE, text_bool

_TABLE_ORDER = {t.name: i for i, t in enumerate(TABLES)}


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of a validation: the first ``limit`` problems and how many there are in all."""

    problems: pd.DataFrame
    total: int

    @property
    def ok(self) -> bool:
        return self.total == 0

    def summary(self) -> str:
        if self.ok:
            return "valid"
        shown = len(self.problems)
        more = f" (showing the first {shown})" if shown < self.total else ""
        return f"{self.total} problem{'s' if self.total != 1 else ''}{more}"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _type_check(col: str, raw_type: str, ctype: ColumnType) -> tuple[str, str]:
    """A SQL condition that the (non-null) raw value has the contract type, and the message when not."""
    text = raw_type == "VARCHAR"
    integer = raw_type in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    }
    numeric = integer or raw_type in {"FLOAT", "DOUBLE"} or raw_type.startswith("DECIMAL")
    if ctype is ColumnType.DATE:
        if text:
            ok = f"regexp_full_match({col}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') AND TRY_CAST({col} AS DATE) IS NOT NULL"
        else:
            ok = "true" if raw_type == "DATE" or raw_type.startswith("TIMESTAMP") else "false"
        return ok, "must be a date written YYYY-MM-DD"
    if ctype is ColumnType.INT:
        if text:
            # Digits, or digits with a zero fraction: "2.0" is how pandas writes a whole number held as a float.
            ok = f"regexp_full_match(trim({col}), '[+-]?\\d+(\\.0*)?')"
        elif integer:
            ok = "true"
        elif numeric:
            ok = f"isfinite(CAST({col} AS DOUBLE)) AND CAST({col} AS DOUBLE) = floor(CAST({col} AS DOUBLE))"
        else:
            ok = "false"
        return ok, "must be a whole number"
    if ctype is ColumnType.FLOAT:
        if text:
            ok = f"coalesce(isfinite(TRY_CAST({col} AS DOUBLE)), false)"
        elif numeric:
            ok = f"isfinite(CAST({col} AS DOUBLE))"
        else:
            ok = "false"
        return ok, "must be a finite number"
    if ctype is ColumnType.BOOL:
        if text:
            # A word, or 0 / 1 written as a number: pandas writes a flag column with gaps as 0.0 / 1.0.
            words = _in((*TEXT_TRUE, *TEXT_FALSE))
            ok = f"lower(trim({col})) IN {words} OR regexp_full_match(trim({col}), '[01](\\.0*)?')"
        elif raw_type == "BOOLEAN":
            ok = "true"
        elif integer:
            ok = f"{col} IN (0, 1)"
        elif numeric:
            ok = f"CAST({col} AS DOUBLE) IN (0, 1)"
        else:
            ok = "false"
        return ok, "must be true or false"
    return "true", ""


def _member(type_name: str) -> Callable[[str], str]:
    """A membership test through one of the dataset's enum types (``features.dataset.ENUM_TYPES``)."""
    return lambda v: f"TRY_CAST({v} AS {type_name}) IS NOT NULL"


# Domain checks on a well-typed, non-null value: column -> (condition on the typed value ``v``, message).
def _domain_checks(table: Table) -> dict[str, tuple[Callable[[str], str], str]]:
    if table is ENTITIES:
        return {
            "entity_id": (
                uscc.sql_is_valid,
                "must be a valid 18-character unified social credit code (GB 32100-2015: alphabet and check character)",
            ),
            # A NUL character is refused as well: PostgreSQL cannot store it, so a score run would fail later.
            "name": (
                lambda v: f"length(trim({v})) > 0 AND strpos({v}, chr(0)) = 0",
                "must not be blank or hold a NUL character",
            ),
            "kind": (_member("_kind"), f"must be one of {', '.join(KINDS)}"),
            "industry": (_member("_industry"), "must be a GB/T 4754 section letter A-T"),
            "region": (
                lambda v: f"regexp_full_match({v}, '{REGION_PATTERN}')",
                "must be a 6-digit administrative division code",
            ),
            "registered_capital": (lambda v: f"{v} >= 0", "must not be negative"),
            "locations": (lambda v: f"{v} BETWEEN 1 AND {MAX_LOCATIONS}", f"must be from 1 to {MAX_LOCATIONS:,}"),
        }
    if table is EVENTS:
        return {
            # Compared with '' only: a pushdown-friendly test that keeps a 35-million-row scan cheap.
            "event_id": (lambda v: f"{v} <> ''", "must not be blank"),
            "event_type": (_member("_event_type"), "must be a code from the event catalogue"),
            "quantity": (lambda v: f"{v} >= 1", "must be at least 1"),
            "amount": (lambda v: f"{v} >= 0", "must not be negative"),
        }
    if table is RELATIONS:
        return {"relation": (_member("_relation"), f"must be one of {', '.join(RELATION_TYPES)}")}
    return {
        "list": (_member("_list"), f"must be one of {', '.join(LIST_NAMES)}"),
        "basis": (lambda v: f"strpos({v}, chr(0)) = 0", "must not hold a NUL character"),
    }


# Upper bounds, checked on the value as a number before it is cast to its type, so that one too large for
# the type (a quantity of 10^20, an unsigned 2^64 - 1) is told it is too large, not that it is no number.
_AT_MOST: dict[tuple[str, str], tuple[int, str]] = {
    ("events", "quantity"): (MAX_QUANTITY, f"must be at most {MAX_QUANTITY:,}"),
    ("events", "amount"): (MAX_AMOUNT, f"must be at most {MAX_AMOUNT:,} (yuan)"),
    ("entities", "registered_capital"): (
        MAX_REGISTERED_CAPITAL,
        f"must be at most {MAX_REGISTERED_CAPITAL:,} (in 10,000 yuan)",
    ),
}


# Date order: column -> (earlier column, message).
_ORDER = {
    "events": {
        "recorded_on": ("occurred_on", "must be on or after occurred_on"),
        "repaired_on": ("recorded_on", "must be on or after recorded_on"),
    },
    "lists": {"removed_on": ("entered_on", "must be on or after entered_on")},
    "relations": {"to_on": ("from_on", "must be on or after from_on")},
}


# Every date lies between EARLIEST_DATE and today (the one rule of ``serving.dates``): a record cannot be made,
# nor an entity registered, in the future, and one mistyped year (2099 for 2019) would stretch the data's end
# and every date planned from it. The end of a list entry or of a link may be fixed ahead: no upper bound.
_OPEN_ENDED = {("lists", "removed_on"), ("relations", "to_on")}


def _date_bounds(table: Table, column: str, typed: str, latest: date) -> list[str]:
    branches = [f"WHEN {typed} < DATE '{EARLIEST_DATE}' THEN 'must not be before {EARLIEST_DATE}'"]
    if (table.name, column) not in _OPEN_ENDED:
        branches.append(
            f"WHEN {typed} > DATE '{latest}' THEN 'must not be after today ({latest}): nothing is recorded ahead'"
        )
    return branches


def _typed(col: str, raw_type: str, ctype: ColumnType) -> str:
    if ctype is ColumnType.BOOL and raw_type == "VARCHAR":
        return text_bool(col, DUCKDB)
    if ctype is ColumnType.INT and raw_type == "VARCHAR":
        return f"TRY_CAST(trim({col}) AS BIGINT)"
    return f"TRY_CAST({col} AS {ctype.value})"


def _column_message_sql(table: Table, present: dict[str, str], latest: date) -> dict[str, str]:
    """One CASE expression per present contract column: the problem with that cell, or NULL."""
    domain = _domain_checks(table)
    order = _ORDER.get(table.name, {})
    exprs = {}
    for column in table.columns:
        if column.name not in present:
            continue
        col, raw_type = _q(column.name), present[column.name]
        branches = []
        if column.nullable:
            guard = f"{col} IS NOT NULL AND "
        else:
            branches.append(f"WHEN {col} IS NULL THEN 'is required but missing'")
            guard = ""
        type_ok, type_msg = _type_check(col, raw_type, column.type)
        if type_ok != "true":
            branches.append(f"WHEN {guard}NOT ({type_ok}) THEN '{type_msg}'")
        if (table.name, column.name) in _AT_MOST:
            bound, msg = _AT_MOST[(table.name, column.name)]
            number = f"TRY_CAST(trim({col}) AS DOUBLE)" if raw_type == "VARCHAR" else f"TRY_CAST({col} AS DOUBLE)"
            branches.append(f"WHEN {guard}{number} > {bound} THEN '{msg}'")
        typed = _typed(col, raw_type, column.type)
        if column.type is ColumnType.DATE:
            branches += _date_bounds(table, column.name, typed, latest)
        if column.name in domain:
            condition, msg = domain[column.name]
            said = _padded(col, msg) if column.type is ColumnType.STR else f"'{msg}'"
            branches.append(f"WHEN {guard}NOT coalesce({condition(typed)}, false) THEN {said}")
        if column.name in order and order[column.name][0] in present:
            earlier, msg = order[column.name]
            e_col = _q(earlier)
            e_typed = _typed(e_col, present[earlier], ColumnType.DATE)
            branches.append(f"WHEN {typed} < {e_typed} THEN '{msg} (' || CAST({e_typed} AS VARCHAR) || ')'")
        if branches:
            exprs[column.name] = "CASE " + " ".join(branches) + " END"
    return exprs


def _cell_problems(ds: Dataset, table: Table, present: dict[str, str], latest: date) -> str | None:
    """Materialise the rows of ``table`` with any bad cell; return the SQL that lists their problems."""
    exprs = _column_message_sql(table, present, latest)
    if not exprs:
        return None
    bad = f"_bad_{table.name}"
    select = ", ".join(f"{e} AS {_q('m_' + c)}" for c, e in exprs.items())
    any_bad = " OR ".join(f"{_q('m_' + c)} IS NOT NULL" for c in exprs)
    ds.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {bad} AS SELECT * FROM "
        f"(SELECT *, {select} FROM raw_{table.name}) WHERE {any_bad}"
    )
    return " UNION ALL ".join(
        f"SELECT '{table.name}' AS tbl, _row AS row, '{c}' AS col, CAST({_q(c)} AS VARCHAR) AS value, "
        f"{_q('m_' + c)} AS message, {i} AS col_order FROM {bad} WHERE {_q('m_' + c)} IS NOT NULL"
        for i, c in enumerate(table.column_names)
        if c in exprs
    )


def _duplicate_problems(ds: Dataset, table: Table, present: dict[str, str]) -> str | None:
    """SQL listing every row whose key repeats an earlier row's.

    Grouping tens of millions of distinct strings in SQL is slow on two cores, so the 64-bit hashes of the
    keys are sorted in numpy; only the keys whose hash repeats are then compared exactly in SQL.
    """
    if table.key is None or table.key not in present:
        return None
    key = _q(table.key)
    hashes = ds.con.execute(f"SELECT hash({key}) AS h FROM raw_{table.name} WHERE {key} IS NOT NULL").fetchnumpy()
    ordered = np.sort(np.asarray(hashes["h"]))
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    candidates = pd.DataFrame({"h": repeated.astype(np.uint64)})
    ds.con.register(f"_dup_{table.name}", candidates)
    return (
        f"SELECT '{table.name}' AS tbl, _row AS row, '{table.key}' AS col, k AS value, "
        f"'is not unique: first seen on row ' || CAST(first_row AS VARCHAR) AS message, "
        f"{table.column_names.index(table.key)} AS col_order FROM ("
        f"  SELECT _row, k, min(_row) OVER (PARTITION BY k) AS first_row FROM ("
        f"    SELECT _row, CAST({key} AS VARCHAR) AS k FROM raw_{table.name}"
        f"    WHERE {key} IS NOT NULL AND hash({key}) IN (SELECT h FROM _dup_{table.name})))"
        f" WHERE _row > first_row"
    )


def _padded(col: str, msg: str) -> str:
    """The SQL message ``msg``, saying so when the text has spaces around it: a fixed-width (CHAR) export
    pads its codes, and a padded code looks right in a message that does not say it."""
    return f"CASE WHEN {col} <> trim({col}) THEN '{msg} (it has spaces around it: remove the padding)' ELSE '{msg}' END"


def _reference_problems(table: Table, present: dict[str, str], entity_ids_present: bool) -> str | None:
    if table is ENTITIES or "entity_id" not in present or not entity_ids_present:
        return None
    missing = _padded("CAST(r.entity_id AS VARCHAR)", "refers to an entity that is not in entities")
    return (
        f"SELECT '{table.name}' AS tbl, r._row AS row, 'entity_id' AS col, "
        f"CAST(r.entity_id AS VARCHAR) AS value, {missing} AS message, "
        f"{table.column_names.index('entity_id')} AS col_order "
        f"FROM raw_{table.name} r ANTI JOIN raw_entities e "
        f"ON CAST(r.entity_id AS VARCHAR) = CAST(e.entity_id AS VARCHAR) WHERE r.entity_id IS NOT NULL"
    )


# Lists no entry may be on without a legal ground (CONTRACT section 1: "an entry without one is refused").
LISTS_NEEDING_BASIS: tuple[str, ...] = ("untrustworthy", "serious_violation")


def _basis_problems(present: dict[str, str]) -> str | None:
    """An untrustworthy or serious-violation entry without a ``basis`` (missing, empty, or no such column)."""
    if "list" not in present:
        return None
    basis = "trim(CAST(basis AS VARCHAR))" if "basis" in present else "CAST(NULL AS VARCHAR)"
    needing = ", ".join(f"'{name}'" for name in LISTS_NEEDING_BASIS)
    return (
        "SELECT 'lists' AS tbl, _row AS row, 'basis' AS col, CAST(NULL AS VARCHAR) AS value, "
        "'is required for an entry of the ' || CAST(list AS VARCHAR) || ' list: no list entry without a legal "
        f"ground (the decision number or legal basis)' AS message, {LISTS.column_names.index('basis')} AS col_order "
        f"FROM raw_lists WHERE CAST(list AS VARCHAR) IN ({needing}) AND coalesce({basis}, '') = ''"
    )


def _relation_problems(ds: Dataset, present: dict[str, str], entity_ids_present: bool) -> str | None:
    """The checks of a link that span columns or rows: ``related_id`` known and not ``entity_id`` itself,
    an ``agency_client`` link starting at an agency, and no link given twice over overlapping periods
    (a symmetric relation is the same link read from either end)."""
    needed = {"entity_id", "related_id", "relation", "from_on"}
    if not needed <= present.keys():
        return None
    order = RELATIONS.column_names.index
    to_on = _typed(_q("to_on"), present["to_on"], ColumnType.DATE) if "to_on" in present else "NULL"
    symmetric = ", ".join(f"'{r}'" for r in SYMMETRIC_RELATIONS)
    ds.con.execute(
        "CREATE OR REPLACE TEMP TABLE _links AS SELECT _row, "
        "CAST(entity_id AS VARCHAR) AS a, CAST(related_id AS VARCHAR) AS b, CAST(relation AS VARCHAR) AS rel, "
        f"{_typed(_q('from_on'), present['from_on'], ColumnType.DATE)} AS from_on, {to_on} AS to_on "
        "FROM raw_relations WHERE entity_id IS NOT NULL AND related_id IS NOT NULL AND relation IS NOT NULL"
    )
    # A link's two ends as its identity: in order for a directed relation, the lesser id first for a
    # symmetric one (read from either end it is the same link). The repeat check joins on it by equality
    # alone — a hash join — where an OR of the two orientations made it compare every pair of links of
    # a relation type (200,000 links took minutes).
    ds.con.execute(
        "CREATE OR REPLACE TEMP TABLE _link_ends AS SELECT _row, rel, from_on, to_on, "
        f"CASE WHEN rel IN ({symmetric}) THEN least(a, b) ELSE a END AS one, "
        f"CASE WHEN rel IN ({symmetric}) THEN greatest(a, b) ELSE b END AS other FROM _links"
    )
    queries = [
        f"SELECT 'relations' AS tbl, _row AS row, 'related_id' AS col, b AS value, "
        f"'must differ from entity_id (a link joins two entities)' AS message, {order('related_id')} AS col_order "
        "FROM _links WHERE a = b",
        # Each period is [from_on, to_on); two periods of one link overlap when each starts before the other ends.
        "SELECT 'relations' AS tbl, y._row AS row, 'from_on' AS col, CAST(y.from_on AS VARCHAR) AS value, "
        "'repeats the link of row ' || CAST(min(x._row) AS VARCHAR) || ' (' || y.rel || ' between the same "
        f"entities, in force over an overlapping period)' AS message, {order('from_on')} AS col_order "
        "FROM _link_ends x JOIN _link_ends y ON x.rel = y.rel AND x.one = y.one AND x.other = y.other "
        "AND x._row < y._row WHERE x.from_on IS NOT NULL AND y.from_on IS NOT NULL "
        "AND (y.to_on IS NULL OR x.from_on < y.to_on OR x.from_on = y.from_on) "
        "AND (x.to_on IS NULL OR y.from_on < x.to_on OR x.from_on = y.from_on) "
        "GROUP BY y._row, y.from_on, y.rel",
    ]
    if entity_ids_present:
        queries += [
            f"SELECT 'relations' AS tbl, l._row AS row, 'related_id' AS col, l.b AS value, "
            f"'refers to an entity that is not in entities' AS message, {order('related_id')} AS col_order "
            "FROM _links l ANTI JOIN raw_entities e ON l.b = CAST(e.entity_id AS VARCHAR)",
            f"SELECT 'relations' AS tbl, l._row AS row, 'entity_id' AS col, l.a AS value, "
            "'must be an agency in an agency_client link (the agency that filed for related_id); its kind is ' "
            f"|| CAST(e.kind AS VARCHAR) AS message, {order('entity_id')} AS col_order "
            "FROM _links l JOIN raw_entities e ON l.a = CAST(e.entity_id AS VARCHAR) "
            "WHERE l.rel = 'agency_client' AND CAST(e.kind AS VARCHAR) <> 'agency'",
        ]
    return " UNION ALL ".join(f"({q})" for q in queries)


def validate_dataset(ds: Dataset, *, limit: int = 50, latest: date | None = None) -> ValidationReport:
    """Check every table, row and column of ``ds``; return the first ``limit`` problems and the total.

    ``latest``: the latest date a record may carry (today; default the clock's UTC date)."""
    latest = latest or datetime.now(UTC).date()
    fixed = [dict(p) for p in ds.read_problems]
    queries: list[str] = []
    broken = {p["table"] for p in ds.read_problems}
    entity_ids_present = "entities" not in broken and "entity_id" in ds.columns("entities")
    for table in TABLES:
        if table.name in broken:
            continue
        present = ds.columns(table.name)
        for column in table.columns:
            if column.name not in present and not column.nullable:
                fixed.append(
                    {
                        "table": table.name,
                        "row": None,
                        "column": column.name,
                        "value": None,
                        "message": "required column is missing from the header",
                    }
                )
        for build in (
            lambda t=table, p=present: _cell_problems(ds, t, p, latest),
            lambda t=table, p=present: _duplicate_problems(ds, t, p),
            lambda t=table, p=present: _reference_problems(t, p, entity_ids_present),
            lambda t=table, p=present: _relation_problems(ds, p, entity_ids_present) if t is RELATIONS else None,
            lambda t=table, p=present: _basis_problems(p) if t is LISTS else None,
        ):
            sql = build()
            if sql:
                queries.append(sql)
    found = pd.DataFrame(columns=list(REPORT_COLUMNS))
    total = len(fixed)
    if queries:
        # One check at a time, each appended to the problems table: a UNION of all of them runs their hash
        # tables side by side, more than a tight memory limit holds (DuckDBSettings.memory_limit).
        ds.con.execute(
            "CREATE OR REPLACE TEMP TABLE _problems "
            "(tbl VARCHAR, row BIGINT, col VARCHAR, value VARCHAR, message VARCHAR, col_order BIGINT)"
        )
        for query in queries:
            ds.con.execute(f"INSERT INTO _problems {query}")
        total += ds.con.execute("SELECT count(*) FROM _problems").fetchone()[0]
        order = " ".join(f"WHEN '{name}' THEN {i}" for name, i in _TABLE_ORDER.items())
        found = ds.con.execute(
            f'SELECT tbl AS "table", row, col AS "column", value, message FROM _problems '
            f"ORDER BY CASE tbl {order} END, row, col_order, message LIMIT {int(limit)}"
        ).df()
    problems = pd.concat([pd.DataFrame(fixed, columns=list(REPORT_COLUMNS)), found], ignore_index=True).head(limit)
    problems["row"] = problems["row"].astype("Int64")
    return ValidationReport(problems=problems, total=total)


def load_valid_dataset(path: str | Path, *, threads: int | None = None, latest: date | None = None) -> Dataset:
    """Load the dataset at ``path`` and validate it; raise ``DatasetError`` carrying the report if invalid."""
    ds = load_dataset(path, threads=threads)
    report = validate_dataset(ds, latest=latest)
    if not report.ok:
        raise DatasetError(f"dataset {path} is invalid: {report.summary()}", report.problems, report.total)
    return ds


def check_frames(ds: Dataset, *, latest: date | None = None) -> Dataset:
    """Validate an in-memory dataset (an API request); raise ``DatasetError`` with the report if invalid."""
    report = validate_dataset(ds, latest=latest)
    if not report.ok:
        raise DatasetError(f"invalid input: {report.summary()}", report.problems, report.total)
    return ds


__all__ = [
    "DatasetError",
    "ValidationReport",
    "check_frames",
    "load_valid_dataset",
    "validate_dataset",
]
