"""Credit commitments (信用承诺): signed, kept or broken, recorded through the decision ledger.

A commitment is signed when an entity applies under the credit-commitment procedure; it is later found
kept or broken (untrue or not honoured). Signing and breaking are new records of the entity's history
(``commitment_signed``, ``commitment_breach``: CONTRACT section 1), so they go through the ledger
(``serving/ledger.py``, decision ``add_event``) and the next score run counts them; keeping one is a
fact of the commitment, recorded here only. A broken commitment applies its policy consequence at once:
the COMMITMENT_BROKEN measure (no credit-commitment procedure for its period, read by
``serving/eligibility.py`` from this table) and, when the policy's ``[commitments]`` says so, an entry on
the untrustworthy list for ``list_days`` with the policy's basis.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from features.errors import Conflict, InvalidInput, NotFound
from models.policy import Policy
from serving import ledger
from serving.audit import record_change
from serving.auth import Principal
from serving.db import commitments, entities, lock
from serving.store import save_list_entries

STATUSES: tuple[str, ...] = ("signed", "kept", "broken")
_EVENT = {"signed": "commitment_signed", "broken": "commitment_breach"}


def _history(conn: Connection, commitment_id: str) -> dict[str, dict[str, Any]]:
    rows = conn.execute(select(commitments).where(commitments.c.commitment_id == commitment_id)).mappings()
    return {r["status"]: dict(r) for r in rows}


def record(engine: Engine, policy: Policy, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """Record a commitment signed (a new ``commitment_id``), kept or broken (``commitment_id`` of a signed
    one, not yet settled, on or after its signing); a broken one applies the policy's consequences.

    ``InvalidInput`` at the field at fault; ``NotFound`` for an entity or commitment the caller may not
    see; ``Conflict`` for a commitment already kept or broken."""
    status, entity_id, on = body["status"], body["entity_id"], body["on"]
    with engine.begin() as conn:
        lock(conn, "ledger")  # the ledger's seq is gapless: its writers take turns from the start
        region = conn.execute(select(entities.c.region).where(entities.c.entity_id == entity_id)).scalar()
        if region is None or (principal is not None and not principal.sees(region)):
            raise NotFound(f"entity {entity_id} not found")
        if status == "signed":
            if body.get("commitment_id"):
                raise InvalidInput.at("commitment_id", "a new commitment gets its id from the service; send none")
            commitment_id = uuid.uuid4().hex
        else:
            commitment_id = body.get("commitment_id") or ""
            if not commitment_id:
                raise InvalidInput.at("commitment_id", f"a commitment {status} names the signed commitment")
            history = _history(conn, commitment_id)
            signed = history.get("signed")
            if signed is None or signed["entity_id"] != entity_id:
                raise NotFound(f"commitment {commitment_id} of entity {entity_id} not found")
            settled = [s for s in ("kept", "broken") if s in history]
            if settled:
                raise Conflict(f"commitment {commitment_id} is already {settled[0]}")
            if on < signed["on"]:
                raise InvalidInput.at(
                    "on", f"must be on or after the signing ({signed['on'].isoformat()})", on.isoformat()
                )
        event_id, seq = None, None
        if status in _EVENT:
            event_id = f"CMT-{commitment_id[:16]}-{status}"
            decision = {
                "kind": "add_event",
                "event_id": event_id,
                "entity_id": entity_id,
                "event_type": _EVENT[status],
                "occurred_on": on,
                "recorded_on": on,
                "quantity": 1,
                "basis": body["reference"],
                "note": f"credit commitment {commitment_id} {status}",
            }
            seq = ledger.append(conn, decision, principal, source=f"commitment/{commitment_id}")
        row = {
            "commitment_id": commitment_id,
            "entity_id": entity_id,
            "status": status,
            "on": on,
            "benefit": body.get("benefit"),
            "reference": body["reference"],
            "event_id": event_id,
            "ledger_seq": seq,
            "recorded_by": principal.actor if principal else None,
            "recorded_at": datetime.now(UTC),
        }
        conn.execute(commitments.insert(), [row])
        listed = _consequences(conn, policy, row) if status == "broken" else None
        record_change(
            conn,
            principal,
            f"commitment.{status}",
            f"commitment/{commitment_id}",
            {"entity_id": entity_id, "on": on.isoformat(), "ledger_seq": seq, "listed": listed},
        )
    return {k: v for k, v in row.items() if k != "recorded_at"} | {"list_entry": listed}


def _consequences(conn: Connection, policy: Policy, row: dict[str, Any]) -> dict[str, Any] | None:
    """The list entry a broken commitment brings when the policy says so (``[commitments]``)."""
    rule = policy.commitments
    if rule.enters_list is None:
        return None
    on: date = row["on"]
    entry = {
        "entity_id": row["entity_id"],
        "list": rule.enters_list,
        "entered_on": on,
        "removed_on": on + timedelta(days=rule.list_days),
        "basis": f"{rule.basis}（信用承诺 {row['commitment_id']}：{row['reference']}）",
    }
    save_list_entries(conn, pd.DataFrame([entry]))
    return {**entry, "entered_on": on.isoformat(), "removed_on": entry["removed_on"].isoformat()}
