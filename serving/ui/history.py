"""An entity's history in the dataset its score run read, for the entity and objection pages, and the
date a what-if repair is scored at.

The dataset is opened with ``features.dataset.load_dataset`` (the typed ``events`` view of the contract,
as ``serving/objections.py`` reads it for a repair) and kept open for the next page: opening the views
costs more than the page's whole budget, the query itself a few milliseconds. A run's dataset folder is
fixed by its fingerprint; the cache is keyed by the folder and its files' modification times and sizes
(``serving.traces.folder_stamp``), so a replaced file is read afresh. Each read uses its own DuckDB
cursor (one connection is not shared between threads).
"""

from __future__ import annotations

import threading
from datetime import date
from functools import lru_cache
from pathlib import Path

import pandas as pd

from features.dataset import DatasetError, load_dataset
from features.errors import InvalidInput
from serving.traces import folder_stamp

_LOCK = threading.Lock()
TABLES = ("entities", "events", "lists")


@lru_cache(maxsize=4)
def _open(folder: str, stamp: tuple):
    return load_dataset(folder, threads=1)


def _dataset(data_source: str):
    """The run's dataset, opened once (``None`` when it cannot be read: a correction run's source is an
    objection, or the folder is gone)."""
    folder = Path(data_source)
    try:
        stamp = folder_stamp(folder)
        if not stamp:
            return None
        with _LOCK:
            return _open(str(folder), stamp)
    except (DatasetError, OSError):
        return None


def history_of(data_source: str, entity_id: str, tables: tuple[str, ...] = TABLES) -> list[pd.DataFrame] | None:
    """The entity's rows of the run's ``tables`` (the contract's typed views), or ``None`` when the dataset
    cannot be read."""
    ds = _dataset(data_source)
    if ds is None:
        return None
    cursor = ds.con.cursor()
    # The id is a bound parameter, never text pasted into the SQL.
    return [cursor.execute(f"SELECT * FROM {table} WHERE entity_id = ?", [entity_id]).df() for table in tables]


def event_rows(data_source: str, entity_id: str) -> list[dict] | None:
    """The entity's rows of the run's ``events`` table as plain records, newest recorded first (half the
    time of a frame, which the timeline does not need); ``None`` when the dataset cannot be read."""
    ds = _dataset(data_source)
    if ds is None:
        return None
    cursor = ds.con.cursor().execute(
        "SELECT * FROM events WHERE entity_id = ? ORDER BY recorded_on DESC, event_id", [entity_id]
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def events_of(data_source: str, entity_id: str) -> pd.DataFrame | None:
    """The entity's rows of the run's ``events`` table (``None``: the dataset cannot be read)."""
    found = history_of(data_source, entity_id, ("events",))
    return found[0] if found is not None else None


def repair_day(events: pd.DataFrame, repairs: list[dict[str, str]], as_of: date) -> date:
    """The date to score a repair at: the row's date or the latest repair, whichever is later (a repair
    counts from its date on). ``InvalidInput`` at ``("repairs", i, field)`` for a record the history does
    not hold, a malformed date or one before the record was recorded."""
    known = events["event_id"].astype(str)
    latest = as_of
    for i, repair in enumerate(repairs):
        named = known == repair["event_id"]
        where = ("repairs", i)
        if not named.any():
            raise InvalidInput.at((*where, "event_id"), "no such record", repair["event_id"], where="form")
        try:
            day = date.fromisoformat(repair["repaired_on"])
        except ValueError as exc:
            message = f"must be a date YYYY-MM-DD: {exc}"
            raise InvalidInput.at((*where, "repaired_on"), message, repair["repaired_on"], where="form") from exc
        recorded = pd.to_datetime(events.loc[named, "recorded_on"]).max().date()
        if day < recorded:
            message = f"must be on or after the record's recorded_on ({recorded})"
            raise InvalidInput.at((*where, "repaired_on"), message, str(day), where="form")
        latest = max(latest, day)
    return latest
