"""Watching the model in use: drift against the training reference, performance before outcomes arrive,
honest violation rates from the random draws, and fairness with intervals.

Pure functions on frames and arrays; the monthly report (``models/report.py``) composes them, the
service and the CLI feed them stored runs.

- **Reference.** At training, every feature's and the score's bins are fixed from the training rows of
  the latest training dates (``models.train.reference_rows``: deciles of the known values, a bin for
  missing; categories as they are) and stored with the model, so every month is measured on the same bins.
- **Drift.** PSI per feature and of the score, in the usual bands (under 0.1 stable, 0.1–0.25 moderate,
  over 0.25 major). Under no drift, PSI between two samples of sizes n and m over k bins is about
  χ²(k−1)·(1/n + 1/m), so a small region's month can reach 0.1 by chance; a feature is flagged only when
  its PSI exceeds both the band and that noise floor at the 99th percentile.
- **Performance before outcomes.** Outcomes mature 12 months later. With a calibrated score, the expected
  outcome rate of a tier is its mean score, and the expected AUC is the AUC the scores would have if each
  entity's outcome were drawn with its own probability (confidence-based performance estimation).
- **Violation rates from random draws.** Findings of *random* inspections, weighted by each inspected
  entity's stored inclusion probability (Hájek estimator), estimate each tier's violation rate without the
  bias of targeted inspections; targeted ones (complaints, referrals) are left out.
- **Fairness.** Per group (industry, region, kind, online seller): AUC, calibration gap, tier shares and
  flag rates with bootstrap intervals (fairlearn's ``MetricFrame``); a group is flagged only when it is
  large enough and its interval excludes the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy import stats

from features.catalogue import CATALOGUE, FEATURE_NAMES, SEASONAL
from models.metrics import Resamples, auc_or_nan
from models.policy import TIERS

PSI_BANDS = (0.1, 0.25)
NOISE_QUANTILE = 0.99
_EPS = 1e-4  # floor on a bin's share, so an empty bin gives a large but finite PSI


@dataclass(frozen=True)
class Binning:
    """How one column is binned: numeric edges (inner cut points) or categories; the last bin is missing."""

    name: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    expected: tuple[float, ...] = ()  # the reference share of each bin
    # Bins (e[i-1], e[i]]: a point mass at an edge (the zeros of a sparse count) is a bin of its own, so more
    # entities with any event shows. References stored before this was kept have [e[i-1], e[i]) bins.
    right_closed: bool = True

    def counts(self, values: np.ndarray | pd.Series) -> np.ndarray:
        """Rows per bin of ``values`` (the missing bin last)."""
        series = pd.Series(values)
        missing = series.isna().to_numpy()
        if self.categories:
            index = pd.Categorical(series.astype(object).where(~missing), categories=list(self.categories)).codes
            index = np.where(index < 0, len(self.categories), index)  # unknown category counts with missing
            return np.bincount(index, minlength=len(self.categories) + 1)
        known = series.to_numpy(dtype=float, na_value=np.nan)
        index = np.searchsorted(np.asarray(self.edges), known, side="left" if self.right_closed else "right")
        index = np.where(missing, len(self.edges) + 1, index)
        return np.bincount(index, minlength=len(self.edges) + 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "edges": list(self.edges),
            "categories": list(self.categories),
            "expected": list(self.expected),
            "right_closed": self.right_closed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binning:
        return cls(
            data["name"],
            tuple(data["edges"]),
            tuple(data["categories"]),
            tuple(data["expected"]),
            right_closed=data.get("right_closed", False),
        )


def _binning(name: str, values: pd.Series, bins: int, categorical: bool) -> Binning:
    if categorical:
        categories = tuple(sorted(values.dropna().astype(str).unique()))
        draft = Binning(name, categories=categories)
    else:
        known = values.dropna().to_numpy(dtype=float)
        edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if len(known) else np.array([])
        draft = Binning(name, edges=tuple(float(e) for e in edges))
    counts = draft.counts(values.astype(str).where(values.notna()) if categorical else values)
    share = counts / max(counts.sum(), 1)
    return Binning(draft.name, draft.edges, draft.categories, tuple(float(s) for s in share))


@dataclass(frozen=True)
class Reference:
    """The bins and shares of every feature and of the score in the training rows, stored with the model."""

    features: dict[str, Binning]
    score: Binning
    rows: int
    rule_rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, features: pd.DataFrame, scores: np.ndarray, *, bins: int = 10, rule_rates: dict | None = None
    ) -> Reference:
        """Fix the bins from ``features`` (training rows) and ``scores`` (their calibrated scores)."""
        binned = {
            f.name: _binning(f.name, features[f.name], bins, categorical=f.dtype in ("category", "bool"))
            for f in CATALOGUE
        }
        score = _binning("score", pd.Series(np.asarray(scores, dtype=float)), bins, categorical=False)
        return cls(features=binned, score=score, rows=len(features), rule_rates=dict(rule_rates or {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "score": self.score.to_dict(),
            "features": {name: b.to_dict() for name, b in self.features.items()},
            "rule_rates": self.rule_rates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        return cls(
            features={name: Binning.from_dict(b) for name, b in data["features"].items()},
            score=Binning.from_dict(data["score"]),
            rows=int(data["rows"]),
            rule_rates=dict(data.get("rule_rates", {})),
        )


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=float), _EPS)
    a = np.maximum(np.asarray(actual, dtype=float), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_noise_floor(
    expected: np.ndarray, n: int, m: int, *, quantile: float = NOISE_QUANTILE, draws: int = 400
) -> float:
    """The PSI that a month of ``n`` rows reaches by chance alone with probability ``1 - quantile``, when
    both it and the ``m`` reference rows come from the reference shares ``expected``.

    Simulated (multinomial draws of both samples, a fixed seed, so a report is deterministic) rather than
    taken from the χ² approximation, which fails for the rare bins count features have.
    """
    expected = np.asarray(expected, dtype=float)
    if n == 0 or m == 0 or (expected > 0).sum() < 2:
        return math.inf
    rng = np.random.default_rng(20240101)
    shares = expected / expected.sum()
    month = rng.multinomial(n, shares, size=draws) / n
    base = rng.multinomial(m, shares, size=draws) / m
    a, e = np.maximum(month, _EPS), np.maximum(base, _EPS)
    return float(np.quantile(np.sum((a - e) * np.log(a / e), axis=1), quantile))


def band(value: float) -> str:
    """``stable``, ``moderate`` or ``major`` by the usual PSI bands."""
    if value >= PSI_BANDS[1]:
        return "major"
    return "moderate" if value >= PSI_BANDS[0] else "stable"


def drift_table(reference: Reference, features: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """PSI of the score and of every feature against the reference, with the noise floor and the flag.

    ``flagged`` is true when the PSI is at least moderate *and* above the noise floor for these sizes, and
    never for a ``seasonal`` feature (``features.catalogue.SEASONAL``: it follows the calendar, not the
    population). ``missing_ref`` / ``missing_now`` are the shares in the missing bin.
    """
    rows = []
    columns = [("score", reference.score, np.asarray(scores, dtype=float))]
    columns += [
        (name, reference.features[name], features[name]) for name in FEATURE_NAMES if name in reference.features
    ]
    for name, binning, values in columns:
        categorical = bool(binning.categories)
        series = pd.Series(values)
        counts = binning.counts(series.astype(str).where(series.notna()) if categorical else series)
        n = int(counts.sum())
        actual = counts / max(n, 1)
        expected = np.asarray(binning.expected)
        value = psi(expected, actual) if n else math.nan
        floor = psi_noise_floor(expected, n, reference.rows)
        rows.append(
            {
                "feature": name,
                "psi": value,
                "band": band(value) if n else "no rows",
                "noise_floor": floor,
                "flagged": bool(n and value >= PSI_BANDS[0] and value > floor and name not in SEASONAL),
                "seasonal": name in SEASONAL,
                "missing_ref": float(expected[-1]),
                "missing_now": float(actual[-1]),
                "rows": n,
            }
        )
    return pd.DataFrame(rows)


def migration_matrix(previous: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Rows: the previous run's tier; columns: this run's tier; entities in both runs (index: entity_id)."""
    both = pd.concat([previous.rename("previous"), current.rename("current")], axis=1, join="inner")
    table = pd.crosstab(both["previous"], both["current"])
    return table.reindex(index=list(TIERS), columns=list(TIERS), fill_value=0)


