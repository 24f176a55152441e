"""Which model and policy score a request: the champion and the current policy, or those of stored rows.

A stored row is explained, rescored and given recourse with the model version that produced it and the
policy text stored with its run, never with whatever is champion today. What-if scoring may name a model
version and a policy version too, so that a reviewer can check a promise made with a row's own versions;
only versions that are the service's own or that scored a stored row may be named (the registry is not
there to be probed through the API).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from features.errors import InvalidInput
from models.policy import Policy
from models.scorer import Scorer
from serving.db import score_runs
from serving.scorers import Scorers
from serving.scoring import policy_from_text


def stored_policy(conn: Connection, policy_version: str) -> Policy | None:
    """The policy of that version as stored with a score run, or ``None`` when no run has it."""
    text = conn.execute(
        select(score_runs.c.policy_text).where(score_runs.c.policy_version == policy_version).limit(1)
    ).scalar()
    return None if text is None else policy_from_text(text)


def run_policy(conn: Connection, run_id: int) -> Policy:
    """The policy a run was scored with (the text stored with it)."""
    text = conn.execute(select(score_runs.c.policy_text).where(score_runs.c.id == run_id)).scalar_one()
    return policy_from_text(text)


def named_policy(
    conn: Connection, current: Policy, policy_version: str | None, field: str = "policy_version"
) -> Policy:
    """The current policy (``policy_version`` ``None`` or its own), or the one stored with a run;
    ``InvalidInput`` at ``field`` for a version no run was scored with."""
    if policy_version is None or policy_version == current.version_tag:
        return current
    policy = stored_policy(conn, policy_version)
    if policy is None:
        raise InvalidInput.at(
            field,
            f"policy version {policy_version} is neither the current policy nor one a stored run used",
            policy_version,
        )
    return policy


def named_scorer(conn: Connection, scorers: Scorers, model_version: str | None, field: str = "model_version") -> Scorer:
    """The champion (``model_version`` ``None`` or the champion's), or the registered version that scored a
    stored run; ``InvalidInput`` at ``field`` for any other version, ``Unavailable`` when it cannot load."""
    if model_version is None or model_version == scorers.model_version:
        return scorers.require_champion()
    used = conn.execute(select(score_runs.c.id).where(score_runs.c.model_version == model_version).limit(1)).scalar()
    if used is None:
        raise InvalidInput.at(
            field,
            f"model version {model_version} is neither the champion nor one that scored a stored run",
            model_version,
        )
    return scorers.version(model_version)
