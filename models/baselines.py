"""The two baselines the model must beat, fitted on the same training snapshots.

(a) ``RulesPointsCard``: the qualitative rules of the policy alone. Each rule's "fired" flag is a
    characteristic; a logistic regression on those flags gives its weight, shown as points (the usual
    points-to-double-the-odds scaling). It answers "how far do the rules get us without a model?".
(b) ``BinnedScorecard``: the standard credit-scoring tool, optbinning's ``BinningProcess`` (optimal
    binning with weight of evidence) feeding a logistic ``Scorecard``, on every catalogue feature.

Both expose ``log_odds`` so that they are calibrated on the validation fold exactly like the model: the
comparison is then about ranking and calibration under the same protocol, not about who was recalibrated.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from features.catalogue import CATALOGUE
from features.columns import feature_columns
from features.errors import Unavailable
from models.calibration import Calibrator, Method
from models.policy import Policy


class BaselineUnavailable(Unavailable):
    """A baseline cannot be fitted on these rows (the reason says why); training goes on without it."""


# Points scaling: 600 points at odds 50:1 (good:bad), 20 points double the odds.
_PDO, _BASE_POINTS, _BASE_ODDS = 20.0, 600.0, 50.0


def rule_flags(features: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One 0/1 column per policy rule: did it fire for the row?"""
    fired = policy.fired(feature_columns(features)).astype(np.int8)
    return pd.DataFrame(fired, columns=[rule.code for rule in policy.rules], index=features.index)


