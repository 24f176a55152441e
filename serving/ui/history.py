"""An entity's events in the dataset its score run read, for the entity and objection pages.

The dataset is opened with ``features.dataset.load_dataset`` (the typed ``events`` view of the contract,
as ``serving/objections.py`` reads it for a repair) and kept open for the next page: opening the views
costs more than the page's whole budget, the query itself a few milliseconds. A run's dataset folder is
fixed by its fingerprint; the cache is keyed by the folder and its files' modification times, so a
replaced file is read afresh. Each read uses its own DuckDB cursor (one connection is not shared
between threads).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import pandas as pd

from features.dataset import DatasetError, load_dataset

_LOCK = threading.Lock()


def _stamp(folder: Path) -> tuple[float, ...]:
    return tuple(sorted(p.stat().st_mtime for p in folder.iterdir())) if folder.is_dir() else ()


@lru_cache(maxsize=4)
def _open(folder: str, stamp: tuple[float, ...]):
    return load_dataset(folder, threads=1)


def events_of(data_source: str, entity_id: str) -> pd.DataFrame | None:
    """The entity's rows of the run's ``events`` table, or ``None`` when the dataset cannot be read (a
    correction run's source is an objection, or the folder is gone)."""
    folder = Path(data_source)
    try:
        stamp = _stamp(folder)
        if not stamp:
            return None
        with _LOCK:
            ds = _open(str(folder), stamp)
        # The id is a bound parameter, never text pasted into the SQL.
        return ds.con.cursor().execute("SELECT * FROM events WHERE entity_id = ?", [entity_id]).df()
    except (DatasetError, OSError):
        return None
