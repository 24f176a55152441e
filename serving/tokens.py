"""API tokens as the admin manages them: create, list and revoke, each audited in its own transaction.

``create_token`` and ``revoke_token`` write the token row and the audit row in one transaction (an
``Engine`` gets a transaction of its own, a ``Connection`` uses the caller's), so no token exists without
the record of who made it. Listing never shows a token or its hash. Verifying a token is
``serving/auth.py``'s job.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from features.errors import InvalidInput
from features.schema import REGION_PATTERN
from models.policy import BENEFITS
from serving.audit import record_change
from serving.auth import ROLES, Principal, Role, expiry, hash_token, utc
from serving.db import api_tokens

# The lifetime of a token when none is given (``Settings.token_days`` overrides it in the service).
DEFAULT_DAYS = 90


def _check(role: str, name: str, region: str | None, days: int | None, benefits: tuple[str, ...] = ()) -> None:
    problems = []
    unknown = [b for b in benefits if b not in BENEFITS]
    if unknown:
        problems.append(("benefits", f"benefits must be of {list(BENEFITS)}; got {unknown}"))
    elif role == Role.DEPARTMENT and not benefits:
        problems.append(("benefits", "a department token must name the benefits it administers"))
    elif role != Role.DEPARTMENT and benefits:
        problems.append(("benefits", "only a department token names benefits"))
    if role not in ROLES:
        problems.append(("role", f"role must be one of {list(ROLES)}; got {role!r}"))
    if not 1 <= len(name) <= 100:
        problems.append(("name", "name must be 1 to 100 characters"))
    if region is not None:
        if not re.fullmatch(REGION_PATTERN, region):
            problems.append(("region", f"region must be a 6-digit administrative division code; got {region!r}"))
        elif role == Role.ADMIN:
            problems.append(("region", "an admin token cannot be scoped to a region"))
    if days is not None and not 1 <= days <= 3650:
        problems.append(("expires_in_days", f"expires_in_days must lie between 1 and 3650; got {days}"))
    if problems:
        loc, message = problems[0]
        raise InvalidInput.at(loc, message)


def create_token(
    target: Engine | Connection,
    role: str,
    name: str = "api",
    *,
    region: str | None = None,
    expires_in_days: int | None = DEFAULT_DAYS,
    by: Principal | None = None,
    benefits: tuple[str, ...] | list[str] = (),
) -> tuple[int, str]:
    """Create a token for ``role`` (scoped to ``region``, expiring after ``expires_in_days`` days, ``None``
    for never; a department's limited to ``benefits``) and audit it; return its id and the token, shown
    once and stored hashed."""
    benefits = tuple(dict.fromkeys(benefits))
    _check(role, name, region, expires_in_days, benefits)
    if isinstance(target, Engine):
        with target.begin() as conn:
            return create_token(
                conn, role, name, region=region, expires_in_days=expires_in_days, by=by, benefits=benefits
            )
    token = "ipc_" + secrets.token_urlsafe(32)
    expires_at = expiry(expires_in_days)
    token_id = target.execute(
        api_tokens.insert()
        .values(
            name=name,
            role=role,
            token_hash=hash_token(token),
            created_at=datetime.now(UTC),
            created_by=by.actor if by else None,
            expires_at=expires_at,
            region=region,
            benefits=";".join(benefits) or None,
        )
        .returning(api_tokens.c.id)
    ).scalar_one()
    detail = {"role": role, "name": name, "region": region, "expires_at": expires_at, "benefits": list(benefits)}
    record_change(target, by, "token.create", f"token/{token_id}", detail)
    return token_id, token


def revoke_token(target: Engine | Connection, token_id: int, *, by: Principal | None = None) -> bool:
    """Revoke an active token and audit it; False when there is no such active token."""
    if isinstance(target, Engine):
        with target.begin() as conn:
            return revoke_token(conn, token_id, by=by)
    if not 0 < token_id < 2**63:
        return False
    result = target.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        return False
    record_change(target, by, "token.revoke", f"token/{token_id}")
    return True


def list_tokens(conn: Connection, *, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """How many tokens there are, and a page of them newest first: never a token or its hash."""
    total = conn.execute(select(func.count()).select_from(api_tokens)).scalar_one()
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id.desc()).limit(limit).offset(offset)).mappings()
    now = datetime.now(UTC)
    page = []
    for row in rows:
        expires_at, revoked_at = utc(row["expires_at"]), utc(row["revoked_at"])
        page.append(
            {
                "token_id": row["id"],
                "name": row["name"],
                "role": row["role"],
                "region": row["region"],
                "benefits": row["benefits"].split(";") if row["benefits"] else [],
                "created_at": utc(row["created_at"]),
                "created_by": row["created_by"],
                "expires_at": expires_at,
                "last_used_at": utc(row["last_used_at"]),
                "revoked_at": revoked_at,
                "active": revoked_at is None and (expires_at is None or expires_at > now),
            }
        )
    return total, page
