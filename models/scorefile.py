"""The score file (CONTRACT section 4): its columns, and the rows as ``ipcredit score`` writes them.

``Scorer.score`` returns these columns in this order; the service's store saves them, and a score file
written by ``ipcredit score`` can be imported back into a run because it has them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
