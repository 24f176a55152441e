"""Load an enterprise-history dataset (a folder of CSV or Parquet tables, or in-memory frames) into DuckDB.

A ``Dataset`` is a DuckDB connection with two views per contract table:

- ``raw_<table>``: the contract's columns of the table as given, each as it was read (CSV columns as text),
  plus ``_row``, the 1-based data row number that validation messages cite (``_raw_view``; a delivery's
  extra columns are left out, so no name of theirs can stand in for one validation builds);
- ``<table>``: the contract's columns cast to their contract types, for the feature builder.

DuckDB scans Parquet out of core and in parallel, so the same code serves one entity posted to the API
and a million entities with tens of millions of events.

A table is ``NAME.parquet`` (one file, or a folder of Parquet files, e.g. partitioned ``region=210600/``
or ``month=2025-01/``), a folder ``NAME/`` of Parquet files, or ``NAME.csv``: ``table_source`` says which,
for DuckDB here and for Spark (``features/spark.py``) alike. The rows of a folder are numbered across its
files in path order, so a validation message's row still points at one record. A folder dataset's
connection runs within ``DuckDBSettings`` (memory limit, spill directory): past the limit DuckDB spills to
disk instead of failing.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.errors import InvalidInput, Problem
from features.schema import (
    EVENT_CODES,
    INDUSTRIES,
    KINDS,
    LIST_NAMES,
    RELATION_TYPES,
    TABLES,
    ColumnType,
    Table,
)
from features.sql import DUCKDB, typed_select

# The contract's code lists as DuckDB enum types: membership tests and type codes through an enum are many
# times cheaper than comparing strings over tens of millions of rows. ``_event_type`` codes follow
# ``EVENT_CODES`` order.
ENUM_TYPES: dict[str, tuple[str, ...]] = {
    "_kind": KINDS,
    "_industry": INDUSTRIES,
    "_event_type": EVENT_CODES,
    "_list": LIST_NAMES,
    "_relation": RELATION_TYPES,
}


# An as-of date more days than this after a delivery's last record is warned about (``Dataset.span_caveat``).
STALE_DAYS = 92


def stale_days(as_of: date, data_end: date | None) -> int | None:
    """The days from a delivery's last record to ``as_of`` when they are more than ``STALE_DAYS``, else None."""
    days = (as_of - data_end).days if data_end is not None else None
    return days if days is not None and days > STALE_DAYS else None


def stale_caveat(as_of: date, data_end: date | None) -> str | None:
    """What a score as of ``as_of`` on a delivery whose last record is of ``data_end`` should say, or None:
    more than ``STALE_DAYS`` after it, the days since count as empty in every window."""
    days = stale_days(as_of, data_end)
    if days is None:
        return None
    return (
        f"the delivery's last record is of {data_end}, {days} days before the as-of date {as_of}: what happened "
        f"since is not in it, so those {days} days count as empty in every window (the last 3 and 12 months, "
        "this year's inspections)"
    )


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
    """The contract tables (``relations`` optional, empty when absent) behind one DuckDB connection. Build
    with ``load_dataset`` or ``from_frames``."""

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
        relations: pd.DataFrame | None = None,
        source: str = "<memory>",
        threads: int | None = None,
    ) -> Dataset:
        """A dataset from pandas frames (an API request, a test); missing tables are empty."""
        con = _connect(threads)
        frames = {"entities": entities, "events": events, "lists": lists, "relations": relations}
        ds = cls(con=con, source=source)
        for table in TABLES:
            frame = frames[table.name]
            given = frame is not None
            if frame is None:
                frame = pd.DataFrame({c: pd.Series(dtype="object") for c in table.column_names})
            frame = frame.reset_index(drop=True)
            if given or not table.optional:  # an optional table left out does not change the fingerprint
                ds._frames[table.name] = frame
            present = [c for c in table.column_names if c in frame.columns]
            zones = {c: str(frame[c].dtype.tz) for c in present if isinstance(frame[c].dtype, pd.DatetimeTZDtype)}
            con.register(f"_frame_{table.name}", frame[present].assign(_row=np.arange(1, len(frame) + 1)))
            try:
                _raw_view(con, table, f"_frame_{table.name}", "_row", zones)
            except _Unreadable as exc:
                ds.read_problems.append(_file_problem(table.name, str(exc), exc.row, exc.column, exc.value))
                con.execute(f"CREATE OR REPLACE VIEW raw_{table.name} AS {_empty_select(table)}")
        ds._create_typed_views()
        return ds

    @cached_property
    def fingerprint(self) -> str:
        """A content hash of the tables: stored with every score so an appeal finds the exact data (an
        optional table that is absent adds nothing, so a dataset without ``relations`` keeps its hash)."""
        digest = hashlib.sha256()
        for table in TABLES:
            digest.update(table.name.encode())
            if table.name in self.files:
                source = self.files[table.name]
                for file in parquet_files(source) if source.is_dir() else [source]:
                    digest.update(str(file.relative_to(source)).encode() if source.is_dir() else b"")
                    with open(file, "rb") as fh:
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

    def span_caveat(self, as_of: date) -> str | None:
        """What a user building features as of ``as_of`` should know about this delivery's span, or None: an
        as-of date before its first record (every history empty) or more than ``STALE_DAYS`` after its last
        (the days since count as empty in every window, since what happened then was not delivered)."""
        first = self.con.execute("SELECT min(recorded_on) FROM events").fetchone()[0]
        if first is None:
            return None
        if as_of < first:
            return (
                f"--as-of {as_of} is before the delivery's first record ({first}): every history is empty as of "
                "it, and every score rests on the entities' attributes alone"
            )
        end = self.data_end()
        caveat = stale_caveat(as_of, end)
        return f"{caveat}. Deliver the newer records, or use --as-of {end}" if caveat else None

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


