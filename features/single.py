"""The features of one posted history, without pandas: the what-if fast path.

``build_features_from_frames`` builds a history through pandas frames and the batch machinery, which costs
milliseconds for one entity. ``single_features`` computes the same row from the request's own records in
numpy over their few values, dates as day numbers (``date.toordinal``), from the same sources the batch
build reads: the catalogue's definitions (``features/catalogue.py``: every ``Attribute``, ``Aggregate``,
``Ratio``, ``OnList`` and ``ListEntries``) and the point-in-time rule's conditions
(``features/pointintime.py``: ``EVENT_COUNTS``, ``LIST_IN_FORCE``, ``LIST_ENTERED``, evaluated here on day
numbers). There is no list of features here.

Records are objects with the contract's columns as attributes (the service's request models, or any
namespace); dates are ``datetime.date`` (or ISO text, or pandas timestamps), ``None`` when missing. A
history carries no links, so its relationship features are zeros, as ``build_features_from_frames`` gives
them without ``relations``; with links, use that function. The result equals its row, dtype for dtype and
bit for bit (``tests/features/test_single.py`` checks it on random histories).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import (
    CATALOGUE,
    CATEGORIES,
    YEARS_SINCE_CAP,
    Aggregate,
    Attribute,
    ListEntries,
    Measure,
    Ratio,
    Source,
)
from features.pointintime import (
    _COMPARE,
    EVENT_COUNTS,
    LIST_ENTERED,
    LIST_IN_FORCE,
    Condition,
    LapsesAfter,
    OnDate,
    ago_bounds,
    as_date,
    in_window,
)
from features.schema import EVENT_CODES, EVENTS, LISTS, WITHDRAWN_ON, ColumnType
from features.sql import DECAY_EPOCH, weights_at

_CODE = {code: i for i, code in enumerate(EVENT_CODES)}
_EVENT_DATES = frozenset(c.name for c in EVENTS.columns if c.type is ColumnType.DATE)
_LIST_DATES = frozenset(c.name for c in LISTS.columns if c.type is ColumnType.DATE) | {WITHDRAWN_ON}
_DTYPES = {"bool": np.dtype(bool), "int": np.dtype(np.int64), "float": np.dtype(np.float64)}
_CATEGORY_TYPES = {name: pd.CategoricalDtype(values) for name, values in CATEGORIES.items()}
_CATEGORY_CODES = {name: {v: i for i, v in enumerate(values)} for name, values in CATEGORIES.items()}


def single_features(entity: Any, events: Sequence[Any], lists: Sequence[Any], as_of: date | str) -> pd.DataFrame:
    """``build_features_from_frames`` of one entity's history without links: its one-row feature frame at
    ``as_of`` (no row when it registered after ``as_of``), from the records themselves.

    ``entity`` has the entities columns as attributes, ``events`` and ``lists`` are their tables' rows; rows
    of another ``entity_id`` and events of a type outside the catalogue are ignored, as the batch build
    ignores them."""
    as_of = as_date(as_of)
    values = feature_values(entity, events, lists, as_of)
    if values is None:
        return _framed({"entity_id": np.empty(0, dtype=object), "as_of": np.empty(0, dtype=object)}, 0)
    return _framed(values, 1)


def feature_values(entity: Any, events: Sequence[Any], lists: Sequence[Any], as_of: date) -> dict[str, Any] | None:
    """The feature row as plain values by name (``entity_id``, ``as_of``, then the catalogue in order),
    each already of its catalogue type (a category as its value or ``None``); ``None`` before the entity's
    registration."""
    registered = day_number(entity.registered_on)
    if not registered <= as_of.toordinal():
        return None
    entity_id = str(entity.entity_id)
    counted = _Counted(own_rows(events, entity_id), as_of)
    own_lists = own_rows(lists, entity_id)
    in_force = _lists_holding(LIST_IN_FORCE, own_lists, as_of)
    entered = _lists_holding(LIST_ENTERED, own_lists, as_of)
    out: dict[str, Any] = {"entity_id": entity_id, "as_of": as_of}
    for f in CATALOGUE:
        if f.source is Source.ENTITY:
            value = _attribute(f.spec, entity, as_of)
        elif f.source is Source.LISTS:
            value = entered.count(f.spec.list_name) if isinstance(f.spec, ListEntries) else f.spec.list_name in in_force
        elif f.source is Source.RELATIONS:
            value = 0.0  # a history carries no links (build_features_from_frames without relations)
        elif isinstance(f.spec, Aggregate | Ratio):
            value = counted.evaluate(f.spec)
            if f.fill is not None and math.isnan(value):
                value = f.fill
        else:
            raise TypeError(f"no single-history rule for the spec of {f.name}: {type(f.spec).__name__}")
        out[f.name] = _typed(value, f.dtype, f.name)
    return out


def holds(rule: tuple[Condition, ...], columns: dict[str, np.ndarray], as_of: date) -> np.ndarray:
    """``features.pointintime.mask`` on day numbers: which rows count at ``as_of`` under ``rule``.

    ``columns`` holds each column the rule names: a date column as float day numbers (NaN when missing,
    so a missing start never counts and a missing end is never reached), any other as its values."""
    day = as_of.toordinal()
    keep = np.ones(len(next(iter(columns.values()))), dtype=bool) if columns else np.ones(0, dtype=bool)
    for condition in rule:
        if isinstance(condition, OnDate):
            values = columns[condition.column]
            compared = _COMPARE[condition.op](values, day)
            keep &= (compared | np.isnan(values)) if condition.open_ended else compared
        elif isinstance(condition, LapsesAfter):
            kind = columns[condition.kind_column] == condition.kind
            keep &= ~(kind & (columns[condition.start] <= _last_lapsed_start(condition, as_of)))
        else:
            raise TypeError(f"no day-number rendering of the condition {condition!r}")
    return keep


def rule_columns(rule: tuple[Condition, ...], rows: Sequence[Any], dates: frozenset[str]) -> dict[str, np.ndarray]:
    """The columns ``holds`` reads for ``rule``, from ``rows`` (dates in ``dates`` become day numbers). An end
    a row does not hold (a ledger's ``withdrawn_on`` on a posted history) was never reached, as in
    ``features.pointintime.OnDate.mask``."""
    names: list[str] = []
    for condition in rule:
        wanted = (condition.column,) if isinstance(condition, OnDate) else (condition.start, condition.kind_column)
        names += [n for n in wanted if n not in names]
    ends = {c.column for c in rule if isinstance(c, OnDate) and c.open_ended}
    n = len(rows)

    def value(row: Any, name: str) -> Any:
        return getattr(row, name, None) if name in ends else getattr(row, name)

    return {
        name: np.fromiter((day_number(value(r, name)) for r in rows), np.float64, n)
        if name in dates
        else np.array([value(r, name) for r in rows], dtype=object)
        for name in names
    }


def own_rows(rows: Sequence[Any], entity_id: str) -> list[Any]:
    """The rows of ``entity_id`` (a row without the column is the entity's)."""
    return [r for r in rows if str(getattr(r, "entity_id", entity_id)) == entity_id]


def day_number(value: Any) -> float:
    """A date as its day number (``date.toordinal``), NaN when missing."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    return float(as_date(value).toordinal())


@lru_cache(maxsize=256)
def _last_lapsed_start(lapse: LapsesAfter, as_of: date) -> float:
    return float(lapse.last_lapsed_start(as_of).toordinal())


@lru_cache(maxsize=32)
def _decay_table(as_of: date, half_life_months: int) -> np.ndarray:
    """``features.sql.weights_at`` for every age from 0 to ``as_of - DECAY_EPOCH`` days, computed once per date."""
    return weights_at(np.arange((as_of - DECAY_EPOCH).days + 1), as_of, half_life_months)


def _weights(ago: np.ndarray, as_of: date, half_life_months: int) -> np.ndarray:
    table = _decay_table(as_of, half_life_months)
    inside = (ago >= 0) & (ago < len(table))
    if inside.all():
        return table[ago]
    out = weights_at(ago, as_of, half_life_months)
    out[inside] = table[ago[inside]]
    return out


def _ordered_sum(values: np.ndarray) -> float:
    """The sum from 0.0 in ascending order of the values, as ``features.build`` adds amounts and weights."""
    return float(np.cumsum(np.sort(values))[-1]) if len(values) else 0.0


class _Counted:
    """The events that count at D, by type code: ``(ago days, quantity, amount)`` in request order, with
    per-type aggregates remembered (a type is read by several features)."""

    def __init__(self, events: Sequence[Any], as_of: date) -> None:
        self.as_of = as_of
        self._cache: dict[tuple, float] = {}
        self.parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        rows = [e for e in counted_events(events, as_of) if e.event_type in _CODE]
        if not rows:
            return
        day = as_of.toordinal()
        code = np.array([_CODE[e.event_type] for e in rows], dtype=np.int64)
        ago = np.array([day - int(day_number(e.occurred_on)) for e in rows], dtype=np.int64)
        quantity = np.array([e.quantity for e in rows], dtype=np.float64)
        amount = np.array([0.0 if missing(e.amount) else e.amount for e in rows], dtype=np.float64)
        for c in np.unique(code).tolist():
            at = code == c
            self.parts[c] = (ago[at], quantity[at], amount[at])

    def _per_type(self, code: int, agg: Aggregate) -> float:
        measure = agg.measure
        key = (code, (measure is Measure.KINDS and Measure.ROWS) or measure, agg.months, agg.skip_months)
        key += (agg.half_life_months, agg.calendar_year)
        if key in self._cache:
            return self._cache[key]
        part = self.parts.get(code)
        if part is None:
            result = math.inf if measure is Measure.YEARS_SINCE else 0.0
        else:
            ago, quantity, amount = part
            mask = in_window(ago, ago_bounds(self.as_of, agg.months, agg.skip_months, agg.calendar_year))
            if measure is Measure.YEARS_SINCE:
                result = float(ago[mask].min()) if mask.any() else math.inf
            elif measure is Measure.QUANTITY:
                result = float(np.cumsum(quantity[mask])[-1]) if mask.any() else 0.0
            elif measure is Measure.AMOUNT:
                result = _ordered_sum(amount[mask])
            elif measure is Measure.DECAYED:
                result = _ordered_sum(_weights(ago[mask], self.as_of, agg.half_life_months))
            else:  # ROWS, and KINDS which counts the types with at least one row
                result = float(np.count_nonzero(mask))
        self._cache[key] = result
        return result

    def aggregate(self, agg: Aggregate) -> float:
        per_type = [self._per_type(_CODE[t], agg) for t in agg.types]
        if agg.measure is Measure.YEARS_SINCE:
            return min(YEARS_SINCE_CAP, min(per_type) / 365.25)
        if agg.measure is Measure.KINDS:
            per_type = [1.0 if p > 0 else 0.0 for p in per_type]
        total = per_type[0]
        for p in per_type[1:]:
            total += p
        return total

    def evaluate(self, spec: Aggregate | Ratio) -> float:
        if isinstance(spec, Aggregate):
            return self.aggregate(spec)
        denominator = self.aggregate(spec.denominator) * spec.scale + spec.smoothing
        return self.aggregate(spec.numerator) / denominator if denominator > 0 else math.nan


def missing(value: Any) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _lists_holding(rule: tuple[Condition, ...], lists: Sequence[Any], as_of: date) -> list[str]:
    """The list names of the entries ``rule`` holds for at ``as_of``, one per entry."""
    return [str(row.list) for row in entries_holding(rule, lists, as_of)]


def counted_events(events: Sequence[Any], as_of: date) -> list[Any]:
    """The events that count at ``as_of`` (``EVENT_COUNTS``), in their order."""
    if not events:
        return []
    keep = holds(EVENT_COUNTS, rule_columns(EVENT_COUNTS, events, _EVENT_DATES), as_of)
    return [e for e, k in zip(events, keep.tolist(), strict=True) if k]


def entries_holding(rule: tuple[Condition, ...], lists: Sequence[Any], as_of: date) -> list[Any]:
    """The list entries ``rule`` (``LIST_IN_FORCE``, ``LIST_ENTERED``) holds for at ``as_of``, in their order."""
    if not lists:
        return []
    keep = holds(rule, rule_columns(rule, lists, _LIST_DATES), as_of)
    return [row for row, k in zip(lists, keep.tolist(), strict=True) if k]


def _attribute(spec: Attribute, entity: Any, as_of: date) -> Any:
    if spec.as_of_month:
        return as_of.month
    value = getattr(entity, spec.column, None)  # an optional column a row leaves out is unknown
    if spec.age:
        return (as_of.toordinal() - int(day_number(value))) / 365.25
    if spec.equals is not None:
        return value == spec.equals
    return value


def _typed(value: Any, dtype: str, name: str) -> Any:
    """``value`` as ``features.build`` coerces its column: a missing int or bool is 0, a category outside
    the fixed ones is missing."""
    if dtype == "category":
        return value if value in _CATEGORY_CODES[name] else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan if dtype == "float" else _DTYPES[dtype].type(0)
    return _DTYPES[dtype].type(value)


def _framed(values: dict[str, Any], n: int) -> pd.DataFrame:
    """The frame ``build_features_from_frames`` returns, from one row of values (``n`` 1) or none (0)."""
    data: dict[str, Any] = {
        "entity_id": np.array([values["entity_id"]] if n else [], dtype=object),
        "as_of": np.array([values["as_of"]] if n else [], dtype=object),
    }
    for f in CATALOGUE:
        if f.dtype == "category":
            code = _CATEGORY_CODES[f.name].get(values[f.name], -1) if n else None
            data[f.name] = pd.Categorical.from_codes([code] if n else [], dtype=_CATEGORY_TYPES[f.name])
        else:
            data[f.name] = np.array([values[f.name]] if n else [], dtype=_DTYPES[f.dtype])
    return pd.DataFrame(data)
