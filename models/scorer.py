"""The scorer: the fitted model, its calibrated score, tier, fired rules and exact TreeSHAP explanation.

A ``Scorer`` is the one fitted object every consumer uses: ``ipcredit score``, the HTTP service, the
MLflow pyfunc wrapper, the notebook and the benchmarks. It holds the LightGBM booster, the calibrator, the
feature order it was trained with and the feature code version.

Explanations are exact path-dependent TreeSHAP values in log-odds, from LightGBM's ``pred_contrib``
(measured faster than ``shap.TreeExplainer`` on the same booster; numbers in docs/model.md). The row sum
of the contributions plus the base value *is* the booster's raw output, so scoring computes SHAP once and
takes the log-odds from it: explaining costs nothing beyond ``pred_contrib`` itself. The calibrated score
is a non-decreasing function of the log-odds (``models/calibration.py``). The tiers and fired rules come
from the policy's one engine (``models.policy``), the reason text from ``models.reasons``.

Loading a registered model is the registry's job (``models.registry.load_scorer``); this module never
imports it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa

from features.build import model_matrix
from features.catalogue import CATEGORICAL, CATEGORIES, FEATURE_NAMES, catalogue_fingerprint
from features.columns import FeatureColumns, feature_columns
from features.errors import Unavailable
from models.calibration import Calibrator
from models.policy import Policy
from models.reasons import ReasonCache, contributions_json, features_json, reasons_json
from models.scorefile import UNREGISTERED, is_text, text_column
from models.treeshap import PatternTreeSHAP

BOOSTER_FILE = "booster.txt"
STATE_FILE = "scorer.json"
_PREPARE_LOCK = threading.Lock()


class ModelError(Unavailable):
    """The model cannot score these features (wrong feature code version, unknown features): no model
    the service or ``ipcredit score`` may use is there until one is retrained."""


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
    _reason_cache: ReasonCache = field(default_factory=dict, init=False, repr=False, compare=False)
    _category_maps: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

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
        return self._contributions(self.numeric(feature_columns(features)))

    def numeric(self, columns: FeatureColumns) -> np.ndarray:
        """The float64 matrix LightGBM predicts on, from ``feature_columns``: what
        ``models.treeshap.numeric_matrix(model_matrix(features), booster)`` gives, without pandas (booleans
        0/1, integers as floats, a category as its code among the booster's categories, NaN if unknown)."""
        remap = self._category_codes()
        n = len(next(iter(columns.values()))) if columns else 0
        x = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
        for j, name in enumerate(FEATURE_NAMES):
            x[:, j] = remap[name][columns[name]] if name in remap else columns[name]
        return x

    def _category_codes(self) -> dict[str, np.ndarray]:
        # Catalogue code -> the booster's code as a float; the last slot (index -1) is "missing" -> NaN.
        maps = self._category_maps
        if maps is None:
            trained = list(self.booster.pandas_categorical or [])
            maps = {}
            for name in CATEGORICAL:
                if not trained:
                    raise ModelError(f"the booster does not know the categories of {name!r}; retrain it")
                position = {value: float(i) for i, value in enumerate(trained.pop(0))}
                maps[name] = np.array([position.get(v, np.nan) for v in CATEGORIES[name]] + [np.nan])
            self._category_maps = maps
        return maps

    def _contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        explainer = self.explainer()
        out = explainer.contributions(x) if explainer.supports else self.booster.predict(x, pred_contrib=True)
        return out[:, :-1], out[:, -1]

    def explainer(self) -> PatternTreeSHAP:
        """The pattern TreeSHAP explainer of this booster, built once (thread-safe)."""
        if self._explainer is None:
            with _PREPARE_LOCK:
                if self._explainer is None:
                    explainer = PatternTreeSHAP(self.booster)
                    explainer.supports  # noqa: B018 (builds the pattern tables now, not in a request)
                    self._explainer = explainer
        return self._explainer

    def prepare(self) -> Scorer:
        """Build what scoring caches (pattern tables, category codes) and load the compiled kernels now,
        so the first request costs what every other one does. Returns the scorer."""
        self._category_codes()
        explainer = self.explainer()
        if explainer.supports:
            explainer.contributions(np.full((1, explainer.n_features_), np.nan))
        return self

    # ---- the score rows --------------------------------------------------------------------------------
    def score(
        self,
        features: pd.DataFrame,
        policy: Policy,
        *,
        top_k: int = 5,
        details: bool = True,
        chunk_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> pd.DataFrame:
        """Score rows of point-in-time features under ``policy``.

        Returns one row per input row (same order): the CONTRACT score-file columns, then
        ``policy_version``, ``feature_version``, ``base_value`` and ``log_odds``; with ``details`` also
        ``contributions`` (JSON object feature -> contribution, every feature) and ``features`` (JSON
        object feature -> value), which is everything an explanation needs. ``reasons`` is a JSON list of
        the ``top_k`` non-zero contributions by absolute size, each ``{"feature", "value",
        "contribution", "text_zh", "text_en"}``.

        With ``chunk_size``, rows are scored that many at a time (``progress`` is told how many rows each
        chunk had) and the frame is built once from the chunks' columns, so it is the same frame whatever
        the chunk size, down to the bytes of a Parquet file written from it (a frame concatenated from
        chunks keeps its string columns in pieces, and Parquet's dictionary encoding follows the pieces).
        """
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
        step = len(features) if chunk_size is None else chunk_size
        parts = []
        for start in range(0, len(features), max(step, 1)):
            chunk = features if step >= len(features) else features.iloc[start : start + step]
            columns = self.score_columns(chunk, policy, top_k=top_k, details=details)
            # Text as UTF-8 right away: the Python strings of every chunk held at once are most of the
            # memory of scoring millions of rows.
            parts.append({name: pa.array(v, pa.string()) if is_text(v) else v for name, v in columns.items()})
            if progress is not None:
                progress(len(chunk))
        if not parts:
            return pd.DataFrame(self.score_columns(features, policy, top_k=top_k, details=details))
        return pd.DataFrame({name: _joined([part[name] for part in parts]) for name in parts[0]})

    def score_columns(
        self, features: pd.DataFrame, policy: Policy, *, top_k: int = 5, details: bool = True
    ) -> dict[str, np.ndarray | list]:
        """``score`` as a dict of columns (arrays or lists, one item per row), without building a
        DataFrame: the service scores one entity per request this way. ``score`` is this, framed."""
        n = len(features)
        ids, dates = _column(features, "entity_id", n), _column(features, "as_of", n)
        return self.score_feature_columns(feature_columns(features), ids, dates, policy, top_k=top_k, details=details)

    def score_feature_columns(
        self,
        columns: dict[str, np.ndarray],
        entity_id: np.ndarray,
        as_of: np.ndarray,
        policy: Policy,
        *,
        top_k: int = 5,
        details: bool = True,
    ) -> dict[str, np.ndarray | list]:
        """``score_columns`` of features already read into columns (``features.columns.feature_columns``,
        or ``value_columns`` of one what-if row), with each row's ``entity_id`` and ``as_of``."""
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0; got {top_k}")
        n = len(entity_id)
        contrib, base = self._contributions(self.numeric(columns))
        log_odds = base + contrib.sum(axis=1)
        score = self.calibrator.transform(log_odds)
        tiering = policy.tiering(score, columns)
        out: dict[str, np.ndarray | list] = {
            "entity_id": entity_id,
            "as_of": as_of,
            "score": score,
            "model_tier": tiering.model_tier,
            "tier": tiering.tier,
            "rules": tiering.rules,
            "review": tiering.review,
            "model_version": np.full(n, self.model_version or UNREGISTERED, dtype=object),
            "reasons": reasons_json(contrib, columns, top_k, self._reason_cache),
            "policy_version": np.full(n, policy.version_tag, dtype=object),
            "feature_version": np.full(n, self.feature_version, dtype=object),
            "base_value": base,
            "log_odds": log_odds,
        }
        if details:
            out["contributions"] = contributions_json(contrib)
            out["features"] = features_json(columns)
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


def _joined(pieces: list[np.ndarray | list | pa.Array]) -> np.ndarray | list | pd.Series:
    """One column from its chunks: text as one ``text_column`` (chunked by size only, so the frame — and
    a Parquet file written from it — is the same whatever the chunk size), arrays joined into one array,
    lists into one list."""
    if all(isinstance(piece, pa.Array) for piece in pieces):
        return text_column(pieces)
    if all(isinstance(piece, np.ndarray) for piece in pieces):
        return np.concatenate(pieces)
    return [value for piece in pieces for value in piece]


def _column(features: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name in features.columns:
        return features[name].to_numpy(dtype=object)
    return np.full(n, None, dtype=object)