class DuckDBSettings(BaseSettings):
    """How much of the machine a dataset folder's DuckDB connection may use, from ``IPCREDIT_DUCKDB_*``.

    ``memory_limit`` (``IPCREDIT_DUCKDB_MEMORY_LIMIT``, e.g. ``4GB``; DuckDB's default is 80 % of RAM) caps
    DuckDB's buffers: joins, aggregates and sorts beyond it spill to ``temp_directory``
    (``IPCREDIT_DUCKDB_TEMP_DIRECTORY``; default ``ipcredit-duckdb`` in the system's temporary folder, never
    the working directory), up to ``max_temp_directory_size``. Read when a folder is opened, never at import.
    """

    model_config = SettingsConfigDict(env_prefix="IPCREDIT_DUCKDB_", extra="ignore")

    memory_limit: str | None = None
    temp_directory: Path | None = None
    max_temp_directory_size: str | None = None

    def statements(self) -> list[str]:
        """The ``SET`` statements that apply these settings to a connection."""
        spill = self.temp_directory or Path(tempfile.gettempdir()) / "ipcredit-duckdb"
        out = [f"SET temp_directory = {_sql_str(str(spill))}"]
        if self.memory_limit:
            out.append(f"SET memory_limit = {_sql_str(self.memory_limit)}")
        if self.max_temp_directory_size:
            out.append(f"SET max_temp_directory_size = {_sql_str(self.max_temp_directory_size)}")
        return out


