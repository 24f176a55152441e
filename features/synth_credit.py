"""A third kind of synthetic world: a public credit platform's export (``ipcredit demo-data --profile credit``).

What a city's or province's credit platform (信用平台, 国家企业信用信息公示系统) publishes about its market
entities, rather than what an IP office records: administrative penalties and court judgments, refusals to
comply, credit commitments and their breaches, late annual reports, and the lists they lead to
(abnormal operation, serious violations, untrustworthy entities, the red list), each entry with its
decision number. No filings, grants, inspections, complaints or takedowns: the platform does not hold
them. Most entities have no adverse record at all.

Where it differs from the other profiles is in the recording, as real exports do:

- **a migration**: the platform opened on ``PLATFORM_OPENED``; everything decided before was entered in
  bulk on that day, so the early years are only known from then on;
- **a backlog**: a share of records is entered months to two years after the decision (a correction, a
  late transfer from another department), so what was known at a date lags what had happened;
- **credit repair is common**: about 40 % of penalties and breaches are repaired after the publicity
  period, and from then on they no longer count (and the untrustworthy entry ends).

Each entity carries a hidden trait ``z`` (a fixed level plus a yearly mean-reverting drift) that drives
penalties, judgments, refusals, breaches and late reports, and lowers the chance of repair. Everything is
vectorised over entities; Python loops run over years. ``CreditWorld.truth`` holds ``z`` per entity and year
(never written with the dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.schema import ADVERSE_CODES, ENTITIES, EVENTS, LISTS, RELATIONS
from features.synth import World, _CodeKey, _codes, check_world
from features.synth_sparse import _days, _logistic

__all__ = ["PLATFORM_OPENED", "CreditWorld", "generate_credit"]

# (division code, city) of six prefecture-level cities of one province
CITIES = (
    ("210100", "沈阳"),
    ("210200", "大连"),
    ("210300", "鞍山"),
    ("210600", "丹东"),
    ("210800", "营口"),
    ("211100", "盘锦"),
)
INDUSTRIES = dict(C=24.0, F=30.0, I=8.0, L=10.0, M=7.0, H=8.0, E=6.0, K=3.0, R=3.0, G=1.0)
P_AGENCY = 0.03
P_ONLINE = 0.12
P_CAPITAL_KNOWN = 0.85
PLATFORM_OPENED = date(2015, 6, 30)  # records decided before it were entered in bulk on this day
P_BACKLOG = 0.06  # a record entered 2-24 months after its decision
LEVEL_SD = 1.0
Z_PHI = 0.85
Z_SIGMA = 0.4
PENALTIES_PER_YEAR = 0.012  # infringement and counterfeit penalties at z = 0, times e^z (online sellers x 1.8)
JUDGMENTS_PER_YEAR = 0.004  # times e^{0.8 z}
AGENCY_SANCTIONS_PER_YEAR = 0.03  # of agencies, times e^z
LATE_REPORT_LOGIT = -3.6  # + 0.9 z, + 1.0 in the first two years
COMMITMENTS_PER_YEAR = 0.02  # twice that from 2019
BREACH_LOGIT = -2.6  # + z
REFUSAL_LOGIT = -2.8  # of a penalty, + 0.8 z
REPAIR_LOGIT = 0.6  # - 0.8 z
GRAVE_FINE = 200_000  # yuan: a penalty this large puts the entity on the serious-violation list
P_ABNORMAL_LISTED = 0.8  # a late annual report moves the entity into the abnormal-operation directory
P_ABNORMAL_FIXED = 0.85  # ... and most file it and are moved out
LAPSE_DAYS = 1096


@dataclass(frozen=True)
class CreditWorld(World):
    """The contract tables (no links) plus the hidden trait: ``truth`` has ``entity_id``, ``year``, ``z``."""

    truth: pd.DataFrame | None = None


def _to_dates(days: np.ndarray) -> np.ndarray:
    return pd.to_datetime(days, unit="D").date


def generate_credit(
    n_entities: int, seed: int = 0, *, start: date = date(2012, 1, 1), end: date = date(2025, 12, 31)
) -> CreditWorld:
    """A credit-platform world of ``n_entities`` entities, determined by its arguments.

    No event occurs before ``start``; nothing is recorded, repaired, listed or removed after ``end``.
    """
    check_world(n_entities, start, end)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC4ED17]))
    n = n_entities
    first_day, last_day = _days(start), _days(end)
    entities, registered, city, level = _entities(rng, n, first_day, last_day, seed)
    ids = entities["entity_id"].to_numpy()
    agency = (entities["kind"] == "agency").to_numpy()
    online = entities["online_seller"].to_numpy(dtype=bool)

    rows: list[tuple[np.ndarray, np.ndarray, str, np.ndarray | None]] = []  # (entity, day, type, amount)
    truth: list[pd.DataFrame] = []
    drift = rng.normal(0.0, Z_SIGMA / np.sqrt(1 - Z_PHI**2), n)
    for year in range(start.year, end.year + 1):
        drift = Z_PHI * drift + rng.normal(0.0, Z_SIGMA, n)
        z = level + drift
        truth.append(pd.DataFrame({"entity_id": ids, "year": year, "z": z}))
        lo, hi = max(_days(date(year, 1, 1)), first_day), min(_days(date(year, 12, 31)), last_day)
        active = registered < hi
        ez = np.exp(np.minimum(z, 3.0)) * active

        def day_after(ent: np.ndarray, _lo: int = lo, _hi: int = hi) -> np.ndarray:
            return np.maximum(rng.integers(_lo, _hi + 1, len(ent)), registered[ent] + 1)

        def draw(rate: np.ndarray) -> np.ndarray:
            return np.repeat(np.arange(n), rng.poisson(rate))

        penalised = draw(PENALTIES_PER_YEAR * ez * np.where(online, 1.8, 1.0) * ~agency)
        p_day = day_after(penalised)
        counterfeit = rng.random(len(penalised)) < 0.25
        fines = np.round(np.exp(np.log(20_000) + 0.3 * z[penalised] + rng.normal(0, 1.0, len(penalised))), -2)
        fines = np.clip(fines, 5_000, 1_000_000)
        rows.append((penalised[~counterfeit], p_day[~counterfeit], "infringement_penalty", fines[~counterfeit]))
        rows.append((penalised[counterfeit], p_day[counterfeit], "counterfeit_patent_penalty", fines[counterfeit]))
        sanctioned = draw(AGENCY_SANCTIONS_PER_YEAR * ez * agency)
        s_fines = np.round(rng.lognormal(np.log(30_000), 0.5, len(sanctioned)), -2)
        rows.append((sanctioned, day_after(sanctioned), "agency_misconduct", s_fines))
        judged = draw(JUDGMENTS_PER_YEAR * ez**0.8 * ~agency)
        rows.append(
            (judged, day_after(judged), "infringement_judgment", np.round(rng.lognormal(11, 1.2, len(judged)), -2))
        )
        refusing = rng.random(len(penalised)) < _logistic(REFUSAL_LOGIT + 0.8 * z[penalised])
        r_day = p_day[refusing] + rng.integers(60, 240, int(refusing.sum()))
        rows.append((penalised[refusing], r_day, "refusal_to_comply", None))

        signed = draw(COMMITMENTS_PER_YEAR * (2.0 if year >= 2019 else 1.0) * active)
        k_day = day_after(signed)
        rows.append((signed, k_day, "commitment_signed", None))
        broken = rng.random(len(signed)) < _logistic(BREACH_LOGIT + z[signed])
        rows.append(
            (signed[broken], k_day[broken] + rng.integers(30, 365, int(broken.sum())), "commitment_breach", None)
        )

        # annual reports for the previous year are due on 30 June
        july = _days(date(year, 7, 1))
        due = (registered < _days(date(year, 1, 1))) & (first_day <= july <= last_day)
        young = registered > _days(date(year - 2, 7, 1))
        late = np.flatnonzero(due & (rng.random(n) < _logistic(LATE_REPORT_LOGIT + 0.9 * z + 1.0 * young)))
        rows.append((late, np.full(len(late), july), "annual_report_late", None))

    events = _recorded(rng, rows, ids, first_day, last_day)
    events = _repaired(rng, events, level, last_day)
    lists = _lists(rng, events, ids, city, level, registered, last_day)
    events = events.drop(columns=["ent"])
    return CreditWorld(
        entities=entities,
        events=events[EVENTS.column_names],
        lists=lists[LISTS.column_names],
        relations=pd.DataFrame({c: pd.Series(dtype="object") for c in RELATIONS.column_names}),
        truth=pd.concat(truth, ignore_index=True) if truth else None,
    )


def _entities(rng: np.random.Generator, n: int, first_day: int, last_day: int, seed: int):
    registered = rng.integers(first_day - 20 * 365, last_day - 180, n) if n else np.zeros(0, np.int64)
    c = rng.integers(0, len(CITIES), n)
    region = np.asarray([code for code, _ in CITIES])[c]
    city = np.asarray([name for _, name in CITIES])[c]
    agency = rng.random(n) < P_AGENCY
    individual = ~agency & (rng.random(n) < 0.15)
    prefix = np.where(agency, "91", np.where(individual, "92", "91"))
    new_style = registered >= _days(date(2015, 10, 1))
    ids = _codes(np.arange(n), prefix, region, new_style, _CodeKey(seed ^ 0xC4)) if n else np.zeros(0, dtype=str)
    weights = np.asarray(list(INDUSTRIES.values()))
    industry = np.where(
        agency, "L", np.asarray(list(INDUSTRIES))[rng.choice(len(INDUSTRIES), n, p=weights / weights.sum())]
    )
    capital = np.where(rng.random(n) < P_CAPITAL_KNOWN, np.round(rng.lognormal(4.0, 1.3, n), 1), np.nan)
    names = [
        f"{ct}{'知识产权代理' if a else ('个体经营部' if ind else '商贸')}{i:06d}{'有限公司' if not ind else ''}"
        for i, (ct, a, ind) in enumerate(zip(city, agency, individual, strict=True))
    ]
    entities = pd.DataFrame(
        {
            "entity_id": ids,
            "name": names,
            "kind": np.where(agency, "agency", "enterprise"),
            "industry": industry,
            "region": region,
            "registered_on": _to_dates(registered),
            "registered_capital": capital,
            "online_seller": ~agency & (rng.random(n) < P_ONLINE),
            "locations": pd.array([pd.NA] * n, dtype="Int64"),  # not reported
        }
    )[ENTITIES.column_names]
    return entities, registered, city, rng.normal(0.0, LEVEL_SD, n)


def _dates_or_none(days: np.ndarray) -> pd.Series:
    """Days since 1970 as dates, with None where the day is -1 (no date)."""
    return pd.Series(_to_dates(np.maximum(days, 0)), dtype=object).where(days >= 0, None)


def _recorded(rng, rows, ids: np.ndarray, first_day: int, last_day: int) -> pd.DataFrame:
    """Event rows with their record dates: a few weeks after the decision, months to two years for a backlog,
    the platform's opening day for everything decided before it; nothing before ``first_day`` occurs and
    nothing recorded after ``last_day`` is kept."""
    ent = np.concatenate([r[0] for r in rows]).astype(np.int64)
    day = np.concatenate([r[1] for r in rows]).astype(np.int64)
    kind = np.concatenate([np.full(len(r[0]), r[2], dtype=object) for r in rows])
    amount = np.concatenate([r[3] if r[3] is not None else np.full(len(r[0]), np.nan) for r in rows])
    lag = rng.integers(5, 41, len(ent)) + np.where(rng.random(len(ent)) < P_BACKLOG, rng.integers(60, 730, len(ent)), 0)
    recorded = np.maximum(day + lag, _days(PLATFORM_OPENED))
    keep = (day >= first_day) & (recorded <= last_day)
    table = pd.DataFrame(
        {
            "ent": ent[keep],
            "entity_id": ids[ent[keep]],
            "event_type": kind[keep],
            "occurred": day[keep],
            "recorded": recorded[keep],
            "quantity": np.ones(int(keep.sum()), dtype=np.int64),
            "amount": amount[keep],
        }
    )
    table = table.sort_values(["recorded", "entity_id", "event_type"], kind="stable").reset_index(drop=True)
    table["event_id"] = [f"C{i:09d}" for i in range(1, len(table) + 1)]
    table["occurred_on"] = _to_dates(table["occurred"].to_numpy())
    table["recorded_on"] = _to_dates(table["recorded"].to_numpy())
    return table


_REPAIRABLE = (
    "infringement_penalty",
    "counterfeit_patent_penalty",
    "agency_misconduct",
    "commitment_breach",
    "refusal_to_comply",
)


def _repaired(rng, events: pd.DataFrame, level: np.ndarray, last_day: int) -> pd.DataFrame:
    """Credit repair after the publicity period (six months at least), likelier for the better-behaved; a
    repair granted after ``last_day`` is not yet known."""
    repairable = events["event_type"].isin(_REPAIRABLE).to_numpy()
    ent = events["ent"].to_numpy()
    yes = repairable & (rng.random(len(events)) < _logistic(REPAIR_LOGIT - 0.8 * level[ent]))
    when = events["recorded"].to_numpy() + 185 + rng.exponential(200, len(events)).astype(np.int64)
    events["repaired"] = np.where(yes & (when <= last_day), when, -1)
    events["repaired_on"] = _dates_or_none(events["repaired"].to_numpy())
    return events


def _lists(rng, events: pd.DataFrame, ids, city, level, registered, last_day: int) -> pd.DataFrame:
    """The entries the records lead to, each with its decision number; entries after ``last_day`` are not
    yet made and removals after it not yet known."""
    parts: list[pd.DataFrame] = []

    def add(name: str, ent: np.ndarray, entered: np.ndarray, removed: np.ndarray, basis: np.ndarray) -> None:
        keep = entered <= last_day
        removed = np.where((removed >= 0) & (removed <= last_day), np.maximum(removed, entered), -1)[keep]
        parts.append(
            pd.DataFrame(
                {
                    "entity_id": ids[ent[keep]],
                    "list": name,
                    "entered_on": _to_dates(entered[keep]),
                    "removed_on": _dates_or_none(removed),
                    "basis": basis[keep],
                }
            )
        )

    def numbers(ent: np.ndarray, entered: np.ndarray, word: str) -> np.ndarray:
        year = pd.to_datetime(entered, unit="D").year.astype(str).to_numpy()
        num = rng.integers(1, 900, len(ent)).astype(str)
        return np.asarray(
            [f"{c}市监{word}〔{y}〕{k}号" for c, y, k in zip(city[ent], year, num, strict=True)], dtype=object
        )

    kind = events["event_type"].to_numpy()
    ent = events["ent"].to_numpy()
    rec = events["recorded"].to_numpy()
    rep = events["repaired"].to_numpy()

    late = np.flatnonzero((kind == "annual_report_late") & (rng.random(len(events)) < P_ABNORMAL_LISTED))
    entered = rec[late] + rng.integers(0, 31, len(late))
    fixed = rng.random(len(late)) < P_ABNORMAL_FIXED
    removed = np.where(fixed, entered + 20 + rng.exponential(100, len(late)).astype(np.int64), -1)
    basis = numbers(ent[late], entered, "异")
    basis[rng.random(len(late)) < 0.1] = None  # the directory allows an entry without one
    add("abnormal_operation", ent[late], entered, removed, basis)

    fine = events["amount"].to_numpy()
    grave = np.flatnonzero(np.isin(kind, ("infringement_penalty", "counterfeit_patent_penalty")) & (fine >= GRAVE_FINE))
    entered = rec[grave] + rng.integers(30, 61, len(grave))
    early = rng.random(len(grave)) < 0.35
    removed = np.where(early, entered + 365 + rng.integers(0, 400, len(grave)), -1)
    add("serious_violation", ent[grave], entered, removed, numbers(ent[grave], entered, "信"))

    bad = np.flatnonzero(np.isin(kind, ("refusal_to_comply", "commitment_breach")))
    entered = rec[bad] + rng.integers(0, 21, len(bad))
    expiry = entered + rng.integers(365, 411, len(bad))
    removed = np.where(rep[bad] >= 0, np.minimum(rep[bad], expiry), expiry)
    add("untrustworthy", ent[bad], entered, removed, numbers(ent[bad], entered, "失"))

    # the red list: long-established entities with a clean record, until their next adverse record
    adverse = events[events["event_type"].isin(ADVERSE_CODES)]
    candidates = np.flatnonzero((level < -0.6) & (rng.random(len(level)) < 0.25))
    year_lo = np.maximum(pd.to_datetime(registered[candidates], unit="D").year + 3, 2016)
    year_hi = pd.Timestamp(last_day, unit="D").year - 1
    ok = year_lo <= year_hi
    candidates, year_lo = candidates[ok], year_lo[ok]
    years = year_lo + (rng.random(len(candidates)) * (year_hi - year_lo + 1)).astype(int)
    entered = np.asarray([_days(date(int(y), 12, 20)) for y in years], dtype=np.int64)
    pairs = pd.DataFrame({"ent": candidates, "entered": entered, "i": np.arange(len(candidates))}).merge(
        adverse[["ent", "recorded"]], on="ent"
    )
    before = pairs.loc[pairs["recorded"] < pairs["entered"], "i"].unique()
    clean = ~np.isin(np.arange(len(candidates)), before)
    after = pairs[pairs["recorded"] >= pairs["entered"]].groupby("i")["recorded"].min()
    first_after = np.full(len(candidates), -1, dtype=np.int64)
    first_after[after.index.to_numpy()] = after.to_numpy()
    removed = np.where(first_after >= 0, first_after, entered + 3 * 365)
    red = np.asarray(
        [
            f"{c}信用办〔{pd.Timestamp(d, unit='D').year}〕红字{k}号"
            for c, d, k in zip(city[candidates], entered, rng.integers(1, 300, len(candidates)), strict=True)
        ],
        dtype=object,
    )
    add("red", candidates[clean], entered[clean], removed[clean], red[clean])

    lists = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LISTS.column_names)
    return lists.sort_values(["entered_on", "entity_id", "list"], kind="stable").reset_index(drop=True)
