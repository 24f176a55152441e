"""Load an enterprise-history dataset (a folder of CSV or Parquet tables, or in-memory frames) into DuckDB.

A ``Dataset`` is a DuckDB connection with two views per contract table:

- ``raw_<table>``: the table as given, every column as it was read (CSV columns as text), plus ``_row``,
  the 1-based data row number that validation messages cite;
- ``<table>``: the contract's columns cast to their contract types, for the feature builder.

DuckDB scans Parquet out of core and in parallel, so the same code serves one entity posted to the API
and a million entities with tens of millions of events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.errors import InvalidInput, Problem
from features.schema import EVENT_CODES, INDUSTRIES, KINDS, LIST_NAMES, TABLES, ColumnType, Table

# The contract's code lists as DuckDB enum types: membership tests and type codes through an enum are many
# times cheaper than comparing strings over tens of millions of rows. ``_event_type`` codes follow
# ``EVENT_CODES`` order.
ENUM_TYPES: dict[str, tuple[str, ...]] = {
    "_kind": KINDS,
    "_industry": INDUSTRIES,
    "_event_type": EVENT_CODES,
    "_list": LIST_NAMES,
}


# The columns of a validation report: one row per problem.
REPORT_COLUMNS: tuple[str, ...] = ("table", "row", "column", "value", "message")


class DatasetError(InvalidInput):
    """The dataset cannot be used.

    Each problem's path is ``(table, row, column)``: the table, the 1-based data row and the column, the
    row or column left out when the problem is not in one (a missing file, a missing header column). A
    caller that knows where the dataset came from re-roots the paths (``exc.under("dataset")``).
    ``frame`` keeps the validation report's rows (``table``, ``row``, ``column``, ``value``, ``message``)
    for printing as a table; ``total`` counts every problem, also those beyond the report's limit.
    """

    def __init__(self, message: str, frame: pd.DataFrame | None = None, total: int | None = None) -> None:
        self.frame = frame if frame is not None else pd.DataFrame(columns=list(REPORT_COLUMNS))
        problems = [_problem(p) for p in self.frame.to_dict("records")] or [Problem((), message)]
        super().__init__(problems, total=total if total is not None else len(problems))
        self.args = (message,)


def _problem(row: dict) -> Problem:
    """One report row as a ``Problem`` at ``(table, row, column)``."""
    loc: list[str | int] = [str(row["table"])]
    if not _missing(row.get("row")):
        loc.append(int(row["row"]))
    if not _missing(row.get("column")):
        loc.append(str(row["column"]))
    value = row.get("value")
    return Problem(tuple(loc), str(row["message"]), None if _missing(value) else str(value))


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


@dataclass
class Dataset:
    """Three contract tables behind one DuckDB connection. Build with ``load_dataset`` or ``from_frames``."""

    con: duckdb.DuckDBPyConnection
    source: str
    files: dict[str, Path] = field(default_factory=dict)
    # Problems found while reading (a missing table, an unreadable file), reported by validation.
    read_problems: list[dict] = field(default_factory=list)
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @classmethod
    def from_frames(
        cls,
        entities: pd.DataFrame,
        events: pd.DataFrame | None = None,
        lists: pd.DataFrame | None = None,
        *,
        source: str = "<memory>",
        threads: int | None = None,
    ) -> Dataset:
        """A dataset from pandas frames (an API request, a test); missing tables are empty."""
        con = _connect(threads)
        frames = {"entities": entities, "events": events, "lists": lists}
        ds = cls(con=con, source=source)
        for table in TABLES:
            frame = frames[table.name]
            if frame is None:
                frame = pd.DataFrame({c: pd.Series(dtype="object") for c in table.column_names})
            frame = frame.reset_index(drop=True)
            ds._frames[table.name] = frame
            con.register(f"_frame_{table.name}", frame.assign(_row=np.arange(1, len(frame) + 1)))
            con.execute(f"CREATE VIEW raw_{table.name} AS SELECT * FROM _frame_{table.name}")
        ds._create_typed_views()
        return ds

    @cached_property
    def fingerprint(self) -> str:
        """A content hash of the three tables: stored with every score so an appeal finds the exact data."""
        digest = hashlib.sha256()
        for table in TABLES:
            digest.update(table.name.encode())
            if table.name in self.files:
                with open(self.files[table.name], "rb") as fh:
                    digest.update(hashlib.file_digest(fh, "sha256").digest())
            elif table.name in self._frames:
                frame = self._frames[table.name]
                digest.update(",".join(map(str, frame.columns)).encode())
                digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).values.tobytes())
        return digest.hexdigest()[:16]

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL against the dataset's views and return a pandas frame."""
        return self.con.execute(sql).df()

    @cached_property
    def entities(self) -> pd.DataFrame:
        """The typed entities table (used for attributes such as region in fairness tables)."""
        return self.query("SELECT * FROM entities ORDER BY entity_id")

    def table(self, name: str) -> pd.DataFrame:
        """A typed contract table as a pandas frame."""
        return self.query(f"SELECT * FROM {name}")

    def data_end(self) -> date | None:
        """The latest date anything was recorded: events' ``recorded_on`` and lists' ``entered_on``."""
        row = self.con.execute(
            "SELECT greatest((SELECT max(recorded_on) FROM events), (SELECT max(entered_on) FROM lists))"
        ).fetchone()
        return row[0] if row else None

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> DuckDB type of the raw view of ``table``."""
        rows = self.con.execute(f"DESCRIBE raw_{table}").fetchall()
        return {r[0]: r[1] for r in rows if r[0] != "_row"}

    def _create_typed_views(self) -> None:
        for name, values in ENUM_TYPES.items():
            self.con.execute(f"CREATE TYPE {name} AS ENUM ({', '.join(_sql_str(v) for v in values)})")
        for table in TABLES:
            present = self.columns(table.name)
            self.con.execute(
                f"CREATE OR REPLACE VIEW {table.name} AS SELECT {_typed_select(table, present)} FROM raw_{table.name}"
            )


def _connect(threads: int | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _typed_select(table: Table, present: dict[str, str]) -> str:
    """Cast each contract column to its type; a column that is absent reads as NULL (validation reports it)."""
    parts = []
    for column in table.columns:
        if column.name not in present:
            parts.append(f"CAST(NULL AS {column.type.value}) AS {column.name}")
        elif column.type is ColumnType.STR:
            parts.append(f"CAST({_q(column.name)} AS VARCHAR) AS {column.name}")
        elif column.type is ColumnType.BOOL and present[column.name] == "VARCHAR":
            parts.append(f"TRY_CAST(lower(trim({_q(column.name)})) AS BOOLEAN) AS {column.name}")
        else:
            parts.append(f"TRY_CAST({_q(column.name)} AS {column.type.value}) AS {column.name}")
    return ", ".join(parts)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_dataset(path: str | Path, *, threads: int | None = None) -> Dataset:
    """Open the dataset folder at ``path``: each table as ``NAME.parquet`` or ``NAME.csv``.

    Nothing is checked here beyond reading; call ``features.validate.validate_dataset`` (or
    ``load_valid_dataset``) before using the data.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist or is not a folder")
    con = _connect(threads)
    ds = Dataset(con=con, source=str(folder.resolve()))
    for table in TABLES:
        candidates = [folder / f"{table.name}.parquet", folder / f"{table.name}.csv"]
        found = [p for p in candidates if p.is_file()]
        empty = "SELECT " + ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in table.column_names)
        empty += ", CAST(NULL AS BIGINT) AS _row WHERE false"
        if len(found) != 1:
            message = (
                f"missing: expected {table.name}.parquet or {table.name}.csv in {folder}"
                if not found
                else f"ambiguous: both {table.name}.parquet and {table.name}.csv are present; keep one"
            )
            ds.read_problems.append(_file_problem(table.name, message))
            con.execute(f"CREATE VIEW raw_{table.name} AS {empty}")
            continue
        file = found[0]
        ds.files[table.name] = file
        try:
            if file.suffix == ".parquet":
                con.execute(
                    f"CREATE VIEW raw_{table.name} AS SELECT * EXCLUDE (file_row_number), "
                    f"file_row_number + 1 AS _row FROM read_parquet({_sql_str(str(file))}, file_row_number = true)"
                )
            else:
                # CSV is read as text so that no value is lost to type guessing; validation casts and
                # reports. A table keeps insertion order, so rowid is the data row.
                con.execute(
                    f"CREATE TEMP TABLE _csv_{table.name} AS SELECT * FROM read_csv({_sql_str(str(file))}, "
                    "header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', "
                    "encoding = 'utf-8', strict_mode = true, null_padding = false)"
                )
                con.execute(f"CREATE VIEW raw_{table.name} AS SELECT *, rowid + 1 AS _row FROM _csv_{table.name}")
            con.execute(f"DESCRIBE raw_{table.name}").fetchall()
        except duckdb.Error as exc:
            detail = str(exc).splitlines()[0]
            ds.read_problems.append(_file_problem(table.name, f"cannot read {file.name}: {detail}"))
            con.execute(f"CREATE OR REPLACE VIEW raw_{table.name} AS {empty}")
    ds._create_typed_views()
    return ds


def _file_problem(table: str, message: str) -> dict:
    return {"table": table, "row": None, "column": None, "value": None, "message": message}
