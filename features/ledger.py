"""The regulator's decisions laid over a delivered dataset: the ledger wins, and every disagreement is said.

A dataset folder is what the source agencies delivered. The ledger is what the regulator decided about it
(issue: decisions that last): a record corrected (amended fields) or withdrawn, a record repaired, a list
entry removed early or withdrawn, a new record (an inspection result, a credit commitment kept or
broken). Every feature build that scores or trains applies the ledger over the folder, so a decision keeps
holding in every later run, whatever the next delivery says.

Each decision takes effect on its ``decided_on`` date and never before, so the point-in-time rule of
``features/pointintime.py`` applies to it unchanged, on the same columns:

- a **repair** sets ``repaired_on`` (the earlier of the delivered date and the decided one);
- a **withdrawal** ends the record on its decision date, as a repair would (from then on it counts for
  nothing), and it is never an outcome;
- a **correction** ends the delivered version on the decision date and adds the corrected version, known
  from the decision date on (``recorded_on`` is the later of the amended date and the decision date);
  outcomes use the corrected version at its amended record date;
- an **early removal** sets ``removed_on`` (the earlier of the two); a **withdrawn entry** (one that should
  not exist: annulled on review, entered in error) ends the same way, on its decision date, and sets
  ``withdrawn_on`` too: from then on it is not even among the entries ever made (``red_list_entries``);
- a **new record** is an event of its own id, like any delivered one, known from the later of its
  ``recorded_on`` and its decision date (entered late, it never reaches back before its decision).

``overlay_dataset`` replaces the typed views of a DuckDB ``Dataset``; ``overlay_frames`` does the same on
pandas frames (a history held in memory): one set of semantics, two engines, tested against each other.
The outcome views (``events_outcome``) hold each record's final version: corrected, and without the
withdrawn ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache

import numpy as np
import pandas as pd

from features.dataset import Dataset
from features.errors import InvalidInput, Problem
from features.schema import EVENT_CODES, EVENTS, LIST_NAMES, LISTS, WITHDRAWN_ON


class DecisionKind(StrEnum):
    CORRECT = "correct"  # amended fields of a delivered event
    WITHDRAW = "withdraw"  # a delivered event that should not exist
    REPAIR = "repair"  # credit repair of an event, from repaired_on
    REMOVE_LISTING = "remove_listing"  # a list entry ended early, on removed_on
    WITHDRAW_LISTING = "withdraw_listing"  # a list entry that should not exist, ended on removed_on
    ADD_EVENT = "add_event"  # a new record: an inspection result, a credit commitment kept or broken


# The kinds that end a list entry on their removed_on: an early removal, a withdrawal.
ENDS_LISTING = (DecisionKind.REMOVE_LISTING, DecisionKind.WITHDRAW_LISTING)
AMENDABLE = ("event_type", "occurred_on", "recorded_on", "quantity", "amount")
LEDGER_COLUMNS = (
    "seq",
    "kind",
    "decided_on",
    "event_id",
    "entity_id",
    "list",
    "entered_on",
    *AMENDABLE,
    "repaired_on",
    "removed_on",
)
_DATES = ("decided_on", "entered_on", "occurred_on", "recorded_on", "repaired_on", "removed_on")


def empty_ledger() -> pd.DataFrame:
    """A ledger without decisions, with the ledger's columns and types (a copy: the caller may change it)."""
    return _empty().copy()


@cache
def _empty() -> pd.DataFrame:
    # Normalising costs milliseconds of pandas even with no rows, and most entities have no decision: the
    # service asks for one entity's decisions on every what-if.
    return normalise(pd.DataFrame({c: pd.Series(dtype="object") for c in LEDGER_COLUMNS}))


