"""Signed-in sessions of the pages: a server-side session per sign-in, named by an HttpOnly cookie.

Signing in with an API token (``/ui/sign-in``) makes a session: 32 random bytes name it in the cookie
``ipcredit_session`` (``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, ``Secure`` over HTTPS), and the
session itself — the token, the form secret (``csrf``) and when it ends — stays in the server's memory,
so no script and no cookie ever holds the token. Each request re-verifies the token with the API's own
``TokenVerifier``: a revoked or expired token ends its sessions within the verifier's cache time, roles
and region scopes are exactly the API's. Sessions last ``SESSION_SECONDS`` at most, and end at sign-out.

``PageGate`` (ASGI middleware) guards every ``/ui/`` page but the public ones, before any body is read:
without a live session a ``GET`` is sent to the sign-in page (``303``) and anything else gets a 401 page.
It leaves the principal where the API's role check (``serving.deps.require``) reads it.

Sessions live in one process: a restart signs everyone out, and with several worker processes a session
is known to the worker that made it only (run the pages with one worker).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.auth import Principal, TokenVerifier
from serving.limits import PRINCIPAL_KEY
from serving.ui.render import SESSION_KEY, page_response

COOKIE = "ipcredit_session"
# A session ends this long after sign-in, whatever the token's own expiry (a shared desk is signed out).
SESSION_SECONDS = 8 * 3600
# Sessions kept at once per process; the oldest are dropped past it.
MAX_SESSIONS = 10_000
# Pages anyone may open: no session needed.
OPEN_PREFIXES = ("/ui/public/", "/ui/static/", "/ui/sign-in")


@dataclass
class Session:
    """One sign-in: the token it verifies with, the secret its forms carry, and when it ends."""

    token: str = field(repr=False)
    csrf: str
    ends: float
    name: str


class Sessions:
    """The sessions of this process, bounded and expiring."""

    def __init__(self, seconds: float = SESSION_SECONDS, size: int = MAX_SESSIONS) -> None:
        self.seconds = seconds
        self.size = size
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, token: str, principal: Principal) -> tuple[str, Session]:
        """A new session for a verified ``token``; its id (the cookie's value) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), time.monotonic() + self.seconds, principal.actor)
        with self._lock:
            self._sessions[session_id] = session
            while len(self._sessions) > self.size:
                self._sessions.popitem(last=False)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.ends <= time.monotonic():
                del self._sessions[session_id]
                return None
        return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)


def cookie_of(scope: Scope, name: str) -> str | None:
    """The value of cookie ``name`` in the request's headers, or ``None``."""
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


def is_open(path: str) -> bool:
    return path.startswith(OPEN_PREFIXES)


class PageGate:
    """ASGI middleware: a ``/ui/`` page other than the public ones needs a live session."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/ui") or is_open(path):
            await self.app(scope, receive, send)
            return
        session_id = cookie_of(scope, COOKIE)
        session = self.sessions.get(session_id)
        principal = None
        if session is not None:
            verifier: TokenVerifier = scope["app"].state.tokens
            found, principal = verifier.cached(session.token)
            if not found:
                principal = await to_thread.run_sync(verifier.verify, session.token)
            if principal is None:  # revoked or expired since sign-in
                self.sessions.close(session_id)
        if principal is None:
            await _refuse(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        scope[SESSION_KEY] = session
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] in ("GET", "HEAD"):
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        location = "/ui/sign-in?next=" + quote(target, safe="")
        await send({"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode())]})
        await send({"type": "http.response.body", "body": b""})
        return
    response = page_response(
        scope, 401, "未登录或会话已结束", "Not signed in, or the session has ended", "请重新登录。 Sign in again."
    )
    await response(scope, receive, send)
