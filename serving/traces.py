"""The records behind a stored score row: its history, and which records fed each feature and rule.

A stored row keeps its features, contributions, versions and the ledger decisions its features applied
(``ledger_seq``), and its run keeps the dataset it read (``data_source``). Its records are derived from that
history at the row's ``as_of`` by ``features.evidence`` — the catalogue's definitions under the
point-in-time rule — so they are a function of what the row pins, recomputed when asked rather than
stored with each of a run's million rows. Before the records are shown, the row's features are rebuilt
from the same history and compared with the stored ones: if the dataset changed since the run, the
answer says the records cannot be traced instead of naming records that did not produce the row.

Repair decisions use the same trace: a repair may only name a record that fed the row.

A trace is computed once per stored row and dataset state and then kept (``trace_row``: the last
``TRACES_KEPT`` of them, per process): a row, its run chain and the ledger decisions up to its seq never
change, and the key holds the dataset folder's stamp (``folder_stamp``), so a changed
delivery is traced, and verified, afresh. Rebuilding the history and its features costs a few hundred
milliseconds; the pages and routes that show a row's records read it every time.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from features.build import build_features_from_frames
from features.catalogue import FEATURES, Source
from features.dataset import DatasetError, load_dataset
from features.errors import InvalidInput, Problem
from features.evidence import EntityHistory, Evidence, evidence, fed, records_evidence
from serving import ledger, scoring
from serving.db import objections
from serving.schemas import History
from serving.store import run_row

OBJECTION_SOURCE = "objection/"
# The features an entity's own rows decide, compared with the stored ones before its records are shown
# (relationship features read other entities' records, which a posted history does not carry).
OWN_SOURCES = (Source.ENTITY, Source.EVENTS, Source.LISTS)


class TraceUnavailable(Exception):
    """The row's history cannot be read back (its dataset is gone or changed, or it was posted)."""


@dataclass(frozen=True)
class Trace:
    """What a stored row's records are: ``found`` per feature (``None`` with a ``note`` when they cannot be
    traced), the history they come from and whether the rebuilt features matched the stored ones."""

    as_of: date
    found: dict[str, Evidence] | None
    history: EntityHistory | None = None
    verified: bool = False
    note: str | None = None

    def view(self) -> dict[str, Any]:
        """How an answer states where its records come from."""
        return {"traced": self.found is not None, "verified": self.verified, "note": self.note}


def dataset_history(
    data_source: str, entity_id: str, conn: Connection | None = None, ledger_seq: int | None = None
) -> EntityHistory:
    """One entity's rows of a dataset folder, with the decision ledger laid over it up to ``ledger_seq``
    when one is given (as the run that read it did); ``TraceUnavailable`` when it cannot be read."""
    try:
        ds = load_dataset(data_source, threads=1)
    except DatasetError as exc:
        raise TraceUnavailable(f"the run's dataset cannot be read ({exc.problems[0].msg})") from exc
    if conn is not None and ledger_seq is not None:
        ledger.apply(ds, conn, ledger_seq)
    # Ids are bound parameters, never text pasted into the SQL.
    own = [ds.con.execute(f"SELECT * FROM {t} WHERE entity_id = ?", [entity_id]).df() for t in _OWN]
    links = ds.con.execute("SELECT * FROM relations WHERE entity_id = ? OR related_id = ?", [entity_id] * 2).df()
    if links.empty:
        return EntityHistory(*own)
    others = sorted((set(links["entity_id"]) | set(links["related_id"])) - {entity_id})
    related = [ds.con.execute(f"SELECT * FROM {t} WHERE entity_id = ANY(?)", [others]).df() for t in _OWN]
    return EntityHistory(*own, relations=links, related=(related[0], related[1], related[2]))


_OWN = ("entities", "events", "lists")


def row_history(conn: Connection, row: Mapping[str, Any]) -> EntityHistory:
    """The history a stored row was scored from: the dataset of the batch run it descends from with the
    decision ledger up to the row's ``ledger_seq`` laid over it (a decision's rescored row records the seq
    of its own ledger decisions). A row from before the ledger, rescored by a repair, gets the repairs its
    objection recorded. ``TraceUnavailable`` when the dataset cannot be read, or a corrected history was
    posted before decisions went to the ledger (it was not kept)."""
    source, repairs = _origin(conn, row)
    history = dataset_history(source, str(row["entity_id"]), conn, row.get("ledger_seq"))
    return with_repairs(history, repairs)


