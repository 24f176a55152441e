"""Discrimination and calibration metrics for a probability of a binary outcome.

ECE here is the expected calibration error over equal-mass bins of the predicted probability (each bin
holds the same number of rows): the row-weighted mean of |mean predicted - observed rate|. Equal-mass
bins are used because credit-risk probabilities crowd near zero, where equal-width bins would put almost
every row in the first bin and hide miscalibration there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def _arrays(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y and p must be 1-d arrays of the same length; got {y.shape} and {p.shape}")
    return y, p


def _equal_mass(p: np.ndarray, bins: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The rows in ascending order of ``p`` and their split into ``bins`` equal-mass bins (fewer for fewer rows)."""
    order = np.argsort(p, kind="mergesort")
    return order, np.array_split(order, min(bins, max(len(p), 1)))


def calibrated_ece(p: np.ndarray | pd.Series, bins: int = 10, draws: int = 200, *, seed: int = 0) -> float:
    """The ECE a perfectly calibrated scorer shows on these rows by chance: the 95th percentile over
    ``draws`` sets of outcomes drawn from ``p`` itself (NaN without draws or rows).

    A bin's observed rate wanders from its mean score by sampling alone, so on a small evaluation fold even
    a perfect model's ECE is well above zero: for 3,000 rows at a 14 % rate about 0.015 on average and 0.021
    at the 95th percentile, for 200,000 rows 0.002. An ECE within this is no evidence of miscalibration.
    Rows are drawn independently, so the entity's rows in two quarters are taken as two chances: if anything
    this understates the noise, and the limit it sets errs towards failing.
    """
    p = np.asarray(p, dtype=float)
    if draws <= 0 or len(p) == 0:
        return float("nan")
    order, groups = _equal_mass(p, bins)
    ordered = p[order]  # each bin a run of rows, summed by reduceat in one pass per draw
    sizes = np.array([len(g) for g in groups])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    predicted = np.add.reduceat(ordered, starts) / sizes
    rng = np.random.default_rng(seed)
    values = [
        float(np.sum(np.abs(np.add.reduceat((rng.random(len(p)) < ordered).astype(float), starts) - sizes * predicted)))
        / len(p)
        for _ in range(draws)
    ]
    return float(np.quantile(values, 0.95))


