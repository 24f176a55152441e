"""Request and response models of the HTTP API (Pydantic 2), with the constraints and examples the
OpenAPI document shows. Names follow CONTRACT sections 1, 4 and 5."""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from features import uscc
from features.dataset import stale_caveat
from features.schema import (
    ENTITY_ID_LENGTH,
    EVENT_CODES,
    INDUSTRIES,
    INSPECTION_OUTCOMES,
    KINDS,
    LIST_NAMES,
    MAX_LOCATIONS,
    REGION_PATTERN,
)
from models.policy import BENEFITS, TIERS
from serving.auth import ROLES
from serving.dates import BoundedDate
from serving.sampling import MODES

# The code lists are the contract's (``features.schema``), the tiers the policy's, the roles the auth
# module's: ``Literal`` of their tuples, so a code added there is accepted here.
EXAMPLE_ID = "91210600MA0QC0K819"
TierName = Literal[TIERS]  # type: ignore[valid-type]
RoleName = Literal[ROLES]  # type: ignore[valid-type]
Kind = Literal[KINDS]  # type: ignore[valid-type]
Industry = Literal[INDUSTRIES]  # type: ignore[valid-type]
EventType = Literal[EVENT_CODES]  # type: ignore[valid-type]
ListName = Literal[LIST_NAMES]  # type: ignore[valid-type]
# The lists published under /v1/public/lists (the operating-anomaly list is not one of them).
PublicList = Literal["red", "serious_violation", "untrustworthy"]
Outcome = Literal[tuple(INSPECTION_OUTCOMES)]  # type: ignore[valid-type]
InspectionEventType = Literal[tuple(INSPECTION_OUTCOMES.values())]  # type: ignore[valid-type]
DrawMode = Literal[MODES]  # type: ignore[valid-type]
Decision = Literal["uphold", "correct", "repair"]
BenefitName = Literal[BENEFITS]  # type: ignore[valid-type]
ObjectionStatus = Literal["open", "upheld", "corrected", "repaired"]


@functools.lru_cache(maxsize=65_536)  # a body repeats its entity_id in every one of up to 100,000 rows
def entity_id_problem(value: str) -> str | None:
    """What is wrong with ``value`` as an ``entity_id`` (the words of every 422 about one), or ``None``."""
    problem = uscc.problem(value)
    return f"entity_id {problem}" if problem else None


def _check_entity_id(value: str) -> str:
    problem = entity_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


EntityId = Annotated[
    str,
    Field(
        min_length=ENTITY_ID_LENGTH,
        max_length=ENTITY_ID_LENGTH,
        description="unified social credit code (GB 32100-2015)",
        examples=[EXAMPLE_ID],
    ),
    AfterValidator(_check_entity_id),
]
Region = Annotated[str, Field(pattern=f"^{REGION_PATTERN}$", examples=["210600"])]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- the score row and its explanation --------------------------------------------------------------


# What a row scored by a model version that failed its promotion gate is to be read with (models.gate).
ModelCaveat = Annotated[
    str | None,
    Field(
        description="when the model version that scored the row failed its promotion gate: which checks, and why "
        "it scored all the same (the first version, or a promotion by hand); null otherwise"
    ),
]


class Reason(BaseModel):
    feature: str
    value: Any = None
    contribution: float


class RiskRow(BaseModel):
    """One stored score row (CONTRACT section 4) with where it came from."""

    entity_id: str = Field(examples=[EXAMPLE_ID])
    as_of: date
    score: float = Field(ge=0, le=1, description="calibrated probability of an adverse event in 12 months")
    model_tier: TierName
    tier: TierName
    rules: str = Field(description="fired rule codes, ';'-joined, empty when none")
    review: bool
    model_version: str
    reasons: list[Reason]
    policy_version: str
    feature_version: str
    score_id: int
    run_id: int
    supersedes_id: int | None = Field(default=None, description="the score row this one replaced, if any")
    ledger_seq: int | None = Field(
        default=None, description="the ledger decisions its features applied (seq <= this); null: none read"
    )
    model_caveat: ModelCaveat = None


class Records(BaseModel):
    """The records behind a contribution or a fired rule (``features/evidence.py``): the first few ids."""

    table: str = Field(description="events, lists (ids list@entered_on), entities (the entity's own row), …")
    ids: list[str] = Field(description="the first few ids, most recent first")
    count: int = Field(ge=0, description="how many records there are in all")


class TraceInfo(BaseModel):
    """Where the records come from: traced from the row's history, and checked against its features."""

    traced: bool
    verified: bool = Field(description="the features rebuilt from the history equal the stored ones")
    note: str | None = Field(default=None, description="why the records cannot be traced, if they cannot")


