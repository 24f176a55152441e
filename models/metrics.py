"""Discrimination and calibration metrics for a probability of a binary outcome.

ECE here is the expected calibration error over equal-mass bins of the predicted probability (each bin
holds the same number of rows): the row-weighted mean of |mean predicted - observed rate|. Equal-mass
bins are used because credit-risk probabilities crowd near zero, where equal-width bins would put almost
every row in the first bin and hide miscalibration there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def _arrays(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y and p must be 1-d arrays of the same length; got {y.shape} and {p.shape}")
    return y, p


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
    order = np.argsort(p, kind="mergesort")
    groups = np.array_split(order, min(bins, max(len(p), 1)))
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
