"""Explanations as the score file stores them: the top reasons, every contribution, every feature value.

Exact TreeSHAP contributions (``Scorer.contributions``) become three JSON columns: ``reasons`` (the top-k
contributions by absolute size with their bilingual sentences from the feature catalogue),
``contributions`` (feature -> contribution) and ``features`` (feature -> value). They are built column by
column: scoring a million rows must not be dominated by ``json.dumps``.

``rule_records`` says which records stand behind each fired rule: the records (``features.evidence``) of
the features whose conditions held.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_NAMES, FEATURES
from features.columns import FeatureColumns, decoded, feature_columns
from features.evidence import Evidence, union
from models.policy import Policy, compiled

FeatureValue = bool | int | float | str | None
# Per feature index, per distinct value: the reason's JSON before its contribution (first in the list and
# after a comma) and after it. A scorer keeps one across chunks.
ReasonCache = dict[int, dict[FeatureValue, tuple[str, str, str]]]


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _float_json(value: float) -> str:
    return repr(value) if math.isfinite(value) else "null"


def _as_columns(features: pd.DataFrame | FeatureColumns) -> FeatureColumns:
    return feature_columns(features) if isinstance(features, pd.DataFrame) else features


def _value_json(value: FeatureValue, dtype: str) -> str:
    if value is None:
        return "null"
    if dtype == "bool":
        return "true" if value else "false"
    if dtype == "int":
        return str(int(value))
    if dtype == "float":
        return _float_json(float(value))
    return _json_str(str(value))


def _reason_parts(name: str, value: FeatureValue) -> tuple[str, str]:
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
    features: pd.DataFrame | FeatureColumns,
    top_k: int,
    cache: ReasonCache | None = None,
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
    j: int, columns: FeatureColumns, rows: np.ndarray, cache: ReasonCache, *, lead: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The JSON before and after the contribution for feature ``j`` in ``rows``: one entry per distinct
    value, looked up in (or added to) the cache, then spread over the rows."""
    name = FEATURE_NAMES[j]
    raw = columns[name][rows]
    distinct, inverse = np.unique(raw, return_inverse=True)
    values = decoded({name: distinct}, name).tolist()
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


def features_json(features: pd.DataFrame | FeatureColumns) -> list[str]:
    """The ``features`` column: per row a JSON object feature -> value, as the explanation shows it.

    ``features`` is the feature frame or its ``feature_columns``."""
    source = _as_columns(features)
    columns = []
    n = 0
    for name in FEATURE_NAMES:
        dtype = FEATURES[name].dtype
        values = decoded(source, name).tolist()
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


def rule_records(
    policy: Policy, codes: str, values: Mapping[str, FeatureValue], found: Mapping[str, Evidence]
) -> dict[str, list[Evidence]]:
    """The records behind each fired rule of ``codes`` (``;``-joined): per table, the records of the
    features whose conditions hold for ``values`` (the row's feature values) — every condition of
    ``when_all`` and those of ``when_any`` that hold — from ``found`` (``features.evidence.evidence``)."""
    engine = compiled(policy)
    out: dict[str, list[Evidence]] = {}
    for code in [c for c in (codes or "").split(";") if c]:
        if code not in engine.codes:
            continue
        _, _, when_all, when_any = engine.rules[engine.codes.index(code)]
        names = [name for name, op, value in (*when_all, *when_any) if _holds(op, values.get(name), value)]
        parts = [found[name] for name in dict.fromkeys(names) if name in found]
        tables = dict.fromkeys(part.table for part in parts)
        out[code] = [union(table, parts) for table in tables]
    return out


def _holds(op, value: FeatureValue, threshold: bool | float) -> bool:
    """One rule condition on one stored value, as ``CompiledPolicy`` compares a feature column (a missing
    value is NaN: it fails every comparison but ``!=``)."""
    number = np.nan if value is None else float(value) if not isinstance(value, str) else np.nan
    return bool(op(np.asarray([number], dtype=np.float64), threshold)[0])
