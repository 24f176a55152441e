"""Figures of a training run: SHAP summary and dependence, calibration curve, tier chart.

Each function returns a matplotlib ``Figure`` (the notebook displays it, ``save_plots`` writes PNGs that
the registry logs as run artifacts). Figures are closed in pyplot's registry so that long runs and the
notebook do not accumulate them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.build import model_matrix
from features.catalogue import FEATURE_NAMES
from models.evaluate import Evaluation
from models.policy import TIERS


def _release(fig: Figure) -> Figure:
    plt.close(fig)
    return fig


def shap_explanation(contributions: np.ndarray, base: np.ndarray, frame: pd.DataFrame):
    """A ``shap.Explanation`` of the sampled rows (log-odds; categorical features as their codes)."""
    import shap

    matrix = model_matrix(frame)
    data = np.column_stack(
        [
            matrix[n].cat.codes.to_numpy(dtype=float)
            if isinstance(matrix[n].dtype, pd.CategoricalDtype)
            else matrix[n].to_numpy(dtype=float)
            for n in FEATURE_NAMES
        ]
    )
    return shap.Explanation(values=contributions, base_values=base, data=data, feature_names=list(FEATURE_NAMES))


def shap_summary_figure(
    contributions: np.ndarray, base: np.ndarray, frame: pd.DataFrame, max_display: int = 15
) -> Figure:
    """SHAP beeswarm: each dot one entity, x its contribution in log-odds, colour the feature value."""
    import shap

    fig = plt.figure(figsize=(9, 0.42 * max_display + 1.5))
    ax = fig.add_subplot()
    shap.plots.beeswarm(
        shap_explanation(contributions, base, frame), max_display=max_display, ax=ax, show=False, plot_size=None
    )
    ax.set_title("SHAP summary (contribution to log-odds), out-of-time test sample")
    fig.tight_layout()
    return _release(fig)


def shap_dependence_figure(contributions: np.ndarray, base: np.ndarray, frame: pd.DataFrame, feature: str) -> Figure:
    """SHAP dependence: a feature's value against its contribution."""
    import shap

    explanation = shap_explanation(contributions, base, frame)
    fig = plt.figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    shap.plots.scatter(explanation[:, FEATURE_NAMES.index(feature)], ax=ax, show=False, hist=False)
    ax.set_title(f"SHAP dependence: {feature}")
    fig.tight_layout()
    return _release(fig)


def calibration_figure(calibration: pd.DataFrame) -> Figure:
    """Reliability diagram: mean predicted against observed rate in equal-mass bins, per scorer."""
    fig = plt.figure(figsize=(6.5, 6))
    ax = fig.add_subplot()
    top = float(max(calibration["predicted"].max(), calibration["observed"].max()) * 1.05)
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for scorer, part in calibration.groupby("scorer", sort=False):
        ax.plot(part["predicted"], part["observed"], marker="o", label=str(scorer))
    ax.set_xlabel("mean predicted probability (equal-mass bins)")
    ax.set_ylabel("observed outcome rate")
    ax.set_title("Calibration on the out-of-time test fold")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _release(fig)


def tier_figure(tiers: pd.DataFrame, model_tiers: pd.DataFrame | None = None) -> Figure:
    """Tier chart: entities per tier (bars) and observed outcome rate per tier (line)."""
    fig = plt.figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(TIERS))
    ax.bar(x, tiers["count"], color=["#4caf50", "#ffc107", "#ff7043", "#c62828"], alpha=0.8)
    ax.set_xticks(x, [f"{t}" for t in TIERS])
    ax.set_ylabel("entities (final tier)")
    rate = ax.twinx()
    rate.plot(x, tiers["outcome_rate"], color="black", marker="o", label="final tier")
    if model_tiers is not None:
        rate.plot(x, model_tiers["outcome_rate"], color="black", marker="x", linestyle=":", label="model tier")
    rate.set_ylabel("observed outcome rate")
    rate.legend(loc="upper left")
    ax.set_title("Tiers on the out-of-time test fold")
    fig.tight_layout()
    return _release(fig)


def save_plots(evaluation: Evaluation, directory: Path, *, dependence: int = 4) -> list[Path]:
    """Write every figure of ``evaluation`` as PNG into ``directory``; return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contributions, base, frame = evaluation.shap_sample
    figures = {
        "shap_summary.png": shap_summary_figure(contributions, base, frame),
        "calibration_curve.png": calibration_figure(evaluation.calibration),
        "tier_chart.png": tier_figure(evaluation.tiers, evaluation.model_tiers),
    }
    for feature in evaluation.importance["feature"].head(dependence):
        figures[f"shap_dependence_{feature}.png"] = shap_dependence_figure(contributions, base, frame, feature)
    paths = []
    for name, fig in figures.items():
        path = directory / name
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths
