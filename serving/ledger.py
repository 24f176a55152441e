"""The decision ledger in the service database: what the regulator decided, kept and applied for ever.

A dataset folder is what the source agencies delivered; the ledger is what the regulator decided about it
(``features/ledger.py`` lays one over the other). Here the ledger is stored: one append-only row per
decision — a record corrected or withdrawn, a record repaired, a list entry removed early or withdrawn, a
new record (an inspection result, a credit commitment kept or broken) — audited in the transaction that
writes it.

``seq`` numbers the decisions 1, 2, 3, … without gaps, in the order they were committed: it is assigned
under a lock (an advisory lock on PostgreSQL, the write lock on SQLite), so a run that read every decision
up to ``seq`` N and recorded N reads exactly the same decisions when it is replayed, whatever was decided
since. ``decision_id`` names a decision across environments (``export_frame`` / ``import_frame``):
importing a decision already present adds nothing.

The public API other modules call:

- ``append(target, decision, principal, *, policy=None, record=None, source="api") -> seq``: validates one
  decision (fields, dates, the record it is about, the policy's repair rules), stores and audits it;
- ``current_seq(conn)``, ``ledger_frame(conn, upto_seq=None)`` (the columns of ``features.ledger``),
  ``apply(ds, conn, upto_seq=None)`` (the ledger laid over a dataset; the ``OverlayReport``);
- ``list_decisions``, ``export_frame``, ``import_frame``, ``event_record``, ``list_record``.

Decisions are validated against the rules of the domain: no decision dated after today
(``serving/dates.py``) or before the record it is about (a repair or a removal is dated by its
``repaired_on`` / ``removed_on`` unless it gives ``decided_on``); a repair is granted only as the policy's
repair rules allow (``models/policy.toml``
``[[repairs]]``: which records, how long after publication, what the applicant must show); an early
removal likewise. A withdrawn list entry (``withdraw_listing``: one that should not exist, annulled on
administrative review or in court, or entered in error) ends on its decision date like an early removal, but
no repair rule applies to it: it needs the basis, the review decision that annulled it, not a waiting
period. A refusal is ``InvalidInput`` at the field, naming the rule and the first day the request becomes
possible.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, func, select, update

from features.dataset import Dataset
from features.errors import Conflict, InvalidInput, NotFound, Problem
from features.ledger import (
    AMENDABLE,
    ENDS_LISTING,
    LEDGER_COLUMNS,
    DecisionKind,
    OverlayReport,
    check_ledger,
    decision_date_problems,
    empty_ledger,
    normalise,
    overlay_dataset,
)
from features.schema import EVENT_TYPE_BY_CODE, EventClass
from models.policy import Policy, RepairRule, Unrepairable
from serving import dates
from serving.audit import record_change
from serving.auth import Principal
from serving.db import entities, ledger, list_entries, lock
from serving.errors import PROBLEM_LIMIT

_DATE_FIELDS = ("decided_on", "entered_on", "occurred_on", "recorded_on", "repaired_on", "removed_on")
_TEXT_FIELDS = ("basis", "note")
# The fields a decision of each kind may carry (besides kind, decided_on and decision_id).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    DecisionKind.CORRECT: ("event_id", "entity_id", *AMENDABLE, "basis", "evidence", "note"),
    DecisionKind.WITHDRAW: ("event_id", "entity_id", "basis", "note"),
    DecisionKind.REPAIR: ("event_id", "entity_id", "repaired_on", "basis", "evidence", "note"),
    DecisionKind.REMOVE_LISTING: ("entity_id", "list", "entered_on", "removed_on", "basis", "evidence", "note"),
    DecisionKind.WITHDRAW_LISTING: ("entity_id", "list", "entered_on", "removed_on", "basis", "note"),
    DecisionKind.ADD_EVENT: (
        "event_id",
        "entity_id",
        "event_type",
        "occurred_on",
        "recorded_on",
        "quantity",
        "amount",
        "basis",
        "note",
    ),
}
# Kinds that must say on what ground they were decided (a decision number, a legal basis).
NEEDS_BASIS = (
    DecisionKind.CORRECT,
    DecisionKind.WITHDRAW,
    DecisionKind.REPAIR,
    DecisionKind.REMOVE_LISTING,
    DecisionKind.WITHDRAW_LISTING,
)
# Kinds about a delivered record: the record must be known to check the decision against it.
ABOUT_EVENT = (DecisionKind.CORRECT, DecisionKind.WITHDRAW, DecisionKind.REPAIR)
EXPORT_COLUMNS: tuple[str, ...] = (
    "seq",
    "decision_id",
    *LEDGER_COLUMNS[1:],
    "basis",
    "evidence",
    "rule",
    "policy_version",
    "source",
    "note",
    "decided_by",
    "recorded_at",
)
TEXT_LIMIT = 2000


def _now() -> datetime:
    return datetime.now(UTC)


# ---- the records decisions are about ----------------------------------------------------------------


def event_record(ds: Dataset, event_id: str) -> dict[str, Any] | None:
    """The delivered event ``event_id`` of ``ds`` (its contract columns), or ``None``."""
    view = "events_delivered" if _has_view(ds, "events_delivered") else "events"
    rows = ds.con.execute(f"SELECT * FROM {view} WHERE event_id = ? LIMIT 1", [event_id]).df()
    return _plain_row(rows) if len(rows) else None


def list_record(ds: Dataset, entity_id: str, list_name: str, entered_on: date) -> dict[str, Any] | None:
    """The delivered list entry (entity, list, entered_on) of ``ds``, or ``None``."""
    view = "lists_delivered" if _has_view(ds, "lists_delivered") else "lists"
    rows = ds.con.execute(
        f"SELECT * FROM {view} WHERE entity_id = ? AND list = ? AND entered_on = ? LIMIT 1",
        [entity_id, list_name, entered_on],
    ).df()
    return _plain_row(rows) if len(rows) else None


def _has_view(ds: Dataset, name: str) -> bool:
    return bool(ds.con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchall()[0][0])


def _plain_row(frame: pd.DataFrame) -> dict[str, Any]:
    return plain_record(frame.iloc[0])


def plain_record(row: pd.Series | Mapping[str, Any]) -> dict[str, Any]:
    """A record (a row of a contract table) as plain values, what ``append`` takes as its ``record``:
    missing values as ``None``, dates as dates, numpy scalars as Python ones, codes as text."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            out[key] = None
        elif isinstance(value, pd.Timestamp | datetime):
            out[key] = value.date()
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = str(value) if key in ("event_id", "entity_id", "event_type", "list") else value
    return out


