"""Signing in and out, and the home page of a signed-in person."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from features.errors import InvalidInput
from serving.auth import TokenVerifier
from serving.ui import csrf
from serving.ui.render import SESSION_KEY, render
from serving.ui.session import COOKIE, Sessions, cookie_of

router = APIRouter(prefix="/ui", include_in_schema=False)
# The longest API token accepted in the form ("ipc_" and 43 characters; a little room for other forms).
TOKEN_MAX = 200


def _next(target: str | None) -> str:
    """Where to go after signing in: a page of this site only (never another host: no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None):
    """The sign-in form, with a fresh double-submit secret."""
    return _sign_in_form(request, _next(next))


def _sign_in_form(request: Request, target: str, *, status: int = 200, problem: str | None = None):
    """The sign-in form for ``target``, its double-submit secret fresh in the form and in a cookie."""
    secret = csrf.sign_in_secret()
    response = render(request, "sign_in.html", status=status, next=target, signin_csrf=secret, problem=problem)
    response.set_cookie(
        csrf.SIGN_IN_COOKIE,
        secret,
        max_age=3600,
        path="/ui/sign-in",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.post("/sign-in")
async def sign_in(request: Request):
    """Verify the token as the API does; on success a session cookie and a redirect to the page asked for."""
    form = await request.form(max_files=0, max_fields=10)
    csrf.check_sign_in(request, form)
    token = str(form.get("token") or "").strip()
    if not token or len(token) > TOKEN_MAX:
        raise InvalidInput.at("token", f"token must be an API token of 1 to {TOKEN_MAX} characters", where="form")
    verifier: TokenVerifier = request.app.state.tokens
    principal = await run_in_threadpool(verifier.verify, token)
    target = _next(str(form.get("next") or ""))
    if principal is None:
        return _sign_in_form(
            request, target, status=401, problem="令牌无效、已撤销或已过期。 The token is invalid, revoked or expired."
        )
    sessions: Sessions = request.app.state.ui_sessions
    session_id, _ = await run_in_threadpool(sessions.open, request.app.state.engine, token, principal)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(sessions.seconds),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(csrf.SIGN_IN_COOKIE, path="/ui/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request):
    form = await request.form(max_files=0, max_fields=5)
    csrf.check(request, form)
    await run_in_threadpool(
        request.app.state.ui_sessions.close, request.app.state.engine, cookie_of(request.scope, COOKIE)
    )
    request.scope.pop(SESSION_KEY, None)
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/")
def home(request: Request):
    """What the signed-in person can do, by role, and the entity search; and, when the model in service
    failed its promotion gate, which checks it failed and why it scores all the same."""
    return render(request, "home.html", model_caveat=request.app.state.scorers.caveat)
