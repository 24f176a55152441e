"""A score row and why, as the API answers them: risk rows, explanations and what-if answers.

An explanation is the row's ``base_value`` and every feature's contribution (which add up to its
``log_odds``), each with its value and the catalogue's bilingual reason text, and the fired rules with
their legal basis as the policy that fired them states them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import FEATURES
from models.policy import Policy
from serving.scoring import feature_version


def _loads(value: Any, default: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return default
    if isinstance(value, str):
        return json.loads(value) if value else default
    return value


def _scored(row: Mapping[str, Any]) -> dict[str, Any]:
    """What every answer about a stored score row starts with: whose score, as of when, and the tiers."""
    return {
        "entity_id": row["entity_id"],
        "as_of": row["as_of"],
        "score": row["score"],
        "model_tier": row["model_tier"],
        "tier": row["tier"],
        "review": bool(row["review"]),
    }


def risk_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored score row as the API's ``RiskRow``."""
    return {
        **_scored(row),
        "rules": row["rules"] or "",
        "model_version": row["model_version"],
        "reasons": _loads(row["reasons"], []),
        "policy_version": row["policy_version"],
        "feature_version": row["feature_version"],
        "score_id": row["id"],
        "run_id": row["run_id"],
        "supersedes_id": row.get("supersedes_id"),
        "ledger_seq": row.get("ledger_seq"),
    }


def fired_rules(codes: str, policy: Policy | None) -> list[dict[str, Any]]:
    """The fired rules with their legal basis, as the policy that fired them states them."""
    out = []
    for code in [c for c in (codes or "").split(";") if c]:
        if policy is None:
            continue
        try:
            rule = policy.rule(code)
        except KeyError:
            continue
        out.append(
            {
                "code": rule.code,
                "name_zh": rule.name_zh,
                "name_en": rule.name_en,
                "effect": rule.effect,
                "tier": rule.tier,
                "basis": rule.basis,
            }
        )
    return out


def contributions(
    contrib: str | Mapping[str, float] | None, values: str | Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Every feature's contribution with its value and bilingual reason text, largest effect first."""
    contrib = _loads(contrib, {})
    values = _loads(values, {})
    out = []
    for name, amount in contrib.items():
        value = values.get(name)
        feature = FEATURES.get(name)
        text_zh = text_en = None
        if feature is not None:
            text_zh, text_en = feature.describe(value)
        out.append(
            {
                "feature": name,
                "value": value,
                "contribution": float(amount),
                "label_zh": feature.label_zh if feature else None,
                "label_en": feature.label_en if feature else None,
                "text_zh": text_zh,
                "text_en": text_en,
            }
        )
    out.sort(key=lambda c: -abs(c["contribution"]))
    return out


def explanation(row: Mapping[str, Any], policy: Policy | None) -> dict[str, Any]:
    """A stored score row as the API's ``Explanation``."""
    return {
        **_scored(row),
        "base_value": row.get("base_value"),
        "log_odds": row.get("log_odds"),
        "contributions": contributions(row.get("contributions"), row.get("features")),
        "rules": fired_rules(row["rules"], policy),
        "model_version": row["model_version"],
        "policy_version": row["policy_version"],
        "feature_version": row["feature_version"],
        "score_id": row["id"],
        "run_id": row["run_id"],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "item"):
        return value.item()
    return value


def what_if_row(columns: Mapping[str, np.ndarray | list], policy: Policy) -> dict[str, Any]:
    """The first row of a scorer's output (``score_history``) as the API's ``ScoreResponse``."""
    row = {k: _plain(v[0]) for k, v in columns.items()}
    return {
        "entity_id": row["entity_id"],
        "as_of": row["as_of"],
        "score": float(row["score"]),
        "model_tier": row["model_tier"],
        "tier": row["tier"],
        "rules": row.get("rules") or "",
        "review": bool(row["review"]),
        "model_version": str(row["model_version"]),
        "reasons": _loads(row.get("reasons"), []),
        "policy_version": row.get("policy_version") or policy.version_tag,
        "feature_version": row.get("feature_version") or feature_version(),
        "fired_rules": fired_rules(row.get("rules") or "", policy),
        "base_value": row.get("base_value"),
        "log_odds": row.get("log_odds"),
        "contributions": contributions(row.get("contributions"), row.get("features")),
    }
