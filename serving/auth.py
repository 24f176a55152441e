"""Bearer tokens and roles: who is calling, what they may do, which entities they may see.

A token is 32 random bytes (URL-safe text, prefixed ``ipc_``); the database keeps only its SHA-256, so
a leaked database does not leak tokens. Lookups go by hash and the stored hash is compared in constant
time. Roles: ``supervisor`` (risk lookups, sampling draws, inspection results), ``analyst`` (lookups,
score runs, what-if scores, event exports), ``reviewer`` (lookups, objections, what-if scores) and
``admin`` (everything, plus tokens, the inspector roster and the audit log).

A token may be scoped to a region (``region``: a 6-digit administrative division code; a province's code
``210000`` covers every code starting ``21``, a city's ``210600`` every code starting ``2106``): it then
sees only entities of that region, and the rest do not exist for it (404). A token expires
(``expires_at``) and can be revoked; its last use is recorded at most once a minute.

Valid tokens are cached in memory for a few seconds (``TOKEN_CACHE_SECONDS``) so a lookup does not cost
a database round trip per request; a revoked token stops working within that time, an expired one at once.
Creating, listing and revoking tokens (with their audit rows) is ``serving/tokens.py``'s job.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from serving.db import api_tokens, read

TOKEN_CACHE_SECONDS = 5.0
# How stale a token's recorded last use may be: one write per token per minute, not per request.
LAST_USE_SECONDS = 60.0
# Width of the columns that record who did something (audit_log.actor, created_by, decided_by, ...).
ACTOR_WIDTH = 100


class Role(StrEnum):
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    DEPARTMENT = "department"
    ADMIN = "admin"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)


def region_prefix(code: str) -> str:
    """The prefix of division codes a region covers: ``210000`` -> ``21``, ``210600`` -> ``2106``,
    ``210602`` -> ``210602`` (GB/T 2260: a province's code ends in 0000, a city's in 00)."""
    prefix = code
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, name and role, and the region it is scoped to (``None``: all)."""

    token_id: int
    name: str
    role: Role
    region: str | None = None
    expires_at: datetime | None = None
    benefits: tuple[str, ...] = ()  # a department token's benefits (models.policy.BENEFITS)

    @property
    def actor(self) -> str:
        """``name#id`` as stored in the audit log, cut to fit its column (the id alone identifies)."""
        if self.token_id == 0:  # the command line
            return self.name[:ACTOR_WIDTH]
        suffix = f"#{self.token_id}"
        return self.name[: ACTOR_WIDTH - len(suffix)] + suffix

    @property
    def scope(self) -> str | None:
        """The division-code prefix this caller may see, or ``None`` for every region."""
        return region_prefix(self.region) if self.region else None

    def sees(self, region: str | None) -> bool:
        """Whether an entity of ``region`` exists for this caller."""
        scope = self.scope
        return scope is None or (region is not None and region.startswith(scope))


def cli_principal() -> Principal:
    """The command line's identity in the audit log: ``cli:<os user>`` with the admin role (whoever can
    run the command can reach the database directly)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    return Principal(token_id=0, name=f"cli:{user}", role=Role.ADMIN)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite gives stored datetimes back without their zone)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _token_row(conn: Connection, digest: str):
    return conn.execute(
        select(
            api_tokens.c.id,
            api_tokens.c.name,
            api_tokens.c.role,
            api_tokens.c.token_hash,
            api_tokens.c.region,
            api_tokens.c.expires_at,
            api_tokens.c.last_used_at,
            api_tokens.c.benefits,
        ).where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
    ).first()


class TokenVerifier:
    """Turns a bearer token into a ``Principal`` (or ``None``), with a short-lived cache."""

    def __init__(self, engine: Engine, ttl: float = TOKEN_CACHE_SECONDS) -> None:
        self.engine = engine
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """``(True, principal)`` when the token's answer is cached and fresh, else ``(False, None)``."""
        return self.cached_hash(hash_token(token))

    def cached_hash(self, digest: str) -> tuple[bool, Principal | None]:
        """``cached`` for the token whose sha256 is ``digest`` (what a page session keeps)."""
        entry = self._cache.get(digest)
        if entry and entry[0] > time.monotonic():
            principal = entry[1]
            if principal is not None and principal.expires_at is not None and principal.expires_at <= _now():
                return True, None
            return True, principal
        return False, None

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid token (known, not revoked, not expired), else ``None``."""
        return self.verify_hash(hash_token(token))

    def verify_hash(self, digest: str) -> Principal | None:
        """``verify`` for the token whose sha256 is ``digest``."""
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return self.cached_hash(digest)[1]
        row = read(self.engine, _token_row, digest)
        principal = None
        if row is not None and hmac.compare_digest(row.token_hash, digest):
            expires_at = utc(row.expires_at)
            if expires_at is None or expires_at > _now():
                principal = Principal(
                    token_id=row.id,
                    name=row.name,
                    role=Role(row.role),
                    region=row.region,
                    expires_at=expires_at,
                    benefits=tuple(row.benefits.split(";")) if row.benefits else (),
                )
                last_used_at = utc(row.last_used_at)
                if last_used_at is None or (_now() - last_used_at).total_seconds() >= LAST_USE_SECONDS:
                    # Off the request's path: on SQLite a write may wait for another writer's lock.
                    threading.Thread(target=self._record_use, args=(row.id,), daemon=True).start()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl, principal)
        return principal

    def _record_use(self, token_id: int) -> None:
        """Record the token's use now (its stored last use was more than ``LAST_USE_SECONDS`` old)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=_now()))
        except SQLAlchemyError:  # the database is busy or away: the use is recorded next time
            pass

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def _now() -> datetime:
    return datetime.now(UTC)


def expiry(days: int | None) -> datetime | None:
    """When a token made now for ``days`` days expires (``None``: never)."""
    return None if days is None else _now() + timedelta(days=days)