class Contribution(BaseModel):
    feature: str
    value: Any = None
    contribution: float
    label_zh: str | None = None
    label_en: str | None = None
    text_zh: str | None = None
    text_en: str | None = None
    records: list[Records] | None = Field(default=None, description="the records the feature counted")


class FiredRule(BaseModel):
    code: str
    name_zh: str
    name_en: str
    effect: Literal["force", "floor", "cap"]
    tier: TierName
    basis: str = Field(description="the legal basis of the rule")
    records: list[Records] | None = Field(default=None, description="the records behind its conditions")


class Explanation(BaseModel):
    """Why the tier is what it is: ``base_value`` plus the contributions is ``log_odds``."""

    entity_id: str
    as_of: date
    score: float
    model_tier: TierName
    tier: TierName
    review: bool
    base_value: float | None
    log_odds: float | None
    contributions: list[Contribution]
    contributions_complete: bool = Field(
        default=True,
        description="every feature's contribution is stored; false for a run imported from a score file "
        "without contributions, which shows the file's top reasons",
    )
    contributions_rest: float | None = Field(
        default=None,
        description="when not complete: what the other features add, log_odds - base_value - the contributions",
    )
    rules: list[FiredRule]
    model_version: str
    policy_version: str
    feature_version: str
    score_id: int
    run_id: int
    trace: TraceInfo | None = None
    model_caveat: ModelCaveat = None


class BatchRiskRequest(_Model):
    entity_ids: list[EntityId] = Field(min_length=1, max_length=1000, examples=[[EXAMPLE_ID]])


class BatchRiskResponse(BaseModel):
    found: list[RiskRow]
    missing: list[str] = Field(description="well-formed ids with no stored score")


# ---- what-if scoring ----------------------------------------------------------------------------------


class EntityIn(_Model):
    entity_id: EntityId
    name: str = Field(min_length=1, max_length=500, examples=["丹东示例科技有限公司"])
    kind: Kind
    industry: Industry
    region: Region
    registered_on: BoundedDate
    registered_capital: float | None = Field(default=None, ge=0, le=1e12)
    online_seller: bool = False
    locations: int | None = Field(default=None, ge=1, le=MAX_LOCATIONS, description="business premises operated")


class EventIn(_Model):
    event_id: str = Field(min_length=1, max_length=100)
    entity_id: EntityId
    event_type: EventType
    occurred_on: BoundedDate
    recorded_on: BoundedDate
    quantity: int = Field(default=1, ge=1, le=10_000_000)
    amount: float | None = Field(default=None, ge=0, le=1e13)
    repaired_on: BoundedDate | None = None

    @model_validator(mode="after")
    def _recorded_after(self) -> EventIn:
        if self.recorded_on < self.occurred_on:
            raise ValueError("recorded_on must be on or after occurred_on")
        if self.repaired_on is not None and self.repaired_on < self.recorded_on:
            raise ValueError("repaired_on must be on or after recorded_on")
        return self


class ListIn(_Model):
    entity_id: EntityId
    list: ListName
    entered_on: BoundedDate
    removed_on: BoundedDate | None = None
    basis: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _removed_after(self) -> ListIn:
        if self.removed_on is not None and self.removed_on < self.entered_on:
            raise ValueError("removed_on must be on or after entered_on")
        return self


class History(_Model):
    """One entity's history, shaped like the three dataset tables."""

    entity: EntityIn
    events: list[EventIn] = Field(default_factory=list, max_length=100_000)
    lists: list[ListIn] = Field(default_factory=list, max_length=1_000)

    @model_validator(mode="after")
    def _one_entity(self) -> History:
        for name, rows in (("events", self.events), ("lists", self.lists)):
            for i, row in enumerate(rows):
                if row.entity_id != self.entity.entity_id:
                    raise ValueError(
                        f"{name}[{i}].entity_id must be the entity's id {self.entity.entity_id}; got {row.entity_id}"
                    )
        ids = [e.event_id for e in self.events]
        if len(ids) != len(set(ids)):
            raise ValueError("events must have unique event_id values")
        return self


_WHAT_IF_EXAMPLE = {
    "as_of": "2025-12-31",
    "entity": {
        "entity_id": EXAMPLE_ID,
        "name": "丹东示例科技有限公司",
        "kind": "enterprise",
        "industry": "C",
        "region": "210600",
        "registered_on": "2018-03-01",
        "registered_capital": 500.0,
        "online_seller": True,
    },
    "events": [
        {
            "event_id": "E1",
            "entity_id": EXAMPLE_ID,
            "event_type": "abnormal_patent_filing",
            "occurred_on": "2025-05-10",
            "recorded_on": "2025-06-01",
            "quantity": 3,
        }
    ],
    "lists": [],
}


