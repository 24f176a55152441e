"""The versioned policy: tier cut-offs, qualitative rules with their legal basis, sampling ratios.

Policy is data (``models/policy.toml``): this module validates it on load and applies it. Scores, tiers
and sampling draws all store ``Policy.version_tag`` so an appeal sees exactly which policy produced them.

Applying it has one engine, ``CompiledPolicy``: the cut-offs and every rule condition turned once per
policy into numpy comparisons over ``features.columns.feature_columns`` (the conformed values the model
reads), then combined as the policy says. Training, batch scoring, what-if scoring, objection rescoring,
the baselines and the evaluation all go through it.
"""

from __future__ import annotations

import hashlib
import operator
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.catalogue import FEATURES
from features.columns import FeatureColumns, feature_columns
from features.errors import InvalidInput, validation_summary
from features.files import read_small_text
from features.pointintime import UNTRUSTWORTHY_MANAGEMENT_YEARS
from features.schema import EVENT_CODES, LIST_NAMES, SERIOUS_VIOLATION_LAPSE_YEARS

TIERS: tuple[str, ...] = ("A", "B", "C", "D")
TIER_LABELS: dict[str, str] = {"A": "信用风险低", "B": "信用风险一般", "C": "信用风险较高", "D": "信用风险高"}
Tier = Literal["A", "B", "C", "D"]

