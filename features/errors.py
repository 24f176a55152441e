"""The typed errors every layer raises: what went wrong and where, never how to say it to a caller.

Domain code in ``features``, ``models`` and ``serving`` raises these (or subclasses of them) and knows
nothing of HTTP status codes or exit codes. One place turns them into answers: ``serving/errors.py`` for
HTTP (RFC 9457 problem details) and ``serving/cli/app.py`` for the command line (exit 2 for invalid input,
1 otherwise). They live in ``features`` because it is the lowest layer: every package may import it.

A ``Problem`` locates one fault by a path into the input it was found in: ``("ratios", "D")`` for a
request field, ``("events", 12, "quantity")`` for a dataset table, row and column. The code that knows
where that input came from re-roots the path with ``InvalidInput.under`` (a dataset named by the request
field ``dataset`` reports ``("dataset", "events", 12, "quantity")``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One fault in an input: where (``loc``), what (``msg``) and the offending value (``input``)."""

    loc: Loc
    msg: str
    input: Any = None

    def under(self, *prefix: str | int) -> Problem:
        """The same problem with ``prefix`` in front of its path."""
        return Problem((*prefix, *self.loc), self.msg, self.input)

    def as_dict(self) -> dict[str, Any]:
        """The problem in the shape of a FastAPI validation item (``loc``, ``msg``, ``type``, ``input``)."""
        item: dict[str, Any] = {"loc": list(self.loc), "msg": self.msg, "type": "value_error"}
        if self.input is not None:
            item["input"] = self.input
        return item

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.loc)
        return f"{where}: {self.msg}" if where else self.msg


class IPCreditError(Exception):
    """Base of the project's domain errors."""


class InvalidInput(IPCreditError, ValueError):
    """The input breaks a rule; ``problems`` say each fault and where it is (HTTP 422, exit 2).

    ``where`` names the part of a request the paths start in (``"body"``, ``"path"``, ``"query"``); the
    HTTP layer puts it in front of every path. ``total`` counts all problems when only the first few are
    kept.
    """

    def __init__(
        self,
        problems: Problem | Iterable[Problem] | str,
        *,
        where: str = "body",
        total: int | None = None,
    ) -> None:
        if isinstance(problems, str):
            problems = [Problem((), problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.where = where
        self.total = len(self.problems) if total is None else total
        super().__init__("; ".join(str(p) for p in self.problems[:5]) or "invalid input")

    @classmethod
    def at(cls, loc: Sequence[str | int] | str, msg: str, value: Any = None, **kwargs: Any) -> InvalidInput:
        """One problem at ``loc`` (a path, or a single field name)."""
        path = (loc,) if isinstance(loc, str) else tuple(loc)
        return cls([Problem(path, msg, value)], **kwargs)

    def under(self, *prefix: str | int) -> InvalidInput:
        """A new ``InvalidInput`` with ``prefix`` in front of every problem's path."""
        return InvalidInput([p.under(*prefix) for p in self.problems], where=self.where, total=self.total)


class NotFound(IPCreditError, LookupError):
    """The thing asked for does not exist (HTTP 404)."""


class Forbidden(IPCreditError):
    """The caller may not do this to this thing, whatever their role allows elsewhere: separation of duties
    (the filer of an objection never decides it), a region-scoped caller changing every region (HTTP 403)."""


class Conflict(IPCreditError):
    """The request contradicts the current state: decided meanwhile, superseded, a duplicate (HTTP 409)."""


class Unavailable(IPCreditError):
    """A part the request needs is not there now (no model in service, a database outage): HTTP 503.

    ``retry_after`` is the number of seconds after which trying again makes sense.
    """

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def validation_summary(exc: ValidationError) -> str:
    """Pydantic's errors in one line, each as ``path: message`` (``(top level)`` for a model-level one)."""
    return "; ".join(str(Problem(tuple(err["loc"]) or ("(top level)",), err["msg"])) for err in exc.errors())
