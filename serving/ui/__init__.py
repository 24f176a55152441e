"""The pages (CONTRACT section 6): server-rendered views of the same service functions the API calls.

``mount(app)`` adds the page routers, the vendored static files under ``/ui/static`` and the session gate
(``session.PageGate``, inside the request limits: call it before adding them). ``install_page_errors(app)``
(after the API's error handlers) answers errors under ``/ui/`` as pages, and ``ProblemPages`` (outside
the request limits) the refusals made before any route. Each page module is as thin as a
JSON route: it reads a form or a path, calls the domain function the API route calls, and renders a
template of ``serving/templates``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.ui import analyst, plans, public, reviewer, signin, supervisor
from serving.ui.render import STATIC, ProblemPages, install_page_errors

__all__ = ["ProblemPages", "install_page_errors", "mount"]
from serving.ui.session import PageGate, Sessions


def mount(app: FastAPI) -> None:
    """Serve the pages from ``app``."""
    sessions = Sessions()
    app.state.ui_sessions = sessions
    app.add_middleware(PageGate, sessions=sessions)
    for module in (signin, supervisor, plans, reviewer, analyst, public):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