class ScoreRequest(History):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_WHAT_IF_EXAMPLE]})
    as_of: BoundedDate
    model_version: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$",
        description="score with this model version (the champion's, or one that scored a stored row); "
        "default the champion",
    )
    policy_version: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9:.+_-]{0,63}$",
        description="tier with this policy version (the current one, or one stored with a run); default the current",
    )


class ScoreResponse(BaseModel):
    """A what-if score: the score row and its explanation; nothing is stored."""

    entity_id: str
    as_of: date
    score: float
    model_tier: TierName
    tier: TierName
    rules: str
    review: bool
    model_version: str
    reasons: list[Reason]
    policy_version: str
    feature_version: str
    explanation: Explanation | None = None
    fired_rules: list[FiredRule]
    base_value: float | None
    log_odds: float | None
    contributions: list[Contribution]
    trace: TraceInfo | None = None
    model_caveat: ModelCaveat = None


# ---- score runs ---------------------------------------------------------------------------------------


class ScoreRunRequest(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"dataset": "var/demo/data", "as_of": "2025-12-31"}]},
    )
    dataset: str = Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[^\x00]+$",
        description="a dataset folder on the server (CONTRACT section 1), under the service's import root",
    )
    as_of: BoundedDate
    score_file: str | None = Field(
        default=None,
        max_length=4096,
        pattern=r"^[^\x00]+$",
        description="a score file written by `ipcredit score` (on the server) to import instead of scoring",
    )


class ScoreRun(BaseModel):
    run_id: int
    created_at: datetime
    created_by: str | None
    kind: str
    as_of: date
    dataset_fingerprint: str
    data_source: str
    policy_version: str
    model_version: str
    feature_version: str
    row_count: int
    parent_run_id: int | None = None
    objection_id: int | None = None
    ledger_seq: int | None = Field(
        default=None, description="the ledger decisions its features applied (seq <= this); null: none read"
    )
    ledger_conflicts: list[LedgerConflict] | None = Field(
        default=None, description="where the dataset and the ledger disagreed (the ledger held)"
    )
    data_end: date | None = Field(
        default=None, description="the delivery's last record; null for a run stored before it was kept"
    )
    model_caveat: ModelCaveat = None

    @field_validator("ledger_conflicts", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @computed_field(
        description="what the run's scores should be read with: as of long after the delivery's "
        "last record, the days since counted as empty for want of records; null when nothing"
    )
    @property
    def caveat(self) -> str | None:
        return stale_caveat(self.as_of, self.data_end)


class LedgerConflict(BaseModel):
    seq: int
    kind: str
    target: str
    message: str


JobStatus = Literal["queued", "running", "done", "failed"]


class _Job(BaseModel):
    """Work done in the background (``serving/jobs.py``): what was asked, how far it got, what went wrong."""

    job_id: str
    status: JobStatus
    created_at: datetime
    created_by: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    request: dict[str, Any]
    problem: dict[str, Any] | None = Field(default=None, description="the problem details of a failed job")


class ScoreRunJob(_Job):
    """A score run being made in the background (``POST /v1/score-runs`` answers 202 with its Location)."""

    run_id: int | None = None
    run: ScoreRun | None = None


# ---- sampling -----------------------------------------------------------------------------------------


class DrawFilter(_Model):
    region: str | None = Field(
        default=None,
        pattern=r"^[0-9]{2}([0-9]{2}){0,2}$",
        description="administrative division code or its 2- or 4-digit prefix (province, city)",
        examples=["210600"],
    )
    industry: Industry | None = None
    kind: Kind | None = None
    online_seller: bool | None = None


class DrawRequest(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"filter": {"region": "210600"}},
                {"ratios": {"D": 0.9}, "filter": {"online_seller": True}},
                {"budget": 500, "filter": {"kind": "agency"}},
            ]
        },
    )
    # Not part of the request: a seed sent is refused, so no one can choose or shop for one.
    seed: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    ratios: dict[TierName, Annotated[float, Field(ge=0, le=1)]] | None = Field(
        default=None, description="per-tier sampling ratio overrides, within the policy's bounds"
    )
    budget: int | None = Field(
        default=None, ge=1, le=100_000_000, description="total inspections, shared across tiers by risk"
    )
    filter: DrawFilter = Field(default_factory=DrawFilter)
    inspectors_per_entity: int | None = Field(
        default=None, ge=2, le=10, description="default from the policy (at least two)"
    )
    avoid_same_region: bool = Field(
        default=False, description="no inspector inspects an entity of the inspector's own region"
    )

    @field_validator("seed", mode="before")
    @classmethod
    def _no_seed(cls, value: Any) -> Any:
        raise ValueError(
            "seed must not be sent: the service derives every draw's seed from inputs fixed before the draw "
            "and publishes it in the register (GET /v1/public/draws)"
        )

    @model_validator(mode="after")
    def _one_mode(self) -> DrawRequest:
        if self.ratios is not None and self.budget is not None:
            raise ValueError("give either ratios or budget, not both")
        return self


