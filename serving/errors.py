"""The one place errors become HTTP answers: RFC 9457 problem details.

Domain code raises the typed errors of ``features.errors`` and knows nothing of HTTP.
``register_error_handlers(app)`` (called by ``create_app``) installs one handler per type:

- ``InvalidInput`` (``SamplingError``, ``DatasetError``, ``StoreError``, …): 422, ``…:invalid-input``;
- ``NotFound``: 404, ``…:not-found``; ``Conflict``: 409, ``…:conflict``; ``Forbidden``: 403, ``…:forbidden``;
- ``Unavailable`` (``ModelError``, …) and a database outage: 503 with ``Retry-After``, ``…:unavailable``;
- a race the database settles (a unique key taken meanwhile, a serialisation failure or deadlock):
  409, ``…:conflict`` — never a 500

(``type`` URNs ``urn:ipcredit:problem:…``, each with its ``title``). FastAPI's own errors get the same
shape: a ``RequestValidationError`` is invalid input (422) with FastAPI's items as they are, an
``HTTPException`` (401, 403, an unknown route) has ``type`` ``about:blank`` and the status's reason phrase
as its ``title``. Every body is ``application/problem+json``::

    {"type": "urn:ipcredit:problem:invalid-input", "title": "Invalid input", "status": 422,
     "detail": [{"loc": ["body", "ratios", "D"], "msg": "ratios.D must lie within …", "type": "value_error"}]}

``detail`` keeps the value the service has always answered: a sentence, or for invalid input the list of
``{"loc", "msg", "type", "input"}`` items, each path led by the part of the request it is in (``body``,
``path``, ``query``: ``InvalidInput.where``). When only the first problems are listed, ``total`` says
how many there are. ``problem_of(exc)`` gives the same body for a typed error that is not raised in a
request (a background job's failure).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from features.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
INVALID_INPUT = "urn:ipcredit:problem:invalid-input"
NOT_FOUND = "urn:ipcredit:problem:not-found"
CONFLICT = "urn:ipcredit:problem:conflict"
UNAVAILABLE = "urn:ipcredit:problem:unavailable"
FORBIDDEN = "urn:ipcredit:problem:forbidden"
_TITLES = {
    INVALID_INPUT: "Invalid input",
    NOT_FOUND: "Not found",
    CONFLICT: "Conflict",
    UNAVAILABLE: "Unavailable",
    FORBIDDEN: "Forbidden",
}
# SQLSTATEs of a transaction PostgreSQL gave up on because another ran at the same time.
_RACES = {"40001", "40P01"}
# The problems a 422 lists at most; ``total`` counts them all.
PROBLEM_LIMIT = 50
# Seconds a client should wait before retrying after a database outage (the pool recovers by itself).
DATABASE_RETRY_AFTER = 5


class ProblemDetails(BaseModel):
    """The body of every error answer (the OpenAPI document's schema for them)."""

    type: str = Field(description="what kind of problem: a URN of this service, or about:blank")
    title: str = Field(description="a short summary of the type (for about:blank, the status's reason phrase)")
    status: int
    detail: str | list[dict[str, Any]] = Field(
        description="a sentence, or for invalid input the items {loc, msg, type, input} with field paths"
    )
    total: int | None = Field(default=None, description="how many problems there are, when only the first are listed")


def problem(
    status: int,
    detail: Any,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem-details answer: the ``title`` of ``type_``, or the status's reason phrase for ``about:blank``."""
    body = _body(status, detail, type_, **extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def invalid_input_detail(exc: InvalidInput) -> list[dict[str, Any]]:
    """The 422 items of ``exc``: each problem as a FastAPI validation item, its path led by ``exc.where``."""
    return [{**p.as_dict(), "loc": [exc.where, *p.loc]} for p in exc.problems]


def problem_of(exc: Exception) -> dict[str, Any]:
    """The problem-details body a typed error is answered with (what a request raising it would get)."""
    if isinstance(exc, InvalidInput):
        more = {"total": exc.total} if exc.total > len(exc.problems) else {}
        return _body(422, invalid_input_detail(exc), INVALID_INPUT, **more)
    for kind, status, type_ in (
        (NotFound, 404, NOT_FOUND),
        (Conflict, 409, CONFLICT),
        (Forbidden, 403, FORBIDDEN),
        (Unavailable, 503, UNAVAILABLE),
    ):
        if isinstance(exc, kind):
            return _body(status, str(exc), type_)
    return _body(500, f"internal error ({exc.__class__.__name__})", "about:blank")


def _body(status: int, detail: Any, type_: str, **extensions: Any) -> dict[str, Any]:
    title = _TITLES.get(type_) or HTTPStatus(status).phrase
    return {"type": type_, "title": title, "status": status, "detail": detail, **extensions}


async def _invalid_input(_: Request, exc: InvalidInput) -> JSONResponse:
    more = {"total": exc.total} if exc.total > len(exc.problems) else {}
    return problem(422, invalid_input_detail(exc), type_=INVALID_INPUT, **more)


async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
    return problem(404, str(exc), type_=NOT_FOUND)


async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
    return problem(409, str(exc), type_=CONFLICT)


async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
    return problem(403, str(exc), type_=FORBIDDEN)


async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
    return problem(503, str(exc), type_=UNAVAILABLE, headers={"Retry-After": str(exc.retry_after)})


def listed(errors: list[Any]) -> RequestValidationError:
    """FastAPI's validation error holding the first ``PROBLEM_LIMIT`` of ``errors`` and their total."""
    exc = RequestValidationError(errors[:PROBLEM_LIMIT])
    exc.total = len(errors)  # type: ignore[attr-defined]
    return exc


async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    # A body of 16 MiB may break a rule in every one of 100,000 items: the first PROBLEM_LIMIT are listed
    # (``total`` counts them all), so the answer stays small and is written at once.
    errors = exc.errors()
    total = getattr(exc, "total", len(errors))
    more = {"total": total} if total > PROBLEM_LIMIT else {}
    return problem(422, jsonable_encoder(errors[:PROBLEM_LIMIT]), type_=INVALID_INPUT, **more)


async def _http_exception(_: Request, exc: HTTPException) -> Response:
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    type_ = UNAVAILABLE if exc.status_code == 503 else "about:blank"  # the request limits' 503 (serving/limits.py)
    return problem(exc.status_code, exc.detail, type_=type_, headers=exc.headers)


def _race() -> JSONResponse:
    return problem(409, "a concurrent change got there first; reload and try again", type_=CONFLICT)


async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
    # Domain code turns the races it expects into Conflict with a precise message; this is the net
    # under the rest, so a unique key taken meanwhile is a 409, never a 500.
    log.info("integrity error answered as 409: %s", exc.orig.__class__.__name__ if exc.orig else "")
    return _race()


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if getattr(getattr(exc, "orig", None), "sqlstate", None) in _RACES:
        return _race()
    log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
    return problem(
        503,
        "the database is unavailable; retry shortly",
        type_=UNAVAILABLE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    if getattr(exc.orig, "sqlstate", None) in _RACES:
        return _race()
    if exc.connection_invalidated:
        return await _database_unavailable(request, exc)
    log.exception("database error")
    return problem(500, "internal database error")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return problem(500, f"internal error ({exc.__class__.__name__})")


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers above on ``app`` (a subclass is handled as its nearest registered base)."""
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)


_DESCRIPTIONS = {
    202: "accepted: the job runs in the background (Location: its status)",
    401: "missing, invalid, expired or revoked token",
    403: "the token's role may not do this (or, for an objection, the caller filed it)",
    404: "not found (or outside the token's region)",
    409: "conflicts with what is stored, or with a concurrent change",
    413: "the request body is too large",
    422: "invalid request (field paths in detail)",
    429: "too many requests from this client (Retry-After)",
    503: "no model loaded, the database is unavailable, or a queue is full (Retry-After)",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route may give (problem details)."""
    schema = ProblemDetails.model_json_schema()
    return {code: {"description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {"schema": schema}}} for code in codes}