class RulesPointsCard:
    """A points card on the policy's rule flags (baseline a).

    Parameters
    ----------
    policy : Policy
        The rules that define the characteristics.
    C : float
        Inverse L2 regularisation of the logistic regression.
    """

    def __init__(self, policy: Policy, C: float = 1.0) -> None:
        self.policy = policy
        self.C = C

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> RulesPointsCard:
        flags = rule_flags(features, self.policy)
        if flags.shape[1] == 0:
            raise ValueError("policy must have at least one rule to build a points card; got none")
        self.estimator_ = LogisticRegression(C=self.C, max_iter=1000).fit(flags.to_numpy(float), np.asarray(y))
        self.codes_ = list(flags.columns)
        return self

    def _check(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError("this RulesPointsCard is not fitted yet; call fit first")

    def log_odds(self, features: pd.DataFrame) -> np.ndarray:
        self._check()
        return self.estimator_.decision_function(rule_flags(features, self.policy)[self.codes_].to_numpy(float))

    def table(self) -> pd.DataFrame:
        """The card: points per rule (negative points = riskier), and the weight in log-odds."""
        self._check()
        factor = _PDO / math.log(2)
        offset = _BASE_POINTS - factor * math.log(_BASE_ODDS)
        coefs = self.estimator_.coef_[0]
        rows = [
            {
                "rule": code,
                "name_zh": self.policy.rule(code).name_zh,
                "effect": f"{self.policy.rule(code).effect} {self.policy.rule(code).tier}",
                "log_odds_weight": float(w),
                "points": round(-factor * float(w)),
            }
            for code, w in zip(self.codes_, coefs, strict=True)
        ]
        base = offset - factor * float(self.estimator_.intercept_[0])
        rows.append(
            {
                "rule": "(base)",
                "name_zh": "基础分",
                "effect": "",
                "log_odds_weight": float(self.estimator_.intercept_[0]),
                "points": round(base),
            }
        )
        return pd.DataFrame(rows)


def _drop_solver_import_noise(record: logging.LogRecord) -> bool:
    return "importing solver" not in record.getMessage()


def _quiet_cvxpy() -> None:
    """cvxpy (imported by optbinning) warns about optional solvers it cannot load; optbinning's binning
    does not use them, so those warnings only confuse the training log."""
    logger = logging.getLogger("__cvxpy__")
    if _drop_solver_import_noise not in logger.filters:
        logger.addFilter(_drop_solver_import_noise)


def _scorecard_frame(features: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=features.index)
    for f in CATALOGUE:
        column = features[f.name]
        if f.dtype == "bool":
            out[f.name] = column.fillna(False).astype(np.int8)
        elif f.dtype == "category":
            out[f.name] = column.astype(object).where(column.notna(), "missing").astype(str).to_numpy(dtype=object)
        else:
            out[f.name] = column.astype(float)
    return out


class BinnedScorecard:
    """optbinning ``BinningProcess`` + logistic ``Scorecard`` on every catalogue feature (baseline b).

    Parameters
    ----------
    max_rows : int
        Fit on at most this many rows (a stratified random sample); optimal binning is the slow part.
    seed : int
        Seed of that sample.
    """

    def __init__(self, max_rows: int = 300_000, seed: int = 0) -> None:
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> BinnedScorecard:
        _quiet_cvxpy()
        from optbinning import BinningProcess, Scorecard

        y = np.asarray(y)
        rows = np.arange(len(y))
        if len(rows) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(
                np.concatenate(
                    [
                        rng.choice(np.flatnonzero(y == c), round(self.max_rows * (y == c).mean()), replace=False)
                        for c in (0, 1)
                    ]
                )
            )
        frame = _scorecard_frame(features.iloc[rows])
        if len(np.unique(y[rows])) < 2:
            raise BaselineUnavailable("the scorecard needs both outcomes among its training rows")
        # Optimal binning needs at least two distinct known values: a feature that is constant or always
        # missing in these rows (no patents, no lists, no online sellers) carries nothing and is left out.
        self.variables_ = [name for name in frame.columns if frame[name].dropna().nunique() >= 2]
        self.dropped_ = [name for name in frame.columns if name not in self.variables_]
        if not self.variables_:
            raise BaselineUnavailable("every feature is constant or missing in the training rows")
        frame = frame[self.variables_]
        binning = BinningProcess(
            variable_names=self.variables_,
            categorical_variables=[f.name for f in CATALOGUE if f.dtype == "category" and f.name in self.variables_],
            max_n_prebins=20,
            min_prebin_size=0.01,
        )
        scorecard = Scorecard(
            binning_process=binning,
            estimator=LogisticRegression(max_iter=2000),
            scaling_method="pdo_odds",
            scaling_method_params={"pdo": _PDO, "odds": _BASE_ODDS, "scorecard_points": _BASE_POINTS},
        )
        try:
            self.scorecard_ = scorecard.fit(frame, y[rows])
        except (ValueError, RuntimeError, ArithmeticError) as exc:  # optbinning's own failures on odd data
            raise BaselineUnavailable(f"optbinning could not fit the scorecard: {exc}") from exc
        self.fitted_rows_ = len(rows)
        return self

    def _check(self) -> None:
        if not hasattr(self, "scorecard_"):
            raise NotFittedError("this BinnedScorecard is not fitted yet; call fit first")

    def log_odds(self, features: pd.DataFrame) -> np.ndarray:
        self._check()
        estimator = self.scorecard_.estimator_
        woe = self.scorecard_.binning_process_.transform(
            _scorecard_frame(features)[self.scorecard_.binning_process_.variable_names]
        )
        return estimator.decision_function(woe)

    def table(self) -> pd.DataFrame:
        """The scorecard: points per bin of every selected variable."""
        self._check()
        return self.scorecard_.table(style="summary")


@dataclass(frozen=True)
class CalibratedBaseline:
    """A fitted baseline and the calibrator fitted on its validation-fold log-odds, exactly as the model's
    is: the comparison is then about ranking and calibration under the same protocol."""

    baseline: RulesPointsCard | BinnedScorecard
    calibrator: Calibrator

    @classmethod
    def fit(
        cls, baseline: RulesPointsCard | BinnedScorecard, valid: pd.DataFrame, y: np.ndarray, *, method: Method
    ) -> CalibratedBaseline:
        """Calibrate the fitted ``baseline`` on the validation rows ``valid`` with outcomes ``y``."""
        try:
            return cls(baseline, Calibrator(method).fit(baseline.log_odds(valid), y))
        except ValueError as exc:  # it ranks nothing out of time: there is no baseline to compare with
            raise BaselineUnavailable(f"it cannot be calibrated on the validation fold: {exc}") from exc

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of an adverse record, as the baseline sees ``features``."""
        return self.calibrator.transform(self.baseline.log_odds(features))

    def table(self) -> pd.DataFrame:
        """The baseline's own table (points per rule, or per bin)."""
        return self.baseline.table()