class Selected(BaseModel):
    entity_id: str
    tier: TierName
    inclusion_probability: float
    inspectors: list[str]
    result: Outcome | None = None


class Draw(BaseModel):
    draw_id: str
    sequence: int = Field(description="the draw's place in the public register")
    created_at: datetime
    created_by: str | None = None
    seed: int = Field(description="derived from seed_inputs (serving.sampling.derive_seed), never chosen")
    seed_inputs: dict[str, Any] | None = Field(description="what the seed was derived from, as published")
    record_hash: str | None = Field(description="sha256 of the draw's public record; the next record links to it")
    next_secret_hash: str | None = Field(description="the commitment to the next draw's secret")
    policy_version: str
    mode: DrawMode
    budget: int | None = None
    ratios: dict[str, float] = Field(description="the inclusion probability applied to each tier")
    filter: dict[str, Any]
    population: dict[str, int] = Field(description="entities per tier in the population")
    population_size: int
    population_hash: str | None = Field(description="sha256(population_salt ‖ ids ‖ tiers): the published commitment")
    population_salt: str | None = Field(description="the commitment's salt (never in the public register)")
    inspectors_per_entity: int
    avoid_same_region: bool
    roster_hash: str
    selected_count: int
    selected: list[Selected]


class PublicSelected(BaseModel):
    entity_id: str
    name: str
    result: Outcome | None = None
    outcome: Literal["no_findings", "findings", "not_inspected"] | None = Field(
        default=None, description="the inspection's outcome, once recorded (POST .../outcomes)"
    )
    finding_kind: str | None = Field(default=None, description="what the findings were")


class RegisterEntry(BaseModel):
    """One draw as the public register lists it (一公开): never a score or a tier."""

    draw_id: str
    sequence: int
    created_at: datetime
    policy_version: str
    filter: dict[str, Any]
    mode: DrawMode
    seed: int
    seed_inputs: dict[str, Any] | None = Field(description="recompute the seed: serving.sampling.derive_seed")
    population_size: int
    population_hash: str | None = Field(description="the population commitment, salted per draw")
    selected_count: int
    record_hash: str | None
    next_secret_hash: str | None
    chained: bool = Field(description="false for a draw made before the register existed")


class PublicRegister(BaseModel):
    total: int
    limit: int
    offset: int
    next_sequence: int
    next_secret_hash: str | None = Field(description="committed now: the sha256 of the next draw's secret")
    draws: list[RegisterEntry] = Field(description="newest first")


class PublicDraw(RegisterEntry):
    """The publishable draw (一公开) with a page of its selected entities: never a score or a tier."""

    limit: int
    offset: int
    selected: list[PublicSelected] = Field(description="by entity id")


class InspectionResult(_Model):
    entity_id: EntityId
    outcome: Outcome
    inspected_on: BoundedDate
    recorded_on: BoundedDate | None = Field(default=None, description="default: today")
    amount: float | None = Field(default=None, ge=0, le=1e13, description="fine in yuan, if any")
    findings: str | None = Field(default=None, max_length=4000)


class InspectionResults(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"results": [{"entity_id": EXAMPLE_ID, "outcome": "passed", "inspected_on": "2026-01-15"}]}]
        },
    )
    results: list[InspectionResult] = Field(min_length=1, max_length=100_000)


class RecordedEvent(BaseModel):
    event_id: str
    entity_id: str
    event_type: InspectionEventType
    occurred_on: date
    recorded_on: date
    quantity: int = 1
    amount: float | None = None
    repaired_on: date | None = None


class Verification(BaseModel):
    """A draw re-checked from its published inputs and stored snapshot: each check and whether all hold."""

    draw_id: str
    sequence: int
    chained: bool
    verified: bool
    checks: dict[str, bool] = Field(
        description="seed_derived, secret_committed, chain_linked, sequence_matches, population_committed, "
        "population_matches, selection_reproduced, selected_count_matches, record_intact"
    )
    seed: int
    seed_inputs: dict[str, Any] | None
    record_hash: str | None
    selection_hash: str = Field(description="sha256 of the selected entity ids, sorted, one per line")
    selected_count: int
    reproduced: bool
    population_hash_matches: bool


# ---- objections ---------------------------------------------------------------------------------------


class ObjectionIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"score_id": 1, "grounds": "处罚决定已被撤销 / the penalty decision was revoked on appeal"}]
        },
    )
    score_id: int = Field(ge=1, le=2**63 - 1, description="the stored score row objected to")
    grounds: str = Field(min_length=1, max_length=10_000)