def _connect(threads: int | None, settings: DuckDBSettings | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    # DuckDB reads a timestamp with a time zone in the process's zone; a fixed one makes a dataset's dates
    # the same on every server (ICU, which knows the zones, is built into DuckDB's Python package).
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for statement in settings.statements() if settings is not None else ():
        con.execute(statement)
    return con


def _typed_select(table: Table, present: dict[str, str]) -> str:
    """Cast each contract column to its type; a column that is absent reads as NULL (validation reports it)."""
    text = {name: duckdb_type == "VARCHAR" for name, duckdb_type in present.items()}
    return typed_select(table, text, DUCKDB, quote_name=_q)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of a table folder, in path order (the order its rows are numbered in)."""
    found = (p for p in folder.rglob("*.parquet") if p.is_file())
    # Hidden and underscore files (.crc, _SUCCESS, _temporary/) are a writer's bookkeeping, as Spark reads it.
    return sorted(p for p in found if not any(part[0] in "._" for part in p.relative_to(folder).parts))


def table_source(folder: Path, name: str) -> tuple[Path | None, str | None]:
    """Where table ``name`` of the dataset ``folder`` is: ``(path, None)``, or ``(None, problem)`` when it
    is missing, given twice, or a folder with no Parquet file or with a file that lies outside it.

    The path is ``NAME.parquet`` (a file or a folder of Parquet files), ``NAME/`` (a folder of Parquet
    files) or ``NAME.csv``. Both engines read a dataset through this one answer.
    """
    candidates = [folder / f"{name}.parquet", folder / name, folder / f"{name}.csv"]
    found = [
        p
        for p in candidates
        if (p.is_file() and p.suffix in (".parquet", ".csv")) or (p.is_dir() and p.suffix != ".csv")
    ]
    if not found:
        return (
            None,
            f"missing: expected {name}.parquet or {name}.csv (or a folder {name}/ of Parquet files) in {folder}",
        )
    if len(found) > 1:
        names = [p.name + ("/" if p.is_dir() else "") for p in found]
        shown = (
            f"both {names[0]} and {names[1]} are"
            if len(names) == 2
            else f"{', '.join(names[:-1])} and {names[-1]} are all"
        )
        return None, f"ambiguous: {shown} present; keep one"
    path = found[0]
    if path.is_dir():
        root = path.resolve()
        if not root.is_relative_to(folder.resolve()):
            return None, f"{path.name}/ must be a folder inside the dataset, not a link out of it"
        files = parquet_files(path)
        if not files:
            return None, f"{path.name}/ holds no .parquet file"
        outside = [f for f in files if not f.resolve().is_relative_to(root)]
        if outside:
            return (
                None,
                f"{outside[0].relative_to(path)} in {path.name}/ must be a file inside it, not a link out of it",
            )
    return path, None


class _Unreadable(Exception):
    """A table that cannot be read as the contract says: why, and the data row and column when known."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None, value: str | None = None):
        super().__init__(message)
        self.row, self.column, self.value = row, column, value


def _raw_view(con: duckdb.DuckDBPyConnection, table: Table, source: str, row: str, zones: dict[str, str]) -> None:
    """Create ``raw_<table>`` over ``source`` (a FROM clause holding the table as read): its contract columns
    and ``_row``, the SQL expression ``row``.

    Each column is taken as it was read but for three things the formats would otherwise disagree on: text
    stored as plain Parquet binary (as Hive, Impala and older Spark write it) is decoded as UTF-8 (a cell
    that is not UTF-8 is refused); a timestamp with a time zone becomes the wall-clock time in its zone
    (``zones``: column -> zone, UTC when none is named), so its date is the one its producer meant, on any
    server; and blank text in a column other than required text reads as NULL, as an empty CSV field does.
    """
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    parts = []
    for column in table.columns:
        if column.name not in types:
            continue
        name, read_as = _q(column.name), types[column.name]
        if read_as == "BLOB":
            _refuse_undecodable(con, source, row, column.name)
            name, read_as = f"decode({name})", "VARCHAR"
        if read_as == "TIMESTAMP WITH TIME ZONE" and column.type is ColumnType.DATE:
            zone = _duckdb_zone(con, column.name, zones.get(column.name) or "UTC")
            name = f"timezone({_sql_str(zone)}, {name})"
        elif read_as == "VARCHAR" and (column.nullable or column.type is not ColumnType.STR):
            # trim only for what starts with a space: trimming every cell triples the cost of a scan
            blank = f"{name} = '' OR (starts_with({name}, ' ') AND trim({name}) = '')"
            name = f"CASE WHEN {blank} THEN NULL ELSE {name} END"
        parts.append(f"{name} AS {_q(column.name)}")
    con.execute(f"CREATE VIEW raw_{table.name} AS SELECT {', '.join([*parts, f'{row} AS _row'])} FROM {source}")


def _refuse_undecodable(con: duckdb.DuckDBPyConnection, source: str, row: str, column: str) -> None:
    """Raise ``_Unreadable`` at the first cell of the binary ``column`` that is not UTF-8 text."""
    name = _q(column)
    found = con.execute(
        f"SELECT {row} AS r, CAST({name} AS VARCHAR), count(*) OVER () FROM {source} "
        f"WHERE {name} IS NOT NULL AND TRY(decode({name})) IS NULL ORDER BY r LIMIT 1"
    ).fetchone()
    if found:
        more = f" (the first of {found[2]} such rows)" if found[2] > 1 else ""
        raise _Unreadable(f"is not UTF-8 text{more}; text must be UTF-8 encoded", found[0], column, found[1])


def _duckdb_zone(con: duckdb.DuckDBPyConnection, column: str, zone: str) -> str:
    """``zone`` as DuckDB names it (a fixed offset ``+08:00`` is ``GMT+08:00``); ``_Unreadable`` if unknown."""
    known = f"GMT{zone}" if re.fullmatch(r"[+-]\d{2}:\d{2}", zone) else zone
    try:
        con.execute(f"SELECT timezone({_sql_str(known)}, TIMESTAMPTZ '2000-01-01 00:00:00+00')").fetchone()
    except duckdb.Error:
        raise _Unreadable(
            f"is a timestamp with a time zone ({zone}) that is not known; deliver the date as YYYY-MM-DD or "
            "as a date/timestamp without zone",
            column=column,
        ) from None
    return known


def timestamp_zones(path: Path) -> dict[str, str]:
    """The time zone each timestamp-with-zone column of a Parquet table (a file or a folder) names in its
    Arrow schema, e.g. ``Asia/Shanghai``; ``ValueError`` when the files of a folder name different zones."""
    return _zones(pq.read_schema(file) for file in (parquet_files(path) if path.is_dir() else [path]))


def _zones(schemas: Iterable[pa.Schema]) -> dict[str, str]:
    zones: dict[str, str] = {}
    for schema in schemas:
        for f in schema:
            zone = f.type.tz if isinstance(f.type, pa.TimestampType) else None
            if zone is not None and zones.setdefault(f.name, zone) != zone:
                raise ValueError(f"{f.name} is given in different time zones ({zones[f.name]}, {zone})")
    return zones


def _parquet_source(path: Path) -> tuple[str, str, dict[str, str]]:
    """The FROM clause over one Parquet file or a folder of them, the row number across its files, and the
    time zones its columns name (``timestamp_zones``), from one read of each file's footer."""
    if path.is_file():
        zones = _zones([pq.read_schema(path)])
        return f"read_parquet({_sql_str(str(path))}, file_row_number = true)", "file_row_number + 1", zones
    files = parquet_files(path)
    footers = [pq.ParquetFile(f) for f in files]
    offsets = np.concatenate([[0], np.cumsum([footer.metadata.num_rows for footer in footers])[:-1]])
    listed = ", ".join(_sql_str(str(f)) for f in files)
    # Partition folders (region=210600/) become text columns; a column only some files have reads as NULL.
    return (
        f"read_parquet([{listed}], file_row_number = true, hive_partitioning = true, "
        "hive_types_autocast = false, union_by_name = true)",
        f"CAST([{', '.join(str(int(o)) for o in offsets)}] AS BIGINT[])[CAST(file_index AS BIGINT) + 1] "
        "+ file_row_number + 1",
        _zones(footer.schema_arrow for footer in footers),
    )


def _csv_source(con: duckdb.DuckDBPyConnection, table: Table, path: Path) -> tuple[str, str]:
    """Read a CSV table into a temporary table as text; return its name and the data row number.

    The header is read here and the columns given to DuckDB, so that it parses the file as the header says
    instead of guessing a dialect from a sample (a guess that fails on one bad row says nothing of why).
    Columns other than the contract's are kept under names of their position, never their own.
    """
    header = _csv_header(path)
    if not set(header) & set(table.column_names):
        shown = ",".join(header)
        raise _Unreadable(
            f"its first line ({shown[:60]}{'…' if len(shown) > 60 else ''}) names none of the table's columns: "
            "the header row must be the first line (no title or comment above it)"
        )
    names = []
    for position, name in enumerate(header, start=1):
        if name not in table.column_names:
            names.append(f"_extra_{position}")
        elif name in names:
            raise _Unreadable(f"the header names {name} twice; keep one", column=name)
        else:
            names.append(name)
    columns = "{" + ", ".join(f"{_sql_str(n)}: 'VARCHAR'" for n in names) + "}"
    try:
        # A table keeps insertion order, so rowid is the data row.
        con.execute(
            f"CREATE TEMP TABLE _csv_{table.name} AS SELECT * FROM read_csv({_sql_str(str(path))}, "
            f"header = true, auto_detect = false, columns = {columns}, delim = ',', quote = '\"', escape = '\"', "
            "encoding = 'utf-8', strict_mode = true, null_padding = false)"
        )
    except duckdb.Error as exc:
        raise _csv_unreadable(str(exc)) from None
    return f"_csv_{table.name}", "rowid + 1"


def _csv_header(path: Path) -> list[str]:
    """The column names in the first line of a CSV file (a UTF-8 byte order mark is allowed)."""
    with open(path, "rb") as fh:
        first = fh.readline()
    if not first:
        raise _Unreadable("the file is empty: it needs a header row naming the columns")
    try:
        line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _Unreadable("the header row is not UTF-8 text: the file must be UTF-8 encoded") from None
    if not line.strip():
        raise _Unreadable("the first line is blank: it must be the header row naming the columns")
    return next(csv.reader([line]))


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _csv_unreadable(message: str) -> _Unreadable:
    """DuckDB's CSV error as the reason and the data row it is on; its advice and settings left out."""
    lines = message.splitlines()
    line = _CSV_LINE.search(message)
    if line is None:
        return _Unreadable(lines[0] if lines else "unreadable")
    # DuckDB's message: the line, the original line, the reason, then possible fixes and the reader's settings.
    advice = next((i for i, text in enumerate(lines) if text.startswith("Possible")), len(lines))
    reason = next((text.strip() for text in reversed(lines[:advice]) if text.strip()), "")
    fields = _CSV_FIELDS.search(reason)
    if fields:
        reason = f"has {fields.group(2)} fields where the header has {fields.group(1)}"
    elif "not utf-8 encoded" in reason.lower():
        reason = reason.split(". ")[0].rstrip(".") + ": the file must be UTF-8 encoded"
    elif reason.startswith(("Original Line", "Invalid Input Error")):
        reason = "cannot be parsed"
    row = int(line.group(1)) - 1  # DuckDB counts the header as line 1
    return _Unreadable(reason, row if row >= 1 else None)


def _empty_select(table: Table) -> str:
    """A query with the columns of ``raw_<table>`` and no rows: a table that is missing or unreadable."""
    empty = "SELECT " + ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in table.column_names)
    return empty + ", CAST(NULL AS BIGINT) AS _row WHERE false"


