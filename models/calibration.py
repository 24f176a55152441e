"""Probability calibration of the booster's log-odds, fitted on held-out data.

Both methods are non-decreasing maps from log-odds to probability, so the calibrated score ranks entities
exactly as the log-odds do and the TreeSHAP explanation (which is in log-odds) stays the explanation of
the score. Platt scaling is the default: ``score = sigmoid(a * log_odds + b)`` with ``a > 0`` is smooth and
strictly increasing, so one more violation that raises the log-odds always raises the score. The fitted
state is plain numbers (``to_dict``/``from_dict``), stored as JSON next to the booster: no pickles.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression

Method = Literal["platt", "isotonic"]
# Isotonic blocks with no positives would otherwise map to a probability of exactly 0.
_EPS = 1e-5


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _fit_platt(z: np.ndarray, y: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """Maximum-likelihood ``(a, b)`` of ``P(y=1) = sigmoid(a z + b)`` by Newton's method."""
    # Start from the identity map: the booster's log-odds are already on the right scale in-sample.
    params = np.array([1.0, 0.0])
    design = np.column_stack([z, np.ones_like(z)])
    for _ in range(iterations):
        p = _sigmoid(design @ params)
        gradient = design.T @ (y - p)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        params = params + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(params[0]), float(params[1])


class Calibrator:
    """Maps log-odds to a calibrated probability.

    Parameters
    ----------
    method : "platt" or "isotonic"
    """

    def __init__(self, method: Method = "platt") -> None:
        self.method = method

    def fit(self, log_odds: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method not in ("platt", "isotonic"):
            raise ValueError(f"method must be 'platt' or 'isotonic'; got {self.method!r}")
        z = np.asarray(log_odds, dtype=float)
        y = np.asarray(y, dtype=float)
        if z.ndim != 1 or z.shape != y.shape:
            raise ValueError(f"log_odds and y must be 1-d of the same length; got {z.shape} and {y.shape}")
        if not 0 < y.sum() < len(y):
            raise ValueError("y must contain both outcomes to fit a calibrator; got one class only")
        if self.method == "platt":
            a, b = _fit_platt(z, y)
            if not a > 0:
                raise ValueError(f"the log-odds must rank risk on the calibration data; got slope {a:.4f}")
            self.slope_, self.intercept_ = a, b
        else:
            iso = IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip", increasing=True)
            iso.fit(z, y)
            self.x_, self.y_ = iso.X_thresholds_.astype(float), iso.y_thresholds_.astype(float)
        self.n_rows_, self.outcome_rate_ = len(y), float(y.mean())
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_rows_"):
            raise NotFittedError("this Calibrator is not fitted yet; call fit first")

    def transform(self, log_odds: np.ndarray) -> np.ndarray:
        """Calibrated probability for each log-odds value."""
        self._check_fitted()
        z = np.asarray(log_odds, dtype=float)
        if self.method == "platt":
            return _sigmoid(self.slope_ * z + self.intercept_)
        return np.interp(z, self.x_, self.y_)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        state: dict[str, Any] = {
            "method": self.method,
            "n_rows": self.n_rows_,
            "outcome_rate": self.outcome_rate_,
        }
        if self.method == "platt":
            state.update(slope=self.slope_, intercept=self.intercept_)
        else:
            state.update(x=self.x_.tolist(), y=self.y_.tolist())
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Calibrator:
        calibrator = cls(state["method"])
        if calibrator.method == "platt":
            calibrator.slope_, calibrator.intercept_ = float(state["slope"]), float(state["intercept"])
        else:
            calibrator.x_ = np.asarray(state["x"], dtype=float)
            calibrator.y_ = np.asarray(state["y"], dtype=float)
        calibrator.n_rows_, calibrator.outcome_rate_ = int(state["n_rows"]), float(state["outcome_rate"])
        return calibrator

    def __repr__(self) -> str:
        if not hasattr(self, "n_rows_"):
            return f"Calibrator(method={self.method!r})"
        if self.method == "platt":
            return f"Calibrator(platt: sigmoid({self.slope_:.4f} * z + {self.intercept_:.4f}))"
        return f"Calibrator(isotonic: {len(self.x_)} knots)"
