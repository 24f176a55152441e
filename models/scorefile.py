"""The score file (CONTRACT section 4): its columns, and the rows as ``ipcredit score`` writes them.

``Scorer.score`` returns these columns in this order; the service's store saves them, and a score file
written by ``ipcredit score`` can be imported back into a run because it has them.

``ScoreFileWriter`` writes a Parquet score file as the rows are made — DuckDB's scoring chunks, or
Spark's part files merged in ``entity_id`` order — in row groups of ``ROW_GROUP_ROWS`` rows, so a run
of millions holds one row group of score rows at a time instead of all of them, and the file's bytes
depend on its rows alone (not on the scoring chunk size nor the engine).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# The score file of CONTRACT section 4, then what this project adds to every row.
SCORE_COLUMNS: tuple[str, ...] = (
    "entity_id",
    "as_of",
    "score",
    "model_tier",
    "tier",
    "rules",
    "review",
    "model_version",
    "reasons",
)
EXTRA_COLUMNS: tuple[str, ...] = ("policy_version", "feature_version", "base_value", "log_odds")
# The full explanation of each row: stored with a run, too large for the file.
DETAIL_COLUMNS: tuple[str, ...] = ("contributions", "features")
# The ``model_version`` of rows scored by a model that is not registered.
UNREGISTERED = "unregistered"
# The decisions of the ledger a run applied (an extra column of the score file when one was applied).
LEDGER_COLUMN = "ledger_seq"

_STRING = pa.string()
# The Arrow type of every column ``Scorer.score_columns`` returns.
SCORE_TYPES: dict[str, pa.DataType] = {
    "entity_id": _STRING,
    "as_of": pa.date32(),
    "score": pa.float64(),
    "model_tier": _STRING,
    "tier": _STRING,
    "rules": _STRING,
    "review": pa.bool_(),
    "model_version": _STRING,
    "reasons": _STRING,
    "policy_version": _STRING,
    "feature_version": _STRING,
    "base_value": pa.float64(),
    "log_odds": pa.float64(),
    "contributions": _STRING,
    "features": _STRING,
    LEDGER_COLUMN: pa.int64(),
}


def score_schema(details: bool = False, *, ledger: bool = False) -> pa.Schema:
    """The columns of a score row in order: the score file's, the extras, with ``details`` the full
    explanation (``contributions``, ``features``), with ``ledger`` the ledger's seq."""
    names = [*SCORE_COLUMNS, *EXTRA_COLUMNS, *(DETAIL_COLUMNS if details else ()), *([LEDGER_COLUMN] if ledger else [])]
    return pa.schema([pa.field(name, SCORE_TYPES[name]) for name in names])


def score_batch(columns: dict[str, np.ndarray | list], schema: pa.Schema) -> pa.RecordBatch:
    """``Scorer.score_columns``' columns as an Arrow batch of ``schema``."""
    arrays = [pa.array(_plain(columns[field.name]), type=field.type) for field in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _plain(values: np.ndarray | list) -> np.ndarray | list:
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        return values.astype(object)
    return values


# Rows per row group of a score file written by ``ScoreFileWriter`` (a group of reasons is ~100 MB).
ROW_GROUP_ROWS = 100_000


class ScoreFileWriter:
    """Score rows of ``schema`` written to the Parquet file ``path`` as they come, in row groups of
    exactly ``rows`` rows (the last one shorter), so the bytes depend on the rows and their order alone.
    The file is written beside ``path`` under a temporary name and renamed when the writer closes without
    an error; on an error nothing is left. ``tiers`` and ``review`` count what was written."""

    def __init__(self, path: Path, schema: pa.Schema, rows: int = ROW_GROUP_ROWS) -> None:
        self.path, self.schema, self.rows = Path(path), schema, rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = pq.ParquetWriter(self._tmp, schema)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.written = 0
        self.tiers: dict[str, int] = {}
        self.review = 0

    def write(self, rows: pa.RecordBatch | pa.Table) -> None:
        """Add score rows (any number; they are grouped here)."""
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows])
        table = table.select(self.schema.names).cast(self.schema)
        for tier, count in zip(*_counts(table.column("tier")), strict=True):
            self.tiers[tier] = self.tiers.get(tier, 0) + count
        self.review += int(pc.sum(table.column("review")).as_py() or 0)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.rows:
            self._flush(self.rows)

    def _flush(self, rows: int) -> None:
        pending = pa.concat_tables(self._pending)
        self._writer.write_table(pending.slice(0, rows).combine_chunks(), row_group_size=rows)
        rest = pending.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        self.written += rows

    def close(self) -> None:
        """Write what is left and put the file in place."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Leave nothing behind."""
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ScoreFileWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counted = pc.value_counts(column)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


def score_file(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``scores`` (``Scorer.score``) as the score file holds them: without the detail columns."""
    return scores.drop(columns=[c for c in DETAIL_COLUMNS if c in scores.columns])


# A string column's Arrow chunks hold at most this many bytes (Arrow's 32-bit offsets end at 2 GiB).
_CHUNK_BYTES = 2**31 - 1


def is_text(values: np.ndarray | list) -> bool:
    """Whether a score column is text (ids, tiers, rules, versions, JSON), to be held as Arrow strings."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "U":
            return True
        if values.dtype.kind != "O":
            return False
    return all(isinstance(v, str) for v in values[:1]) and all(isinstance(v, str) for v in values)


def text_column(pieces: list[pa.Array | pa.ChunkedArray]) -> pd.Series:
    """One text column of score rows from its pieces, as pandas holds a column of Python strings (the
    ``str`` dtype, backed by Arrow) — but chunked by size alone, never by where the pieces end.

    Parquet's dictionary encoding falls back to plain at a point that follows the chunks, so a column's
    chunking decides the bytes of a score file: made here, it is the same whatever the scoring chunk size
    and whichever engine scored the rows. Scoring keeps each chunk's strings as UTF-8 (a million reasons
    are ~1 GB) instead of Python objects (~1.8 GB).
    """
    wide = [piece.cast(pa.large_string()) for piece in pieces]
    whole = pa.chunked_array(wide, type=pa.large_string()).combine_chunks()
    sizes = np.cumsum(pc.binary_length(whole).to_numpy(zero_copy_only=False).astype(np.int64))
    chunks, start, base = [], 0, 0
    while start < len(whole):
        stop = int(np.searchsorted(sizes, base + _CHUNK_BYTES, side="right"))
        stop = max(stop, start + 1)
        chunks.append(whole.slice(start, stop - start).cast(pa.string()))
        base = int(sizes[stop - 1])
        start = stop
    return pa.chunked_array(chunks or [pa.array([], pa.string())], type=pa.string()).to_pandas()
