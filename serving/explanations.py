"""A score row and why, as the API answers them: risk rows, explanations and what-if answers.

An explanation is the row's ``base_value`` and every feature's contribution (which add up to its
``log_odds``), each with its value and the catalogue's bilingual reason text, and the fired rules with
their legal basis as the policy that fired them states them. Given a trace (``serving/traces.py``: the
records each feature counted), every contribution and every fired rule also names its records, the first
few ids and how many, so a reviewer can point at the exact record to object to or have repaired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import FEATURES, Related
from features.evidence import Evidence
from features.relations import relation_reason
from models.policy import Policy
from models.reasons import rule_records
from serving.scoring import feature_version
from serving.traces import Trace


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


def fired_rules(
    codes: str,
    policy: Policy | None,
    values: Mapping[str, Any] | None = None,
    found: Mapping[str, Evidence] | None = None,
) -> list[dict[str, Any]]:
    """The fired rules with their legal basis, as the policy that fired them states them; with the row's
    feature ``values`` and ``found`` (its records per feature), each with the records behind it."""
    traced = rule_records(policy, codes, values or {}, found) if policy is not None and found is not None else {}
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
                "records": [e.shown() for e in traced[code]] if code in traced else None,
            }
        )
    return out


def contributions(
    contrib: str | Mapping[str, float] | None,
    values: str | Mapping[str, Any] | None,
    found: Mapping[str, Evidence] | None = None,
) -> list[dict[str, Any]]:
    """Every feature's contribution with its value and bilingual reason text, largest effect first; with
    ``found`` (the records per feature), each with the records it counted."""
    contrib = _loads(contrib, {})
    values = _loads(values, {})
    out = []
    for name, amount in contrib.items():
        value = values.get(name)
        feature = FEATURES.get(name)
        text_zh = text_en = None
        if feature is not None:
            text_zh, text_en = feature.describe(value)
        if isinstance(feature.spec if feature else None, Related) and found is not None and name in found:
            # A relationship reason names the relations of the links it cites, never the entities.
            text_zh, text_en = relation_reason(name, value, found[name].ids)
        out.append(
            {
                "feature": name,
                "value": value,
                "contribution": float(amount),
                "label_zh": feature.label_zh if feature else None,
                "label_en": feature.label_en if feature else None,
                "text_zh": text_zh,
                "text_en": text_en,
                "records": [found[name].shown()] if found is not None and name in found else None,
            }
        )
    out.sort(key=lambda c: -abs(c["contribution"]))
    return out


def explanation(row: Mapping[str, Any], policy: Policy | None, trace: Trace | None = None) -> dict[str, Any]:
    """A stored score row as the API's ``Explanation``; with its ``trace``, naming the records."""
    found = trace.found if trace is not None else None
    values = _loads(row.get("features"), {})
    stored = _loads(row.get("contributions"), {})
    rest = None
    if stored:
        shown = contributions(stored, values, found)
    else:
        # A run imported from a score file without contributions keeps the file's top reasons only: show
        # them, and what the other features add up to, so that base_value + contributions + rest is log_odds.
        reasons = _loads(row.get("reasons"), [])
        shown = contributions(
            {r["feature"]: r["contribution"] for r in reasons}, {r["feature"]: r.get("value") for r in reasons}, found
        )
        if row.get("base_value") is not None and row.get("log_odds") is not None:
            rest = float(row["log_odds"]) - float(row["base_value"]) - sum(c["contribution"] for c in shown)
    return {
        **_scored(row),
        "base_value": row.get("base_value"),
        "log_odds": row.get("log_odds"),
        "contributions": shown,
        "contributions_complete": bool(stored),
        "contributions_rest": rest,
        "rules": fired_rules(row["rules"], policy, values, found),
        "trace": trace.view() if trace is not None else None,
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


def what_if_row(columns: Mapping[str, np.ndarray | list], policy: Policy, trace: Trace | None = None) -> dict[str, Any]:
    """The first row of a scorer's output (``score_history``) as the API's ``ScoreResponse``; with the
    posted history's ``trace``, naming the records behind each contribution and fired rule."""
    row = {k: _plain(v[0]) for k, v in columns.items()}
    found = trace.found if trace is not None else None
    values = _loads(row.get("features"), {})
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
        "fired_rules": fired_rules(row.get("rules") or "", policy, values, found),
        "base_value": row.get("base_value"),
        "log_odds": row.get("log_odds"),
        "contributions": contributions(row.get("contributions"), values, found),
        "trace": trace.view() if trace is not None else None,
    }
