"""FastAPI dependencies: the store, the scorers, the policy and the caller's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from features.errors import InvalidInput
from models.policy import Policy
from serving.audit import ReadAuditor
from serving.auth import Principal, Role, TokenVerifier
from serving.limits import INVALID_TOKEN, MISSING_TOKEN, PRINCIPAL_KEY, UNAUTHORIZED
from serving.schemas import entity_id_problem
from serving.scorers import Scorers

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="an API token from `ipcredit tokens create --role R` (stored hashed)",
)


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_scorers(request: Request) -> Scorers:
    return request.app.state.scorers


async def get_policy(request: Request) -> Policy:
    return request.app.state.policy


async def get_auditor(request: Request) -> ReadAuditor:
    return request.app.state.auditor


EngineDep = Annotated[Engine, Depends(get_engine)]
ScorersDep = Annotated[Scorers, Depends(get_scorers)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
AuditorDep = Annotated[ReadAuditor, Depends(get_auditor)]


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits callers whose token has one of ``roles`` (admin is always admitted)."""
    allowed = {*roles, Role.ADMIN}
    names = ", ".join(sorted(r.value for r in allowed))

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        # The token gate (serving/limits.py) verified the token before the body was read.
        principal: Principal | None = request.scope.get(PRINCIPAL_KEY)
        if principal is None:
            if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
                raise HTTPException(401, MISSING_TOKEN, UNAUTHORIZED)
            verifier: TokenVerifier = request.app.state.tokens
            # A cached token costs no thread hop; a database lookup runs off the event loop.
            found, principal = verifier.cached(credentials.credentials)
            if not found:
                principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        if principal is None:
            raise HTTPException(401, INVALID_TOKEN, UNAUTHORIZED)
        if principal.role not in allowed:
            raise HTTPException(403, f"role {principal.role.value} may not do this; needs one of: {names}")
        return principal

    dependency.__name__ = f"require_{'_'.join(sorted(r.value for r in allowed))}"
    return dependency


def check_entity_id(entity_id: str) -> str:
    """``entity_id`` from the path; ``InvalidInput`` at ``("path", "entity_id")`` when it is not a valid
    unified social credit code."""
    problem = entity_id_problem(entity_id)
    if problem:
        raise InvalidInput.at("entity_id", problem, entity_id, where="path")
    return entity_id