_OPS: dict[str, Callable[[np.ndarray, bool | float], np.ndarray]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class PolicyError(InvalidInput):
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


PLAN_TRIGGERS: tuple[str, ...] = ("complaint", "data_alert", "referral")
PlanTrigger = Literal["complaint", "data_alert", "referral"]


class TierPlan(_Strict):
    """A tier's yearly inspections: ``ratio`` of its entities, ``frequency`` times a year."""

    ratio: float = Field(gt=0, le=1)
    frequency: float = Field(gt=0, le=12)


class PlanPolicy(_Strict):
    """Yearly inspection plans (``serving/plans.py``): per tier a ratio and a frequency, the rest period
    after an inspection ("无事不扰", none for D), what lifts it, and when a missing result is overdue."""

    tiers: dict[Tier, TierPlan]
    rest_days: dict[Tier, int] = Field(default_factory=dict)
    triggers: list[PlanTrigger] = Field(default_factory=lambda: list(PLAN_TRIGGERS))
    grace_days: int = Field(default=30, ge=0, le=365)

    @model_validator(mode="after")
    def _consistent(self) -> PlanPolicy:
        if set(self.tiers) != set(TIERS):
            raise ValueError(f"plans.tiers must give A, B, C and D; got {sorted(self.tiers)}")
        if "D" in self.rest_days:
            raise ValueError("plans.rest_days must not give D: a D-tier entity is never left alone")
        for tier, days in self.rest_days.items():
            # The longest period a plan has is a quarter (92 days): a longer rest could leave an entity
            # inspected just before the year with no draw of the year at all (不免抽).
            if not 0 <= days <= 365 - 92:
                raise ValueError(f"plans.rest_days.{tier} must lie between 0 and 273 days; got {days}")
        return self

    def yearly(self, tier: str) -> float:
        """Random inspections expected per entity of ``tier`` in a plan year: ratio x frequency."""
        plan = self.tiers[tier]  # type: ignore[index]
        return plan.ratio * plan.frequency


class CommitmentPolicy(_Strict):
    """What a broken credit commitment brings besides the COMMITMENT_BROKEN measure: an entry on
    ``enters_list`` for ``list_days`` from the day it is found broken (``None``: no entry)."""

    enters_list: Literal["untrustworthy"] | None = None
    list_days: int = Field(default=365, ge=1, le=3650)
    basis: str = ""

    @model_validator(mode="after")
    def _basis(self) -> CommitmentPolicy:
        if self.enters_list and not self.basis:
            raise ValueError("commitments.basis must give the legal ground of the list entry")
        return self


BENEFITS: tuple[str, ...] = (
    "funding",  # public funding support (资金支持)
    "fee_reduction",  # fee reductions (费用减缴)
    "fast_track",  # priority or fast-track examination and the fast-track enforcement channel (优先审查、快速通道)
    "award_recommendation",  # recommendation for awards and qualification reviews (评优评先、资质评审)
    "commitment_procedure",  # the credit-commitment procedure (告知承诺)
)
Benefit = Literal["funding", "fee_reduction", "fast_track", "award_recommendation", "commitment_procedure"]
Trigger = Literal["red_list", "untrustworthy", "serious_violation", "commitment_broken", "tier"]


class Measure(_Strict):
    """An incentive or restriction (信用联合奖惩) that follows from a list, a tier or a broken commitment.

    A restriction ``blocks`` benefits; an incentive gives ``priority`` for them. It is in force while its
    trigger is (a list entry in force, the tier of the latest stored row, ``period_days`` from a broken
    commitment), and never without a legal basis.
    """

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name_zh: str
    name_en: str
    effect: Literal["incentive", "restriction"]
    applies_to: Trigger
    tiers: list[Tier] = Field(default_factory=list)
    blocks: list[Benefit] = Field(default_factory=list)
    priority: list[Benefit] = Field(default_factory=list)
    period_days: int | None = Field(default=None, ge=1)
    basis: str = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Measure:
        if self.effect == "restriction" and (not self.blocks or self.priority):
            raise ValueError(f"measure {self.code}: a restriction blocks benefits and gives no priority")
        if self.effect == "incentive" and (not self.priority or self.blocks):
            raise ValueError(f"measure {self.code}: an incentive gives priority and blocks nothing")
        if (self.applies_to == "tier") != bool(self.tiers):
            raise ValueError(f"measure {self.code}: tiers are given exactly when applies_to is 'tier'")
        if (self.applies_to == "commitment_broken") != (self.period_days is not None):
            raise ValueError(f"measure {self.code}: period_days is given exactly for a broken commitment")
        return self


class Lifecycle(_Strict):
    """How long a list entry counts without a removal. The periods decide feature values, so the feature
    code holds them (``features/pointintime.py``); a policy that states other periods is refused."""

    untrustworthy_management_years: int = Field(default=UNTRUSTWORTHY_MANAGEMENT_YEARS, ge=1)
    untrustworthy_basis: str = Field(min_length=1)
    serious_violation_lapse_years: int = Field(default=SERIOUS_VIOLATION_LAPSE_YEARS, ge=1)
    serious_violation_basis: str = Field(min_length=1)

    @model_validator(mode="after")
    def _as_the_features_count(self) -> Lifecycle:
        for name, stated, coded in (
            ("untrustworthy_management_years", self.untrustworthy_management_years, UNTRUSTWORTHY_MANAGEMENT_YEARS),
            ("serious_violation_lapse_years", self.serious_violation_lapse_years, SERIOUS_VIOLATION_LAPSE_YEARS),
        ):
            if stated != coded:
                raise ValueError(
                    f"lifecycle.{name} must be {coded}, the period the features are built with "
                    f"(features/pointintime.py); got {stated}: changing it is a change of the feature code and "
                    "needs a new feature version and a retrained model"
                )
        return self


class RepairRule(_Strict):
    """When a record may be repaired (``event_types``: ``after_months`` after its publication, its
    ``recorded_on``) or a list entry removed early (``list``, ``on_list`` here: ``after_months`` after it
    was entered), what the applicant must show (``requires``: codes of ``repair_requirements``) and on
    what legal basis."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name_zh: str
    name_en: str
    event_types: list[str] = Field(default_factory=list)
    on_list: str | None = Field(default=None, alias="list")  # the policy file's key is ``list``
    after_months: int = Field(ge=0, le=120)
    requires: list[str] = Field(default_factory=list)
    basis: str = Field(min_length=1)

    @model_validator(mode="after")
    def _covers_one_kind(self) -> RepairRule:
        if bool(self.event_types) == (self.on_list is not None):
            raise ValueError(f"repair rule {self.code} must name either event_types or a list, not both")
        unknown = [t for t in self.event_types if t not in EVENT_CODES]
        if unknown:
            raise ValueError(
                f"repair rule {self.code}: event_types must be codes of the event catalogue; got {unknown}"
            )
        if self.on_list is not None and self.on_list not in LIST_NAMES:
            raise ValueError(f"repair rule {self.code}: list must be one of {LIST_NAMES}; got {self.on_list!r}")
        return self

    def possible_from(self, start: date) -> date:
        """The first day a record published (or an entry entered) on ``start`` may be repaired."""
        return start + relativedelta(months=self.after_months)

    def describe(self) -> str:
        return f"{self.code} ({self.name_en}; {self.basis})"


class Unrepairable(_Strict):
    """Records the regulator never repairs, and why."""

    event_types: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1)
    basis: str = Field(min_length=1)

    @field_validator("event_types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        unknown = [t for t in types if t not in EVENT_CODES]
        if unknown:
            raise ValueError(f"unrepairable event_types must be codes of the event catalogue; got {unknown}")
        return types


class Policy(_Strict):
    version: str = Field(min_length=1)
    title: str = ""
    tiers: TierPolicy
    rules: list[Rule] = Field(default_factory=list)
    sampling: SamplingPolicy
    measures: list[Measure] = Field(default_factory=list)
    plans: PlanPolicy | None = None
    commitments: CommitmentPolicy = Field(default_factory=CommitmentPolicy)
    lifecycle: Lifecycle | None = None
    repair_requirements: dict[str, str] = Field(default_factory=dict)
    repairs: list[RepairRule] = Field(default_factory=list)
    unrepairable: list[Unrepairable] = Field(default_factory=list)
    fingerprint: str = ""

    @model_validator(mode="after")
    def _unique_codes(self) -> Policy:
        for kind, codes in (("rule", [r.code for r in self.rules]), ("measure", [m.code for m in self.measures])):
            duplicated = sorted({c for c in codes if codes.count(c) > 1})
            if duplicated:
                raise ValueError(f"{kind} codes must be unique; got duplicates {duplicated}")
        return self

    @model_validator(mode="after")
    def _repairs_consistent(self) -> Policy:
        codes = [r.code for r in self.repairs]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"repair codes must be unique; got duplicates {duplicated}")
        covered: dict[str, str] = {}
        for rule in self.repairs:
            unknown = [c for c in rule.requires if c not in self.repair_requirements]
            if unknown:
                raise ValueError(
                    f"repair rule {rule.code} requires {unknown}, which repair_requirements does not define"
                )
            for key in [*rule.event_types, *([f"list:{rule.on_list}"] if rule.on_list else [])]:
                if key in covered:
                    raise ValueError(f"{key} is covered by two repair rules: {covered[key]} and {rule.code}")
                covered[key] = rule.code
        for entry in self.unrepairable:
            both = sorted(set(entry.event_types) & set(covered))
            if both:
                raise ValueError(f"event types {both} are both unrepairable and covered by a repair rule")
        return self

    def repair_rule(
        self, *, event_type: str | None = None, list_name: str | None = None
    ) -> RepairRule | Unrepairable | None:
        """The rule that governs repairing a record of ``event_type`` (or removing an entry of ``list_name``
        early): a ``RepairRule``, an ``Unrepairable`` entry, or ``None`` when no rule covers it."""
        for rule in self.repairs:
            if (event_type is not None and event_type in rule.event_types) or (
                list_name is not None and rule.on_list == list_name
            ):
                return rule
        if event_type is not None:
            for entry in self.unrepairable:
                if event_type in entry.event_types:
                    return entry
        return None

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
        engine = compiled(self)
        return engine.tier_names[engine.levels(scores)]

    def fired(self, columns: FeatureColumns) -> np.ndarray:
        """``(rows, rules)``: which rule fires for each row of ``columns`` (``feature_columns``)."""
        return compiled(self).fired(columns)

    def tiering(self, scores: np.ndarray | pd.Series, columns: FeatureColumns) -> Tiering:
        """Combine the model's tiers with the rules, for feature ``columns`` (``feature_columns``).

        Caps apply to the model's tier first, then floors raise it; a forced tier replaces the result, but
        never below a fired floor: when rules conflict the stricter tier wins.
        """
        return compiled(self).apply(scores, columns)

    def apply(self, scores: np.ndarray | pd.Series, features: pd.DataFrame) -> pd.DataFrame:
        """``tiering`` of a feature frame, as a frame aligned with ``features``: ``model_tier``, ``tier``,
        ``rules`` (fired codes, ``;``-joined) and ``review``."""
        result = self.tiering(scores, feature_columns(features))
        return pd.DataFrame(
            {"model_tier": result.model_tier, "tier": result.tier, "rules": result.rules, "review": result.review},
            index=features.index,
        )


class Tiering(NamedTuple):
    """What a policy makes of scored rows; every field has one item (or row) per input row."""

    model_tier: np.ndarray  # the model's tier, from the cut-offs alone
    tier: np.ndarray  # the final tier, after the rules
    rules: np.ndarray  # the fired rule codes, ";"-joined ("" when none fires)
    review: np.ndarray  # the rules moved the tier by the policy's review gap or more
    fired: np.ndarray  # (rows, rules): which rule fires for the row


class CompiledPolicy:
    """A policy's cut-offs and rules as numpy comparisons over feature columns, built once per policy
    (``compiled``). The rules read the conformed values the model reads; a missing float is NaN, which
    fails every comparison but ``!=``."""

    def __init__(self, policy: Policy) -> None:
        self.bounds = np.asarray([policy.tiers.upper_bounds[t] for t in TIERS[:-1]], dtype=np.float64)
        self.review_gap = policy.tiers.review_gap
        self.codes = [rule.code for rule in policy.rules]
        self.rules = [
            (
                rule.effect,
                TIERS.index(rule.tier),
                [(c.feature, _OPS[c.op], c.value) for c in rule.when_all],
                [(c.feature, _OPS[c.op], c.value) for c in rule.when_any],
            )
            for rule in policy.rules
        ]
        self.tier_names = np.asarray(TIERS, dtype=object)

    def levels(self, scores: np.ndarray | pd.Series) -> np.ndarray:
        """The model's tier of each score as an index into ``TIERS``."""
        return np.searchsorted(self.bounds, np.asarray(scores, dtype=np.float64), side="right")

    def fired(self, columns: FeatureColumns, n: int | None = None) -> np.ndarray:
        """``(n, rules)``: which rules fire for each row."""
        if n is None:
            n = len(next(iter(columns.values()))) if columns else 0
        out = np.zeros((n, len(self.rules)), dtype=bool)
        for r, (_, _, when_all, when_any) in enumerate(self.rules):
            fired = np.ones(n, dtype=bool)
            for name, op, value in when_all:
                fired &= op(columns[name], value)
            if when_any:
                any_ = np.zeros(n, dtype=bool)
                for name, op, value in when_any:
                    any_ |= op(columns[name], value)
                fired &= any_
            out[:, r] = fired
        return out

    def apply(self, scores: np.ndarray | pd.Series, columns: FeatureColumns) -> Tiering:
        """The tiering of each row (``Policy.tiering``)."""
        model_level = self.levels(scores)
        n = len(model_level)
        fired = self.fired(columns, n)
        level = model_level
        floor = np.full(n, -1)
        forced = np.full(n, -1)
        for r, (effect, target, _, _) in enumerate(self.rules):
            mask = fired[:, r]
            if not mask.any():
                continue
            if effect == "cap":
                level = np.where(mask, np.minimum(level, target), level)
            elif effect == "floor":
                floor = np.where(mask, np.maximum(floor, target), floor)
            else:
                forced = np.where(mask, np.maximum(forced, target), forced)
        level = np.maximum(level, floor)
        level = np.where(forced >= 0, np.maximum(forced, floor), level)
        return Tiering(
            model_tier=self.tier_names[model_level],
            tier=self.tier_names[level],
            rules=self._rule_text(fired),
            review=np.abs(level - model_level) >= self.review_gap,
            fired=fired,
        )

    def _rule_text(self, fired: np.ndarray) -> np.ndarray:
        # Rows fire few distinct combinations: join the codes once per combination, not once per row.
        n, r = fired.shape
        if r == 0 or n == 0:
            return np.full(n, "", dtype=object)
        if r > 62:
            return np.array([";".join(c for c, f in zip(self.codes, row, strict=True) if f) for row in fired], object)
        keys = fired.astype(np.int64) @ (np.int64(1) << np.arange(r, dtype=np.int64))
        distinct, inverse = np.unique(keys, return_inverse=True)
        texts = np.array(
            [";".join(c for i, c in enumerate(self.codes) if (int(k) >> i) & 1) for k in distinct], dtype=object
        )
        return texts[inverse]


# Compiled programs by policy object. A policy is frozen, so its program never goes stale; the entry keeps
# the policy alive, so its id cannot be reused while the entry exists. Policies are few (the current one
# and those stored with runs), so clearing the lot when it grows is enough.
_COMPILED: dict[int, tuple[Policy, CompiledPolicy]] = {}
_MAX_COMPILED = 64


def compiled(policy: Policy) -> CompiledPolicy:
    """The ``CompiledPolicy`` of ``policy``, built on first use and kept."""
    entry = _COMPILED.get(id(policy))
    if entry is None or entry[0] is not policy:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.clear()
        entry = _COMPILED[id(policy)] = (policy, CompiledPolicy(policy))
    return entry[1]


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
        raise PolicyError(f"{source}: invalid policy: {validation_summary(exc)}") from exc


def load_policy(path: Path) -> Policy:
    """Load and validate the policy file at ``path``."""
    return read_policy(path)[0]


def read_policy(path: Path) -> tuple[Policy, str]:
    """The validated policy at ``path`` and the text it was parsed from, read once: a run stores both, and
    reading the file again could store the text of an edit under the version tag of the file before it."""
    try:
        text = read_small_text(Path(path))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from exc
    return parse_policy(text, source=str(path)), text