def load_dataset(path: str | Path, *, threads: int | None = None, settings: DuckDBSettings | None = None) -> Dataset:
    """Open the dataset folder at ``path``: each table as ``NAME.parquet`` (a file or a folder of Parquet
    files), ``NAME/`` or ``NAME.csv`` (``table_source``), within ``settings`` (default: ``DuckDBSettings()``
    from the environment).

    Nothing is checked here beyond reading; call ``features.validate.validate_dataset`` (or
    ``load_valid_dataset``) before using the data.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist or is not a folder")
    con = _connect(threads, settings if settings is not None else DuckDBSettings())
    ds = Dataset(con=con, source=str(folder.resolve()))
    for table in TABLES:
        file, problem = table_source(folder, table.name)
        if file is None:
            if not (table.optional and str(problem).startswith("missing")):
                ds.read_problems.append(_file_problem(table.name, str(problem)))
            con.execute(f"CREATE VIEW raw_{table.name} AS {_empty_select(table)}")
            continue
        ds.files[table.name] = file
        try:
            if file.suffix == ".csv":
                # CSV is read as text so that no value is lost to type guessing; validation casts and reports.
                source, row = _csv_source(con, table, file)
                _raw_view(con, table, source, row, {})
            else:
                source, row, zones = _parquet_source(file)
                _raw_view(con, table, source, row, zones)
            con.execute(f"DESCRIBE raw_{table.name}").fetchall()
        except _Unreadable as exc:
            message = f"cannot read {file.name}: {exc}"
            ds.read_problems.append(_file_problem(table.name, message, exc.row, exc.column, exc.value))
            con.execute(f"CREATE OR REPLACE VIEW raw_{table.name} AS {_empty_select(table)}")
        except (duckdb.Error, OSError, ValueError) as exc:  # ValueError: pyarrow cannot read a footer
            detail = str(exc).splitlines()[0]
            ds.read_problems.append(_file_problem(table.name, f"cannot read {file.name}: {detail}"))
            con.execute(f"CREATE OR REPLACE VIEW raw_{table.name} AS {_empty_select(table)}")
    ds._create_typed_views()
    return ds


def _file_problem(
    table: str, message: str, row: int | None = None, column: str | None = None, value: str | None = None
) -> dict:
    return {"table": table, "row": row, "column": column, "value": value, "message": message}
