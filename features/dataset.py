"""Load an enterprise-history dataset (a folder of CSV or Parquet tables, or in-memory frames) into DuckDB.

A ``Dataset`` is a DuckDB connection with two views per contract table:

- ``raw_<table>``: the table as given, every column as it was read (CSV columns as text), plus ``_row``,
  the 1-based data row number that validation messages cite;
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

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.errors import InvalidInput, Problem
from features.schema import EVENT_CODES, INDUSTRIES, KINDS, LIST_NAMES, RELATION_TYPES, TABLES, Table
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
            con.register(f"_frame_{table.name}", frame.assign(_row=np.arange(1, len(frame) + 1)))
            con.execute(f"CREATE VIEW raw_{table.name} AS SELECT * FROM _frame_{table.name}")
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


def _parquet_view(table: str, path: Path) -> str:
    """``raw_<table>`` over one Parquet file or a folder of them; ``_row`` numbers the rows across files."""
    if path.is_file():
        return (
            f"CREATE VIEW raw_{table} AS SELECT * EXCLUDE (file_row_number), "
            f"file_row_number + 1 AS _row FROM read_parquet({_sql_str(str(path))}, file_row_number = true)"
        )
    files = parquet_files(path)
    offsets = np.concatenate([[0], np.cumsum([pq.ParquetFile(f).metadata.num_rows for f in files])[:-1]])
    listed = ", ".join(_sql_str(str(f)) for f in files)
    # Partition folders (region=210600/) become text columns; a column only some files have reads as NULL.
    return (
        f"CREATE VIEW raw_{table} AS SELECT * EXCLUDE (file_row_number), "
        f"CAST([{', '.join(str(int(o)) for o in offsets)}] AS BIGINT[])[CAST(file_index AS BIGINT) + 1] "
        "+ file_row_number + 1 AS _row "
        f"FROM read_parquet([{listed}], file_row_number = true, hive_partitioning = true, "
        "hive_types_autocast = false, union_by_name = true)"
    )


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
        empty = "SELECT " + ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in table.column_names)
        empty += ", CAST(NULL AS BIGINT) AS _row WHERE false"
        if file is None:
            if not (table.optional and str(problem).startswith("missing")):
                ds.read_problems.append(_file_problem(table.name, str(problem)))
            con.execute(f"CREATE VIEW raw_{table.name} AS {empty}")
            continue
        ds.files[table.name] = file
        try:
            if file.suffix != ".csv":
                con.execute(_parquet_view(table.name, file))
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
        except (duckdb.Error, OSError, ValueError) as exc:  # ValueError: pyarrow cannot read a footer
            detail = str(exc).splitlines()[0]
            ds.read_problems.append(_file_problem(table.name, f"cannot read {file.name}: {detail}"))
            con.execute(f"CREATE OR REPLACE VIEW raw_{table.name} AS {empty}")
    ds._create_typed_views()
    return ds


def _file_problem(table: str, message: str) -> dict:
    return {"table": table, "row": None, "column": None, "value": None, "message": message}