class Repair(_Model):
    event_id: str = Field(min_length=1, max_length=100)
    repaired_on: BoundedDate
    evidence: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=20,
        description="what the applicant showed: codes of the policy's repair_requirements its repair rule requires",
    )
    basis: str | None = Field(
        default=None,
        max_length=2000,
        description="the repair decision's number or legal ground (default: the objection)",
    )


class DecisionIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"decision": "uphold", "version": 1, "note": "the record stands"},
                {"decision": "repair", "version": 1, "repairs": [{"event_id": "E1", "repaired_on": "2026-01-10"}]},
            ]
        },
    )
    decision: Decision
    version: int = Field(ge=1, le=2**31 - 1, description="the objection's version the reviewer read")
    note: str | None = Field(default=None, max_length=10_000)
    history: History | None = Field(
        default=None,
        description="the corrected history (correct) or the history holding the repaired records (repair); "
        "default: the entity's rows in the run's dataset",
    )
    repairs: list[Repair] | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _what_is_needed(self) -> DecisionIn:
        if self.decision == "correct" and self.history is None:
            raise ValueError("decision 'correct' needs the corrected history")
        if self.decision == "repair" and not self.repairs:
            raise ValueError("decision 'repair' needs repairs: the records and their repair dates")
        if self.decision == "uphold" and (self.history is not None or self.repairs):
            raise ValueError("decision 'uphold' takes no history or repairs")
        return self


class Objection(BaseModel):
    objection_id: int
    score_id: int
    entity_id: str
    grounds: str
    filed_by: str | None
    filed_at: datetime
    status: ObjectionStatus
    version: int
    decision: str | None = None
    decision_note: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    result_score_id: int | None = None
    changes: Any = None


class ObjectionDetail(Objection):
    explanation: Explanation = Field(description="the full snapshot that produced the tier objected to")
    run: ScoreRun
    result: RiskRow | None = None


# ---- the review queue and recourse -------------------------------------------------------------------

QueueReason = Literal["objection", "disagreement", "policy_review"]


class QueueReasonEntry(BaseModel):
    reason: QueueReason
    since: datetime | None = Field(description="since when this reason holds (UTC)")
    detail: str


class QueueItem(BaseModel):
    kind: Literal["objection", "row"] = Field(description="an open objection, or a flagged row without one")
    objection_id: int | None
    score_id: int
    entity_id: str
    region: str
    as_of: date
    tier: TierName
    model_tier: TierName
    since: datetime = Field(description="since when the item has waited (UTC): its oldest reason")
    reasons: list[QueueReasonEntry]


class ReviewQueue(BaseModel):
    total: int
    limit: int
    offset: int
    region: str | None
    reason: QueueReason | None
    items: list[QueueItem]


class RecourseStep(BaseModel):
    table: Literal["events", "lists"]
    id: str = Field(description="the event_id, or list@entered_on for a list entry")
    kind: str = Field(description="the event type or the list")
    action: Literal["repair", "remove", "lapse"]
    possible_from: date = Field(description="the earliest day the step becomes possible")
    rule: str | None = Field(description="the policy's repair rule allowing it (none for a lapse)")
    basis: str | None
    features: list[str] = Field(description="the features that counted the record")


class RecoursePlan(BaseModel):
    steps: list[RecourseStep]
    on: date = Field(description="the day the lower tier is reached: the last step's, or the row's date")
    tier: TierName
    score: float
    tier_without_steps: TierName = Field(description="the tier on that day had nothing been done")


class Recourse(BaseModel):
    """The fewest records whose repair or lapse lowers a stored row's tier, with the row's own model and
    policy; exact, by trying every set of candidates."""

    score_id: int
    entity_id: str
    as_of: date
    tier: TierName
    score: float
    model_version: str
    policy_version: str
    candidates: list[RecourseStep]
    evaluated: int = Field(description="how many sets of candidates were rescored")
    plan: RecoursePlan | None
    note: str | None
    trace: TraceInfo


# ---- public lists, admin ------------------------------------------------------------------------------


class ListEntry(BaseModel):
    entity_id: str
    name: str | None
    list: PublicList
    entered_on: date
    removed_on: date | None
    lapses_on: date | None = Field(
        description="serious-violation entries lapse 3 years after entry, untrustworthy ones after their "
        "management period (1 year)"
    )
    basis: str | None


class PublicLists(BaseModel):
    list: PublicList
    on: date
    total: int
    entries: list[ListEntry]


