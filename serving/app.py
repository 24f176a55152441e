"""The HTTP service: ``create_app(settings)``.

The lifespan runs the database migrations, opens the store, loads the policy and the champion model
once into ``app.state``, starts the audit writer and the job runner, and publishes the commitment to the
next draw's secret. Requests pass the limits and the token gate (``serving/limits.py``) first. Without a
model the service starts degraded: ``/health`` says why, scoring routes answer 503, stored lookups keep
working. Routers per resource live in ``serving/routers``; the typed errors domain code raises become
problem-details answers in one place, ``serving/errors.py``.
"""

from __future__ import annotations

import gc
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from models.policy import read_policy
from serving import db, register
from serving.audit import ReadAuditor
from serving.auth import TokenVerifier
from serving.dates import PinToday
from serving.errors import register_error_handlers
from serving.jobs import JobRunner
from serving.limits import Admission, RequestLimits, TokenGate
from serving.lookups import Lookups
from serving.metrics import Metrics, MetricsMiddleware
from serving.populations import PopulationCache
from serving.routers import (
    admin,
    draws,
    entities,
    health,
    ledger,
    measures,
    objections,
    plans,
    public,
    recourse,
    reports,
    review,
    runs,
    whatif,
)
from serving.scorers import Scorers
from serving.scoring import SCORINGS_AT_ONCE
from serving.settings import Settings, load_settings
from serving.ui import ProblemPages, install_page_errors, mount

log = logging.getLogger(__name__)

DESCRIPTION = """
Risk lookups, explanations, "双随机、一公开" sampling draws, objections and credit repair, and the public
lists for credit-based tiered supervision in the IP field (以信用为基础的分级分类监管).

Every route except `/health`, `/docs`, `/openapi.json` and `/v1/public/...` needs
`Authorization: Bearer TOKEN` (`ipcredit tokens create --role supervisor|analyst|reviewer|admin`); a token
scoped to a region sees only that region's entities. Bodies larger than the configured limit get 413 and
clients over their rate 429, before any body is read or token checked.
Errors are RFC 9457 problem details (`application/problem+json`: `type`, `title`, `status`, `detail`);
invalid input gives 422 with `detail` listing each problem's field path (`loc`), message and value.
"""

TAGS = [
    {"name": "health", "description": "liveness, the model in service, Prometheus metrics"},
    {"name": "entities", "description": "stored risk rows and their explanations"},
    {"name": "scoring", "description": "what-if scoring of one history (stores nothing)"},
    {"name": "score runs", "description": "immutable scoring runs"},
    {"name": "sampling", "description": "双随机 draws, inspection results, events export"},
    {"name": "plans", "description": "yearly inspection plans by region, their draws, targeted tasks and outcomes"},
    {
        "name": "measures",
        "description": "incentives and restrictions in force; eligibility checks for other departments "
        "(`department` tokens, limited to the benefits they administer); credit commitments",
    },
    {"name": "objections", "description": "异议 and 信用修复: file, review, decide"},
    {"name": "public", "description": "一公开: published draws and lists, no token"},
    {"name": "monitoring", "description": "monthly monitoring reports: drift, performance, fairness, plan progress"},
    {"name": "admin", "description": "tokens, the inspector roster, the audit log"},
]


# Draw verifications (a re-run of the selection, CPU-bound) at once per process; the public may ask.
VERIFICATIONS = 2


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.migrate_on_start:
            db.upgrade(settings.db_url)
        engine = db.make_engine(settings.db_url, statement_timeout_ms=settings.statement_timeout_ms)
        # Threads that may wait on the database for lookups at once: fewer than the pool's connections.
        app.state.db_readers = anyio.CapacityLimiter(max(1, db.POOL_SIZE // 2))
        app.state.lookups = Lookups(engine, app.state.db_readers)
        app.state.scoring_turn = anyio.CapacityLimiter(SCORINGS_AT_ONCE)
        policy_path = Path(settings.policy_path)
        app.state.policy, app.state.policy_text = read_policy(policy_path)
        app.state.engine = engine
        app.state.tokens = TokenVerifier(engine)
        scorers = Scorers(settings)
        scorers.load_champion()
        app.state.scorers = scorers
        metrics.model_loaded.labels(scorers.model_version or "none").set(1 if scorers.champion else 0)
        auditor = ReadAuditor(engine, settings.audit_spool)
        auditor.start()
        app.state.auditor = auditor
        app.state.whatif = Admission(settings.whatif_queue, "what-if scoring")
        app.state.verifications = Admission(VERIFICATIONS, "draw verification", retry_after=5)
        jobs = JobRunner(engine, settings.job_queue, statement_timeout_ms=settings.job_statement_timeout_ms)
        app.state.jobs = jobs
        app.state.population_cache = PopulationCache()
        metrics.watch_reports(engine)
        _publish_commitment(engine)
        threading.Thread(target=_warm, args=(engine, app.state.population_cache), daemon=True).start()
        # What was loaded at start lives as long as the service: keep it out of the collector's scans so
        # a full collection does not pause request handling.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            jobs.stop()
            auditor.stop()
            engine.dispose()

    app = FastAPI(
        title="ipcredit",
        version="0.1.0",
        summary="IP credit-risk tiers, sampling draws, objections and public lists",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    metrics = Metrics()
    app.state.metrics = metrics
    # Outermost last: metrics see every answer; the limits come before the token gate, and both before
    # any body is read. The pages' session gate sits inside the token gate, which leaves /ui/ to it.
    mount(app)
    app.add_middleware(TokenGate)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_inflight_body_bytes=settings.max_inflight_body_bytes,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
    )
    app.add_middleware(ProblemPages)  # the limits' refusals to a page are pages too
    if settings.today is not None:
        app.add_middleware(PinToday, day=settings.today)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    register_error_handlers(app)
    install_page_errors(app)
    routers = (
        health,
        entities,
        whatif,
        runs,
        draws,
        plans,
        measures,
        objections,
        ledger,
        review,
        recourse,
        public,
        reports,
        admin,
    )
    for module in routers:
        app.include_router(module.router)
    return app


def _publish_commitment(engine: Engine) -> None:
    """Publish the commitment to the next draw's secret now, before anyone can ask for that draw."""
    try:
        with engine.begin() as conn:
            register.commit_next(conn)
    except SQLAlchemyError as exc:  # the first draw commits it instead
        log.info("draw commitment not published at start: %s", exc.__class__.__name__)


def _warm(engine: Engine, cache: PopulationCache) -> None:
    """Load the sampling population in the background so the first draw is as fast as the next."""
    try:
        with engine.connect() as conn:
            cache.records(conn)
    except Exception as exc:  # the first draw loads it instead
        log.info("population not preloaded: %s", exc.__class__.__name__)