# ---- validation --------------------------------------------------------------------------------------


def _as_date(value: Any) -> date | str | None:
    """A date field's value as a date (``None`` when empty); the text itself when it is not a date."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text) if len(text) == 10 else text
    except ValueError:
        return text


@dataclass(frozen=True)
class Checked:
    """A decision that passed every check: its stored fields, and the repair rule that allowed it."""

    fields: dict[str, Any]
    rule: RepairRule | None


def check_decision(
    decision: Mapping[str, Any],
    *,
    policy: Policy | None,
    record: Mapping[str, Any] | None = None,
) -> Checked:
    """One decision validated (see the module docstring); ``InvalidInput`` listing every problem at the
    decision's field names. ``record`` is the delivered record it is about (an event's, or a list
    entry's, contract columns); ``policy`` gives the repair rules."""
    problems: list[Problem] = []
    fields: dict[str, Any] = {}
    kind = decision.get("kind")
    kinds = [k.value for k in DecisionKind]
    if kind not in kinds:
        raise InvalidInput.at("kind", f"kind must be one of {kinds}", None if kind is None else str(kind))
    allowed = {"kind", "decided_on", "decision_id", *KIND_FIELDS[kind]}
    for key, value in decision.items():
        if key not in allowed and value is not None:
            problems.append(Problem((key,), f"a {kind} decision has no field {key}; it takes {sorted(allowed)}"))
    for key in allowed - {"kind"}:
        value = decision.get(key)
        if key in _DATE_FIELDS:
            parsed = _as_date(value)
            if isinstance(parsed, str):
                problems.append(Problem((key,), f"{key} must be a date YYYY-MM-DD", parsed[:100]))
                continue
            if parsed is not None and (message := dates.problem(parsed)):
                problems.append(Problem((key,), f"{key} {message}", parsed.isoformat()))
                continue
            fields[key] = parsed
        elif key == "evidence":
            fields[key] = _evidence(value, problems)
        elif key in ("quantity", "amount"):
            fields[key] = value  # checked with the ledger's rules below
        else:
            text = None if value is None else str(value)
            if text is not None and len(text) > (TEXT_LIMIT if key in _TEXT_FIELDS else 80):
                problems.append(
                    Problem((key,), f"{key} must be at most {TEXT_LIMIT if key in _TEXT_FIELDS else 80} characters")
                )
                continue
            fields[key] = text.strip() if text is not None and key in _TEXT_FIELDS else text
    fields["kind"] = kind
    if problems:
        raise InvalidInput(problems[:PROBLEM_LIMIT], total=len(problems))

    today = dates.today()
    dated_by = "decided_on"
    if fields.get("decided_on") is None:
        # A repair or a removal is decided on the day it takes effect unless the decision says otherwise.
        dated_by = next((f for f in ("repaired_on", "removed_on") if fields.get(f) is not None), "decided_on")
        fields["decided_on"] = fields.get(dated_by) or today
    if kind in ABOUT_EVENT:
        if record is None:
            raise InvalidInput.at(
                "event_id", f"no delivered record {fields.get('event_id')} is known: decide on a record of the dataset"
            )
        if fields.get("entity_id") is None:
            fields["entity_id"] = record.get("entity_id")
        elif fields["entity_id"] != record.get("entity_id"):
            problems.append(
                Problem(("entity_id",), f"record {fields['event_id']} belongs to entity {record.get('entity_id')}")
            )
    if kind == DecisionKind.REPAIR and fields.get("repaired_on") is None:
        fields["repaired_on"] = fields["decided_on"]
    if kind in ENDS_LISTING and fields.get("removed_on") is None:
        fields["removed_on"] = fields["decided_on"]
    if kind in NEEDS_BASIS and not fields.get("basis"):
        problems.append(Problem(("basis",), f"a {kind} decision must give its basis (decision number or legal ground)"))

    frame = pd.DataFrame([{c: fields.get(c) for c in LEDGER_COLUMNS} | {"seq": 1}])
    problems += [Problem(p.loc[2:], p.msg, p.input) for p in check_ledger(frame)]
    if problems:
        raise InvalidInput(problems[:PROBLEM_LIMIT], total=len(problems))

    decided: date = fields["decided_on"]
    rule = None
    if kind in ABOUT_EVENT:
        recorded = _as_date(record.get("recorded_on"))
        if isinstance(recorded, date) and decided < recorded:
            problems.append(
                Problem(
                    (dated_by,),
                    f"a decision must not be dated before its record: {fields['event_id']} was recorded on "
                    f"{recorded.isoformat()}",
                    decided.isoformat(),
                )
            )
    if kind == DecisionKind.CORRECT:
        merged = {c: fields.get(c) if fields.get(c) is not None else record.get(c) for c in AMENDABLE}
        occurred, recorded = _as_date(merged["occurred_on"]), _as_date(merged["recorded_on"])
        if isinstance(occurred, date) and isinstance(recorded, date) and recorded < occurred:
            problems.append(
                Problem(("recorded_on",), "the corrected record's recorded_on must be on or after its occurred_on")
            )
    elif kind == DecisionKind.REPAIR:
        rule = _repair_rule(problems, policy, fields, event_type=str(record.get("event_type")), start=record)
    elif kind in ENDS_LISTING:
        entered: date = fields["entered_on"]
        if decided < entered:
            problems.append(
                Problem(
                    (dated_by,),
                    f"a decision must not be dated before its record: the entry was entered on {entered.isoformat()}",
                    decided.isoformat(),
                )
            )
        if kind == DecisionKind.REMOVE_LISTING:  # a withdrawal is no repair: the review decision is its ground
            rule = _repair_rule(problems, policy, fields, list_name=str(fields["list"]), start={"entered_on": entered})
    elif kind == DecisionKind.ADD_EVENT:
        recorded = fields["recorded_on"]
        if decided < recorded:
            problems.append(
                Problem(
                    ("decided_on",),
                    f"a decision must not be dated before its record (recorded_on {recorded.isoformat()})",
                    decided.isoformat(),
                )
            )
    if problems:
        raise InvalidInput(problems[:PROBLEM_LIMIT], total=len(problems))
    return Checked(fields, rule if isinstance(rule, RepairRule) else None)


def _evidence(value: Any, problems: list[Problem]) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.startswith("[") else [v for v in value.split(";") if v]
        except ValueError:
            problems.append(Problem(("evidence",), "evidence must be a list of requirement codes"))
            return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and len(v) <= 64 for v in value):
        problems.append(Problem(("evidence",), "evidence must be a list of requirement codes"))
        return None
    return sorted(set(value))


def _repair_rule(
    problems: list[Problem],
    policy: Policy | None,
    fields: dict[str, Any],
    *,
    start: Mapping[str, Any],
    event_type: str | None = None,
    list_name: str | None = None,
) -> RepairRule | None:
    """The policy's rule for this repair or early removal, with a problem for each way the request breaks
    it: not repairable at all, too early (with the first day it becomes possible), evidence missing."""
    if policy is None:
        raise ValueError("a repair or a removal is checked against the policy's repair rules: pass policy")
    rule = policy.repair_rule(event_type=event_type, list_name=list_name)
    target = ("event_id",) if event_type is not None else ("list",)
    what = f"a record of type {event_type}" if event_type is not None else f"an entry of the {list_name} list"
    if isinstance(rule, Unrepairable):
        problems.append(Problem(target, f"{what} cannot be repaired: {rule.reason} ({rule.basis})", event_type))
        return None
    if rule is None:
        spec = EVENT_TYPE_BY_CODE.get(event_type or "")
        why = (
            "it counts in the entity's favour or is mere activity: there is nothing to repair"
            if spec is not None and spec.event_class in (EventClass.POSITIVE, EventClass.ACTIVITY)
            else "no repair rule covers it"
        )
        problems.append(Problem(target, f"{what} cannot be repaired under policy {policy.version}: {why}"))
        return None
    origin = "recorded_on" if event_type is not None else "entered_on"
    published = _as_date(start.get(origin))
    effective = fields["repaired_on"] if event_type is not None else fields["removed_on"]
    field = "repaired_on" if event_type is not None else "removed_on"
    if isinstance(published, date):
        earliest = rule.possible_from(published)
        if effective < earliest:
            verb = "published" if event_type is not None else "entered"
            problems.append(
                Problem(
                    (field,),
                    f"rule {rule.describe()}: {what} {verb} on {published.isoformat()} can be "
                    f"{'repaired' if event_type is not None else 'removed'} from {earliest.isoformat()} on",
                    effective.isoformat(),
                )
            )
    shown = set(fields.get("evidence") or [])
    missing = [code for code in rule.requires if code not in shown]
    if missing:
        needs = "; ".join(f"{code}: {policy.repair_requirements[code]}" for code in missing)
        problems.append(Problem(("evidence",), f"rule {rule.code} requires {missing} ({needs})"))
    return rule


# ---- writing -----------------------------------------------------------------------------------------


def append(
    target: Engine | Connection,
    decision: Mapping[str, Any],
    principal: Principal | None,
    *,
    policy: Policy | None = None,
    record: Mapping[str, Any] | None = None,
    source: str = "api",
) -> int:
    """Validate, store and audit one decision; return its ``seq``.

    ``target``: an ``Engine`` (its own transaction) or a ``Connection`` inside the caller's transaction
    (the caller commits; on SQLite the caller's transaction should already hold the write lock, as any
    write does). ``record``: the delivered record the decision is about (``event_record`` /
    ``list_record``), required for corrections, withdrawals and repairs. ``policy``: the repair rules,
    required for repairs and removals. ``InvalidInput`` at the decision's fields; ``NotFound`` for an
    entity the caller may not see; ``Conflict`` for a ``decision_id`` already recorded.
    """
    checked = check_decision(decision, policy=policy, record=record)
    if isinstance(target, Engine):
        with target.begin() as conn:
            lock(conn, "ledger")
            return _append(conn, checked, principal, policy, source)
    if target.dialect.name == "postgresql":
        lock(target, "ledger")
    return _append(target, checked, principal, policy, source)


def _append(conn: Connection, checked: Checked, principal: Principal | None, policy: Policy | None, source: str) -> int:
    fields = checked.fields
    entity_id = fields.get("entity_id")
    region = conn.execute(select(entities.c.region).where(entities.c.entity_id == entity_id)).scalar()
    if region is None and fields["kind"] == DecisionKind.ADD_EVENT:
        raise InvalidInput.at("entity_id", "must be an entity the service knows (one a stored run scored)", entity_id)
    if principal is not None and region is not None and not principal.sees(region):
        raise NotFound(f"entity {entity_id} not found")
    if principal is not None and region is None and principal.scope is not None:
        raise NotFound(f"entity {entity_id} not found")
    decision_id = fields.get("decision_id") or uuid.uuid4().hex
    if conn.execute(select(ledger.c.seq).where(ledger.c.decision_id == decision_id)).scalar() is not None:
        raise Conflict(f"decision {decision_id} is already in the ledger")
    seq = current_seq(conn) + 1
    row = {
        **{c: fields.get(c) for c in LEDGER_COLUMNS if c != "seq"},
        "seq": seq,
        "decision_id": decision_id,
        "basis": fields.get("basis"),
        "evidence": json.dumps(fields["evidence"]) if fields.get("evidence") is not None else None,
        "note": fields.get("note"),
        "rule": checked.rule.code if checked.rule is not None else None,
        "policy_version": policy.version_tag if policy is not None and checked.rule is not None else None,
        "source": source,
        "decided_by": principal.actor if principal else "system",
        "recorded_at": _now(),
    }
    conn.execute(ledger.insert().values(**row))
    _remove_from_public_list(conn, row)
    detail = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items() if v is not None}
    record_change(conn, principal, f"ledger.{fields['kind']}", f"ledger/{seq}", detail)
    return seq


def _remove_from_public_list(conn: Connection, row: Mapping[str, Any]) -> None:
    """An early removal or a withdrawal ends the stored list entry too (the public lists read it), at the
    earlier date."""
    if row["kind"] not in ENDS_LISTING:
        return
    key = (
        (list_entries.c.entity_id == row["entity_id"])
        & (list_entries.c.list == row["list"])
        & (list_entries.c.entered_on == row["entered_on"])
    )
    conn.execute(
        update(list_entries)
        .where(key, list_entries.c.removed_on.is_(None) | (list_entries.c.removed_on > row["removed_on"]))
        .values(removed_on=row["removed_on"])
    )


# ---- reading -----------------------------------------------------------------------------------------


def withdrawals(conn: Connection, entity_id: str) -> dict[tuple[str, date], tuple[date, str | None]]:
    """The entity's list entries the ledger withdrew: ``(list, entered_on)`` -> the day withdrawn (the
    earliest, should two decisions name the entry) and the basis."""
    rows = conn.execute(
        select(ledger.c.list, ledger.c.entered_on, ledger.c.removed_on, ledger.c.basis)
        .where(ledger.c.entity_id == entity_id, ledger.c.kind == DecisionKind.WITHDRAW_LISTING)
        .order_by(ledger.c.removed_on.desc())
    )
    return {(row.list, row.entered_on): (row.removed_on, row.basis) for row in rows}


def current_seq(conn: Connection) -> int:
    """The seq of the latest decision (0: none yet)."""
    return int(conn.execute(select(func.coalesce(func.max(ledger.c.seq), 0))).scalar_one())


def ledger_frame(conn: Connection, upto_seq: int | None = None, *, entity_id: str | None = None) -> pd.DataFrame:
    """The decisions with ``seq <= upto_seq`` (default all; only those about ``entity_id`` when given) in
    the columns of ``features.ledger`` (``LEDGER_COLUMNS``), normalised, ordered by seq."""
    stmt = select(*(ledger.c[c] for c in LEDGER_COLUMNS)).order_by(ledger.c.seq)
    if upto_seq is not None:
        stmt = stmt.where(ledger.c.seq <= upto_seq)
    if entity_id is not None:
        stmt = stmt.where(ledger.c.entity_id == entity_id)
    rows = conn.execute(stmt).all()
    return normalise(pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))) if rows else empty_ledger()


