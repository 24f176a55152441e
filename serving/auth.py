"""Bearer tokens and roles.

A token is 32 random bytes (URL-safe text, prefixed ``ipc_``); the database keeps only its SHA-256, so
a leaked database does not leak tokens. Lookups go by hash and the stored hash is compared in constant
time. Roles: ``supervisor`` (risk lookups, sampling draws, inspection results), ``analyst`` (lookups,
score runs, what-if scores, event exports), ``reviewer`` (lookups, objections, what-if scores) and
``admin`` (everything, plus tokens, the inspector roster and the audit log).

Valid tokens are cached in memory for a few seconds (``TOKEN_CACHE_SECONDS``) so a lookup does not cost
a database round trip per request; a revoked token stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine, select, update

from serving.db import api_tokens, read

TOKEN_CACHE_SECONDS = 5.0


class Role(StrEnum):
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    ADMIN = "admin"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, name and role."""

    token_id: int
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"{self.name}#{self.token_id}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, role: str, name: str = "api") -> tuple[int, str]:
    """Create a token for ``role``; return its id and the token (shown once, stored hashed)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {list(ROLES)}; got {role!r}")
    token = "ipc_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        token_id = conn.execute(
            api_tokens.insert()
            .values(name=name, role=role, token_hash=hash_token(token), created_at=datetime.now(UTC))
            .returning(api_tokens.c.id)
        ).scalar_one()
    return token_id, token


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token; False when there is no such active token."""
    with engine.begin() as conn:
        result = conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return result.rowcount == 1


def _token_row(conn: Connection, digest: str):
    return conn.execute(
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.token_hash).where(
            api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None)
        )
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
        entry = self._cache.get(hash_token(token))
        if entry and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def verify(self, token: str) -> Principal | None:
        digest = hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        row = read(self.engine, _token_row, digest)
        principal = None
        if row is not None and hmac.compare_digest(row.token_hash, digest):
            principal = Principal(token_id=row.id, name=row.name, role=Role(row.role))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl, principal)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
