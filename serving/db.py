"""The service database: table definitions, engines and migrations.

The tables are SQLAlchemy Core ``Table`` objects (the hot paths — risk lookups, sampling draws, bulk
score imports — are set-based, so there is no ORM layer). Alembic migrations under
``serving/migrations`` create them; ``upgrade(url)`` runs them and is called when the service starts
and by ``ipcredit db upgrade``. An SQLite file is the default, PostgreSQL is supported.

Score runs, scores, the audit log, draws with their selections, secrets and population snapshots, and
inspection results are append-only: the migrations install triggers that reject UPDATE and DELETE on them
(``APPEND_ONLY``), so an appeal always sees the snapshot that produced a tier and a draw can never be
undone. Migrations run under a lock (an advisory lock on PostgreSQL), so replicas starting together
migrate once. Large writes go through ``bulk_insert`` (COPY on PostgreSQL, executemany on SQLite), large
reads through ``compiled``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from features.schema import ENTITY_ID_LENGTH

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"

# BIGINT keys on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the auto-incrementing rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("created_by", String(100)),
    Column("expires_at", DateTime(timezone=True)),  # NULL: never (only tokens made before expiry existed)
    Column("last_used_at", DateTime(timezone=True)),  # updated at most once a minute (serving.auth)
    Column("region", String(6)),  # region scope: a division code; NULL for every region
    Column("benefits", Text),  # a department token's benefits (";"-joined models.policy.BENEFITS); NULL: none
)

score_runs = Table(
    "score_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
    Column("kind", String(16), nullable=False),  # serving.store.RUN_KINDS
    Column("as_of", Date, nullable=False),
    Column("dataset_fingerprint", String(128), nullable=False),
    Column("data_source", Text, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("policy_text", Text, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("feature_version", String(64), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("parent_run_id", Id, ForeignKey("score_runs.id")),
    Column("objection_id", Id),
    Column("ledger_seq", Id),  # the last ledger decision the run's features applied (NULL: none read)
    Column("ledger_conflicts", Text),  # JSON: where the delivery and the ledger disagreed
    Column("data_end", Date),  # the delivery's last record (NULL: not known, a run stored before 0009)
)

scores = Table(
    "scores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", Id, ForeignKey("score_runs.id"), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("score", Float, nullable=False),
    Column("model_tier", String(1), nullable=False),
    Column("tier", String(1), nullable=False),
    Column("rules", Text, nullable=False),
    Column("review", Boolean, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("feature_version", String(64), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of {feature, value, contribution}
    Column("base_value", Float),
    Column("log_odds", Float),
    Column("contributions", Text),  # JSON object feature -> contribution, every feature
    Column("features", Text),  # JSON object feature -> value
    Column("supersedes_id", Id),  # the row this one replaces after an objection decision
    Column("ledger_seq", Id),  # the ledger decisions its features applied: seq <= this (NULL: none read)
    Index(None, "entity_id", "as_of", "id"),
    Index(None, "run_id"),
)

# Entity ids sort bytewise on both back ends (C collation on PostgreSQL, a clustered primary key on
# SQLite), so a draw reads its population already in the canonical order.
EntityId = String(ENTITY_ID_LENGTH).with_variant(String(ENTITY_ID_LENGTH, collation="C"), "postgresql")

entities = Table(
    "entities",
    metadata,
    Column("entity_id", EntityId, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("industry", String(1), nullable=False),
    Column("region", String(6), nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("registered_capital", Float),
    Column("online_seller", Boolean, nullable=False),
    Column("locations", BigInteger),
    # The entity's latest score row (latest as_of, then latest id): what lookups and draws use.
    Column("score_id", Id),
    Column("tier", String(1)),
    Column("score_as_of", Date),
    sqlite_with_rowid=False,
)

list_entries = Table(
    "list_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("list", String(32), nullable=False),
    Column("entered_on", Date, nullable=False),
    Column("removed_on", Date),
    Column("basis", Text),
    Column("run_id", Id),
    UniqueConstraint("entity_id", "list", "entered_on"),
    Index(None, "list", "entered_on"),
)

inspectors = Table(
    "inspectors",
    metadata,
    Column("inspector_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("region", String(6)),
    Column("active", Boolean, nullable=False),
    Column("conflicts", Text, nullable=False),  # JSON list of entity ids the inspector must not inspect
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

populations = Table(
    "populations",
    metadata,
    # sha256 of the snapshot payload; draws over the same population share one stored snapshot.
    Column("hash", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("snapshot", LargeBinary, nullable=False),  # zlib of the sorted ids (18 bytes each), then tiers
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The sampling population as a large score run left it (serving/populations.py): every scored entity's
# packed ``RECORD``, sorted by id, zlib. Valid while the newest run is ``run_id`` and ``runs_seen`` runs
# exist (the population cache's key); only the latest is kept.
population_records = Table(
    "population_records",
    metadata,
    Column("run_id", Id, ForeignKey("score_runs.id"), primary_key=True, autoincrement=False),
    Column("runs_seen", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    Column("records", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

draws = Table(
    "draws",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
    Column("seed", BigInteger, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("mode", String(8), nullable=False),  # serving.sampling.MODES
    Column("budget", Integer),
    Column("ratios", Text, nullable=False),  # JSON tier -> applied inclusion probability
    Column("filter", Text, nullable=False),  # JSON population filter
    Column("population", Text, nullable=False),  # JSON tier -> entities in the population
    Column("population_size", Integer, nullable=False),
    Column("population_hash", String(64), ForeignKey("populations.hash"), nullable=False),
    Column("inspectors_per_entity", Integer, nullable=False),
    Column("avoid_same_region", Boolean, nullable=False),
    Column("roster_hash", String(64), nullable=False),
    Column("selected_count", Integer, nullable=False),
    # The public register (serving/register.py): the draw's place in the hash chain, what its seed was
    # derived from, the salted population commitment and the commitment to the next draw's secret.
    Column("sequence", Integer, nullable=False, unique=True),
    Column("seed_inputs", Text),  # canonical JSON; NULL for draws made before the register
    Column("record_hash", String(64)),
    Column("next_secret_hash", String(64)),
    Column("population_salt", String(64)),
    Column("population_commitment", String(64)),
)

# The secret each draw's seed is derived from, committed (its sha256 published) by the draw before it and
# revealed by the draw itself: nobody can know a seed before the draw, nor choose one.
draw_secrets = Table(
    "draw_secrets",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("secret_hash", String(64), nullable=False),
    Column("secret", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Clustered by (draw, position) and written in that order: appending a draw's rows is sequential.
draw_selections = Table(
    "draw_selections",
    metadata,
    Column("draw_id", String(32), ForeignKey("draws.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("tier", String(1), nullable=False),
    Column("inclusion_probability", Float, nullable=False),
    Column("inspectors", Text, nullable=False),  # ";"-joined inspector ids
    sqlite_with_rowid=False,
)

inspection_results = Table(
    "inspection_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(80), nullable=False, unique=True),
    Column("draw_id", String(32), ForeignKey("draws.id"), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("recorded_on", Date, nullable=False),
    Column("amount", Float),
    Column("findings", Text),
    Column("recorded_by", String(100)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("draw_id", "entity_id"),
    Index(None, "recorded_on"),
)

objections = Table(
    "objections",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("score_id", Id, ForeignKey("scores.id"), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("grounds", Text, nullable=False),
    Column("filed_by", String(100)),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # serving.schemas.ObjectionStatus
    Column("version", Integer, nullable=False),
    Column("decision", String(16)),
    Column("decision_note", Text),
    Column("decided_by", String(100)),
    Column("decided_at", DateTime(timezone=True)),
    Column("result_score_id", Id),
    Column("changes", Text),  # JSON: what the decision changed (corrected rows, repaired event ids)
    Index(None, "status"),
    Index(None, "entity_id"),
)
# One open objection per score row, enforced by the database (two filings at once: one gets 409).
Index(
    "uq_objections_open_score_id",
    objections.c.score_id,
    unique=True,
    sqlite_where=text("status = 'open'"),
    postgresql_where=text("status = 'open'"),
)

# The decision ledger (serving/ledger.py): what the regulator decided about the delivered records, laid
# over every dataset a run reads (features/ledger.py). ``seq`` is assigned under a lock, without gaps, in
# commit order: a run that read up to seq N reads the same decisions again whenever it is replayed.
ledger = Table(
    "ledger",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("decision_id", String(32), nullable=False, unique=True),  # kept across export and import
    Column("kind", String(16), nullable=False),  # features.ledger.DecisionKind
    Column("decided_on", Date, nullable=False),
    Column("event_id", String(80)),
    Column("entity_id", String(ENTITY_ID_LENGTH)),
    Column("list", String(32)),
    Column("entered_on", Date),
    Column("event_type", String(32)),
    Column("occurred_on", Date),
    Column("recorded_on", Date),
    Column("quantity", Integer),
    Column("amount", Float),
    Column("repaired_on", Date),
    Column("removed_on", Date),
    Column("basis", Text),  # the decision's number or legal ground
    Column("evidence", Text),  # JSON list of what the applicant supplied (the repair rule's requirements)
    Column("rule", String(64)),  # the policy's repair rule that allowed it
    Column("policy_version", String(64)),
    Column("source", Text),  # where it was decided: "api", "objection/12", "import", "draw/…"
    Column("note", Text),
    Column("decided_by", String(100)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index(None, "event_id"),
    Index(None, "entity_id"),
)

# Yearly inspection plans (serving/plans.py): one per region and year, its draws, the targeted tasks
# recorded beside them, and every inspection's outcome by entity and inspector.
plans = Table(
    "plans",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("region", String(6), nullable=False),
    Column("year", Integer, nullable=False),
    Column("period", String(8), nullable=False),  # serving.plans.PERIODS
    Column("policy_version", String(64), nullable=False),
    Column("spec", Text, nullable=False),  # JSON: the policy's [plans] section the plan follows
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
    UniqueConstraint("region", "year"),
)

plan_draws = Table(
    "plan_draws",
    metadata,
    Column("plan_id", String(32), ForeignKey("plans.id"), primary_key=True),
    Column("period", Integer, primary_key=True, autoincrement=False),  # 1..12 (months) or 1..4 (quarters)
    Column("draw_id", String(32), ForeignKey("draws.id"), nullable=False, unique=True),
    Column("draw_on", Date, nullable=False),  # the period's first day
    # JSON tier -> {population, resting, eligible, target, expected, count, probability}
    Column("tiers", Text, nullable=False),
    Column("resting", Text, nullable=False),  # JSON list of the entity ids left out (inspected within their rest)
)

plan_tasks = Table(
    "plan_tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plan_id", String(32), ForeignKey("plans.id"), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("trigger", String(16), nullable=False),  # models.policy.PLAN_TRIGGERS
    Column("reference", Text, nullable=False),  # the complaint's, alert's or referral's number
    Column("received_on", Date, nullable=False),
    Column("inspectors", Text, nullable=False),  # ";"-joined inspector ids
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
    Index(None, "entity_id"),
    Index(None, "plan_id"),
)

inspection_outcomes = Table(
    "inspection_outcomes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("draw_id", String(32), ForeignKey("draws.id")),  # a random inspection's draw, or
    Column("task_id", Id, ForeignKey("plan_tasks.id")),  # a targeted task
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("inspector_id", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # serving.inspections.OUTCOMES
    Column("finding_kind", String(40)),
    Column("findings", Text),
    Column("inspected_on", Date, nullable=False),
    Column("recorded_on", Date, nullable=False),
    Column("event_id", String(80)),  # the ledger's new record (NULL when it could not be inspected)
    Column("ledger_seq", Id),
    Column("recorded_by", String(100)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("draw_id", "entity_id"),
    UniqueConstraint("task_id"),
    Index(None, "entity_id"),
)

commitments = Table(
    "commitments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("commitment_id", String(32), nullable=False),
    Column("entity_id", String(ENTITY_ID_LENGTH), nullable=False),
    Column("status", String(8), nullable=False),  # signed, kept, broken
    Column("on", Date, nullable=False),
    Column("benefit", String(32)),  # the procedure it was signed for (models.policy.BENEFITS)
    Column("reference", Text, nullable=False),
    Column("event_id", String(80)),
    Column("ledger_seq", Id),
    Column("recorded_by", String(100)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("commitment_id", "status"),
    Index(None, "entity_id"),
)

# Background jobs (POST /v1/score-runs): the one mutable record of work in progress.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # serving.jobs.STATUSES
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("request", Text, nullable=False),  # JSON
    Column("run_id", Id),
    Column("problem", Text),  # JSON problem details when it failed
)

# Monthly monitoring reports as issued (models/report.py): the figures and the page, never changed.
monitoring_reports = Table(
    "monitoring_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("as_of", Date, nullable=False),
    Column("run_id", Id, ForeignKey("score_runs.id"), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("policy_version", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),  # of report.json: the same report is kept once
    Column("figures", Text, nullable=False),  # report.json
    Column("html", Text, nullable=False),  # report.html
    Index(None, "as_of"),
)

# The pages' sign-in sessions (serving/ui/session.py), kept here so that every worker process and a restart
# know them: named by the sha256 of the cookie's value, holding the sha256 of the token they verify with
# (as api_tokens does: never the token itself); deleted at sign-out and once ended.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("csrf", String(64), nullable=False),  # the session's form secret (serving/ui/csrf.py)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Index(None, "token_hash"),
    Index(None, "ends_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource", Text, nullable=False),
    Column("detail", Text),
    Index(None, "at"),
)

# Tables whose rows never change once written (enforced by triggers in the migrations).
APPEND_ONLY: tuple[str, ...] = (
    "score_runs",
    "scores",
    "audit_log",
    "draws",
    "draw_selections",
    "draw_secrets",
    "populations",
    "inspection_results",
    "ledger",
    "plan_draws",
    "inspection_outcomes",
    "commitments",
    "monitoring_reports",
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer writes; busy_timeout makes concurrent writers wait
    # instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# A pooled connection idle longer than this is checked with a round trip before use (see make_engine).
IDLE_PING_SECONDS = 10.0
POOL_SIZE = 20
MAX_OVERFLOW = 20


def _sqlite_folder(url: str) -> None:
    """Create the folder of an SQLite file database (the default one under var/ on a fresh checkout)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, statement_timeout_ms: int = 0, **kwargs) -> Engine:
    """An engine for ``url``: SQLite files get WAL and a busy timeout, servers a pool that recovers.

    ``statement_timeout_ms`` (PostgreSQL, 0 for none) ends any statement that runs longer, so one slow
    query cannot hold a connection and a server process without end; work known to be long (a score-run
    job) raises it for its own transaction (``long_statements``).

    Server databases: the pool keeps ``POOL_SIZE`` connections open (a connection is a server process
    on PostgreSQL, so opening and closing them under load costs more than the queries), plus up to
    ``MAX_OVERFLOW`` more in bursts. Instead of pinging on every checkout (``pool_pre_ping``: one round
    trip per request), a connection is pinged only when it has been idle for ``IDLE_PING_SECONDS``; a
    connection that fails in use is invalidated together with every connection opened before it, so
    after the database comes back the service recovers by itself, without a restart. Reads that meet a
    dead connection are retried once on a fresh one (``read``).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_folder(url)
        # No ping: a file database has no connection that can go stale between requests.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": 3}
        if statement_timeout_ms:
            # Added to the URL's own options (a search_path, say), which connect_args would otherwise replace.
            options = str(parsed.query.get("options") or "")
            connect_args["options"] = f"{options} -c statement_timeout={int(statement_timeout_ms)}".strip()
    options = {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW, "pool_timeout": 5, **kwargs}
    engine = create_engine(url, connect_args=connect_args, **options)
    if not options.get("pool_pre_ping"):
        _ping_when_idle(engine, IDLE_PING_SECONDS)
    return engine


def _ping_when_idle(engine: Engine, seconds: float) -> None:
    """Check a pooled connection with a round trip only if it sat idle for ``seconds`` (a server restart
    or a dropped link shows up there); busy connections are not pinged, a failure in use is handled by
    SQLAlchemy's disconnect detection."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool invalidates this connection and opens a new one
            raise DisconnectionError(f"stale pooled connection: {exc.__class__.__name__}") from exc


