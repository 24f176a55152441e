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
import operator
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.build import conform, model_matrix
from features.catalogue import CATEGORICAL, CATEGORIES, FEATURE_NAMES, FEATURES, catalogue_fingerprint
from models.calibration import Calibrator
from models.policy import TIERS, Policy
from models.treeshap import PatternTreeSHAP

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
_PREPARE_LOCK = threading.Lock()


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
    _category_maps: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)
    _programs: dict[int, tuple[Policy, PolicyProgram]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

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

    def numeric(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
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
    def score(self, features: pd.DataFrame, policy: Policy, *, top_k: int = 5, details: bool = True) -> pd.DataFrame:
        """Score rows of point-in-time features under ``policy``.

        Returns one row per input row (same order): the CONTRACT score-file columns, then
        ``policy_version``, ``feature_version``, ``base_value`` and ``log_odds``; with ``details`` also
        ``contributions`` (JSON object feature -> contribution, every feature) and ``features`` (JSON
        object feature -> value), which is everything an explanation needs. ``reasons`` is a JSON list of
        the ``top_k`` non-zero contributions by absolute size, each ``{"feature", "value",
        "contribution", "text_zh", "text_en"}``.
        """
        return pd.DataFrame(self.score_columns(features, policy, top_k=top_k, details=details))

    def score_columns(
        self, features: pd.DataFrame, policy: Policy, *, top_k: int = 5, details: bool = True
    ) -> dict[str, np.ndarray | list]:
        """``score`` as a dict of columns (arrays or lists, one item per row), without building a
        DataFrame: the service scores one entity per request this way. ``score`` is this, framed."""
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0; got {top_k}")
        n = len(features)
        columns = feature_columns(features)
        contrib, base = self._contributions(self.numeric(columns))
        log_odds = base + contrib.sum(axis=1)
        score = self.calibrator.transform(log_odds)
        model_tier, tier, rules, review = self._policy_program(policy).apply(score, columns)
        out: dict[str, np.ndarray | list] = {
            "entity_id": _column(features, "entity_id", n),
            "as_of": _column(features, "as_of", n),
            "score": score,
            "model_tier": model_tier,
            "tier": tier,
            "rules": rules,
            "review": review,
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

    def _policy_program(self, policy: Policy) -> PolicyProgram:
        entry = self._programs.get(id(policy))
        if entry is None or entry[0] is not policy:
            if len(self._programs) > 64:
                self._programs = {}
            entry = (policy, PolicyProgram(policy))
            self._programs[id(policy)] = entry
        return entry[1]

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


# ---- the feature columns, read once -----------------------------------------------------------------

_NUMPY_TYPES = {"bool": np.dtype(bool), "int": np.dtype(np.int64), "float": np.dtype(np.float64)}


def feature_columns(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """The catalogue features of ``features`` as numpy columns of the catalogue's types, read once.

    ``bool``, ``int64`` and ``float64`` arrays; a categorical feature as ``int16`` codes into its fixed
    categories (``features.catalogue.CATEGORIES``), ``-1`` when missing or unknown. A column that already
    has the catalogue's type (as ``features.build`` writes it) is taken as it is; any other goes through
    ``features.build.conform``, so these are exactly the values ``model_matrix`` gives the model. Every
    step of scoring (matrix, rules, reasons, stored values) reads these arrays, never the frame again.
    """
    missing = [name for name in FEATURE_NAMES if name not in features.columns]
    if missing:
        raise ValueError(f"features must include every catalogue feature; missing {missing}")
    if len(features) <= _FEW_ROWS and features.columns.is_unique:
        few = _few_rows(features)
        if few is not None:
            return few
    columns: dict[str, np.ndarray] = {}
    for name in FEATURE_NAMES:
        column = features[name]
        if not _has_catalogue_type(column.dtype, name):
            column = conform(features[[name]])[name]
        if FEATURES[name].dtype == "category":
            columns[name] = column.cat.codes.to_numpy().astype(np.int16)
        else:
            columns[name] = column.to_numpy()
    return columns


# Up to this many rows (a what-if request is one) the frame is read in one call instead of column by
# column: pandas costs tens of microseconds per column access, which is most of scoring one row.
_FEW_ROWS = 64
_CATEGORY_CODES = {name: {value: code for code, value in enumerate(CATEGORIES[name])} for name in CATEGORICAL}


def _has_catalogue_type(dtype: Any, name: str) -> bool:
    if FEATURES[name].dtype == "category":
        return isinstance(dtype, pd.CategoricalDtype) and list(dtype.categories) == CATEGORIES[name]
    return dtype == _NUMPY_TYPES[FEATURES[name].dtype]


def _few_rows(features: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """``feature_columns`` of a small frame whose catalogue columns all have their catalogue types, from
    one ``to_numpy(dtype=object)``; ``None`` when some column would need ``conform``."""
    dtypes = dict(zip(features.columns, features.dtypes, strict=True))
    if not all(_has_catalogue_type(dtypes[name], name) for name in FEATURE_NAMES):
        return None
    values = features.to_numpy(dtype=object)
    position = {name: i for i, name in enumerate(features.columns)}
    columns: dict[str, np.ndarray] = {}
    for name in FEATURE_NAMES:
        cells = values[:, position[name]].tolist()
        dtype = FEATURES[name].dtype
        if dtype == "category":
            codes = _CATEGORY_CODES[name]
            columns[name] = np.array([codes.get(v, -1) if isinstance(v, str) else -1 for v in cells], np.int16)
        else:
            columns[name] = np.array(cells, dtype=_NUMPY_TYPES[dtype])
    return columns


# ---- the policy, compiled once -----------------------------------------------------------------------

_OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class PolicyProgram:
    """``Policy.apply`` on ``feature_columns``: the same cut-offs, rules and combination (caps on the
    model's tier, then floors, then forces never below a fired floor), with the conditions turned into
    numpy comparisons once per policy instead of pandas work per call. The rules read the conformed
    values the model reads. ``tests/serving/test_fast_scoring.py`` checks it against ``Policy.apply``."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.bounds = np.asarray([policy.tiers.upper_bounds[t] for t in TIERS[:-1]], dtype=np.float64)
        self.review_gap = policy.tiers.review_gap
        self.codes = [rule.code for rule in policy.rules]
        self.rules = [
            (
                rule.effect,
                TIERS.index(rule.tier),
                [(c.feature, _OPERATORS[c.op], c.value) for c in rule.when_all],
                [(c.feature, _OPERATORS[c.op], c.value) for c in rule.when_any],
            )
            for rule in policy.rules
        ]
        self.tier_names = np.asarray(TIERS, dtype=object)

    def fired(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """``(n, rules)``: which rules fire for each row."""
        out = np.zeros((n, len(self.rules)), dtype=bool)
        for r, (_, _, when_all, when_any) in enumerate(self.rules):
            fired = np.ones(n, dtype=bool)
            for name, op, value in when_all:
                fired &= op(columns[name], value)
            if when_any:
                any_ = np.zeros(n, dtype=bool)
                for name, op, value in when_any:
                    any_ |= op(columns[name], value)
                fired &= any_
            out[:, r] = fired
        return out

    def apply(
        self, score: np.ndarray, columns: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``model_tier``, ``tier``, ``rules`` (fired codes, ``;``-joined) and ``review`` per row."""
        n = len(score)
        model_level = np.searchsorted(self.bounds, np.asarray(score, dtype=np.float64), side="right")
        fired = self.fired(columns, n)
        level = model_level
        floor = np.full(n, -1)
        forced = np.full(n, -1)
        for r, (effect, target, _, _) in enumerate(self.rules):
            mask = fired[:, r]
            if not mask.any():
                continue
            if effect == "cap":
                level = np.where(mask, np.minimum(level, target), level)
            elif effect == "floor":
                floor = np.where(mask, np.maximum(floor, target), floor)
            else:
                forced = np.where(mask, np.maximum(forced, target), forced)
        level = np.maximum(level, floor)
        level = np.where(forced >= 0, np.maximum(forced, floor), level)
        return (
            self.tier_names[model_level],
            self.tier_names[level],
            self._rule_text(fired),
            np.abs(level - model_level) >= self.review_gap,
        )

    def _rule_text(self, fired: np.ndarray) -> np.ndarray:
        # Rows fire few distinct combinations: join the codes once per combination, not once per row.
        n, r = fired.shape
        if r == 0 or n == 0:
            return np.full(n, "", dtype=object)
        if r > 62:
            return np.array([";".join(c for c, f in zip(self.codes, row, strict=True) if f) for row in fired], object)
        keys = fired.astype(np.int64) @ (np.int64(1) << np.arange(r, dtype=np.int64))
        distinct, inverse = np.unique(keys, return_inverse=True)
        texts = np.array(
            [";".join(c for i, c in enumerate(self.codes) if (int(k) >> i) & 1) for k in distinct], dtype=object
        )
        return texts[inverse]


# ---- JSON built column by column: scoring a million rows must not be dominated by json.dumps -----------


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _float_json(value: float) -> str:
    return repr(value) if math.isfinite(value) else "null"


def _as_columns(features: pd.DataFrame | Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    return feature_columns(features) if isinstance(features, pd.DataFrame) else features


def _values(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """A feature column as plain Python-friendly values (bool, int, float, str or None)."""
    if FEATURES[name].dtype == "category":
        return np.asarray([*CATEGORIES[name], None], dtype=object)[columns[name]]
    return columns[name]


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
    contrib: np.ndarray,
    features: pd.DataFrame | Mapping[str, np.ndarray],
    top_k: int,
    cache: dict[int, dict[Any, tuple[str, str, str]]] | None = None,
) -> np.ndarray:
    """The ``reasons`` column: per row a JSON list of its top-k contributions with bilingual text.

    ``features`` is the feature frame or its ``feature_columns``. Built column-wise so that a million
    rows cost seconds, not minutes: per rank, rows are grouped by the feature in that place and, within
    a group, by the feature's value, and the JSON around each distinct value and its sentences is made
    once (``cache``, kept by the scorer across chunks); the contributions are formatted with ``repr``
    (the shortest text that reads back as the same float); each row's string is joined once at the end.
    """
    columns = _as_columns(features)
    n = contrib.shape[0]
    index, mask = top_contributions(contrib, top_k)
    cache = {} if cache is None else cache
    empty = np.full(n, "", dtype=object)
    segments: list[list[str]] = []
    for rank in range(index.shape[1]):
        ranked = np.where(mask[:, rank], index[:, rank], -1)
        if not (ranked >= 0).any():
            continue
        heads, tails = empty.copy(), empty.copy()
        order = np.argsort(ranked, kind="stable")
        features_here, starts = np.unique(ranked[order], return_index=True)
        ends = np.r_[starts[1:], n]
        for j, start, end in zip(features_here.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if j < 0:
                continue
            rows = order[start:end]
            head, tail = _reason_texts(j, columns, rows, cache, lead=rank > 0)
            heads[rows] = head
            tails[rows] = tail
        chosen = contrib[np.arange(n), np.maximum(ranked, 0)]
        amounts = np.array(list(map(repr, chosen.tolist())), dtype=object)
        amounts[ranked < 0] = ""
        segments += [heads.tolist(), amounts.tolist(), tails.tolist()]
    out = np.empty(n, dtype=object)
    out[:] = ["[" + "".join(parts) + "]" for parts in zip(*segments, strict=True)] if segments else "[]"
    return out


def _reason_texts(
    j: int, columns: Mapping[str, np.ndarray], rows: np.ndarray, cache: dict, *, lead: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The JSON before and after the contribution for feature ``j`` in ``rows``: one entry per distinct
    value, looked up in (or added to) the cache, then spread over the rows."""
    name = FEATURE_NAMES[j]
    raw = columns[name][rows]
    distinct, inverse = np.unique(raw, return_inverse=True)
    values = _values({name: distinct}, name).tolist()
    parts = cache.get(j)
    if parts is None or len(parts) > 200_000:  # continuous values: keep the cache bounded
        parts = cache[j] = {}  # a new dict, so a concurrent reader keeps a consistent one
    heads = np.empty(len(values), dtype=object)
    tails = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        key = "nan" if isinstance(value, float) and math.isnan(value) else value
        found = parts.get(key)
        if found is None:
            head, tail = _reason_parts(name, value)
            found = parts[key] = (head, "," + head, tail)
        heads[i] = found[1] if lead else found[0]
        tails[i] = found[2]
    return heads[inverse.ravel()], tails[inverse.ravel()]


def _json_objects(columns: list[tuple[str, list[str]]], n: int) -> list[str]:
    keys = [f"{_json_str(name)}:" for name, _ in columns]
    rendered = [[key + text for text in texts] for key, (_, texts) in zip(keys, columns, strict=True)]
    return ["{" + ",".join(row) + "}" for row in zip(*rendered, strict=True)] if rendered else ["{}"] * n


def contributions_json(contrib: np.ndarray) -> list[str]:
    """The ``contributions`` column: per row a JSON object feature -> contribution (every feature)."""
    columns = [(name, [_float_json(v) for v in contrib[:, j].tolist()]) for j, name in enumerate(FEATURE_NAMES)]
    return _json_objects(columns, contrib.shape[0])


def features_json(features: pd.DataFrame | Mapping[str, np.ndarray]) -> list[str]:
    """The ``features`` column: per row a JSON object feature -> value, as the explanation shows it.

    ``features`` is the feature frame or its ``feature_columns``."""
    source = _as_columns(features)
    columns = []
    n = 0
    for name in FEATURE_NAMES:
        dtype = FEATURES[name].dtype
        values = _values(source, name).tolist()
        n = len(values)
        if dtype == "float":
            texts = [_float_json(v) for v in values]
        elif dtype == "int":
            texts = [str(v) for v in values]
        elif dtype == "bool":
            texts = ["true" if v else "false" for v in values]
        else:
            texts = ["null" if v is None else _json_str(v) for v in values]
        columns.append((name, texts))
    return _json_objects(columns, n)


def load_scorer(model_uri: str, tracking_uri: str) -> Scorer:
    """Load the scorer of ``model_uri`` (``models:/ipcredit@champion``, ``models:/ipcredit/3``, ``runs:/…``).

    The MLflow calls live in ``models.registry``; this is the name the CLI and the service import.
    """
    from models.registry import load_scorer as _load

    return _load(model_uri, tracking_uri)
