"""Pages rendered from the Jinja2 templates of ``serving/templates``, and errors under ``/ui/`` as pages.

``render`` gives a page with what every layout needs (who is signed in, the form secret, the navigation
for the role). ``install_page_errors(app)`` wraps each error handler ``serving/errors.py`` installed: for
a ``/ui/`` path the same problem details (status, title, detail with its field paths) are drawn as an
HTML page instead of JSON, so an error means exactly what it means in the API. ``ProblemPages`` (ASGI
middleware outside the request limits) does the same for the refusals answered before any route runs —
429, 413, 503 from ``serving/limits.py`` — so a page is never answered with JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import Principal, Role
from serving.limits import PRINCIPAL_KEY
from serving.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "serving" / "templates"
STATIC = PROJECT_ROOT / "serving" / "static"
# Where the session gate (serving/ui/session.py) leaves the request's session.
SESSION_KEY = "ipcredit.session"

TIER_NAMES = {
    "A": ("信用风险低", "low credit risk"),
    "B": ("信用风险一般", "moderate credit risk"),
    "C": ("信用风险较高", "elevated credit risk"),
    "D": ("信用风险高", "high credit risk"),
}
ROLE_NAMES = {
    "supervisor": ("监管人员", "supervisor"),
    "analyst": ("分析人员", "analyst"),
    "reviewer": ("复核人员", "reviewer"),
    "admin": ("管理员", "admin"),
}
# (path, 中文, English, roles that may open it)
NAV = (
    ("/ui/", "首页", "Home", None),
    ("/ui/draws", "双随机抽查", "Draws", (Role.SUPERVISOR,)),
    ("/ui/plans", "检查计划", "Plans", (Role.SUPERVISOR,)),
    ("/ui/objections", "异议复核", "Objections", (Role.REVIEWER,)),
    ("/ui/models", "模型与评分批次", "Models and runs", (Role.ANALYST,)),
    ("/ui/public/lists", "公示名单", "Public lists", ()),
    ("/ui/public/draws", "抽查公示", "Draws register", ()),
)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(TIER_NAMES=TIER_NAMES, ROLE_NAMES=ROLE_NAMES)
    env.filters["pct"] = lambda v, digits=1: "—" if v is None else f"{100 * float(v):.{digits}f} %"
    env.filters["num"] = lambda v, digits=3: "—" if v is None or v != v else f"{float(v):.{digits}f}"
    return env


def may_open(principal: Principal | None, roles: tuple[Role, ...] | None) -> bool:
    if roles is None:
        return principal is not None
    if not roles:
        return True
    return principal is not None and (principal.role == Role.ADMIN or principal.role in roles)


def _context(scope: Scope) -> dict[str, Any]:
    principal: Principal | None = scope.get(PRINCIPAL_KEY) if scope.get(SESSION_KEY) else None
    session = scope.get(SESSION_KEY)
    nav = [(path, zh, en) for path, zh, en, roles in NAV if may_open(principal, roles)]
    return {
        "principal": principal,
        "csrf": session.csrf if session else "",
        "nav": nav,
        "path": scope.get("path", ""),
    }


def render(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None, **values):
    """The page ``template`` filled with ``values`` and the layout's context."""
    html = environment().get_template(template).render(**_context(request.scope), **values)
    return HTMLResponse(html, status_code=status, headers=headers)


def page_response(
    scope: Scope,
    status: int,
    title_zh: str,
    title_en: str,
    detail: Any,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """An error page: the status, a bilingual title and the problem's detail (a sentence or field items)."""
    items = detail if isinstance(detail, list) else None
    html = (
        environment()
        .get_template("error.html")
        .render(
            **_context(scope),
            status=status,
            title_zh=title_zh,
            title_en=title_en,
            sentence=None if items is not None else str(detail),
            items=items or [],
        )
    )
    kept = ("retry-after", "www-authenticate", "connection")  # a refused body is not read: the connection closes
    headers = {k: v for k, v in (headers or {}).items() if k.lower() in kept}
    return HTMLResponse(html, status_code=status, headers=headers)


ERROR_TITLES = {
    401: "未登录",
    403: "无权操作",
    404: "未找到",
    409: "冲突",
    413: "请求过大",
    422: "输入有误",
    429: "请求过多",
    503: "暂不可用",
}


def _as_page(scope: Scope, response: Response) -> Response:
    body = json.loads(bytes(response.body)) if response.body else {}
    status = response.status_code
    title_en = body.get("title") or HTTPStatus(status).phrase
    return page_response(
        scope, status, ERROR_TITLES.get(status, "出错了"), title_en, body.get("detail", ""), dict(response.headers)
    )


class ProblemPages:
    """ASGI middleware: a problem-details answer to a ``/ui`` path, from any layer inside it, becomes the
    error page with the same status, detail and ``Retry-After``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/ui"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = b""

        async def sent(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                kind = dict(message.get("headers", ())).get(b"content-type", b"")
                if kind.startswith(b"application/problem+json"):
                    start = message  # held until its body is complete
                    return
            elif message["type"] == "http.response.body" and start is not None:
                body += message.get("body", b"")
                if message.get("more_body"):
                    return
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", ())}
                page = _as_page(scope, Response(body, status_code=start["status"], headers=headers))
                await page(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, sent)


def install_page_errors(app: FastAPI) -> None:
    """Answer errors under ``/ui/`` as pages, with the problem details the API would give."""
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _wrapped(handler)


def _wrapped(handler):
    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if request.url.path.startswith("/ui") and response.media_type and "json" in response.media_type:
            return _as_page(request.scope, response)
        return response

    return handle
