"""Background jobs: work too long for a request (a score run of a whole dataset), with a status to ask for.

A job is a row of ``jobs`` going ``queued`` → ``running`` → ``done`` (with the ``run_id`` it made) or
``failed`` (with the problem details a request raising the same error would have got). Each process runs
its jobs one at a time on one worker thread and keeps at most ``queue_size`` waiting or running: one more
is refused at once with ``Unavailable`` (503, ``Retry-After``), so no queue grows without end. The request
that starts a job answers 202 with the job's ``Location``; ``wait`` (and the status route's ``wait``
parameter) blocks until the job ends or the time is up, for tests and scripts that want the result.

Jobs still queued when the service stops are marked failed (nothing was written: each job writes in
one transaction at its end); the running one is left to finish.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from features.errors import IPCreditError, NotFound, Unavailable
from serving.auth import Principal
from serving.db import jobs
from serving.errors import problem_of

STATUSES = ("queued", "running", "done", "failed")
log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs on one worker thread, at most ``queue_size`` outstanding (see the module)."""

    def __init__(self, engine: Engine, queue_size: int, *, statement_timeout_ms: int = 0) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self.statement_timeout_ms = statement_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        self._outstanding = 0
        self._lock = threading.Lock()
        self._queued: set[str] = set()

    def submit(self, kind: str, request: dict[str, Any], principal: Principal | None, work: Callable[[], int]) -> str:
        """Queue ``work`` (which returns the id of what it made) as a job; return the job's id."""
        with self._lock:
            if self._outstanding >= self.queue_size:
                raise Unavailable(
                    f"the job queue is full ({self.queue_size} waiting or running); retry later", retry_after=30
                )
            self._outstanding += 1
        job_id = uuid.uuid4().hex
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    jobs.insert().values(
                        id=job_id,
                        kind=kind,
                        status="queued",
                        created_at=_now(),
                        created_by=principal.actor if principal else None,
                        request=json.dumps(request, ensure_ascii=False, default=str),
                    )
                )
            self._queued.add(job_id)
            # The job sees what the request saw (a pinned "today", for one).
            self._executor.submit(contextvars.copy_context().run, self._run, job_id, work)
        except BaseException:
            with self._lock:
                self._outstanding -= 1
            raise
        return job_id

    def _run(self, job_id: str, work: Callable[[], int]) -> None:
        self._queued.discard(job_id)
        try:
            self._set(job_id, status="running", started_at=_now())
            try:
                result = work()
            except IPCreditError as exc:
                self._set(job_id, status="failed", finished_at=_now(), problem=json.dumps(problem_of(exc), default=str))
            except SQLAlchemyError as exc:
                log.warning("job %s: database error %s", job_id, exc.__class__.__name__)
                body = problem_of(Unavailable("the database failed during the job; submit it again", retry_after=5))
                self._set(job_id, status="failed", finished_at=_now(), problem=json.dumps(body))
            except Exception as exc:
                log.exception("job %s failed", job_id)
                self._set(job_id, status="failed", finished_at=_now(), problem=json.dumps(problem_of(exc)))
            else:
                self._set(job_id, status="done", finished_at=_now(), run_id=result)
        except SQLAlchemyError:
            log.exception("job %s: its status could not be recorded", job_id)
        finally:
            with self._lock:
                self._outstanding -= 1

    def _set(self, job_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    def stop(self) -> None:
        """Mark queued jobs failed, let the running one finish, stop the worker."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        stopped = problem_of(Unavailable("the service stopped before the job started; submit it again"))
        for job_id in list(self._queued):
            try:
                self._set(job_id, status="failed", finished_at=_now(), problem=json.dumps(stopped))
            except SQLAlchemyError:
                log.warning("job %s left queued: the database is unavailable", job_id)
        self._executor.shutdown(wait=True)


def job_row(conn: Connection, job_id: str, kind: str | None = None) -> dict[str, Any]:
    """A job as stored, its JSON fields read; ``NotFound`` when there is no such job (of ``kind``, when
    given: a report job is not found among score-run jobs, nor the other way round)."""
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None or (kind is not None and row["kind"] != kind):
        raise NotFound(f"job {job_id} not found")
    out = {k: v for k, v in row.items() if k != "id"} | {"job_id": row["id"]}
    out["request"] = json.loads(row["request"])
    out["problem"] = json.loads(row["problem"]) if row["problem"] else None
    return out


def wait(engine: Engine, job_id: str, seconds: float, *, kind: str | None = None, poll: float = 0.1) -> dict[str, Any]:
    """The job (of ``kind``) once it is done or failed, or as it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        with engine.connect() as conn:
            row = job_row(conn, job_id, kind)
        if row["status"] in ("done", "failed") or time.monotonic() >= deadline:
            return row
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def _now() -> datetime:
    return datetime.now(UTC)