def long_statements(conn: Connection, timeout_ms: int) -> None:
    """Allow statements of up to ``timeout_ms`` (0: no limit) for the rest of ``conn``'s transaction."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_ms)}")


# Keys of PostgreSQL advisory locks, one per kind of writer that must run alone.
LOCKS = {"migrations": 4_721_001, "draws": 4_721_002, "ledger": 4_721_003}


def lock(conn: Connection, name: str) -> None:
    """Make ``conn``'s transaction the only one of its kind until it ends (``LOCKS[name]``).

    PostgreSQL: a transaction-level advisory lock, across every process and replica. SQLite: the file's
    write lock taken at once (``BEGIN IMMEDIATE``), which serialises writers across processes; it must be
    the transaction's first statement.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCKS[name]})")
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def read(engine: Engine, work: Callable[..., T], *args: Any) -> T:
    """Run a read-only ``work(conn, *args)`` on a pooled connection outside any transaction.

    Autocommit: a lone SELECT needs no BEGIN and no ROLLBACK round trip. If the connection turns out to
    be dead (the database restarted, the link dropped) the read is retried once on a fresh connection;
    reads are idempotent, so the caller sees the answer, or the error of the second attempt.
    """
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                if conn.dialect.name != "sqlite":
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                return work(conn, *args)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


