"""Forms cannot be sent from another site: a secret in every form, checked before the form is acted on.

A signed-in session has its own secret (``Session.csrf``, the synchroniser token): every form of its
pages carries it in the hidden field ``csrf`` and a form without the session's secret is refused (403).
The sign-in form, before there is a session, uses a double-submit secret: the page sets it as the
cookie ``ipcredit_signin`` (``HttpOnly``, ``SameSite=Strict``) and in the form, and the two must match.
The session cookie is ``SameSite=Strict`` too, so a cross-site form would not even carry it.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

from features.errors import Forbidden
from serving.ui.render import SESSION_KEY
from serving.ui.session import Session, cookie_of

FIELD = "csrf"
SIGN_IN_COOKIE = "ipcredit_signin"


def session_of(request: Request) -> Session:
    """The request's session (set by ``PageGate``)."""
    return request.scope[SESSION_KEY]


def _same(expected: str | None, sent: object) -> bool:
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(expected.encode(), sent.encode())


def check(request: Request, form) -> None:
    """``Forbidden`` unless ``form`` carries the session's secret."""
    if not _same(session_of(request).csrf, form.get(FIELD)):
        raise Forbidden("the form's csrf field does not match this session: reload the page and send it again")


def sign_in_secret() -> str:
    return secrets.token_urlsafe(32)


def check_sign_in(request: Request, form) -> None:
    """``Forbidden`` unless the sign-in form's secret matches its cookie."""
    if not _same(cookie_of(request.scope, SIGN_IN_COOKIE), form.get(FIELD)):
        raise Forbidden("the sign-in form's csrf field does not match its cookie: reload the sign-in page")
