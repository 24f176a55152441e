"""The HTTP service: ``create_app(settings)``.

The lifespan runs the database migrations, opens the store, loads the policy and the champion model
once into ``app.state`` and starts the audit writer. Without a model the service starts degraded:
``/health`` says why, scoring routes answer 503, stored lookups keep working. Routers per resource live
in ``serving/routers``; domain errors become JSON bodies with a ``detail``.
"""

from __future__ import annotations

import gc
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from models.policy import load_policy
from serving import db
from serving.audit import ReadAuditor
from serving.auth import TokenVerifier
from serving.draws import Conflict, NotFound, PopulationCache
from serving.lookups import LatestScores
from serving.metrics import Metrics, MetricsMiddleware
from serving.routers import admin, entities, health, objections, public, runs, sampling, whatif
from serving.sampling import SamplingError
from serving.scoring import SCORING_THREADS, InputProblems, Models, ScoringUnavailable
from serving.settings import Settings, load_settings
from serving.store import StoreError

log = logging.getLogger(__name__)

DESCRIPTION = """
Risk lookups, explanations, "双随机、一公开" sampling draws, objections and credit repair, and the public
lists for credit-based tiered supervision in the IP field (以信用为基础的分级分类监管).

Every route except `/health`, `/docs`, `/openapi.json` and `/v1/public/...` needs
`Authorization: Bearer TOKEN` (`ipcredit tokens create --role supervisor|analyst|reviewer|admin`).
Errors are JSON with a `detail`; invalid input gives 422 with the field paths.
"""

TAGS = [
    {"name": "health", "description": "liveness, the model in service, Prometheus metrics"},
    {"name": "entities", "description": "stored risk rows and their explanations"},
    {"name": "scoring", "description": "what-if scoring of one history (stores nothing)"},
    {"name": "score runs", "description": "immutable scoring runs"},
    {"name": "sampling", "description": "双随机 draws, inspection results, events export"},
    {"name": "objections", "description": "异议 and 信用修复: file, review, decide"},
    {"name": "public", "description": "一公开: published draws and lists, no token"},
    {"name": "admin", "description": "tokens, the inspector roster, the audit log"},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.migrate_on_start:
            db.upgrade(settings.db_url)
        engine = db.make_engine(settings.db_url)
        # Threads that may wait on the database for lookups at once: fewer than the pool's connections.
        app.state.db_readers = anyio.CapacityLimiter(max(1, db.POOL_SIZE // 2))
        app.state.latest_scores = LatestScores(engine, app.state.db_readers)
        app.state.scoring_threads = anyio.CapacityLimiter(SCORING_THREADS)
        policy_path = Path(settings.policy_path)
        app.state.policy = load_policy(policy_path)
        app.state.policy_text = policy_path.read_text(encoding="utf-8")
        app.state.engine = engine
        app.state.tokens = TokenVerifier(engine)
        models = Models(settings)
        models.load_champion()
        app.state.models = models
        metrics.model_loaded.labels(models.model_version or "none").set(1 if models.champion else 0)
        auditor = ReadAuditor(engine)
        auditor.start()
        app.state.auditor = auditor
        app.state.population_cache = PopulationCache()
        threading.Thread(target=_warm, args=(engine, app.state.population_cache), daemon=True).start()
        # What was loaded at start lives as long as the service: keep it out of the collector's scans so
        # a full collection does not pause request handling.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
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
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _error_handlers(app)
    for module in (health, entities, whatif, runs, sampling, objections, public, admin):
        app.include_router(module.router)
    return app


def _warm(engine, cache: PopulationCache) -> None:
    """Load the sampling population in the background so the first draw is as fast as the next."""
    try:
        with engine.connect() as conn:
            cache.records(conn)
    except Exception as exc:  # the first draw loads it instead
        log.info("population not preloaded: %s", exc.__class__.__name__)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(SamplingError)
    async def sampling_error(_: Request, exc: SamplingError) -> JSONResponse:
        body = [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": body}, status_code=422)

    @app.exception_handler(InputProblems)
    async def input_problems(_: Request, exc: InputProblems) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]}, status_code=422)

    @app.exception_handler(ScoringUnavailable)
    async def scoring_unavailable(_: Request, exc: ScoringUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "60"})

    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"}, status_code=503, headers={"Retry-After": "5"}
        )

    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(PoolTimeout, database_unavailable)

    @app.exception_handler(DBAPIError)
    async def dbapi_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await database_unavailable(request, exc)
        log.exception("database error")
        return JSONResponse({"detail": "internal database error"}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": f"internal error ({exc.__class__.__name__})"}, status_code=500)