def expected_auc(scores: np.ndarray) -> float:
    """The AUC expected if each entity's outcome were Bernoulli(its calibrated score), ranked by the scores.

    The ratio of expectations: Σ p_i (1 − p_j) [s_i > s_j] (ties half) over Σ_{i≠j} p_i (1 − p_j).
    O(n log n): sort by score, accumulate the expected negatives below each row.
    """
    p = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    if len(p) < 2:
        return math.nan
    order = np.argsort(p, kind="mergesort")
    p = p[order]
    neg = 1 - p
    _, starts = np.unique(p, return_index=True)
    below = np.cumsum(np.r_[0.0, neg])[starts]  # expected negatives strictly below each tie group
    pos_group = np.add.reduceat(p, starts)
    neg_group = np.add.reduceat(neg, starts)
    pq_group = np.add.reduceat(p * neg, starts)
    # Pairs inside a tie group count half; a row is never paired with itself.
    numerator = float(np.sum(pos_group * below) + 0.5 * np.sum(pos_group * neg_group - pq_group))
    denominator = float(p.sum() * neg.sum() - np.sum(p * neg))
    return numerator / denominator if denominator > 0 else math.nan


def expected_performance(scores: np.ndarray, tiers: np.ndarray) -> pd.DataFrame:
    """Per tier and overall: rows, expected outcome rate (mean calibrated score); overall, expected AUC."""
    scores, tiers = np.asarray(scores, dtype=float), np.asarray(tiers)
    rows = [
        {
            "tier": t,
            "rows": int((tiers == t).sum()),
            "expected_rate": float(scores[tiers == t].mean()) if (tiers == t).any() else math.nan,
        }
        for t in TIERS
    ]
    rows.append(
        {"tier": "all", "rows": len(scores), "expected_rate": float(scores.mean()) if len(scores) else math.nan}
    )
    table = pd.DataFrame(rows)
    table["expected_auc"] = np.where(table["tier"] == "all", expected_auc(scores), np.nan)
    return table