# Rows per executemany batch on SQLite.
_BULK_CHUNK = 100_000


def _driver_values(conn: Connection, values: list) -> list:
    """Values as the driver takes them: SQLite gets dates as ISO text and booleans as 0/1, the way
    SQLAlchemy's own types store them, so rows written in bulk read back like any other."""
    if conn.dialect.name != "sqlite":
        return values
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return [None if v is None else int(v) for v in values]
    if isinstance(sample, datetime):
        return [None if v is None else v.isoformat(sep=" ") for v in values]
    if isinstance(sample, date):
        return [None if v is None else v.isoformat() for v in values]
    return values


def bulk_insert(conn: Connection, table: str, columns: dict[str, list], *, on_conflict: str = "") -> None:
    """Insert many rows given column-wise, below SQLAlchemy's per-row parameter processing.

    PostgreSQL: COPY (into a temporary table first when ``on_conflict`` needs an INSERT ... SELECT);
    SQLite: one executemany. ``on_conflict`` is an ``ON CONFLICT ...`` clause, the same on both.
    """
    names = list(columns)
    if not names or not len(columns[names[0]]):
        return
    rows = list(zip(*(_driver_values(conn, columns[c]) for c in names), strict=True))
    listed = ", ".join(names)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        target = table
        with raw.cursor() as cursor:
            if on_conflict:
                target = f"_load_{table}"
                cursor.execute(f"CREATE TEMP TABLE {target} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
            with cursor.copy(f"COPY {target} ({listed}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if on_conflict:
                cursor.execute(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {target} {on_conflict}")
                cursor.execute(f"DROP TABLE {target}")
        return
    marks = ", ".join("?" for _ in names)
    for start in range(0, len(rows), _BULK_CHUNK):
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({listed}) VALUES ({marks}) {on_conflict}", rows[start : start + _BULK_CHUNK]
        )


def compiled(conn: Connection, stmt: Select) -> tuple[str, Any]:
    """``stmt`` as driver SQL and parameters, for ``exec_driver_sql`` (skips SQLAlchemy's per-row result
    processing on big reads)."""
    sql = stmt.compile(dialect=conn.dialect)
    if conn.dialect.paramstyle in ("qmark", "numeric", "format"):
        return str(sql), tuple(sql.params[name] for name in sql.positiontup or ())
    return str(sql), dict(sql.params)


def alembic_config(url: str):
    """An Alembic ``Config`` for the service migrations pointing at ``url``."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (run on start and by ``ipcredit db upgrade``)."""
    from alembic import command

    _sqlite_folder(url)  # migrations open their own engine
    command.upgrade(alembic_config(url), revision)


def open_store(url: str) -> Engine:
    """Migrate the database at ``url`` and return an engine for it."""
    upgrade(url)
    return make_engine(url)