def ks_statistic(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of positives and negatives."""
    y, p = _arrays(y, p)
    order = np.argsort(p, kind="mergesort")
    y, p = y[order], p[order]
    positives, negatives = y.sum(), len(y) - y.sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    # Evaluate the CDFs only at the ends of runs of tied scores.
    last = np.r_[p[1:] != p[:-1], True]
    cdf_pos = np.cumsum(y)[last] / positives
    cdf_neg = np.cumsum(1 - y)[last] / negatives
    return float(np.max(np.abs(cdf_pos - cdf_neg)))


def calibration_bins(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, bins: int = 10) -> pd.DataFrame:
    """Equal-mass bins of ``p``: rows, mean predicted probability and observed outcome rate per bin."""
    y, p = _arrays(y, p)
    _, groups = _equal_mass(p, bins)
    rows = [
        {
            "bin": i + 1,
            "rows": len(g),
            "p_min": float(p[g].min()),
            "p_max": float(p[g].max()),
            "predicted": float(p[g].mean()),
            "observed": float(y[g].mean()),
        }
        for i, g in enumerate(groups)
        if len(g)
    ]
    return pd.DataFrame(rows)


def expected_calibration_error(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, bins: int = 10) -> float:
    """ECE over ``bins`` equal-mass bins (see the module docstring)."""
    table = calibration_bins(y, p, bins)
    if table.empty:
        return float("nan")
    weights = table["rows"] / table["rows"].sum()
    return float((weights * (table["predicted"] - table["observed"]).abs()).sum())


def top_decile_lift(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> float:
    """Outcome rate among the 10 % highest scores over the overall rate (ties broken by row order)."""
    y, p = _arrays(y, p)
    if y.sum() == 0:
        return float("nan")
    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-p, kind="mergesort")[:k]
    return float(y[top].mean() / y.mean())


def binary_metrics(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series, *, ece_bins: int = 10) -> dict:
    """AUC, PR-AUC, KS, Brier, ECE, top-decile lift, with the row count and outcome rate."""
    y, p = _arrays(y, p)
    both = 0 < y.sum() < len(y)
    return {
        "rows": len(y),
        "outcome_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_score": float(p.mean()) if len(p) else float("nan"),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p, ece_bins),
        "lift_top_decile": top_decile_lift(y, p),
    }


def group_auc(y: np.ndarray, p: np.ndarray, *, min_rows: int, min_positives: int) -> float:
    """AUC when the group is large enough to estimate it, else NaN."""
    y = np.asarray(y, dtype=float)
    positives = y.sum()
    if len(y) < min_rows or positives < min_positives or positives == len(y):
        return float("nan")
    return float(roc_auc_score(y, p))


class Resamples:
    """Bootstrap resamples that draw whole groups (entities) with replacement, drawn once and reused.

    An entity appears in several snapshots of a test fold and its rows are not independent, so each
    resample draws entities, keeping all their rows. Every metric is computed on the same resamples, so
    intervals of different scorers on the same rows are comparable and their differences are paired.
    """

    def __init__(self, groups: np.ndarray, n: int, seed: int = 0) -> None:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        k = int(inverse.max()) + 1 if len(inverse) else 0
        rng = np.random.default_rng(seed)
        rows = np.arange(len(inverse))
        self.indices: list[np.ndarray] = []
        for _ in range(n if k else 0):
            draws = np.bincount(rng.integers(0, k, k), minlength=k)
            self.indices.append(np.repeat(rows, draws[inverse]))

    def interval(self, fn, *arrays: np.ndarray, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` interval of ``fn(*arrays)`` over the resamples (NaN where undefined)."""
        return self.bounds(self.draws(fn, *arrays), level)

    def draws(self, fn, *arrays: np.ndarray) -> np.ndarray:
        """``fn(*arrays)`` on each resample, in order: the draws of two scorers pair up, so their
        difference draw by draw is the paired bootstrap of the difference (``bounds`` of it)."""
        return np.asarray([fn(*(a[i] for a in arrays)) for i in self.indices], dtype=float)

    def bounds(self, draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
        """The central ``level`` interval of ``draws``, NaN when under half the resamples give a value."""
        values = draws[np.isfinite(draws)]
        if len(values) < max(10, len(self.indices) // 2):
            return float("nan"), float("nan")
        tail = (1 - level) / 2
        low, high = np.quantile(values, [tail, 1 - tail])
        return float(low), float(high)


def auc_or_nan(y: np.ndarray, p: np.ndarray) -> float:
    """AUC, or NaN when only one outcome is present.

    The Mann-Whitney form on average ranks — the same number as ``roc_auc_score`` (ties count a half) at a
    fraction of its per-call cost, which matters when it runs for every resample of every group.
    """
    positive = np.asarray(y) > 0
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(p, dtype=float))
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_gain(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """AUC of ``a`` minus AUC of ``b`` on the same rows."""
    return auc_or_nan(y, a) - auc_or_nan(y, b)


def ece_increase(y: np.ndarray, a: np.ndarray, b: np.ndarray, bins: int = 10) -> float:
    """ECE of ``a`` minus ECE of ``b`` on the same rows (positive: ``a`` is the worse calibrated)."""
    return expected_calibration_error(y, a, bins) - expected_calibration_error(y, b, bins)


def rate_or_nan(y: np.ndarray, mask: np.ndarray) -> float:
    """The outcome rate among ``mask`` rows, NaN when there are none."""
    return float(y[mask].mean()) if mask.any() else float("nan")
