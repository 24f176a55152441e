"""Scoring: the fitted model, its calibrated score, tier, fired rules and exact TreeSHAP explanation.

A ``Scorer`` is the one fitted object every consumer uses: ``ipcredit score``, the HTTP service, the
MLflow pyfunc wrapper, the notebook and the benchmarks. It holds the LightGBM booster, the calibrator, the
feature order it was trained with and the feature code version.

Explanations are exact path-dependent TreeSHAP values in log-odds, from LightGBM's ``pred_contrib``
(measured faster than ``shap.TreeExplainer`` on the same booster; numbers in docs/model.md). The row sum
of the contributions plus the base value *is* the booster's raw output, so scoring computes SHAP once and
takes the log-odds from it: explaining costs nothing beyond ``pred_contrib`` itself. The calibrated score
is a non-decreasing function of the log-odds (``models/calibration.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.build import model_matrix
from features.catalogue import FEATURE_NAMES, FEATURES, catalogue_fingerprint
from models.calibration import Calibrator
from models.policy import Policy
from models.treeshap import PatternTreeSHAP, numeric_matrix

BOOSTER_FILE = "booster.txt"
STATE_FILE = "scorer.json"
# The score file of CONTRACT section 4, then what this project adds to every row.
SCORE_COLUMNS: tuple[str, ...] = (
    "entity_id",
    "as_of",
    "score",
    "model_tier",
    "tier",
    "rules",
    "review",
    "model_version",
    "reasons",
)
EXTRA_COLUMNS: tuple[str, ...] = ("policy_version", "feature_version", "base_value", "log_odds")
DETAIL_COLUMNS: tuple[str, ...] = ("contributions", "features")
UNREGISTERED = "unregistered"


class ModelError(RuntimeError):
    """The model cannot score these features (wrong feature code version, unknown features)."""


@dataclass
class Scorer:
    """A fitted booster with its calibrator and the feature contract it was trained on."""

    booster: lgb.Booster
    calibrator: Calibrator
    feature_names: list[str]
    feature_version: str
    catalogue_fingerprint: str = field(default_factory=catalogue_fingerprint)
    model_version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    _explainer: PatternTreeSHAP | None = field(default=None, init=False, repr=False, compare=False)
    _reason_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- compatibility -------------------------------------------------------------------------------
    def check_compatible(self, feature_version: str) -> None:
        """Raise ``ModelError`` unless features built by ``feature_version`` are what this model expects."""
        if self.feature_names != FEATURE_NAMES:
            raise ModelError(
                "the model was trained on a different feature catalogue; retrain it "
                f"(model has {len(self.feature_names)} features, the catalogue {len(FEATURE_NAMES)})"
            )
        if feature_version != self.feature_version:
            raise ModelError(
                f"the model was trained on features version {self.feature_version}; these features are "
                f"version {feature_version}. Retrain (ipcredit train) or score with a matching model."
            )

    # ---- raw model outputs ---------------------------------------------------------------------------
    def matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model matrix for ``features`` (shared with training through ``features.build.model_matrix``)."""
        return model_matrix(features)

    def log_odds(self, features: pd.DataFrame) -> np.ndarray:
        """The booster's raw output (log-odds of the outcome)."""
        return self.booster.predict(self.matrix(features), raw_score=True)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of an adverse record in the next 12 months."""
        return self.calibrator.transform(self.log_odds(features))

    def contributions(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP in log-odds: ``(contributions (n, k), base_value (n,))``.

        ``base_value + contributions.sum(axis=1)`` equals the booster's raw output. Computed by
        ``PatternTreeSHAP`` (the same numbers as LightGBM's ``pred_contrib``, several times faster), or by
        ``pred_contrib`` itself for trees too large for pattern tables.
        """
        matrix = self.matrix(features)
        if self._explainer is None:
            self._explainer = PatternTreeSHAP(self.booster)
        if self._explainer.supports:
            out = self._explainer.contributions(numeric_matrix(matrix, self.booster))
        else:
            out = self.booster.predict(matrix, pred_contrib=True)
        return out[:, :-1], out[:, -1]

    # ---- the score rows --------------------------------------------------------------------------------
    def score(self, features: pd.DataFrame, policy: Policy, *, top_k: int = 5, details: bool = True) -> pd.DataFrame:
        """Score rows of point-in-time features under ``policy``.

        Returns one row per input row (same order): the CONTRACT score-file columns, then
        ``policy_version``, ``feature_version``, ``base_value`` and ``log_odds``; with ``details`` also
        ``contributions`` (JSON object feature -> contribution, every feature) and ``features`` (JSON
        object feature -> value), which is everything an explanation needs. ``reasons`` is a JSON list of
        the ``top_k`` non-zero contributions by absolute size, each ``{"feature", "value",
        "contribution", "text_zh", "text_en"}``.
        """
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0; got {top_k}")
        contrib, base = self.contributions(features)
        log_odds = base + contrib.sum(axis=1)
        score = self.calibrator.transform(log_odds)
        tiers = policy.apply(score, features)
        n = len(features)
        out = pd.DataFrame(
            {
                "entity_id": _column(features, "entity_id", n),
                "as_of": _column(features, "as_of", n),
                "score": score,
                "model_tier": tiers["model_tier"].to_numpy(),
                "tier": tiers["tier"].to_numpy(),
                "rules": tiers["rules"].to_numpy(),
                "review": tiers["review"].to_numpy(dtype=bool),
                "model_version": self.model_version or UNREGISTERED,
                "reasons": reasons_json(contrib, features, top_k, self._reason_cache),
                "policy_version": policy.version_tag,
                "feature_version": self.feature_version,
                "base_value": base,
                "log_odds": log_odds,
            }
        )
        if details:
            out["contributions"] = contributions_json(contrib)
            out["features"] = features_json(features)
        return out

    # ---- persistence -----------------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write the booster (LightGBM text format) and the rest as JSON into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / BOOSTER_FILE))
        state = {
            "feature_names": self.feature_names,
            "feature_version": self.feature_version,
            "catalogue_fingerprint": self.catalogue_fingerprint,
            "calibrator": self.calibrator.to_dict(),
            "metadata": self.metadata,
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2, ensure_ascii=False), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path, *, model_version: str | None = None) -> Scorer:
        """Read a scorer written by ``save``."""
        directory = Path(directory)
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        booster = lgb.Booster(model_file=str(directory / BOOSTER_FILE))
        return cls(
            booster=booster,
            calibrator=Calibrator.from_dict(state["calibrator"]),
            feature_names=list(state["feature_names"]),
            feature_version=state["feature_version"],
            catalogue_fingerprint=state.get("catalogue_fingerprint", ""),
            model_version=model_version,
            metadata=state.get("metadata", {}),
        )


