"""Seeded feature frames with the catalogue's columns, for model tests that do not need the event pipeline.

``feature_frame`` draws entities with a hidden propensity, derives consistent point-in-time features from
it (nested windows: the 3-month count never exceeds the 12-month one, and so on) and an outcome from a
known logistic truth with an interaction, so a model has something real to learn and a calibrator
something real to fix.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.build import conform
from features.catalogue import CATALOGUE, CATEGORIES, FEATURE_NAMES
from features.schema import ADVERSE_CODES
from features.uscc import check_character


def entity_ids(n: int, offset: int = 0) -> list[str]:
    ids = []
    for i in range(offset, offset + n):
        body = f"91210600{i:09d}"
        ids.append(body + check_character(body))
    return ids


def feature_frame(n: int, as_of: date = date(2024, 12, 31), seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """``n`` entities' features at ``as_of`` and an ``outcome`` column; ``drift`` shifts the base rate."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    frame: dict[str, object] = {
        "entity_id": entity_ids(n),
        "as_of": [as_of] * n,
    }
    age = rng.exponential(8.0, n) + 0.1
    capital = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(6, 1.5, n))
    agency = rng.random(n) < 0.06
    online = rng.random(n) < 0.25
    industry = rng.choice(CATEGORIES["industry"], n, p=_industry_weights())
    lam36 = np.exp(-2.2 + 1.1 * risk)
    adverse36 = rng.poisson(lam36)
    adverse24 = rng.binomial(adverse36, 0.7)
    adverse12 = rng.binomial(adverse24, 0.55)
    adverse3 = rng.binomial(adverse12, 0.3)
    adverse_all = adverse36 + rng.poisson(0.3 * lam36)
    by_type = rng.multinomial(1, np.full(len(ADVERSE_CODES), 1 / len(ADVERSE_CODES)), size=n)
    per_type = by_type * adverse36[:, None]
    complaints12 = rng.poisson(np.exp(-2.0 + 0.8 * risk + 0.8 * online))
    takedowns12 = rng.poisson(np.exp(-3.0 + 0.7 * risk + 1.6 * online))
    filings = rng.poisson(np.exp(1.0 + 0.3 * rng.normal(size=n)), size=n)
    frame |= {
        "age_years": age,
        "registered_capital": capital,
        "is_agency": agency,
        "online_seller": online,
        "industry": industry,
        "adverse_3m": adverse3,
        "adverse_12m": adverse12,
        "adverse_24m": adverse24,
        "adverse_36m": adverse36,
        "adverse_all": adverse_all,
    }
    for j, code in enumerate(ADVERSE_CODES):
        frame[f"{code}_36m"] = per_type[:, j]
    frame["abnormal_patent_filing_12m"] = rng.binomial(frame["abnormal_patent_filing_36m"], 0.4)
    frame["malicious_trademark_filing_12m"] = rng.binomial(frame["malicious_trademark_filing_36m"], 0.4)
    frame["adverse_types_36m"] = (per_type > 0).sum(axis=1)
    frame["years_since_adverse"] = np.where(
        adverse_all > 0, np.where(adverse12 > 0, rng.uniform(0, 1, n), rng.uniform(1, 6, n)), 10.0
    )
    frame["fines_36m"] = adverse36 * rng.gamma(2.0, 20_000, n)
    frame["complaint_received_3m"] = rng.binomial(complaints12, 0.3)
    frame["complaint_received_12m"] = complaints12
    frame["platform_takedown_3m"] = rng.binomial(takedowns12, 0.3)
    frame["platform_takedown_12m"] = takedowns12
    frame["annual_report_late_24m"] = rng.binomial(2, 1 / (1 + np.exp(1.5 - 0.6 * risk)))
    for code in ("patent_filed", "trademark_filed"):
        frame[f"{code}_36m"] = rng.poisson(3 * filings)
        frame[f"{code}_12m"] = rng.binomial(frame[f"{code}_36m"], 0.33)
        frame[f"{code}_3m"] = rng.binomial(frame[f"{code}_12m"], 0.25)
    frame["patent_granted_36m"] = rng.binomial(frame["patent_filed_36m"], 0.5)
    frame["filing_burst_ratio"] = frame["patent_filed_3m"] / (frame["patent_filed_36m"] / 11.0 + 1.0)
    frame["grant_ratio_36m"] = np.where(
        frame["patent_filed_36m"] > 0, frame["patent_granted_36m"] / np.maximum(frame["patent_filed_36m"], 1), np.nan
    )
    frame["inspection_passed_36m"] = rng.poisson(np.exp(-1.5 - 0.3 * risk))
    frame["commitment_signed_36m"] = rng.poisson(0.3, n)
    frame["honours_36m"] = rng.binomial(1, 1 / (1 + np.exp(3.5 + 0.8 * risk)))
    frame["ipms_certified_36m"] = rng.binomial(1, 1 / (1 + np.exp(2.5 + 0.5 * risk)))
    frame["years_since_clean_inspection"] = np.where(rng.random(n) < 0.4, rng.uniform(0, 5, n), 10.0)
    frame["on_red_list"] = (frame["honours_36m"] > 0) & (adverse36 == 0)
    frame["on_untrustworthy_list"] = (adverse12 > 0) & (rng.random(n) < 0.3)
    frame["on_serious_violation_list"] = (adverse36 > 1) & (rng.random(n) < 0.15)
    frame["on_abnormal_operation_list"] = rng.random(n) < (0.02 + 0.05 * (frame["annual_report_late_24m"] > 0))
    # Long memory (drawn from a generator of their own, so the features above and the outcome stay as they
    # were): recent records count almost fully, older ones fade; inspections over the whole history.
    extra = np.random.default_rng([seed, 1])
    frame["adverse_decayed"] = (
        0.9 * adverse3 + 0.75 * (adverse12 - adverse3) + 0.5 * (adverse36 - adverse12) + 0.2 * (adverse_all - adverse36)
    )
    failed36 = frame["inspection_failed_36m"]
    failed_all = failed36 + extra.poisson(0.1, n)
    frame["years_since_failed_inspection"] = np.where(
        failed36 > 0, extra.uniform(0, 3, n), np.where(failed_all > 0, extra.uniform(3, 8, n), 10.0)
    )
    frame["inspection_passed_all"] = frame["inspection_passed_36m"] + extra.poisson(0.5, n)
    frame["inspection_fail_share_all"] = (failed_all + 1) / (failed_all + frame["inspection_passed_all"] + 2)
    # The inspection year's counts, a share of the 36-month ones (a generator of their own).
    year = np.random.default_rng([seed, 4])
    passed36 = frame["inspection_passed_36m"]
    frame["inspection_failed_this_year"] = year.binomial(failed36, 0.15)
    frame["inspection_passed_this_year"] = year.binomial(passed36, 0.15)
    frame["inspection_failed_last_year"] = year.binomial(failed36 - frame["inspection_failed_this_year"], 0.35)
    frame["inspection_passed_last_year"] = year.binomial(passed36 - frame["inspection_passed_this_year"], 0.35)
    frame["as_of_month"] = pd.to_datetime(pd.Series(frame["as_of"])).dt.month.to_numpy()
    frame["complaints_decayed"] = 0.8 * complaints12 + 0.2 * extra.poisson(0.5 * complaints12 + 0.1)
    # Whole-history totals of the recurring signals and filings, from a generator of their own too.
    totals = np.random.default_rng([seed, 3])
    frame["complaint_received_all"] = complaints12 + totals.poisson(1.5 * complaints12 + 0.2)
    frame["platform_takedown_all"] = takedowns12 + totals.poisson(1.5 * takedowns12 + 0.1)
    frame["takedowns_decayed"] = 0.8 * takedowns12 + 0.3 * (frame["platform_takedown_all"] - takedowns12)
    frame["annual_report_late_all"] = frame["annual_report_late_24m"] + totals.binomial(3, 0.05, n)
    frame["late_reports_decayed"] = 0.6 * frame["annual_report_late_24m"] + 0.2 * (
        frame["annual_report_late_all"] - frame["annual_report_late_24m"]
    )
    for code in ("patent_filed", "patent_granted", "trademark_filed"):
        frame[f"{code}_all"] = frame[f"{code}_36m"] + totals.poisson(0.5 * frame[f"{code}_36m"] + 0.1)
    # Business premises, reported for a third of the entities (an optional column).
    frame["locations"] = np.where(totals.random(n) < 1 / 3, 1 + totals.poisson(0.5, n), np.nan)
    # Relationships (issue 16), from a generator of their own as well: most entities have no link.
    linked = np.random.default_rng([seed, 2])
    related = np.where(linked.random(n) < 0.1, linked.integers(1, 4, n), 0)
    frame["related_entities"] = related
    frame["related_serious_violation"] = linked.binomial(related, 0.02)
    frame["related_untrustworthy"] = linked.binomial(related, 0.03)
    frame["related_adverse_36m"] = linked.poisson(0.4 * related)
    frame["related_adverse_12m"] = linked.binomial(frame["related_adverse_36m"], 0.4)
    clients = np.where(agency, linked.poisson(5.0, n), 0)
    with_findings = linked.binomial(clients, 0.05)
    frame["agency_clients_36m"] = clients
    frame["agency_client_findings_36m"] = with_findings + linked.binomial(with_findings, 0.3)
    frame["agency_client_finding_share_36m"] = np.where(clients > 0, with_findings / np.maximum(clients, 1), 0.0)
    frame["client_agency_adverse_36m"] = np.where(~agency & (linked.random(n) < 0.4), linked.poisson(0.3, n), 0)
    # Commitments still being checked: a share of the 36-month ones (a generator of their own).
    checked = np.random.default_rng([seed, 5])
    frame["commitment_signed_12m"] = checked.binomial(frame["commitment_signed_36m"], 0.33)
    frame["commitment_signed_6m"] = checked.binomial(frame["commitment_signed_12m"], 0.5)
    frame["commitment_signed_3m"] = checked.binomial(frame["commitment_signed_6m"], 0.5)
    # Red-list entries made, in force or ended: the one in force, and now and then one that lapsed.
    frame["red_list_entries"] = frame["on_red_list"].astype(np.int64) + np.random.default_rng([seed, 6]).binomial(
        1, 0.03, n
    )
    out = conform(pd.DataFrame(frame)[["entity_id", "as_of", *FEATURE_NAMES]])
    logit = (
        -3.0
        + drift
        + 0.9 * np.log1p(adverse12)
        + 0.5 * np.log1p(adverse36)
        + 0.4 * np.log1p(complaints12)
        + 0.5 * np.log1p(takedowns12) * online
        + 0.6 * agency * (adverse36 > 0)
        + 0.5 * out["on_untrustworthy_list"].to_numpy()
        + 0.8 * out["on_serious_violation_list"].to_numpy()
        + 0.3 * frame["annual_report_late_24m"]
        - 0.4 * out["on_red_list"].to_numpy()
        - 0.15 * np.minimum(age, 10) / 10
        + 0.7 * risk
    )
    p = 1 / (1 + np.exp(-logit))
    out["outcome"] = (rng.random(n) < p).astype("int8")
    # The outcome window's adverse and signal records (features.snapshots.build_outcomes): every positive has
    # at least one adverse record; warning signs come with the same risk, positives or not.
    adverse = out["outcome"].to_numpy() * (1 + rng.poisson(0.3, n))
    out["outcome_records"] = (adverse + rng.poisson(2.0 * p)).astype("int32")
    return out


