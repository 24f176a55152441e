"""Signed-in sessions of the pages: a server-side session per sign-in, named by an HttpOnly cookie.

Signing in with an API token (``/ui/sign-in``) makes a session: 32 random bytes name it in the cookie
``ipcredit_session`` (``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, ``Secure`` over HTTPS), and the
session itself — the sha256 of the token, the form secret (``csrf``) and when it ends — is a row of the
service database's ``ui_sessions``, named by the sha256 of the cookie's value: no script and no cookie
ever holds the token, the database holds neither the token nor the cookie, and every worker process
(``ipcredit serve --workers N``) and a restarted service know the session. Each request re-verifies the
token with the API's own ``TokenVerifier``: a revoked or expired token ends its sessions within the
verifier's cache time, roles and region scopes are exactly the API's. Sessions last ``SESSION_SECONDS``
at most, end at sign-out, and a token keeps its ``SESSIONS_PER_TOKEN`` newest (signing in again and again
cannot grow the table without end); ended rows are deleted at the next sign-in.

``PageGate`` (ASGI middleware) guards every ``/ui/`` page but the public ones, before any body is read:
without a live session a ``GET`` is sent to the sign-in page (``303``) and anything else gets a 401 page;
with the database away, a 503 page.
It leaves the principal where the API's role check (``serving.deps.require``) reads it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from anyio import to_thread
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.auth import Principal, TokenVerifier, hash_token, utc
from serving.db import read, ui_sessions
from serving.limits import PRINCIPAL_KEY
from serving.ui.render import SESSION_KEY, page_response

COOKIE = "ipcredit_session"
# A session ends this long after sign-in, whatever the token's own expiry (a shared desk is signed out).
SESSION_SECONDS = 8 * 3600
# Sessions kept per token; its oldest are ended past it.
SESSIONS_PER_TOKEN = 20
# A cookie value longer than this names no session (``secrets.token_urlsafe(32)`` gives 43 characters).
COOKIE_MAX = 128
# Pages anyone may open: no session needed.
OPEN_PREFIXES = ("/ui/public/", "/ui/static/", "/ui/sign-in")


@dataclass(frozen=True)
class Session:
    """One sign-in: the sha256 of the token it verifies with, the secret its forms carry, when it ends."""

    token_hash: str = field(repr=False)
    csrf: str
    ends: datetime
    name: str


class Sessions:
    """The sessions, in the service database's ``ui_sessions``."""

    def __init__(self, seconds: float = SESSION_SECONDS, per_token: int = SESSIONS_PER_TOKEN) -> None:
        self.seconds = seconds
        self.per_token = per_token

    def open(self, engine: Engine, token: str, principal: Principal) -> tuple[str, Session]:
        """A new session for a verified ``token``; its id (the cookie's value) and the session."""
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session = Session(
            hash_token(token), secrets.token_urlsafe(32), now + timedelta(seconds=self.seconds), principal.actor
        )
        table = ui_sessions.c
        with engine.begin() as conn:
            conn.execute(delete(ui_sessions).where(table.ends_at <= now))
            conn.execute(
                insert(ui_sessions).values(
                    session_hash=hash_token(session_id),
                    token_hash=session.token_hash,
                    name=session.name,
                    csrf=session.csrf,
                    created_at=now,
                    ends_at=session.ends,
                )
            )
            older = (
                select(table.session_hash)
                .where(table.token_hash == session.token_hash)
                .order_by(table.created_at.desc(), table.session_hash)
                .offset(self.per_token)
                .limit(10_000)  # SQLite takes OFFSET only after a LIMIT
            )
            conn.execute(delete(ui_sessions).where(table.session_hash.in_(older.scalar_subquery())))
        return session_id, session

    def get(self, engine: Engine, session_id: str | None) -> Session | None:
        """The live session ``session_id`` names, or ``None``."""
        if not session_id or len(session_id) > COOKIE_MAX:
            return None
        digest = hash_token(session_id)
        row = read(
            engine, lambda conn: conn.execute(select(ui_sessions).where(ui_sessions.c.session_hash == digest)).first()
        )
        if row is None or utc(row.ends_at) <= datetime.now(UTC):
            return None
        return Session(row.token_hash, row.csrf, utc(row.ends_at), row.name)

    def close(self, engine: Engine, session_id: str | None) -> None:
        """End the session ``session_id`` names (nothing when it names none)."""
        if not session_id or len(session_id) > COOKIE_MAX:
            return
        with engine.begin() as conn:
            conn.execute(delete(ui_sessions).where(ui_sessions.c.session_hash == hash_token(session_id)))


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
        engine: Engine = scope["app"].state.engine
        principal = None
        try:
            session = await to_thread.run_sync(self.sessions.get, engine, session_id)
            if session is not None:
                verifier: TokenVerifier = scope["app"].state.tokens
                found, principal = verifier.cached_hash(session.token_hash)
                if not found:
                    principal = await to_thread.run_sync(verifier.verify_hash, session.token_hash)
                if principal is None:  # revoked or expired since sign-in
                    await to_thread.run_sync(self.sessions.close, engine, session_id)
        except SQLAlchemyError:
            await _unavailable(scope, receive, send)
            return
        if principal is None:
            await _refuse(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        scope[SESSION_KEY] = session
        await self.app(scope, receive, send)


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    response = page_response(
        scope,
        503,
        "暂不可用",
        "Service Unavailable",
        "服务数据库暂不可用，请稍后重试。 The service's database cannot be reached: retry shortly.",
        {"Retry-After": "5"},
    )
    await response(scope, receive, send)


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