def _origin(conn: Connection, row: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The dataset folder of the batch run ``row`` descends from, and the repairs recorded on the way
    (rows rescored before the ledger); ``TraceUnavailable`` as ``row_history`` says."""
    run = run_row(conn, row["run_id"])
    seq = row.get("ledger_seq")
    repairs: list[dict[str, Any]] = []
    while run is not None and str(run["data_source"]).startswith(OBJECTION_SOURCE):
        if seq is None:
            changes = _decision_changes(conn, run.get("objection_id"))
            if changes.get("history") == "posted":
                raise TraceUnavailable(f"score run {run['id']} rescored a history posted with its decision")
            repairs = [*changes.get("repairs", []), *repairs]
        run = run_row(conn, run["parent_run_id"]) if run.get("parent_run_id") else None
    if run is None:
        raise TraceUnavailable(f"score row {row['id']} descends from no dataset")
    return str(run["data_source"]), repairs


def _decision_changes(conn: Connection, objection_id: int | None) -> dict[str, Any]:
    if objection_id is None:
        return {}
    text = conn.execute(select(objections.c.changes).where(objections.c.id == objection_id)).scalar()
    return json.loads(text) if text else {}


def with_repairs(history: EntityHistory, repairs: Sequence[Mapping[str, Any]]) -> EntityHistory:
    """``history`` with the named events repaired on the given dates (an earlier delivered repair holds)."""
    if not repairs:
        return history
    events = history.events.copy()
    events["repaired_on"] = pd.to_datetime(events["repaired_on"])
    ids = events["event_id"].astype(str)
    for repair in repairs:
        day = pd.Timestamp(repair["repaired_on"])
        named = ids == str(repair["event_id"])
        current = events.loc[named, "repaired_on"]
        events.loc[named, "repaired_on"] = current.where(current.notna() & (current <= day), day)
    return history.replace(events=events)


def features_of(history: EntityHistory, as_of: date) -> pd.DataFrame:
    """The entity's own feature row at ``as_of`` built from ``history`` (empty before its registration)."""
    entities, events, lists, relations = history.tables()
    built = build_features_from_frames(entities, events, lists, as_of, relations)
    own = set(history.entity["entity_id"].astype(str))
    return built[built["entity_id"].astype(str).isin(own)].reset_index(drop=True)


def trace_history(history: EntityHistory, as_of: date, stored: Mapping[str, Any] | None = None) -> Trace:
    """The records of every feature of ``history`` at ``as_of``; with ``stored`` (the row's feature values)
    they are shown only when the features rebuilt from ``history`` equal them."""
    if stored:
        rebuilt = features_of(history, as_of)
        differs = _first_difference(rebuilt, stored)
        if differs is not None:
            return Trace(as_of, None, history, note=differs)
    return Trace(as_of, evidence(history, as_of), history, verified=bool(stored))


def trace_posted(history: History, as_of: date, decisions: pd.DataFrame | None = None) -> Trace:
    """The records of every feature of a posted history (a what-if) at ``as_of``, the ledger's ``decisions``
    about it laid over it first, as ``scoring.score_history`` reads its features: from the request's own
    records when there is no decision to lay over (``evidence.RecordsAtDate``), else through frames."""
    if decisions is None or decisions.empty:
        return Trace(as_of, records_evidence(history.entity, history.events, history.lists, as_of))
    return trace_history(EntityHistory(*scoring.overlaid_frames(history, decisions)), as_of)


def folder_stamp(path: str | Path) -> tuple[tuple[str, int, int], ...]:
    """What identifies the contents of a dataset folder cheaply: every file under it (table folders
    included) with its modification time and size; ``()`` when it is not a folder. A cache keyed by it
    reads a replaced, added or removed file afresh."""
    folder = Path(path)
    if not folder.is_dir():
        return ()
    found = []
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            status = file.stat()
            found.append((str(file.relative_to(folder)), status.st_mtime_ns, status.st_size))
    return tuple(found)


TRACES_KEPT = 256
_TRACES: OrderedDict[tuple, Trace] = OrderedDict()
_TRACES_LOCK = threading.Lock()


def trace_row(conn: Connection, row: Mapping[str, Any]) -> Trace:
    """The trace of a stored row (``score_row(..., full=True)``): never raises, a ``note`` says why not.
    Kept per row and dataset state (see the module docstring)."""
    as_of = row["as_of"]
    try:
        source, _ = _origin(conn, row)
    except TraceUnavailable as exc:
        return Trace(as_of, None, note=f"the records cannot be traced: {exc}")
    features = str(row.get("features") or "")
    key = (
        str(conn.engine.url),  # the password hidden: the key needs only to tell databases apart
        row.get("id"),
        row.get("ledger_seq"),
        hashlib.sha256(features.encode()).hexdigest(),
        source,
        folder_stamp(source),
    )
    with _TRACES_LOCK:
        kept = _TRACES.get(key)
        if kept is not None:
            _TRACES.move_to_end(key)
            return kept
    try:
        history = row_history(conn, row)
    except TraceUnavailable as exc:
        return Trace(as_of, None, note=f"the records cannot be traced: {exc}")
    trace = trace_history(history, as_of, _loads(row.get("features")))
    if row.get("id") is not None:
        with _TRACES_LOCK:
            _TRACES[key] = trace
            while len(_TRACES) > TRACES_KEPT:
                _TRACES.popitem(last=False)
    return trace


def _loads(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def _first_difference(rebuilt: pd.DataFrame, stored: Mapping[str, Any]) -> str | None:
    """``None`` when the rebuilt features equal the stored values, else which one differs."""
    if rebuilt.empty:
        return "the records cannot be traced: the entity is not in the run's dataset any more"
    for name, value in stored.items():
        if name not in FEATURES or FEATURES[name].source not in OWN_SOURCES or name not in rebuilt.columns:
            continue
        now = rebuilt[name].iloc[0]
        if not _same(now, value):
            return (
                f"the records cannot be traced: the run's dataset has changed since the row was scored "
                f"(feature {name} is {_plain(now)!r} now, {value!r} in the row)"
            )
    return None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _same(now: Any, stored: Any) -> bool:
    now = _plain(now)
    missing_now = now is None or (isinstance(now, float) and math.isnan(now))
    if stored is None or missing_now:
        return stored is None and missing_now
    if isinstance(stored, str) or isinstance(now, str):
        return str(now) == str(stored)
    return math.isclose(float(now), float(stored), rel_tol=1e-9, abs_tol=1e-9)


def check_repairs(trace: Trace, event_ids: Sequence[str], score_id: int, field: str = "repairs") -> None:
    """``InvalidInput`` at ``(field, i, "event_id")`` for every id that did not feed the row (no feature
    counted it at the row's date); nothing when all did. A row whose records cannot be traced refuses
    every id, saying why."""
    problems = []
    fed_ids = fed(trace.found) if trace.found is not None else set()
    for i, event_id in enumerate(event_ids):
        if event_id in fed_ids:
            continue
        why = trace.note if trace.found is None else f"no feature of the row counted it at {trace.as_of}"
        message = f"event {event_id} did not feed score row {score_id}: {why}"
        problems.append(Problem((field, i, "event_id"), message, event_id))
    if problems:
        raise InvalidInput(problems)


def check_repair_ids(
    engine: Engine, row: Mapping[str, Any], event_ids: Sequence[str], posted: EntityHistory | None = None
) -> None:
    """``check_repairs`` for the ids a repair decision names: each must have fed stored ``row`` — in its
    own history (dataset and ledger, ``trace_row``), or in the ``posted`` one when the decision brings it
    (which must then reproduce the row's features)."""
    if posted is not None:
        trace = trace_history(posted, row["as_of"], _loads(row.get("features")))
    else:
        with engine.connect() as conn:
            trace = trace_row(conn, row)
    check_repairs(trace, event_ids, row["id"])
