"""Risk lookups coalesced into batches: the hottest route's database work, shared by concurrent requests.

On a server database every lookup costs a round trip and a statement on the server, which on a small
machine runs on the same cores as the service. ``Lookups.get`` therefore does not query alone: a
lookup joins the batch that is being collected, and a batch (one ``= ANY(:ids)`` statement, prepared once
per connection) starts as soon as fewer than ``max_inflight`` batches are running. With one request at a
time a batch is one id and starts at once (nothing waits for company); under load the requests that
arrive while a batch runs share the next one, so the database work per request falls as load rises.
Every caller gets exactly what ``store.latest_score`` would have answered at the time its batch ran;
an error (the database down) reaches every request of the batch, as its own lookup would have.

An SQLite file answers in microseconds in-process, so there the batch runs on the event loop itself,
once per loop iteration, for every lookup that arrived in it: no thread hop, and one query instead of
one per request. Measured on 2 cores against one query per request on the loop: 8 connections 2,140
against 1,970 requests/s, 64 connections 3,120 against 2,060 requests/s with a p99 of 56 against 446 ms.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anyio import CapacityLimiter, to_thread
from sqlalchemy import Engine

from serving import db
from serving.store import latest_scores


class Lookups:
    """``await lookups.get(entity_id)``: the entity's latest score row or ``None`` (see the module)."""

    def __init__(
        self, engine: Engine, limiter: CapacityLimiter | None = None, *, max_batch: int = 256, max_inflight: int = 2
    ) -> None:
        self.engine = engine
        self.limiter = limiter
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._pending: dict[str, list[asyncio.Future]] = {}
        self._inflight = 0
        self._tasks: set[asyncio.Task] = set()
        self.on_loop = engine.dialect.name == "sqlite"
        self._flush_scheduled = False

    async def get(self, entity_id: str) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.setdefault(entity_id, []).append(future)
        if self.on_loop:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush_on_loop)
        elif self._inflight < self.max_inflight:
            self._launch()
        row = await future
        return None if row is None else dict(row)

    def _flush_on_loop(self) -> None:
        self._flush_scheduled = False
        while self._pending:
            batch: dict[str, list[asyncio.Future]] = {}
            for entity_id in list(self._pending)[: self.max_batch]:
                batch[entity_id] = self._pending.pop(entity_id)
            try:
                found = db.read(self.engine, latest_scores, list(batch))
            except Exception as exc:
                self._settle(batch, {}, exc)
            else:
                self._settle(batch, found, None)

    @staticmethod
    def _settle(batch: dict[str, list[asyncio.Future]], found: dict, exc: Exception | None) -> None:
        for entity_id, futures in batch.items():
            for future in futures:
                if future.done():  # a caller that went away has cancelled its future
                    continue
                if exc is not None:
                    future.set_exception(exc)
                else:
                    future.set_result(found.get(entity_id))

    def _launch(self) -> None:
        if not self._pending:
            return
        batch: dict[str, list[asyncio.Future]] = {}
        for entity_id in list(self._pending)[: self.max_batch]:
            batch[entity_id] = self._pending.pop(entity_id)
        self._inflight += 1
        task = asyncio.ensure_future(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: dict[str, list[asyncio.Future]]) -> None:
        try:
            found = await to_thread.run_sync(db.read, self.engine, latest_scores, list(batch), limiter=self.limiter)
        except Exception as exc:
            self._settle(batch, {}, exc)
        else:
            self._settle(batch, found, None)
        finally:
            self._inflight -= 1
            self._launch()