def snapshots(n_entities: int, dates: list[date], seed: int = 0) -> pd.DataFrame:
    """Stacked feature frames over ``dates`` with a slow upward drift of the base rate."""
    frames = [feature_frame(n_entities, d, seed=seed * 1000 + i, drift=0.03 * i) for i, d in enumerate(dates)]
    return pd.concat(frames, ignore_index=True)


def quarter_ends(first: str, count: int) -> list[date]:
    return [d.date() for d in pd.date_range(first, periods=count, freq="QE")]


def _industry_weights() -> np.ndarray:
    weights = np.ones(len(CATEGORIES["industry"]))
    weights[CATEGORIES["industry"].index("C")] = 6  # manufacturing
    weights[CATEGORIES["industry"].index("F")] = 3  # wholesale and retail
    weights[CATEGORIES["industry"].index("I")] = 3  # information technology
    weights[CATEGORIES["industry"].index("M")] = 3  # scientific research
    return weights / weights.sum()


assert [f.name for f in CATALOGUE] == FEATURE_NAMES


def fast_toml(rounds: int = 60) -> str:
    """A training config for tests through the command line: small, quick, one LightGBM thread."""
    return f"""
[lightgbm]
num_threads = 1
[boosting]
max_rounds = {rounds}
early_stopping_rounds = 10
[evaluation]
shap_sample = 300
scorecard_max_rows = 5000
min_group_rows = 100
min_group_positives = 5
"""