def apply(ds: Dataset, conn: Connection, upto_seq: int | None = None) -> OverlayReport:
    """Lay the stored ledger (decisions up to ``upto_seq``, default all) over ``ds``; what it did."""
    if upto_seq is None:
        upto_seq = current_seq(conn)
    decisions = ledger_frame(conn, upto_seq)
    if decisions.empty:  # nothing decided: the typed views stay as they are (no extra joins to run)
        return OverlayReport(seq=upto_seq, decisions=0, conflicts=_no_conflicts())
    report = overlay_dataset(ds, decisions)
    # With no decision the report says seq 0; a run still records the seq it read up to.
    return OverlayReport(seq=upto_seq, decisions=report.decisions, conflicts=report.conflicts)


def _no_conflicts() -> pd.DataFrame:
    return pd.DataFrame(columns=["seq", "kind", "target", "message"])


def conflicts_json(report: OverlayReport) -> str | None:
    """A report's conflicts as JSON for the run record (``None`` when there are none)."""
    if report.conflicts.empty:
        return None
    return json.dumps(
        [
            {"seq": int(r.seq), "kind": str(r.kind), "target": str(r.target), "message": str(r.message)}
            for r in report.conflicts.itertuples()
        ],
        ensure_ascii=False,
    )


def _view(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["evidence"] = json.loads(out["evidence"]) if out.get("evidence") else None
    return out


def get_decision(conn: Connection, seq: int, principal: Principal | None = None) -> dict[str, Any]:
    """One decision by seq; ``NotFound`` when there is none (or none the caller may see)."""
    row = conn.execute(select(ledger).where(ledger.c.seq == seq)).mappings().first()
    if row is None or (principal is not None and not _sees(conn, principal, row["entity_id"])):
        raise NotFound(f"ledger decision {seq} not found")
    return _view(row)


def _sees(conn: Connection, principal: Principal, entity_id: str | None) -> bool:
    if principal.scope is None:
        return True
    region = conn.execute(select(entities.c.region).where(entities.c.entity_id == entity_id)).scalar()
    return principal.sees(region)


def list_decisions(
    conn: Connection,
    *,
    principal: Principal | None = None,
    entity_id: str | None = None,
    event_id: str | None = None,
    kind: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """A page of decisions in seq order after ``after_seq``; a region-scoped caller sees only those about
    its region's entities."""
    stmt = select(ledger).where(ledger.c.seq > after_seq).order_by(ledger.c.seq).limit(limit)
    if entity_id is not None:
        stmt = stmt.where(ledger.c.entity_id == entity_id)
    if event_id is not None:
        stmt = stmt.where(ledger.c.event_id == event_id)
    if kind is not None:
        stmt = stmt.where(ledger.c.kind == kind)
    if principal is not None and principal.scope is not None:
        in_region = select(entities.c.entity_id).where(entities.c.region.startswith(principal.scope, autoescape=True))
        stmt = stmt.where(ledger.c.entity_id.in_(in_region))
    return [_view(r) for r in conn.execute(stmt).mappings()]


# ---- moving the ledger between environments ----------------------------------------------------------


def export_frame(conn: Connection) -> pd.DataFrame:
    """Every decision with everything stored about it (``EXPORT_COLUMNS``), in seq order."""
    rows = conn.execute(select(*(ledger.c[c] for c in EXPORT_COLUMNS)).order_by(ledger.c.seq)).all()
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    frame["recorded_at"] = frame["recorded_at"].map(lambda v: None if v is None else pd.Timestamp(v).isoformat())
    for column in _DATE_FIELDS:
        frame[column] = frame[column].map(
            lambda v: None if v is None or pd.isna(v) else pd.Timestamp(v).date().isoformat()
        )
    return frame


@dataclass(frozen=True)
class Imported:
    added: int
    skipped: int  # decisions already in the ledger (by decision_id)
    seq: int  # the ledger's seq after the import


def check_import(frame: pd.DataFrame) -> list[Problem]:
    """Every problem of a ledger file as ``("ledger", row, column)``: the ledger's own rules
    (``check_ledger``), no decision after today, one ``decision_id`` per row."""
    problems: list[Problem] = []
    missing = [c for c in ("seq", "decision_id", "kind", "decided_on") if c not in frame.columns]
    if missing:
        return [Problem(("ledger", c), "the ledger file must have this column") for c in missing]
    frame = frame.reset_index(drop=True)
    problems += check_ledger(frame)
    parsed = pd.to_datetime(frame["decided_on"], errors="coerce")
    bounded = frame.assign(decided_on=parsed)
    problems += decision_date_problems(bounded[parsed.notna()], dates.today()) if parsed.notna().any() else []
    for column in _DATE_FIELDS:
        if column in frame.columns:
            values = pd.to_datetime(frame[column], errors="coerce")
            for i in frame.index[values.notna() & (values > pd.Timestamp(dates.today()))]:
                if column != "decided_on":
                    problems.append(
                        Problem(
                            ("ledger", int(i) + 1, column),
                            f"{column} must not be after today",
                            str(frame.loc[i, column]),
                        )
                    )
    ids = frame["decision_id"].astype(object)
    for i, value in ids.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip():
            problems.append(Problem(("ledger", int(i) + 1, "decision_id"), "decision_id is required"))
        elif len(str(value)) > 32:
            problems.append(
                Problem(
                    ("ledger", int(i) + 1, "decision_id"), "decision_id must be at most 32 characters", str(value)[:40]
                )
            )
    for i in frame.index[ids.duplicated(keep="first") & ids.notna()]:
        problems.append(Problem(("ledger", int(i) + 1, "decision_id"), "decision_id must be unique", str(ids[i])))
    return sorted(problems, key=lambda p: p.loc[1] if len(p.loc) > 1 and isinstance(p.loc[1], int) else 0)


def import_frame(
    engine: Engine, frame: pd.DataFrame, principal: Principal | None, *, source: str = "import"
) -> Imported:
    """Import a ledger file (``export_frame``'s columns): validated row by row first (``InvalidInput`` at
    ``("ledger", row, column)``, nothing written); then, in one transaction, every decision whose
    ``decision_id`` is not in the ledger yet is appended in the file's seq order. Importing the same file
    twice adds nothing the second time."""
    problems = check_import(frame)
    if problems:
        raise InvalidInput(problems[:PROBLEM_LIMIT], total=len(problems))
    frame = frame.reset_index(drop=True)
    frame = frame.assign(_seq=pd.to_numeric(frame["seq"]).astype("int64")).sort_values("_seq", kind="stable")
    clean = normalise(frame[[c for c in LEDGER_COLUMNS if c in frame.columns]])
    extra = frame.reset_index(drop=True)
    with engine.begin() as conn:
        lock(conn, "ledger")
        known = set(conn.execute(select(ledger.c.decision_id)).scalars())
        seq = current_seq(conn)
        added = 0
        for i, decision in enumerate(clean.to_dict("records")):
            decision_id = str(extra.loc[i, "decision_id"]).strip()
            if decision_id in known:
                continue
            seq += 1
            added += 1
            known.add(decision_id)
            row = {c: _cell(decision.get(c), c) for c in LEDGER_COLUMNS if c != "seq"}
            row |= {
                "seq": seq,
                "decision_id": decision_id,
                **{
                    c: _cell(extra.loc[i, c], c) if c in extra.columns else None
                    for c in ("basis", "evidence", "rule", "policy_version", "note", "decided_by")
                },
                "source": source,
                "recorded_at": _now(),
            }
            if row["quantity"] is not None:
                row["quantity"] = int(row["quantity"])
            conn.execute(ledger.insert().values(**row))
            _remove_from_public_list(conn, row)
        record_change(
            conn, principal, "ledger.import", "ledger", {"added": added, "skipped": len(clean) - added, "seq": seq}
        )
    return Imported(added=added, skipped=len(clean) - added, seq=seq)


def _cell(value: Any, column: str) -> Any:
    if value is None or (not isinstance(value, str | list) and pd.isna(value)):
        return None
    if column in _DATE_FIELDS:
        return pd.Timestamp(value).date()
    if isinstance(value, float) and column == "quantity":
        return int(value)
    if hasattr(value, "item"):
        return value.item()
    return value