class TokenIn(_Model):
    role: RoleName
    name: str = Field(default="api", min_length=1, max_length=100)
    region: Region | None = Field(
        default=None, description="scope: only entities of this division (210000 a province, 210600 a city)"
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="default: the service's token_days")
    benefits: list[BenefitName] = Field(
        default_factory=list, max_length=10, description="a department token: the benefits it may ask about"
    )


class TokenOut(BaseModel):
    token_id: int
    name: str
    role: RoleName
    region: str | None = None
    benefits: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    token: str = Field(description="shown once; only its hash is stored")


class TokenInfo(BaseModel):
    token_id: int
    name: str
    role: RoleName
    region: str | None
    benefits: list[str] = Field(default_factory=list, description="a department token's benefits")
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="recorded at most once a minute")
    revoked_at: datetime | None
    active: bool


class TokenList(BaseModel):
    total: int
    tokens: list[TokenInfo] = Field(description="newest first")


class InspectorIn(_Model):
    inspector_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    region: Region | None = None
    active: bool = True
    conflicts: list[EntityId] = Field(default_factory=list, max_length=10_000)


class Roster(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "replace": True,
                    "inspectors": [
                        {"inspector_id": "DD001", "name": "王一", "region": "210602"},
                        {"inspector_id": "DD002", "name": "李二", "region": "210603", "conflicts": [EXAMPLE_ID]},
                    ],
                }
            ]
        },
    )
    inspectors: list[InspectorIn] = Field(min_length=1, max_length=100_000)
    replace: bool = Field(default=False, description="deactivate inspectors not in this list")


class RosterOut(BaseModel):
    active: int
    inspectors: list[InspectorIn]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    detail: Any = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    model_version: str | None
    policy_version: str | None
    database: Literal["ok", "unavailable"]
    reasons: list[str] = Field(description="why the service is degraded; empty when ok")


# ---- inspection plans and outcomes (serving/plans.py, serving/inspections.py) ----------------------------

PlanPeriod = Literal["month", "quarter"]
InspectionOutcome = Literal["no_findings", "findings", "not_inspected"]
FindingKind = Literal[
    "infringement",
    "counterfeit_patent",
    "abnormal_filing",
    "agency_misconduct",
    "false_materials",
    "commitment_breach",
    "record_keeping",
    "other",
]
PlanTriggerName = Literal["complaint", "data_alert", "referral"]


class PlanIn(_Model):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"region": "210600", "year": 2026}]})
    region: Region = Field(description="the division the plan covers (a city's code covers its districts)")
    year: int = Field(ge=1900, le=9999, description="the plan year: at most next year")
    period: PlanPeriod = Field(default="month", description="one draw a month or a quarter")


class PlanTierCounts(BaseModel):
    population: int = Field(description="entities of the tier in the region at the draw")
    resting: int = Field(description="left out: inspected within their rest period (无事不扰)")
    eligible: int
    target: float = Field(description="the year's random inspections planned for the tier")
    expected: float = Field(description="inspections this draw expects: x")
    count: int = Field(description="selected: ⌊x⌋ or ⌈x⌉, its expectation x")
    probability: float = Field(description="each eligible entity's inclusion probability x / eligible")


class PlanDrawSummary(BaseModel):
    period: int
    draw_on: date
    draw_id: str
    tiers: dict[TierName, PlanTierCounts]
    resting: int = Field(description="entities left out of the draw")


class PlanTierProgress(BaseModel):
    planned: float
    drawn: int
    inspected: int
    findings: int
    not_inspected: int
    overdue: int = Field(description="drawn, no result grace_days after the period ended")


class TargetedProgress(BaseModel):
    tasks: dict[str, int] = Field(description="tasks per trigger: never counted as random")
    outcomes: dict[str, int]


class PlanProgress(BaseModel):
    periods: int
    periods_drawn: int
    tiers: dict[TierName, PlanTierProgress]
    total: PlanTierProgress
    targeted: TargetedProgress


class Plan(BaseModel):
    plan_id: str
    region: str
    year: int
    period: PlanPeriod
    policy_version: str
    rules: dict[str, Any] = Field(description="the policy's [plans] section the plan follows")
    created_at: datetime
    created_by: str | None
    draws: list[PlanDrawSummary]
    progress: PlanProgress


class PlanList(BaseModel):
    plans: list[Plan]


class PlanDraw(BaseModel):
    plan_id: str
    period: int
    draw_on: date
    tiers: dict[TierName, PlanTierCounts]
    draw: Draw


class Coverage(BaseModel):
    plan_id: str
    draws: int
    entities: int = Field(description="entities of the region now")
    positive: int = Field(description="entities with a positive inclusion probability in some draw")
    never: list[str] = Field(description="entities with none so far (the first 1000)")
    min_probability: float | None = Field(description="the least chance of being drawn at least once so far")


class TaskIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "entity_id": EXAMPLE_ID,
                    "trigger": "complaint",
                    "reference": "投诉〔2026〕12号",
                    "received_on": "2026-03-02",
                }
            ]
        },
    )
    entity_id: EntityId
    trigger: PlanTriggerName
    reference: str = Field(min_length=1, max_length=200, description="the complaint's, alert's or referral's number")
    received_on: BoundedDate


class Task(BaseModel):
    task_id: int
    plan_id: str
    entity_id: str
    trigger: PlanTriggerName
    reference: str
    received_on: date
    inspectors: list[str]
    created_by: str | None


class OutcomeIn(_Model):
    entity_id: EntityId
    inspector_id: str = Field(min_length=1, max_length=64, description="one of the inspectors assigned")
    outcome: InspectionOutcome
    finding_kind: FindingKind | None = Field(default=None, description="exactly when outcome is findings")
    findings: str | None = Field(default=None, max_length=4000)
    inspected_on: BoundedDate = Field(description="the day of the inspection (or of the attempt)")
    recorded_on: BoundedDate | None = Field(default=None, description="default: today")
    amount: float | None = Field(default=None, ge=0, le=1e13, description="fine in yuan, if any")


class OutcomesIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcomes": [
                        {
                            "entity_id": EXAMPLE_ID,
                            "inspector_id": "DD001",
                            "outcome": "findings",
                            "finding_kind": "counterfeit_patent",
                            "inspected_on": "2026-03-10",
                        }
                    ]
                }
            ]
        },
    )
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=10_000)


class RecordedOutcome(BaseModel):
    draw_id: str | None
    task_id: int | None
    entity_id: str
    inspector_id: str
    outcome: InspectionOutcome
    finding_kind: str | None
    findings: str | None
    inspected_on: date
    recorded_on: date
    event_id: str | None = Field(description="the new record the inspection made (none when not inspected)")
    event_type: InspectionEventType | None
    ledger_seq: int | None = Field(description="the ledger decision that added the record")
    recorded_by: str | None


# ---- measures, eligibility checks and credit commitments (serving/eligibility.py, serving/commitments.py) --


class MeasureInForce(BaseModel):
    code: str
    name_zh: str
    name_en: str
    effect: Literal["incentive", "restriction"]
    blocks: list[BenefitName] = Field(description="benefits a restriction refuses")
    priority: list[BenefitName] = Field(description="benefits an incentive gives priority for")
    basis: str = Field(description="the legal basis")
    records: list[dict[str, Any]] = Field(
        description="what triggers it: list entries (list, entered_on, basis, ends_on), broken commitments "
        "(event_id, recorded_on) or the tier"
    )
    until: date | None = Field(
        description="the day it ends: from then on it no longer applies (none: while its trigger lasts)"
    )


class Measures(BaseModel):
    entity_id: str
    on: date
    policy_version: str
    measures: list[MeasureInForce]


class EligibilityIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"entity_id": EXAMPLE_ID, "benefit": "funding", "on": "2026-06-01"}]},
    )
    entity_id: EntityId
    benefit: BenefitName
    on: BoundedDate | None = Field(default=None, description="default: today")


class EligibilityBatchIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"entity_ids": [EXAMPLE_ID], "benefit": "fast_track", "on": "2026-06-01"}]},
    )
    entity_ids: list[EntityId] = Field(min_length=1, max_length=1000)
    benefit: BenefitName
    on: BoundedDate | None = Field(default=None, description="default: today")


class Eligibility(BaseModel):
    entity_id: str
    benefit: BenefitName
    on: date
    allowed: bool = Field(description="no restriction in force blocks the benefit")
    priority: bool = Field(description="an incentive in force gives priority for it (and nothing blocks it)")
    because: list[MeasureInForce] = Field(description="the measures behind the answer: blocking first")
    policy_version: str


class EligibilityBatch(BaseModel):
    answers: list[Eligibility] = Field(description="in the order asked")


class CommitmentIn(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"entity_id": EXAMPLE_ID, "status": "signed", "on": "2026-03-01", "reference": "承诺书〔2026〕5号"},
                {
                    "entity_id": EXAMPLE_ID,
                    "status": "broken",
                    "on": "2026-09-01",
                    "commitment_id": "5f0c1e1b9d8a4c3e8f7a6b5c4d3e2f10",
                    "reference": "核查〔2026〕9号",
                },
            ]
        },
    )
    entity_id: EntityId
    status: Literal["signed", "kept", "broken"]
    on: BoundedDate = Field(description="signed, or found kept or broken, on this day")
    reference: str = Field(min_length=1, max_length=200, description="the commitment's or finding's number")
    commitment_id: str | None = Field(
        default=None, min_length=32, max_length=32, pattern="^[0-9a-f]{32}$", description="kept or broken: which"
    )
    benefit: BenefitName | None = Field(default=None, description="signed: the procedure it was signed for")