def violation_rates(
    tiers: np.ndarray,
    findings: np.ndarray,
    inclusion_probability: np.ndarray,
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per tier: the violation rate among all its entities, estimated from *random* inspections.

    Each inspected entity counts with weight 1/π (its inclusion probability in the draw that selected it);
    the Hájek estimator Σ w·y / Σ w is unbiased to first order whatever the tier's sampling ratio. Its
    linearised variance under Poisson sampling, Σ w²(1 − π)(y − r)² / (Σ w)², defines an effective sample
    size r(1 − r) / variance, and the interval is Wilson's at that size: it stays inside [0, 1] and covers
    well for the rare findings of tier A, where a normal interval does not. Pass only random inspections:
    targeted ones would bias the rate upwards.
    """
    tiers = np.asarray(tiers)
    y = np.asarray(findings, dtype=float)
    pi = _probabilities(inclusion_probability)
    z = stats.norm.ppf(0.5 + level / 2)
    return pd.DataFrame([{"tier": tier, **_hajek(y[tiers == tier], pi[tiers == tier], z)} for tier in TIERS])


def group_violation_rates(
    groups: pd.DataFrame,
    findings: np.ndarray,
    inclusion_probability: np.ndarray,
    *,
    min_inspected: int = 30,
    tolerance: float = 0.05,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per group value (industry, region, kind, online seller): the findings rate among *random*
    inspections, Hájek-weighted as in ``violation_rates``, with its interval. A group is ``measured`` from
    ``min_inspected`` inspected entities and ``flagged`` only when its interval lies wholly beyond the
    rate of all inspected entities ± ``tolerance``: one standard for all, checked where it can be."""
    y = np.asarray(findings, dtype=float)
    pi = _probabilities(inclusion_probability)
    z = stats.norm.ppf(0.5 + level / 2)
    overall = _hajek(y, pi, z)["rate"]
    rows = []
    for column in groups.columns:
        values = groups[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            cell = _hajek(y[mask], pi[mask], z)
            measured = cell["inspected"] >= min_inspected
            beyond = cell["low"] > overall + tolerance or cell["high"] < overall - tolerance
            rows.append(
                {"group": column, "value": value, **cell, "overall": overall, "measured": bool(measured)}
                | {"flagged": bool(measured and beyond)}
            )
    return pd.DataFrame(rows)


def _probabilities(inclusion_probability: np.ndarray) -> np.ndarray:
    pi = np.asarray(inclusion_probability, dtype=float)
    if np.any((pi <= 0) | (pi > 1)):
        raise ValueError("inclusion_probability must be in (0, 1]")
    return pi


def _hajek(y: np.ndarray, pi: np.ndarray, z: float) -> dict[str, Any]:
    """Hájek's rate of findings ``y`` among entities inspected with probabilities ``pi``, with Wilson's
    interval at the effective size of its linearised Poisson-sampling variance."""
    if not len(y):
        return {"inspected": 0, "findings": 0, "rate": math.nan, "low": math.nan, "high": math.nan}
    w = 1 / pi
    rate = float(np.sum(w * y) / np.sum(w))
    variance = float(np.sum(w**2 * (1 - pi) * (y - rate) ** 2) / np.sum(w) ** 2)
    # All or nothing found (or a census): the plain count is the effective size.
    size = rate * (1 - rate) / variance if variance > 0 else float(len(y))
    low, high = _wilson(rate, size, z)
    return {"inspected": len(y), "findings": int(y.sum()), "rate": rate, "low": low, "high": high}


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def fairness_frame(
    y: np.ndarray | None,
    scores: np.ndarray,
    tiers: np.ndarray,
    groups: pd.DataFrame,
    *,
    min_rows: int = 300,
    tolerance: dict[str, float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Per group value: rows, share in C/D, flag rate (D), mean score; with outcomes also AUC and the
    calibration gap (mean score − outcome rate); each with a 95 % bootstrap interval.

    The per-group values come from fairlearn's ``MetricFrame``; the intervals from ``n_boot`` resamples of
    the rows (one row per entity in a month) drawn once and shared by every group and metric. A group is
    ``measured`` with at least ``min_rows`` rows, and ``flagged`` when a metric's interval lies wholly
    beyond its tolerance (``tolerance``: metric -> allowed absolute difference; defaults share_CD 0.10,
    calibration_gap 0.03 around none at all, auc 0.05 around the whole population's)."""
    tolerance = {"share_CD": 0.10, "calibration_gap": 0.03, "auc": 0.05} | (tolerance or {})
    scores = np.asarray(scores, dtype=float)
    tiers = np.asarray(tiers)
    high = np.isin(tiers, ("C", "D")).astype(float)
    flag = (tiers == "D").astype(float)
    outcome = np.asarray(y, dtype=float) if y is not None else None

    def metrics_of(index: np.ndarray | slice) -> dict[str, Any]:
        values: dict[str, Any] = {
            "share_CD": (lambda yt, yp, high: float(np.mean(high)), {"high": high[index]}),
            "share_D": (lambda yt, yp, flag: float(np.mean(flag)), {"flag": flag[index]}),
            "mean_score": (lambda yt, yp: float(np.mean(yp)), {}),
        }
        if outcome is not None:
            values["auc"] = (lambda yt, yp: auc_or_nan(np.asarray(yt), np.asarray(yp)), {})
            values["calibration_gap"] = (lambda yt, yp: float(np.mean(yp) - np.mean(yt)), {})
        return values

    names = list(metrics_of(slice(None)))
    resamples = Resamples(np.arange(len(scores)), n_boot, seed=seed).indices if n_boot else []
    y_true = outcome if outcome is not None else high
    out = []
    for column in groups.columns:
        sensitive = groups[column].astype(str).to_numpy()
        spec = metrics_of(slice(None))
        frame = MetricFrame(
            metrics={name: fn for name, (fn, _) in spec.items()},
            y_true=y_true,
            y_pred=scores,
            sensitive_features=pd.Series(sensitive, name=column),
            sample_params={name: params for name, (_, params) in spec.items() if params},
        )
        by_group, overall = frame.by_group, frame.overall
        draws = {value: {name: [] for name in names} for value in by_group.index}
        for index in resamples:
            part = {v: np.flatnonzero(sensitive[index] == v) for v in by_group.index}
            for value, rows in part.items():
                if not len(rows):
                    continue
                chosen = index[rows]
                draws[value]["share_CD"].append(high[chosen].mean())
                draws[value]["share_D"].append(flag[chosen].mean())
                draws[value]["mean_score"].append(scores[chosen].mean())
                if outcome is not None:
                    draws[value]["auc"].append(auc_or_nan(outcome[chosen], scores[chosen]))
                    draws[value]["calibration_gap"].append(scores[chosen].mean() - outcome[chosen].mean())
        counts = pd.Series(sensitive).value_counts()
        for value in by_group.index:
            rows = int(counts.get(value, 0))
            record: dict[str, Any] = {"group": column, "value": value, "rows": rows, "measured": rows >= min_rows}
            flags = []
            for name in names:
                record[name] = float(by_group.loc[value, name])
                if not n_boot:
                    continue
                sample = np.asarray([v for v in draws[value][name] if np.isfinite(v)], dtype=float)
                lo, hi = np.quantile(sample, [0.025, 0.975]) if len(sample) >= 10 else (math.nan, math.nan)
                record[f"{name}_low"], record[f"{name}_high"] = float(lo), float(hi)
                if name in tolerance and rows >= min_rows and not math.isnan(lo):
                    reference = 0.0 if name == "calibration_gap" else float(overall[name])
                    if lo > reference + tolerance[name] or hi < reference - tolerance[name]:
                        flags.append(name)
            record["flags"] = ";".join(flags)
            record["flagged"] = bool(flags)
            out.append(record)
    return pd.DataFrame(out)
