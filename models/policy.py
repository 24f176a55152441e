"""The versioned policy: tier cut-offs, qualitative rules with their legal basis, sampling ratios.

Policy is data (``models/policy.toml``): this module validates it on load and applies it. Scores, tiers
and sampling draws all store ``Policy.version_tag`` so an appeal sees exactly which policy produced them.
"""

from __future__ import annotations

import hashlib
import operator
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.catalogue import FEATURES

TIERS: tuple[str, ...] = ("A", "B", "C", "D")
TIER_LABELS: dict[str, str] = {"A": "信用风险低", "B": "信用风险一般", "C": "信用风险较高", "D": "信用风险高"}
Tier = Literal["A", "B", "C", "D"]

_OPS: dict[str, Callable] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class PolicyError(ValueError):
    """The policy file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    feature: str
    op: Literal["==", "!=", ">", ">=", "<", "<="]
    value: bool | float

    @field_validator("feature")
    @classmethod
    def _known_feature(cls, name: str) -> str:
        if name not in FEATURES:
            raise ValueError(f"feature must be one of the feature catalogue; got {name!r}")
        if FEATURES[name].dtype == "category":
            raise ValueError(f"feature {name!r} is categorical and cannot be compared")
        return name

    def holds(self, features: pd.DataFrame) -> np.ndarray:
        column = features[self.feature]
        if FEATURES[self.feature].dtype == "bool":
            column = column.fillna(False).astype(bool)
        result = _OPS[self.op](column, self.value)
        return np.asarray(pd.Series(result).fillna(False), dtype=bool)


class Rule(_Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name_zh: str
    name_en: str
    effect: Literal["force", "floor", "cap"]
    tier: Tier
    basis: str = Field(min_length=1)
    when_all: list[Condition] = Field(default_factory=list)
    when_any: list[Condition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_condition(self) -> Rule:
        if not self.when_all and not self.when_any:
            raise ValueError(f"rule {self.code} must have at least one condition in when_all or when_any")
        return self

    def fires(self, features: pd.DataFrame) -> np.ndarray:
        fired = np.ones(len(features), dtype=bool)
        for condition in self.when_all:
            fired &= condition.holds(features)
        if self.when_any:
            any_ = np.zeros(len(features), dtype=bool)
            for condition in self.when_any:
                any_ |= condition.holds(features)
            fired &= any_
        return fired


class TierPolicy(_Strict):
    upper_bounds: dict[Tier, float]
    review_gap: int = Field(default=2, ge=1, le=3)

    @model_validator(mode="after")
    def _ordered(self) -> TierPolicy:
        if set(self.upper_bounds) != {"A", "B", "C"}:
            raise ValueError(f"upper_bounds must give A, B and C; got {sorted(self.upper_bounds)}")
        a, b, c = (self.upper_bounds[t] for t in "ABC")
        if not 0 < a < b < c < 1:
            raise ValueError(f"upper_bounds must satisfy 0 < A < B < C < 1; got A={a}, B={b}, C={c}")
        return self


class SamplingPolicy(_Strict):
    ratios: dict[Tier, float]
    bounds: dict[Tier, tuple[float, float]]
    min_inclusion_probability: float = Field(gt=0, le=1)
    inspectors_per_entity: int = Field(default=2, ge=2)

    @model_validator(mode="after")
    def _consistent(self) -> SamplingPolicy:
        for name, table in (("ratios", self.ratios), ("bounds", self.bounds)):
            if set(table) != set(TIERS):
                raise ValueError(f"sampling.{name} must give A, B, C and D; got {sorted(table)}")
        for tier in TIERS:
            low, high = self.bounds[tier]
            if not 0 <= low <= high <= 1:
                raise ValueError(f"sampling.bounds.{tier} must satisfy 0 <= low <= high <= 1; got {low}, {high}")
            if not low <= self.ratios[tier] <= high:
                raise ValueError(
                    f"sampling.ratios.{tier} must lie within bounds [{low}, {high}]; got {self.ratios[tier]}"
                )
            if high < self.min_inclusion_probability:
                raise ValueError(f"sampling.bounds.{tier} must allow min_inclusion_probability")
        return self


class Policy(_Strict):
    version: str = Field(min_length=1)
    title: str = ""
    tiers: TierPolicy
    rules: list[Rule] = Field(default_factory=list)
    sampling: SamplingPolicy
    fingerprint: str = ""

    @model_validator(mode="after")
    def _unique_codes(self) -> Policy:
        codes = [r.code for r in self.rules]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"rule codes must be unique; got duplicates {duplicated}")
        return self

    @property
    def version_tag(self) -> str:
        """The version stored with every score: the declared version and a hash of the file's text."""
        return f"{self.version}+{self.fingerprint[:8]}" if self.fingerprint else self.version

    def rule(self, code: str) -> Rule:
        for r in self.rules:
            if r.code == code:
                return r
        raise KeyError(code)

    def model_tiers(self, scores: np.ndarray | pd.Series) -> np.ndarray:
        """Tier proposed by the model for each calibrated probability."""
        bounds = [self.tiers.upper_bounds[t] for t in "ABC"]
        index = np.searchsorted(np.asarray(bounds), np.asarray(scores, dtype=float), side="right")
        return np.asarray(TIERS)[index]

    def apply(self, scores: np.ndarray | pd.Series, features: pd.DataFrame) -> pd.DataFrame:
        """Combine the model's tiers with the rules.

        Returns a frame aligned with ``features`` with ``model_tier``, ``tier``, ``rules`` (fired codes,
        ``;``-joined) and ``review``. Caps apply to the model's tier first, then floors raise it; a forced
        tier replaces the result, but never below a fired floor: when rules conflict the stricter tier wins.
        """
        model_tier = self.model_tiers(scores)
        level = np.searchsorted(np.asarray(TIERS), model_tier)
        fired = {rule.code: rule.fires(features) for rule in self.rules}
        floor = np.full(len(features), -1)
        forced = np.full(len(features), -1)
        for rule in self.rules:
            target, mask = TIERS.index(rule.tier), fired[rule.code]
            if rule.effect == "cap":
                level = np.where(mask, np.minimum(level, target), level)
            elif rule.effect == "floor":
                floor = np.where(mask, np.maximum(floor, target), floor)
            else:
                forced = np.where(mask, np.maximum(forced, target), forced)
        level = np.maximum(level, floor)
        level = np.where(forced >= 0, np.maximum(forced, floor), level)
        codes = np.array([r.code for r in self.rules], dtype=object)
        matrix = np.column_stack([fired[r.code] for r in self.rules] or [np.zeros(len(features), bool)])[
            :, : len(self.rules)
        ]
        rules = [";".join(codes[row]) for row in matrix]
        model_level = np.searchsorted(np.asarray(TIERS), model_tier)
        return pd.DataFrame(
            {
                "model_tier": model_tier,
                "tier": np.asarray(TIERS)[level],
                "rules": rules,
                "review": np.abs(level - model_level) >= self.tiers.review_gap,
            },
            index=features.index,
        )


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy text (TOML); raise ``PolicyError`` naming the source and field when invalid."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    raw["fingerprint"] = hashlib.sha256(text.encode()).hexdigest()
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"{source}: invalid policy: {problems}") from exc


def load_policy(path: Path) -> Policy:
    """Load and validate the policy file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from exc
    return parse_policy(text, source=str(path))
