"""The model side of the service: the champion scorer, scorers of older versions, what-if scoring and
rescoring, and turning stored score rows into risk rows and explanations.

The scoring code is the training code: a history becomes a ``features.dataset.Dataset``, is validated by
``features.validate``, turned into features by ``features.build.build_features`` and scored by
``models.scorer`` — the same functions ``ipcredit score`` uses, so serving cannot drift from training.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import FEATURES
from features.schema import ENTITIES, EVENTS, LISTS
from models.policy import Policy, parse_policy
from serving.settings import Settings

log = logging.getLogger(__name__)
# What-if scorings run at once per process (the rest wait their turn on the event loop): scoring is
# CPU-bound Python, so more threads only contend for the GIL; use more worker processes for more cores.
SCORING_THREADS = 1


class ScoringUnavailable(RuntimeError):
    """No model can be served; the message says why (the service answers 503 with it)."""


class InputProblems(ValueError):
    """The posted history breaks the input contract; ``errors`` are 422 items with field paths."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the input")
        self.errors = errors


class Models:
    """The champion scorer loaded once at start, and other versions loaded when a rescore needs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.champion: Any | None = None
        self.reason: str | None = "model not loaded yet"
        self._versions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def load_champion(self) -> None:
        uri = self.settings.serving_model_uri
        try:
            self.champion = _prepare(_load(uri, self.settings.tracking_uri))
        except Exception as exc:  # any failure to load means "degraded", with the reason shown
            self.champion = None
            self.reason = f"no model could be loaded from {uri}: {_short(exc)}"
            log.warning("serving degraded: %s", self.reason)
            return
        self.reason = None
        self._versions[str(self.champion.model_version)] = self.champion

    @property
    def model_version(self) -> str | None:
        return None if self.champion is None else str(self.champion.model_version)

    def require_champion(self) -> Any:
        if self.champion is None:
            raise ScoringUnavailable(f"scoring is unavailable: {self.reason}")
        return self.champion

    def version(self, model_version: str) -> Any:
        """The scorer for a registered version (to rescore with the model that produced a row)."""
        with self._lock:
            if model_version in self._versions:
                return self._versions[model_version]
        uri = f"models:/{self.settings.model_name}/{model_version}"
        try:
            scorer = _prepare(_load(uri, self.settings.tracking_uri))
        except Exception as exc:
            raise ScoringUnavailable(
                f"model version {model_version} cannot be loaded from {uri}: {_short(exc)}"
            ) from exc
        with self._lock:
            self._versions[model_version] = scorer
        return scorer


def _prepare(scorer: Any) -> Any:
    """The scorer, checked against the feature code the service runs (a model trained on other features
    would score the wrong columns: ``ModelError``, so the service says so instead) and with its caches
    built now rather than in the first request."""
    check = getattr(scorer, "check_compatible", None)
    if check is not None:
        check(feature_version())
    prepare = getattr(scorer, "prepare", None)
    if prepare is not None:
        prepare()
    return scorer


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text}"[:300]


def _load(uri: str, tracking_uri: str) -> Any:
    """A registered model (``models:/…``, ``runs:/…``) through the registry, or a scorer directory
    written by ``Scorer.save`` (a path or ``file://`` URI: serving without an MLflow server)."""
    local = Path(uri.removeprefix("file://")) if not uri.startswith(("models:/", "runs:/")) else None
    if local is not None and (local / "scorer.json").is_file():
        from models.scorer import Scorer

        state = json.loads((local / "scorer.json").read_text(encoding="utf-8"))
        version = str(state.get("metadata", {}).get("model_version") or f"local:{local.name}")
        return Scorer.load(local, model_version=version)
    from models.registry import load_scorer

    return load_scorer(uri, tracking_uri)


# ---- histories -> features -> scores ------------------------------------------------------------------


def history_frames(history: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three contract tables of one posted history (a ``schemas.History``).

    Built column by column from the validated request objects (dates become ``datetime64[s]`` directly),
    which costs a fraction of a frame of ``model_dump`` records followed by ``pd.to_datetime``; the frames
    are the same (``tests/serving/test_fast_scoring.py``)."""
    return (
        _table([history.entity], ENTITIES),
        _table(history.events, EVENTS),
        _table(history.lists, LISTS),
    )


def _table(rows: list[Any], table: Any) -> pd.DataFrame:
    names = table.column_names
    if not rows:
        frame = pd.DataFrame([], columns=names)
        for column in table.columns:
            if column.type.value == "DATE":
                frame[column.name] = pd.to_datetime(frame[column.name])
        return frame
    data: dict[str, Any] = {}
    for column in table.columns:
        values = [getattr(row, column.name, None) for row in rows]
        data[column.name] = np.array(values, dtype="datetime64[s]") if column.type.value == "DATE" else values
    return pd.DataFrame(data, columns=names)


_BODY_NAME = {"entities": "entity", "events": "events", "lists": "lists"}


def _problem_errors(problems: pd.DataFrame) -> list[dict[str, Any]]:
    errors = []
    for p in problems.to_dict("records"):
        loc: list[Any] = ["body", _BODY_NAME.get(p["table"], p["table"])]
        if p["table"] != "entities" and p.get("row") is not None and not pd.isna(p["row"]):
            loc.append(int(p["row"]) - 1)
        if p.get("column"):
            loc.append(p["column"])
        value = p.get("value")
        errors.append(
            {
                "loc": loc,
                "msg": str(p["message"]),
                "type": "value_error",
                "input": None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value),
            }
        )
    return errors


def dataset_from_history(entity: pd.DataFrame, events: pd.DataFrame, lists: pd.DataFrame, source: str):
    """A validated in-memory dataset; ``InputProblems`` (422) when the contract is broken."""
    from features.dataset import Dataset, DatasetError
    from features.validate import check_frames

    ds = Dataset.from_frames(entity, events, lists, source=source, threads=1)
    try:
        check_frames(ds)
    except DatasetError as exc:
        raise InputProblems(_problem_errors(exc.problems)) from exc
    return ds


def score_history(scorer: Any, policy: Policy, history: Any, as_of: date) -> dict[str, Any]:
    """Score one posted history (a ``schemas.History``, already checked against the contract by its
    request model) without a database: the in-memory feature path, then the scorer. Returns the scorer's
    columns (``Scorer.score_columns``: what ``Scorer.score`` frames), one item per scored row."""
    from features.build import build_features_from_frames

    features = build_features_from_frames(*history_frames(history), as_of)
    if features.empty:
        raise _not_registered(as_of)
    return scorer.score_columns(features, policy)


def _not_registered(as_of: date) -> InputProblems:
    return InputProblems(
        [
            {
                "loc": ["body", "as_of"],
                "msg": "as_of must be on or after the entity's registered_on (nothing to score before it)",
                "type": "value_error",
                "input": as_of.isoformat(),
            }
        ]
    )


def score_dataset(scorer: Any, policy: Policy, ds: Any, as_of: date) -> pd.DataFrame:
    """Features at ``as_of`` for every entity of ``ds``, scored with ``scorer`` under ``policy``."""
    from features.build import build_features

    features = build_features(ds, as_of)
    if features.empty:
        raise _not_registered(as_of)
    return scorer.score(features, policy)


def feature_version() -> str:
    from features.build import FEATURE_VERSION

    return FEATURE_VERSION


@lru_cache(maxsize=64)
def policy_from_text(text: str) -> Policy:
    """The policy a run was scored with, parsed from the text stored with the run."""
    return parse_policy(text, source="stored policy")


# ---- rows -> API shapes -------------------------------------------------------------------------------


def _loads(value: Any, default: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return default
    if isinstance(value, str):
        return json.loads(value) if value else default
    return value


def risk_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored score row as the API's ``RiskRow``."""
    return {
        "entity_id": row["entity_id"],
        "as_of": row["as_of"],
        "score": row["score"],
        "model_tier": row["model_tier"],
        "tier": row["tier"],
        "rules": row["rules"] or "",
        "review": bool(row["review"]),
        "model_version": row["model_version"],
        "reasons": _loads(row["reasons"], []),
        "policy_version": row["policy_version"],
        "feature_version": row["feature_version"],
        "score_id": row["id"],
        "run_id": row["run_id"],
        "supersedes_id": row.get("supersedes_id"),
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


def contributions(contrib: Any, values: Any) -> list[dict[str, Any]]:
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
        "entity_id": row["entity_id"],
        "as_of": row["as_of"],
        "score": row["score"],
        "model_tier": row["model_tier"],
        "tier": row["tier"],
        "review": bool(row["review"]),
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


def what_if_row(columns: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
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
