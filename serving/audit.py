"""The append-only audit log: who read or changed what, and when.

Changes are audited inside the transaction that makes them (``record_change``): no change without its
audit row — token operations, roster loads, runs, draws, results and decisions, from the service and from
the command line alike. Reads of personal or risk data (risk rows, one row per entity of a batch,
explanations, objections, draws, population snapshots, event exports) are queued (``ReadAuditor``) and
written in batches by a background thread every ``FLUSH_SECONDS`` and when the service stops, so a hot
lookup route does not pay for a database write per request.

When the database cannot take a batch, the batch is spooled to a file on disk (``Settings.audit_spool``)
and replayed, oldest first, as soon as the database answers again — by the same process or, after a
restart, by the next one; a file is claimed by an atomic rename, so two processes never replay it twice.
If a batch can be neither written nor spooled, reads stop being served (``record`` raises ``Unavailable``:
503) rather than served unaudited. The table rejects UPDATE and DELETE (triggers installed by the
migration); every field is cut to its column's width, so no caller's name or resource can break a write.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from features.errors import Unavailable
from serving.auth import Principal
from serving.db import audit_log, bulk_insert

FLUSH_SECONDS = 0.25
# Rows kept in memory while neither the database nor the spool takes them; past it reads are refused.
_MAX_PENDING = 200_000
_COLUMNS = ("at", "actor", "role", "action", "resource", "detail")
_WIDTHS = {c.name: c.type.length for c in audit_log.c if getattr(c.type, "length", None)}
log = logging.getLogger(__name__)


def _row(principal: Principal | None, action: str, resource: str, detail: Any) -> dict[str, Any]:
    row = {
        "at": datetime.now(UTC),
        "actor": principal.actor if principal else "system",
        "role": principal.role.value if principal else "system",
        "action": action,
        "resource": resource,
        "detail": None if detail is None else json.dumps(detail, ensure_ascii=False, default=str),
    }
    for name, width in _WIDTHS.items():
        if isinstance(row.get(name), str) and len(row[name]) > width:
            row[name] = row[name][:width]
    return row


def record_change(
    conn: Connection, principal: Principal | None, action: str, resource: str, detail: Any = None
) -> None:
    """Audit a change in the caller's transaction."""
    conn.execute(audit_log.insert(), [_row(principal, action, resource, detail)])


class ReadAuditor:
    """Queues read events and writes them in batches from a background thread (see the module)."""

    def __init__(self, engine: Engine, spool: Path | None = None) -> None:
        self.engine = engine
        self.spool = Path(spool) if spool is not None else None
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._pending: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flushing = threading.Lock()
        self._spooled = False
        self.stuck = False  # a batch could be neither written nor spooled

    def record(self, principal: Principal, action: str, resource: str, detail: Any = None) -> None:
        """Queue one read; ``Unavailable`` when reads can no longer be audited at all."""
        if self.stuck and len(self._pending) + self._queue.qsize() >= _MAX_PENDING:
            raise Unavailable("reads cannot be audited now (database and audit spool unavailable)", retry_after=5)
        self._queue.put(_row(principal, action, resource, detail))

    def record_many(self, principal: Principal, action: str, resources: list[tuple[str, Any]]) -> None:
        """Queue one read per ``(resource, detail)``: a batch read is audited entity by entity."""
        for resource, detail in resources:
            self.record(principal, action, resource, detail)

    def start(self) -> None:
        self._spooled = bool(self._spool_files())
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.flush() == 0 and self._pending:
            log.error("%d audit rows could not be written or spooled at shutdown", len(self._pending))

    def flush(self) -> int:
        """Write everything queued so far (and any spooled batches first); return how many rows were
        written to the database. A batch the database refuses goes to the spool."""
        with self._flushing:
            while True:
                try:
                    self._pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            written = self._replay() if self._spooled else 0
            if not self._pending:
                return written
            batch = self._pending
            try:
                self._write(batch)
            except SQLAlchemyError as exc:
                log.warning("audit log not written (%d rows): %s", len(batch), exc.__class__.__name__)
                if self._to_spool(batch):
                    self._pending = []
                return written
            self._pending = []
            self.stuck = False
            return written + len(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            # Column-wise through the driver: a batch costs the writer thread (and the GIL) little.
            bulk_insert(conn, audit_log.name, {c: [row[c] for row in batch] for c in _COLUMNS})

    # ---- the spool -----------------------------------------------------------------------------------

    def _spool_files(self) -> list[Path]:
        if self.spool is None or not self.spool.is_dir():
            return []
        return sorted(p for p in self.spool.iterdir() if p.suffix == ".jsonl")

    def _to_spool(self, batch: list[dict[str, Any]]) -> bool:
        """Write ``batch`` to a new spool file (durably); False when that fails too."""
        if self.spool is None:
            self.stuck = True
            return False
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}"
            partial = self.spool / f"{name}.part"
            with open(partial, "w", encoding="utf-8") as fh:
                for row in batch:
                    fh.write(json.dumps({**row, "at": row["at"].isoformat()}, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, self.spool / f"{name}.jsonl")
        except OSError as exc:
            log.error("audit rows cannot be spooled (%d kept in memory): %s", len(batch), exc.__class__.__name__)
            self.stuck = True
            return False
        self._spooled = True
        self.stuck = False
        return True

    def _replay(self) -> int:
        """Write spooled batches to the database, oldest first; stop at the first the database refuses."""
        written = 0
        for path in self._spool_files():
            claimed = path.with_suffix(f".{os.getpid()}.replaying")
            try:
                os.replace(path, claimed)  # atomic: another process replaying the spool skips this file
            except OSError:
                continue
            try:
                rows = [json.loads(line) for line in claimed.read_text(encoding="utf-8").splitlines() if line]
                for row in rows:
                    row["at"] = datetime.fromisoformat(row["at"])
                if rows:
                    self._write(rows)
            except SQLAlchemyError:
                os.replace(claimed, path)  # kept for the next attempt
                return written
            except (OSError, ValueError) as exc:
                log.error("spooled audit file %s unreadable: %s", path.name, exc.__class__.__name__)
                os.replace(claimed, path.with_suffix(".bad"))
                continue
            claimed.unlink(missing_ok=True)
            written += len(rows)
        self._spooled = bool(self._spool_files())
        return written

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()