def _column(features: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name in features.columns:
        return features[name].to_numpy(dtype=object)
    return np.full(n, None, dtype=object)


# ---- JSON built column by column: scoring a million rows must not be dominated by json.dumps -----------


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _float_json(value: float) -> str:
    return repr(value) if math.isfinite(value) else "null"


def _values(features: pd.DataFrame, name: str) -> np.ndarray:
    """A feature column as plain Python-friendly values (bool, int, float, str or None)."""
    column = features[name]
    dtype = FEATURES[name].dtype
    if dtype == "category":
        return column.astype(object).where(column.notna(), None).to_numpy(dtype=object)
    if dtype == "bool":
        return column.fillna(False).to_numpy(dtype=bool)
    if dtype == "int":
        return column.fillna(0).to_numpy(dtype=np.int64)
    return column.to_numpy(dtype=float)


def _value_json(value: Any, dtype: str) -> str:
    if value is None:
        return "null"
    if dtype == "bool":
        return "true" if value else "false"
    if dtype == "int":
        return str(int(value))
    if dtype == "float":
        return _float_json(float(value))
    return _json_str(str(value))


def _reason_parts(name: str, value: Any) -> tuple[str, str]:
    """The JSON of one reason before and after its contribution number."""
    feature = FEATURES[name]
    shown = None if isinstance(value, float) and math.isnan(value) else value
    text_zh, text_en = feature.describe(shown)
    head = f'{{"feature":{_json_str(name)},"value":{_value_json(shown, feature.dtype)},"contribution":'
    tail = f',"text_zh":{_json_str(text_zh)},"text_en":{_json_str(text_en)}}}'
    return head, tail


def top_contributions(contrib: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the ``top_k`` largest |contributions| per row, largest first, ties by catalogue
    order; and a mask that is False where the contribution is zero (nothing to explain)."""
    n, k = contrib.shape
    top_k = min(top_k, k)
    if top_k == 0 or n == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=bool)
    magnitude = np.abs(contrib)
    if top_k < k:
        candidates = np.argpartition(-magnitude, top_k - 1, axis=1)[:, :top_k]
    else:
        candidates = np.tile(np.arange(k), (n, 1))
    chosen = np.take_along_axis(magnitude, candidates, axis=1)
    order = np.lexsort((candidates, -chosen), axis=1)
    index = np.take_along_axis(candidates, order, axis=1)
    mask = np.take_along_axis(magnitude, index, axis=1) > 0
    return index, mask


def reasons_json(
    contrib: np.ndarray, features: pd.DataFrame, top_k: int, cache: dict[int, dict[Any, tuple[str, str]]] | None = None
) -> np.ndarray:
    """The ``reasons`` column: per row a JSON list of its top-k contributions with bilingual text.

    Built column-wise (one group per rank and feature) so that a million rows cost seconds: the JSON
    around each value and its sentence is made once per distinct value (``cache``, kept by the scorer
    across chunks), and the contributions are formatted by numpy (shortest round-trip repr, like
    ``repr(float)``).
    """
    n = contrib.shape[0]
    index, mask = top_contributions(contrib, top_k)
    result = np.full(n, "[", dtype=object)
    cache = {} if cache is None else cache
    columns: dict[int, np.ndarray] = {}
    for rank in range(index.shape[1]):
        ranked = np.where(mask[:, rank], index[:, rank], -1)
        if not (ranked >= 0).any():
            continue
        order = np.argsort(ranked, kind="stable")
        features_here, starts = np.unique(ranked[order], return_index=True)
        ends = np.r_[starts[1:], n]
        piece = np.full(n, "", dtype=object)
        lead = "," if rank else ""
        for j, start, end in zip(features_here.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if j < 0:
                continue
            rows = order[start:end]
            name = FEATURE_NAMES[j]
            if j not in columns:
                columns[j] = _values(features, name)
            values = columns[j][rows].tolist()
            parts = cache.setdefault(j, {})
            if len(parts) > 200_000:  # continuous values: keep the cache bounded in a long-lived service
                parts.clear()
            keys = ["nan" if isinstance(v, float) and math.isnan(v) else v for v in values]
            for key, value in zip(keys, values, strict=True):
                if key not in parts:
                    parts[key] = _reason_parts(name, value)
            heads = np.array([lead + parts[k][0] for k in keys], dtype=object)
            tails = np.array([parts[k][1] for k in keys], dtype=object)
            amounts = contrib[rows, j].astype(str).astype(object)
            piece[rows] = heads + amounts + tails
        result = result + piece
    return result + "]"


def _json_objects(columns: list[tuple[str, list[str]]], n: int) -> list[str]:
    keys = [f"{_json_str(name)}:" for name, _ in columns]
    rendered = [[key + text for text in texts] for key, (_, texts) in zip(keys, columns, strict=True)]
    return ["{" + ",".join(row) + "}" for row in zip(*rendered, strict=True)] if rendered else ["{}"] * n


def contributions_json(contrib: np.ndarray) -> list[str]:
    """The ``contributions`` column: per row a JSON object feature -> contribution (every feature)."""
    columns = [(name, [_float_json(v) for v in contrib[:, j].tolist()]) for j, name in enumerate(FEATURE_NAMES)]
    return _json_objects(columns, contrib.shape[0])


def features_json(features: pd.DataFrame) -> list[str]:
    """The ``features`` column: per row a JSON object feature -> value, as the explanation shows it."""
    columns = []
    for name in FEATURE_NAMES:
        dtype = FEATURES[name].dtype
        values = _values(features, name).tolist()
        if dtype == "float":
            texts = [_float_json(v) for v in values]
        elif dtype == "int":
            texts = [str(v) for v in values]
        elif dtype == "bool":
            texts = ["true" if v else "false" for v in values]
        else:
            texts = ["null" if v is None else _json_str(v) for v in values]
        columns.append((name, texts))
    return _json_objects(columns, len(features))


def load_scorer(model_uri: str, tracking_uri: str) -> Scorer:
    """Load the scorer of ``model_uri`` (``models:/ipcredit@champion``, ``models:/ipcredit/3``, ``runs:/…``).

    The MLflow calls live in ``models.registry``; this is the name the CLI and the service import.
    """
    from models.registry import load_scorer as _load

    return _load(model_uri, tracking_uri)