class Commitment(BaseModel):
    commitment_id: str
    entity_id: str
    status: Literal["signed", "kept", "broken"]
    on: date
    benefit: str | None
    reference: str
    event_id: str | None = Field(description="the ledger's new record (signed, broken)")
    ledger_seq: int | None
    recorded_by: str | None
    list_entry: dict[str, Any] | None = Field(description="broken: the list entry the policy brings, if any")


# ---- monitoring reports -------------------------------------------------------------------------------


class ReportRequest(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"as_of": "2025-12-31", "dataset": "var/demo/data"}]},
    )
    as_of: BoundedDate = Field(description="the month: the report watches the newest batch run at or before it")
    dataset: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        pattern=r"^[^\x00]+$",
        description="optional dataset folder under the import root, to set the run of a year before beside its "
        "realised outcomes",
    )


class ReportSummary(BaseModel):
    """A monthly monitoring report as issued (its figures at ``/v1/reports/{id}``, its page at ``…/html``)."""

    report_id: int
    as_of: date
    run_id: int
    model_version: str
    policy_version: str
    created_at: datetime
    created_by: str
    sha256: str = Field(description="of report.json: the same figures, the same report")


class ReportJob(_Job):
    """A report being computed in the background (``POST /v1/reports`` answers 202 with its Location)."""

    report_id: int | None = None
    report: ReportSummary | None = None


# ---- the decision ledger (serving/ledger.py, serving/decisions.py) -------------------------------------

LedgerKind = Literal["correct", "withdraw", "repair", "remove_listing", "withdraw_listing", "add_event"]
# Named here: inside the ledger models the field ``list`` (the contract's column) hides the builtin.
EvidenceCodes = list[Annotated[str, Field(min_length=1, max_length=64)]]
Texts = list[str]


class LedgerDecisionIn(_Model):
    """One decision for the ledger. Which fields a kind takes: ``correct`` event_id and the amended fields
    (event_type, occurred_on, recorded_on, quantity, amount); ``withdraw`` event_id; ``repair`` event_id,
    repaired_on, evidence; ``remove_listing`` entity_id, list, entered_on, removed_on, evidence;
    ``withdraw_listing`` (an entry annulled on review or entered in error) entity_id, list, entered_on;
    ``add_event`` event_id, entity_id, event_type, occurred_on, recorded_on, quantity, amount."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "repair",
                    "event_id": "E1",
                    "entity_id": EXAMPLE_ID,
                    "repaired_on": "2025-12-01",
                    "basis": "市监信修〔2025〕12号",
                    "evidence": ["penalty_fulfilled", "credit_commitment"],
                }
            ]
        },
    )
    kind: LedgerKind
    decided_on: BoundedDate | None = Field(default=None, description="default: repaired_on / removed_on, else today")
    event_id: str | None = Field(default=None, min_length=1, max_length=80)
    entity_id: EntityId | None = None
    list: ListName | None = None
    entered_on: BoundedDate | None = None
    event_type: EventType | None = None
    occurred_on: BoundedDate | None = None
    recorded_on: BoundedDate | None = None
    quantity: int | None = Field(default=None, ge=1, le=10**9)
    amount: float | None = Field(default=None, ge=0, le=1e15, allow_inf_nan=False)
    repaired_on: BoundedDate | None = None
    removed_on: BoundedDate | None = None
    basis: str | None = Field(default=None, max_length=2000, description="decision number or legal ground")
    evidence: EvidenceCodes | None = Field(
        default=None, max_length=20, description="codes of the policy's repair_requirements the applicant showed"
    )
    note: str | None = Field(default=None, max_length=2000)
    dataset: str | None = Field(
        default=None,
        max_length=4096,
        description="the dataset folder (under the import root) holding the record; default: the dataset of "
        "the entity's latest stored run",
    )


class LedgerDecision(BaseModel):
    seq: int
    decision_id: str
    kind: LedgerKind
    decided_on: date
    event_id: str | None
    entity_id: str | None
    list: str | None
    entered_on: date | None
    event_type: str | None
    occurred_on: date | None
    recorded_on: date | None
    quantity: int | None
    amount: float | None
    repaired_on: date | None
    removed_on: date | None
    basis: str | None
    evidence: Texts | None
    rule: str | None = Field(description="the policy's repair rule that allowed it")
    policy_version: str | None
    source: str | None
    note: str | None
    decided_by: str | None
    recorded_at: datetime


class LedgerPage(BaseModel):
    seq: int = Field(description="the ledger's latest seq")
    decisions: list[LedgerDecision]
