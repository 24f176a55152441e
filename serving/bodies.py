"""Large JSON bodies are validated in a worker thread, not on the event loop.

FastAPI decodes and validates a route's JSON body on the event loop before the route runs. The bodies this
service accepts reach ``Settings.max_body_bytes`` (16 MiB: a what-if history of 75,000 events, 100,000
inspection results, a roster of 100,000 inspectors), and validating one of them takes up to a second in
which the process answers nothing else (risk lookups beside a few such what-ifs: p99 0.65 s, 3.6 s when
every event broke a rule; docs/security.md).

``ThreadedBodyRoute`` validates a JSON body larger than ``LOOP_BODY_BYTES`` in a thread, with the route's
own body field — the same rules, the same 422 items, the same OpenAPI document — and hands FastAPI the
validated model through ``Request.json``; FastAPI's own validation then accepts the instance as it is. A
thread gives the loop its turn whenever validation runs Python code (every field and model validator), so
a large body delays other requests by milliseconds instead of holding them. What a thread cannot give
back is C code that keeps the GIL: decoding the JSON, and the garbage collector's full passes over the
millions of objects a large body makes (about 100 ms each). The collector is not paused for them: under a
stream of large bodies it would never run again. Smaller bodies, and routes whose body is embedded or a
form, take FastAPI's path unchanged: a thread costs more than they do.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from serving.errors import listed

# Bodies up to this size are validated on the event loop (at most a few milliseconds).
LOOP_BODY_BYTES = 64 * 1024

_UNSET: Any = object()


class _ValidatedRequest(Request):
    """A request whose JSON body is already validated: ``json()`` returns the route's model."""

    validated: Any = _UNSET

    async def json(self) -> Any:
        if self.validated is _UNSET:
            return await super().json()
        return self.validated


class ThreadedBodyRoute(APIRoute):
    """An ``APIRoute`` that validates a large JSON body off the event loop (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        # One body parameter taken as the whole body: FastAPI validates the body with this field alone.
        if field is None or self._embed_body_fields or isinstance(field.field_info, params.Form):
            return handler

        def validate(raw: bytes) -> Any:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:  # FastAPI's item for a body that is not JSON
                item = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
                raise RequestValidationError([{**item, "ctx": {"error": exc.msg}}]) from None
            value, errors = field.validate(data, {}, loc=("body",))
            if errors:  # only the problems a 422 lists leave the thread (and are freed on the loop)
                raise listed(errors)
            return value

        async def route_handler(request: Request) -> Response:
            # A body declared small (nearly every request) goes straight to FastAPI, untouched; one declared
            # large, or sent without a length, is read here first.
            declared = request.headers.get("content-length", "")
            if not (declared.isdigit() and int(declared) <= LOOP_BODY_BYTES) and _is_json(request):
                request = _ValidatedRequest(request.scope, request.receive)
                try:
                    raw = await request.body()
                except HTTPException:  # the request limits' 413 or 503 (serving/limits.py)
                    raise
                except Exception as exc:  # a client gone mid-body: FastAPI's answer to a body it cannot read
                    raise HTTPException(400, "There was an error parsing the body") from exc
                if len(raw) > LOOP_BODY_BYTES:
                    request.validated = await anyio.to_thread.run_sync(validate, raw)
            return await handler(request)

        return route_handler


def _is_json(request: Request) -> bool:
    """Whether FastAPI would read this request's body as JSON (its content type is JSON or ``+json``)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))
