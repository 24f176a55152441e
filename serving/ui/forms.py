"""Reading the pages' forms: bounded, and checked by the API's own request models."""

from __future__ import annotations

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from features.errors import InvalidInput, Problem

# Fields one form may send (a draw page's results form has four per selected entity shown).
MAX_FIELDS = 2000


async def form_of(request: Request) -> FormData:
    """The request's urlencoded form (no files; at most ``MAX_FIELDS`` fields, else 422)."""
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS)
    except Exception as exc:  # the parser's own error for too many fields, files or a malformed body
        raise InvalidInput.at((), f"the form could not be read: {exc}", where="form") from exc


def invalid(exc: ValidationError) -> InvalidInput:
    """A request model's errors on a form, at the fields' paths, led by ``form``."""
    problems = [
        Problem(tuple(e["loc"]), e["msg"], e.get("input") if isinstance(e.get("input"), str | int | float) else None)
        for e in exc.errors()
    ]
    return InvalidInput(problems, where="form")
