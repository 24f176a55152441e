"""The append-only audit log: who read or changed what, and when.

Changes are audited inside the transaction that makes them (``record_change``): no change without its
audit row. Reads (risk lookups, explanations, objections) are queued and written in batches by a
background thread every ``FLUSH_SECONDS`` and when the service stops, so a hot lookup route does not pay
for a database write per request; if the database is unavailable the batch is kept and retried.
The table rejects UPDATE and DELETE (triggers installed by the migration).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from serving.auth import Principal
from serving.db import audit_log, bulk_insert

FLUSH_SECONDS = 0.25
_MAX_PENDING = 200_000
log = logging.getLogger(__name__)


def _row(principal: Principal | None, action: str, resource: str, detail: Any) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC),
        "actor": principal.actor if principal else "system",
        "role": principal.role.value if principal else "system",
        "action": action,
        "resource": resource,
        "detail": None if detail is None else json.dumps(detail, ensure_ascii=False, default=str),
    }


def record_change(
    conn: Connection, principal: Principal | None, action: str, resource: str, detail: Any = None
) -> None:
    """Audit a change in the caller's transaction."""
    conn.execute(audit_log.insert(), [_row(principal, action, resource, detail)])


class ReadAuditor:
    """Queues read events and writes them in batches from a background thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._pending: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, principal: Principal, action: str, resource: str, detail: Any = None) -> None:
        self._queue.put(_row(principal, action, resource, detail))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def flush(self) -> int:
        """Write everything queued so far; return how many rows were written."""
        while True:
            try:
                self._pending.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not self._pending:
            return 0
        batch = self._pending
        names = list(batch[0])
        try:
            with self.engine.begin() as conn:
                # Column-wise through the driver: a batch costs the writer thread (and the GIL) little.
                bulk_insert(conn, audit_log.name, {c: [row[c] for row in batch] for c in names})
        except SQLAlchemyError as exc:
            log.warning("audit log not written yet (%d rows kept): %s", len(batch), exc.__class__.__name__)
            if len(batch) > _MAX_PENDING:
                log.error("dropping %d queued audit rows: database unavailable too long", len(batch) - _MAX_PENDING)
                del batch[: len(batch) - _MAX_PENDING]
            return 0
        self._pending = []
        return len(batch)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()