def normalise(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger's columns in order with their types (dates as ``datetime64[s]``), sorted by ``seq``."""
    frame = ledger.reindex(columns=list(LEDGER_COLUMNS)).copy()
    frame["seq"] = pd.to_numeric(frame["seq"]).astype("int64")
    for column in _DATES:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    frame["quantity"] = pd.to_numeric(frame["quantity"]).astype("float64")
    frame["amount"] = pd.to_numeric(frame["amount"]).astype("float64")
    for column in ("kind", "event_id", "entity_id", "list", "event_type"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.sort_values("seq", kind="stable").reset_index(drop=True)


def check_ledger(ledger: pd.DataFrame) -> list[Problem]:
    """Every problem of a ledger as ``("ledger", row, column)`` paths: kinds, the fields each kind needs,
    codes, dates in order, unique increasing ``seq``, one final decision per event."""
    problems: list[Problem] = []
    frame = ledger.reset_index(drop=True)

    def bad(row: int, column: str, message: str, value: object = None) -> None:
        problems.append(Problem(("ledger", row + 1, column), message, None if pd.isna(value) else str(value)))

    kinds = {k.value for k in DecisionKind}
    needs = {
        DecisionKind.CORRECT: ("event_id",),
        DecisionKind.WITHDRAW: ("event_id",),
        DecisionKind.REPAIR: ("event_id", "repaired_on"),
        DecisionKind.REMOVE_LISTING: ("entity_id", "list", "entered_on", "removed_on"),
        DecisionKind.WITHDRAW_LISTING: ("entity_id", "list", "entered_on", "removed_on"),
        DecisionKind.ADD_EVENT: ("event_id", "entity_id", "event_type", "occurred_on", "recorded_on", "quantity"),
    }
    seq = pd.to_numeric(frame.get("seq"), errors="coerce")
    for i, row in frame.iterrows():
        if pd.isna(seq[i]) or seq[i] != int(seq[i]) or seq[i] < 1:
            bad(i, "seq", "seq must be a positive whole number", row.get("seq"))
        kind = row.get("kind")
        if kind not in kinds:
            bad(i, "kind", f"kind must be one of {sorted(kinds)}", kind)
            continue
        if pd.isna(row.get("decided_on")):
            bad(i, "decided_on", "decided_on is required")
        for column in needs[DecisionKind(kind)]:
            if pd.isna(row.get(column)):
                bad(i, column, f"a {kind} decision needs {column}")
        if kind == DecisionKind.CORRECT and all(pd.isna(row.get(c)) for c in AMENDABLE):
            bad(i, "kind", f"a correct decision must amend at least one of {list(AMENDABLE)}")
        if not pd.isna(row.get("event_type")) and row.get("event_type") not in EVENT_CODES:
            bad(i, "event_type", "event_type must be a code of the event catalogue", row.get("event_type"))
        if not pd.isna(row.get("list")) and row.get("list") not in LIST_NAMES:
            bad(i, "list", f"list must be one of {list(LIST_NAMES)}", row.get("list"))
        for column in _DATES:
            value = row.get(column)
            if not pd.isna(value) and pd.isna(pd.to_datetime(value, errors="coerce")):
                bad(i, column, f"{column} must be a date YYYY-MM-DD", value)
        occurred, recorded = pd.to_datetime(row.get("occurred_on")), pd.to_datetime(row.get("recorded_on"))
        if not pd.isna(occurred) and not pd.isna(recorded) and recorded < occurred:
            bad(i, "recorded_on", "recorded_on must be on or after occurred_on", row.get("recorded_on"))
        quantity = pd.to_numeric(row.get("quantity"), errors="coerce")
        if not pd.isna(row.get("quantity")) and (pd.isna(quantity) or quantity < 1 or quantity != int(quantity)):
            bad(i, "quantity", "quantity must be a whole number >= 1", row.get("quantity"))
    if seq.notna().all() and not seq.is_unique:
        for i in np.flatnonzero(seq.duplicated().to_numpy()):
            bad(int(i), "seq", "seq must be unique", frame.loc[i, "seq"])
    return problems


@dataclass(frozen=True)
class OverlayReport:
    """What laying the ledger over a delivery did: the last decision applied and where the two disagree."""

    seq: int  # the highest seq applied (0: no decision)
    decisions: int
    conflicts: pd.DataFrame  # seq, kind, event_id / entity_id, message

    def describe(self) -> list[str]:
        lines = [f"ledger applied up to decision {self.seq} ({self.decisions} decisions)"]
        lines += [f"decision {r.seq} ({r.kind}): {r.message}" for r in self.conflicts.itertuples()]
        return lines


def _conflict_rows(ledger: pd.DataFrame, events: pd.DataFrame, lists: pd.DataFrame) -> pd.DataFrame:
    """Where the delivery disagrees with what was decided (a delivery that already carries a repair or a
    removal of the same date agrees; an event the delivery lacks is reported, not an error)."""
    rows = []
    known = events.set_index("event_id") if len(events) else pd.DataFrame(index=pd.Index([], name="event_id"))
    delivered_ids = set(known.index)
    for d in ledger.itertuples(index=False):
        kind = DecisionKind(d.kind)
        if kind in (DecisionKind.CORRECT, DecisionKind.WITHDRAW, DecisionKind.REPAIR):
            if d.event_id not in delivered_ids:
                rows.append((d.seq, d.kind, d.event_id, f"event {d.event_id} is not in this delivery"))
                continue
            if kind is DecisionKind.REPAIR:
                delivered = known.loc[d.event_id, "repaired_on"]
                if not pd.isna(delivered) and pd.Timestamp(delivered) != pd.Timestamp(d.repaired_on):
                    rows.append(
                        (
                            d.seq,
                            d.kind,
                            d.event_id,
                            f"the delivery says repaired on {pd.Timestamp(delivered).date()}, the ledger "
                            f"{pd.Timestamp(d.repaired_on).date()}: the earlier date holds",
                        )
                    )
        elif kind is DecisionKind.ADD_EVENT and d.event_id in delivered_ids:
            rows.append(
                (d.seq, d.kind, d.event_id, f"event id {d.event_id} is also in the delivery: the ledger's holds")
            )
        elif kind in ENDS_LISTING:
            match = lists[
                (lists["entity_id"] == d.entity_id)
                & (lists["list"] == d.list)
                & (pd.to_datetime(lists["entered_on"]) == pd.Timestamp(d.entered_on))
            ]
            if match.empty:
                rows.append(
                    (
                        d.seq,
                        d.kind,
                        d.entity_id,
                        f"no {d.list} entry of {pd.Timestamp(d.entered_on).date()} in this delivery",
                    )
                )
            else:
                delivered = pd.to_datetime(match["removed_on"]).min()
                if not pd.isna(delivered) and delivered > pd.Timestamp(d.removed_on):
                    rows.append(
                        (
                            d.seq,
                            d.kind,
                            d.entity_id,
                            f"the delivery removes it on {delivered.date()}, the ledger on "
                            f"{pd.Timestamp(d.removed_on).date()}: the earlier date holds",
                        )
                    )
    return pd.DataFrame(rows, columns=["seq", "kind", "target", "message"])


def overlay_frames(
    events: pd.DataFrame, lists: pd.DataFrame, ledger: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(events, lists, outcome_events)`` with the ledger applied (see the module docstring).

    ``events`` and ``lists`` have the contract's columns (dates as datetimes); ``ledger`` is ``normalise``d.
    The lists come back with ``withdrawn_on`` as well (``features.schema.WITHDRAWN_ON``).
    """
    ledger = normalise(ledger)
    events = events.copy()
    lists = lists.copy()
    for column in ("occurred_on", "recorded_on", "repaired_on"):
        events[column] = pd.to_datetime(events[column]).astype("datetime64[s]")
    if WITHDRAWN_ON not in lists:
        lists[WITHDRAWN_ON] = pd.NaT
    for column in ("entered_on", "removed_on", WITHDRAWN_ON):
        lists[column] = pd.to_datetime(lists[column]).astype("datetime64[s]")
    outcome = events.copy()
    delivered = events.drop_duplicates("event_id").set_index("event_id")
    by_kind = {kind: ledger[ledger["kind"] == kind] for kind in DecisionKind}

    repairs = by_kind[DecisionKind.REPAIR].groupby("event_id")["repaired_on"].min()
    ended = (
        pd.concat([by_kind[DecisionKind.WITHDRAW], by_kind[DecisionKind.CORRECT]], ignore_index=True)
        .groupby("event_id")["decided_on"]
        .min()
    )
    events["repaired_on"] = _earliest(events["repaired_on"], _lookup(events["event_id"], repairs))
    events["repaired_on"] = _earliest(events["repaired_on"], _lookup(events["event_id"], ended))

    corrections = by_kind[DecisionKind.CORRECT]
    if len(corrections):
        latest = corrections.groupby("event_id").tail(1).set_index("event_id")
        corrected = delivered.loc[delivered.index.intersection(latest.index)].copy()
        amended = latest.loc[corrected.index]
        for column in AMENDABLE:
            value = amended[column]
            corrected[column] = value.where(value.notna(), corrected[column])
        corrected = corrected.reset_index()
        final = corrected.copy()
        decided = amended["decided_on"].to_numpy()
        corrected["recorded_on"] = np.maximum(corrected["recorded_on"].to_numpy(), decided)
        corrected["repaired_on"] = _lookup(corrected["event_id"], repairs)
        events = pd.concat([events, corrected[events.columns]], ignore_index=True)
        outcome = pd.concat(
            [outcome[~outcome["event_id"].isin(final["event_id"])], final[outcome.columns]], ignore_index=True
        )
    outcome = outcome[~outcome["event_id"].isin(by_kind[DecisionKind.WITHDRAW]["event_id"])]

    added = by_kind[DecisionKind.ADD_EVENT].drop_duplicates("event_id", keep="last")
    if len(added):
        new = added.assign(repaired_on=_lookup(added["event_id"], repairs))[list(EVENTS.column_names)]
        new["quantity"] = new["quantity"].astype("int64")
        # Known from its decision on: a record entered later than its recorded_on never reaches back.
        known = new.assign(recorded_on=np.maximum(new["recorded_on"].to_numpy(), added["decided_on"].to_numpy()))
        events = pd.concat([events[~events["event_id"].isin(new["event_id"])], known], ignore_index=True)
        outcome = pd.concat([outcome[~outcome["event_id"].isin(new["event_id"])], new], ignore_index=True)

    key = ["entity_id", "list", "entered_on"]
    for kinds, column in ((ENDS_LISTING, "removed_on"), ((DecisionKind.WITHDRAW_LISTING,), WITHDRAWN_ON)):
        ending = ledger[ledger["kind"].isin(kinds)]
        if len(ending):
            earliest = ending.groupby(key)["removed_on"].min().rename("_decided").reset_index()
            lists = lists.merge(earliest, on=key, how="left")
            lists[column] = _earliest(lists[column], lists.pop("_decided"))
    return (
        events[list(EVENTS.column_names)].reset_index(drop=True),
        lists[[*LISTS.column_names, WITHDRAWN_ON]].reset_index(drop=True),
        outcome[list(EVENTS.column_names)].reset_index(drop=True),
    )


def _lookup(keys: pd.Series, dates: pd.Series) -> pd.Series:
    """``dates`` (indexed by event id) for each of ``keys``, NaT where there is none (``Series.map`` of an
    empty date series gives floats)."""
    found = pd.to_datetime(dates).astype("datetime64[s]").reindex(keys.to_numpy())
    return pd.Series(found.to_numpy(), index=keys.index, dtype="datetime64[s]")


def _earliest(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise the earlier of two date columns, a missing one giving way to the other."""
    a, b = pd.to_datetime(a).astype("datetime64[s]"), pd.to_datetime(b).astype("datetime64[s]")
    return a.where(b.isna() | (a.notna() & (a <= b)), b)


_LATEST = "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY seq DESC) = 1"
_ENDS_LISTING_IN = ", ".join(f"'{kind}'" for kind in ENDS_LISTING)
_OVERLAY_SQL = f"""
CREATE VIEW events AS
WITH rep AS (SELECT event_id, min(repaired_on) AS r FROM _ledger WHERE kind = 'repair' GROUP BY event_id),
ended AS (
    SELECT event_id, min(decided_on) AS d FROM _ledger WHERE kind IN ('withdraw', 'correct') GROUP BY event_id
),
corr AS (SELECT * FROM _ledger WHERE kind = 'correct' {_LATEST}),
added AS (SELECT * FROM _ledger WHERE kind = 'add_event' {_LATEST}),
delivered AS (
    SELECT * FROM events_delivered WHERE event_id IN (SELECT event_id FROM corr)
    QUALIFY row_number() OVER (PARTITION BY event_id) = 1
)
SELECT e.event_id, e.entity_id, e.event_type, e.occurred_on, e.recorded_on, e.quantity, e.amount,
       least(e.repaired_on, rep.r, ended.d) AS repaired_on
FROM events_delivered e LEFT JOIN rep USING (event_id) LEFT JOIN ended USING (event_id)
WHERE e.event_id NOT IN (SELECT event_id FROM added)
UNION ALL
SELECT c.event_id, e.entity_id, coalesce(c.event_type, e.event_type), coalesce(c.occurred_on, e.occurred_on),
       greatest(coalesce(c.recorded_on, e.recorded_on), c.decided_on), coalesce(c.quantity, e.quantity),
       coalesce(c.amount, e.amount), rep.r
FROM corr c JOIN delivered e USING (event_id) LEFT JOIN rep USING (event_id)
WHERE c.event_id NOT IN (SELECT event_id FROM added)
UNION ALL
SELECT a.event_id, a.entity_id, a.event_type, a.occurred_on, greatest(a.recorded_on, a.decided_on), a.quantity,
       a.amount, rep.r
FROM added a LEFT JOIN rep USING (event_id);

CREATE VIEW events_outcome AS
WITH corr AS (SELECT * FROM _ledger WHERE kind = 'correct' {_LATEST}),
added AS (SELECT * FROM _ledger WHERE kind = 'add_event' {_LATEST}),
gone AS (SELECT event_id FROM _ledger WHERE kind = 'withdraw' UNION SELECT event_id FROM added)
SELECT e.event_id, e.entity_id, coalesce(c.event_type, e.event_type) AS event_type,
       coalesce(c.occurred_on, e.occurred_on) AS occurred_on, coalesce(c.recorded_on, e.recorded_on) AS recorded_on,
       coalesce(c.quantity, e.quantity) AS quantity, coalesce(c.amount, e.amount) AS amount, e.repaired_on
FROM events_delivered e LEFT JOIN corr c USING (event_id)
WHERE e.event_id NOT IN (SELECT event_id FROM gone)
UNION ALL
SELECT event_id, entity_id, event_type, occurred_on, recorded_on, quantity, amount, NULL FROM added;

CREATE VIEW lists AS
WITH ended AS (
    SELECT entity_id, list, entered_on, min(removed_on) AS r,
           min(removed_on) FILTER (WHERE kind = '{DecisionKind.WITHDRAW_LISTING}') AS w
    FROM _ledger WHERE kind IN ({_ENDS_LISTING_IN}) GROUP BY ALL
)
SELECT l.entity_id, l.list, l.entered_on, least(l.removed_on, ended.r) AS removed_on, l.basis,
       least(l.{WITHDRAWN_ON}, ended.w) AS {WITHDRAWN_ON}
FROM lists_delivered l LEFT JOIN ended USING (entity_id, list, entered_on);
"""


def overlay_dataset(ds: Dataset, ledger: pd.DataFrame, *, up_to: int | None = None) -> OverlayReport:
    """Lay the ledger (decisions with ``seq <= up_to``, default all) over ``ds`` in place, in SQL.

    The typed views ``events`` and ``lists`` become the overlaid ones and ``events_outcome`` holds the
    final version of every record for outcomes; the delivered views stay as ``events_delivered`` and
    ``lists_delivered``. The same semantics as ``overlay_frames`` (a test compares them). Raises
    ``InvalidInput`` (paths ``ledger``, row, column) for an invalid ledger; a dataset is overlaid once.
    """
    problems = check_ledger(ledger)
    if problems:
        raise InvalidInput(problems[:50], total=len(problems))
    ledger = normalise(ledger)
    if up_to is not None:
        ledger = ledger[ledger["seq"] <= up_to]
    if ds.con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'events_delivered'").fetchall()[0][0]:
        raise InvalidInput("this dataset already has a ledger applied; open it again to apply another")
    ds.con.register("_ledger_frame", ledger)
    # Dates as DATE, counts as BIGINT (the frame holds timestamps and floats): the overlaid views keep the
    # typed views' column types.
    cast = {**dict.fromkeys(_DATES, "DATE"), "quantity": "BIGINT"}
    columns = ", ".join(f"CAST({c} AS {cast[c]}) AS {c}" if c in cast else c for c in LEDGER_COLUMNS)
    ds.con.execute(f"CREATE TEMP TABLE _ledger AS SELECT {columns} FROM _ledger_frame")
    ds.con.unregister("_ledger_frame")
    ids = ledger["event_id"].dropna().unique().tolist()
    involved = (
        ds.con.execute(
            "SELECT * FROM events WHERE event_id IN (SELECT event_id FROM _ledger WHERE event_id IS NOT NULL)"
        ).df()
        if ids
        else ds.query("SELECT * FROM events LIMIT 0")
    )
    listed = ds.con.execute(
        f"SELECT * FROM lists WHERE entity_id IN (SELECT entity_id FROM _ledger WHERE kind IN ({_ENDS_LISTING_IN}))"
    ).df()
    conflicts = _conflict_rows(ledger, involved, listed)
    ds.con.execute("ALTER VIEW events RENAME TO events_delivered")
    ds.con.execute("ALTER VIEW lists RENAME TO lists_delivered")
    ds.con.execute(_OVERLAY_SQL)
    return OverlayReport(seq=int(ledger["seq"].max()) if len(ledger) else 0, decisions=len(ledger), conflicts=conflicts)


def outcome_view(ds: Dataset) -> str:
    """The view outcomes are counted on: the final version of every record once a ledger is applied."""
    has = ds.con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'events_outcome'").fetchall()[0][0]
    return "events_outcome" if has else "events"


def decision_date_problems(ledger: pd.DataFrame, today: date) -> list[Problem]:
    """Decisions dated after ``today`` (a decision is never in the future)."""
    frame = ledger.reset_index(drop=True)
    late = pd.to_datetime(frame["decided_on"]) > pd.Timestamp(today)
    return [
        Problem(
            ("ledger", int(i) + 1, "decided_on"),
            f"decided_on must not be after {today}",
            str(frame.loc[i, "decided_on"]),
        )
        for i in np.flatnonzero(late.to_numpy())
    ]
