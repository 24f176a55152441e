"""What is refused before a request reaches a route, and the bounded queues behind the routes.

``RequestLimits`` (ASGI middleware, outermost but for the metrics) refuses, before any byte of a body is
read and before any token is checked:

- a client over its rate — a token bucket per client address, ``rate_limit_per_second`` refilled up to
  ``rate_limit_burst`` — with **429** and ``Retry-After``;
- a body whose ``Content-Length`` exceeds ``max_body_bytes`` with **413**, at once (the body is never
  read); a body sent without a length (chunked) is counted as it streams in and refused with 413 the
  moment it passes the limit, so no more than ``max_body_bytes`` of it is ever held;
- a body that would take the bytes of all bodies being received at once past ``max_inflight_body_bytes``
  with **503** and ``Retry-After`` (at once when its length is declared, else the moment it would): however
  many clients send, the process never holds more than that much of their bodies.

``TokenGate`` (inside it) answers **401** to a request for a protected route without a valid bearer token
before its body is read: FastAPI reads a body before it resolves dependencies, so without the gate anyone
on the network could make the service read and parse bodies. The principal it finds is handed to the
routes' role check (``serving.deps.require``), which does not verify the token a second time.

``Admission`` bounds a queue of work (what-if scorings): past its size a request gets **503** with
``Retry-After`` at once instead of waiting without end. Every refusal is a problem-details body.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.errors import Unavailable
from serving.errors import UNAVAILABLE, problem

# Routes anyone may call (CONTRACT section 5): no token, so the gate lets them through.
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# The pages (/ui/) have their own gate, the signed-in session (serving/ui/session.py: PageGate).
PUBLIC_PREFIXES = ("/v1/public/", "/ui/")
# Where the gate leaves the principal it found for the route's role check.
PRINCIPAL_KEY = "ipcredit.principal"
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
MISSING_TOKEN = "missing bearer token: send 'Authorization: Bearer TOKEN'"
INVALID_TOKEN = "invalid or revoked token"
# Client addresses whose buckets are remembered; the least recently seen are forgotten beyond it.
_MAX_CLIENTS = 65_536


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class RateLimiter:
    """Token buckets per client: ``rate`` requests per second, at most ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Take one request from ``client``'s bucket: 0 when allowed, else the seconds until one is."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > _MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate


class BodyTooLarge(HTTPException):
    """A body that streamed past the limit (raised from ``receive``; FastAPI re-raises HTTP exceptions)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit), {"Connection": "close"})


def too_large(limit: int) -> str:
    return f"the request body must not exceed {limit:,} bytes"


class RequestLimits:
    """ASGI middleware: the rate limit and the body size limit (see the module)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, rate: float, burst: int, max_inflight_body_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.budget = max_inflight_body_bytes or 4 * max_body_bytes
        self.inflight = 0  # body bytes received by requests still running (one event loop: no lock)
        self.limiter = RateLimiter(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.wait(client[0] if client else "?")
        if wait:
            seconds = max(1, math.ceil(wait))
            detail = (
                f"too many requests from this client: at most {self.limiter.rate:g} per second; retry in {seconds} s"
            )
            await problem(429, detail, headers={"Retry-After": str(seconds)})(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            response = problem(413, too_large(self.max_body_bytes), headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        if length == -1:
            await problem(400, "Content-Length must be a non-negative whole number")(scope, receive, send)
            return
        if length and self.inflight + length > self.budget:
            await _busy()(scope, receive, send)
            return
        limit, seen = self.max_body_bytes, 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                if seen + size > limit:
                    raise BodyTooLarge(limit)
                if self.inflight + size > self.budget:
                    raise HTTPException(503, BUSY, {"Retry-After": "1", "Connection": "close"})
                seen += size
                self.inflight += size
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            self.inflight -= seen


BUSY = "the service is receiving too many request bodies at once; retry shortly"


def _busy():
    return problem(503, BUSY, type_=UNAVAILABLE, headers={"Retry-After": "1", "Connection": "close"})


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length: ``None`` when absent, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


class TokenGate:
    """ASGI middleware: a protected route needs a valid bearer token before its body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if not token:
            await problem(401, MISSING_TOKEN, headers=UNAUTHORIZED)(scope, receive, send)
            return
        verifier = scope["app"].state.tokens
        found, principal = verifier.cached(token)
        if not found:
            from anyio import to_thread

            principal = await to_thread.run_sync(verifier.verify, token)
        if principal is None:
            await problem(401, INVALID_TOKEN, headers=UNAUTHORIZED)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


class Admission:
    """At most ``size`` holders at once (running or waiting their turn); one more is refused at once."""

    def __init__(self, size: int, what: str, retry_after: int = 1) -> None:
        self.size = size
        self.what = what
        self.retry_after = retry_after
        self.holders = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a place for the block; ``Unavailable`` (503, ``Retry-After``) when the queue is full."""
        if self.holders >= self.size:
            raise Unavailable(
                f"the {self.what} queue is full ({self.size} waiting or running); retry shortly",
                retry_after=self.retry_after,
            )
        self.holders += 1
        try:
            yield
        finally:
            self.holders -= 1
