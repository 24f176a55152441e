"""A second kind of synthetic world: sparse yearly inspection records (``ipcredit demo-data --profile sparse``).

Real deliveries look more like this than like the demo world: a public record of routine inspections of
one industry, about one inspection per entity a year, a span of years with no records at all (a
programme paused, a system migrated), no list memberships, no IP agencies, no online sellers, most
registered capitals missing. Each entity carries a hidden risk trait ``z`` (a fixed level plus a yearly
mean-reverting drift) that drives whether an inspection finds a problem, how often complaints arrive and
whether a finding leads to a penalty; a failed inspection is followed up a few months later. So the past
predicts the future, but only through a few records a year.

Everything is vectorised over entities; Python loops run over years. ``SparseWorld.truth`` holds ``z``
per entity and year (never written with the dataset), so a model's ranking can be compared with an
oracle's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.schema import ENTITIES, EVENTS, LISTS, RELATIONS
from features.synth import World, _CodeKey, _codes, check_world

__all__ = ["SparseWorld", "generate_sparse"]

REGIONS = ("330100", "330200", "330300", "330400")  # four prefecture-level cities of one province
INDUSTRY = "H"  # accommodation and catering: routinely inspected, rarely on a list
GAP_YEARS = (2013, 2016)  # first and last year without any record
P_INSPECT = 0.55  # chance of a routine inspection per entity-year
P_INSPECT_AFTER_FAIL = 0.85  # a finding last year puts the entity on next year's plan
FAIL_LOGIT = -1.7  # at z = 0, no earlier finding
FAIL_Z = 1.0
FAIL_HISTORY = 0.5  # a finding in the entity's past raises the chance of the next one
FOLLOW_UP_FAIL_LOGIT = -2.4
P_PENALTY_AFTER_FAIL = 0.25  # a finding leads to an infringement penalty
COMPLAINTS_PER_YEAR = 0.12  # at z = 0, times exp(0.8 z)
Z_PHI = 0.8
Z_SIGMA = 0.45
P_CAPITAL_KNOWN = 0.3


@dataclass(frozen=True)
class SparseWorld(World):
    """The contract tables (no links) plus the hidden trait: ``truth`` has ``entity_id``, ``year``, ``z``."""

    truth: pd.DataFrame | None = None


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def generate_sparse(
    n_entities: int,
    seed: int = 0,
    *,
    start: date = date(2006, 1, 1),
    end: date = date(2025, 12, 31),
    gap_years: tuple[int, int] | None = GAP_YEARS,
) -> SparseWorld:
    """A sparse world of ``n_entities`` inspected entities, determined by its arguments.

    No event occurs before ``start``; nothing is recorded after ``end``; no record at all occurs or is
    recorded in the years ``gap_years`` (inclusive; ``None`` for no gap).
    """
    check_world(n_entities, start, end)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5BA5E]))
    n = n_entities
    first_day, last_day = _days(start), _days(end)
    registered = rng.integers(first_day - 15 * 365, last_day - 365, n) if n else np.zeros(0, np.int64)
    region = np.asarray(REGIONS)[rng.integers(0, len(REGIONS), n)]
    new_style = registered >= _days(date(2015, 10, 1))
    prefix = np.where(rng.random(n) < 0.2, "92", "91")  # individual businesses and companies
    ids = _codes(np.arange(n), prefix, region, new_style, _CodeKey(seed)) if n else np.zeros(0, dtype=str)
    capital = np.where(rng.random(n) < P_CAPITAL_KNOWN, np.round(rng.lognormal(3.5, 1.2, n), 1), np.nan)
    entities = pd.DataFrame(
        {
            "entity_id": ids,
            "name": [f"样本餐饮店{i:06d}" for i in range(n)],
            "kind": "enterprise",
            "industry": INDUSTRY,
            "region": region,
            "registered_on": pd.to_datetime(registered, unit="D").date,
            "registered_capital": capital,
            "online_seller": False,
            "locations": pd.array([pd.NA] * n, dtype="Int64"),  # not reported
        }
    )[ENTITIES.column_names]

    level = rng.normal(0.0, 0.8, n)
    drift = np.zeros(n)
    failed_before = np.zeros(n, dtype=bool)
    failed_last_year = np.zeros(n, dtype=bool)
    events: list[pd.DataFrame] = []
    truth: list[pd.DataFrame] = []
    for year in range(start.year, end.year + 1):
        drift = Z_PHI * drift + rng.normal(0.0, Z_SIGMA, n)
        z = level + drift
        truth.append(pd.DataFrame({"entity_id": ids, "year": year, "z": z}))
        year_start, year_end = max(_days(date(year, 1, 1)), first_day), min(_days(date(year, 12, 31)), last_day)
        if gap_years is not None and gap_years[0] <= year <= gap_years[1]:
            rng.random(4 * n)  # keep the later years' draws independent of whether there is a gap
            failed_last_year[:] = False
            continue
        active = registered < year_end
        p_inspect = np.where(failed_last_year, P_INSPECT_AFTER_FAIL, P_INSPECT)
        inspected = active & (rng.random(n) < p_inspect)
        day = np.maximum(rng.integers(year_start, year_end + 1, n), registered + 1)
        failed = inspected & (rng.random(n) < _logistic(FAIL_LOGIT + FAIL_Z * z + FAIL_HISTORY * failed_before))
        events.append(_rows(ids, inspected, day, np.where(failed, "inspection_failed", "inspection_passed")))
        follow_up_day = day + rng.integers(30, 121, n)
        follow_up_failed = rng.random(n) < _logistic(FOLLOW_UP_FAIL_LOGIT + FAIL_Z * z)
        follow_up = failed & (follow_up_day <= year_end)
        kinds = np.where(follow_up_failed, "inspection_failed", "inspection_passed")
        events.append(_rows(ids, follow_up, follow_up_day, kinds))
        penalty = failed & (rng.random(n) < P_PENALTY_AFTER_FAIL)
        penalty_day = np.minimum(day + rng.integers(20, 90, n), year_end)
        events.append(_rows(ids, penalty, penalty_day, np.full(n, "infringement_penalty"), amount=rng))
        complaints = rng.poisson(COMPLAINTS_PER_YEAR * np.exp(0.8 * z)) * active
        complaint_day = np.maximum(rng.integers(year_start, year_end + 1, n), registered + 1)
        events.append(_rows(ids, complaints > 0, complaint_day, np.full(n, "complaint_received"), quantity=complaints))
        failed_before |= failed
        failed_last_year = failed

    table = pd.concat(events, ignore_index=True) if events else pd.DataFrame(columns=EVENTS.column_names)
    delay = rng.integers(0, 46, len(table))
    occurred = table.pop("day").to_numpy(dtype=np.int64)
    recorded = occurred + delay
    keep = recorded <= last_day
    if gap_years is not None:  # a record made late must not fall into the gap either
        recorded_year = pd.to_datetime(recorded, unit="D").year.to_numpy()
        keep &= ~((recorded_year >= gap_years[0]) & (recorded_year <= gap_years[1]))
    table = table[keep].reset_index(drop=True)
    table["occurred_on"] = pd.to_datetime(occurred[keep], unit="D").date
    table["recorded_on"] = pd.to_datetime(recorded[keep], unit="D").date
    table = table.sort_values(["recorded_on", "entity_id"], kind="stable").reset_index(drop=True)
    table["event_id"] = [f"S{i:09d}" for i in range(1, len(table) + 1)]
    table["repaired_on"] = None
    lists = pd.DataFrame({c: pd.Series(dtype="object") for c in LISTS.column_names})
    return SparseWorld(
        entities=entities,
        events=table[EVENTS.column_names],
        lists=lists,
        # no links: the sparse profile is a world of unrelated entities
        relations=pd.DataFrame({c: pd.Series(dtype="object") for c in RELATIONS.column_names}),
        truth=pd.concat(truth, ignore_index=True) if truth else None,
    )


def _rows(
    ids: np.ndarray,
    mask: np.ndarray,
    day: np.ndarray,
    event_type: np.ndarray,
    *,
    quantity: np.ndarray | None = None,
    amount: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Event rows for the entities in ``mask`` (without ids and record dates yet)."""
    k = int(mask.sum())
    return pd.DataFrame(
        {
            "entity_id": ids[mask],
            "event_type": event_type[mask],
            "day": day[mask],
            "quantity": np.ones(k, dtype=np.int64) if quantity is None else quantity[mask].astype(np.int64),
            "amount": np.round(amount.lognormal(9.0, 0.8, k), -2) if amount is not None else np.full(k, np.nan),
        }
    )
