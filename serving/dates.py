"""Dates bounded everywhere: one rule for every date a request or a command names.

No date may lie after today (the server's UTC date, or ``Settings.today`` when pinned) or before
``EARLIEST`` (no register of market entities reaches back further). Append-only tables keep what they are
given for ever, so a run "as of 2999" would be the latest run for ever and pin every tier: the bound is
checked where dates come in — the HTTP request models (``BoundedDate``), the query parameters
(``check_query``), score files read by the server and the command line (``parse``) — always by ``check``.

"Today" is a context variable: the service sets it per request from its settings (``PinToday``), the
command line for the run of each command (``pinned``); unset, it is the clock's date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator

from features.errors import InvalidInput
from features.schema import EARLIEST_DATE

# The earliest date any input may name: the register of enterprises does not reach back further.
EARLIEST = EARLIEST_DATE

_PINNED: ContextVar[date | None] = ContextVar("ipcredit_today", default=None)


def today() -> date:
    """The latest date an input may name: the pinned date, else the server's UTC date."""
    return _PINNED.get() or datetime.now(UTC).date()


@contextmanager
def pinned(day: date | None) -> Iterator[None]:
    """Within the block ``today()`` is ``day`` (``None``: the clock's date)."""
    token = _PINNED.set(day)
    try:
        yield
    finally:
        _PINNED.reset(token)


def problem(value: date) -> str | None:
    """What is wrong with ``value`` as an input date, or ``None``."""
    latest = today()
    if value > latest:
        return f"must not be after today ({latest.isoformat()}); got {value.isoformat()}"
    if value < EARLIEST:
        return f"must not be before {EARLIEST.isoformat()}; got {value.isoformat()}"
    return None


def check(value: date) -> date:
    """``value`` when it lies within the bounds; ``ValueError`` saying which bound it breaks otherwise."""
    message = problem(value)
    if message:
        raise ValueError(message)
    return value


def check_at(value: date | None, loc: Sequence[str | int] | str, *, where: str = "body") -> date | None:
    """``value`` within the bounds (``None`` passes); ``InvalidInput`` at ``loc`` otherwise."""
    if value is not None and (message := problem(value)):
        raise InvalidInput.at(loc, message, value.isoformat(), where=where)
    return value


def check_query(value: date | None, name: str) -> date | None:
    """A date query parameter within the bounds; ``InvalidInput`` at ``("query", name)`` otherwise."""
    return check_at(value, name, where="query")


def parse(text: str, option: str) -> date:
    """A date given on the command line: ISO ``YYYY-MM-DD`` within the bounds; ``InvalidInput`` naming
    ``option`` otherwise (the command exits with status 2)."""
    try:
        # fromisoformat alone would also take 20250630 and 2025-W26-1
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        value = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput.at(option, f"{option} must be a date written YYYY-MM-DD; got {text!r}") from None
    if message := problem(value):
        raise InvalidInput.at(option, f"{option} {message}", text)
    return value


# A date field of a request model: ``date`` plus the bounds.
BoundedDate = Annotated[date, AfterValidator(check)]


class PinToday:
    """ASGI middleware: every request of this app sees ``today()`` as ``day`` (installed only when the
    settings pin it, so tests can fix "today")."""

    def __init__(self, app, day: date) -> None:
        self.app = app
        self.day = day

    async def __call__(self, scope, receive, send) -> None:
        token = _PINNED.set(self.day)
        try:
            await self.app(scope, receive, send)
        finally:
            _PINNED.reset(token)
