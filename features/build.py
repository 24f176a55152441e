"""Point-in-time features, outcomes and training snapshots.

Features "as of" a date D see only what was known at D (CONTRACT section 2): the events and list entries
that ``features/pointintime.py`` says count at D, one rule rendered as SQL for a dataset folder and as a
pandas mask for a history held in memory. Windows count events by ``occurred_on`` within the N calendar
months up to D.

How it runs: DuckDB computes the entity attributes and list flags in SQL and streams the qualifying events
once, as compact columns (entity index, type code, age in days, quantity, amount). The event features are
additive aggregates per event type over dense entity indices — compiled kernels (numba) that each read one
type's records once and give what ``numpy.bincount`` of the window's records gives — combined as the
catalogue says. (A SQL ``GROUP BY`` with fifty filtered aggregates costs about a second per aggregate per
30 million events on two cores; this costs a few seconds in all.)
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import numba as nb
import numpy as np
import pandas as pd
import pyarrow as pa

from features import pointintime
from features.catalogue import (
    CATALOGUE,
    CATEGORIES,
    ENTITY_COLUMNS,
    FEATURE_NAMES,
    FEATURES,
    YEARS_SINCE_CAP,
    Aggregate,
    Attribute,
    ListEntries,
    Measure,
    Ratio,
    Source,
)
from features.dataset import Dataset
from features.pointintime import EVENT_COUNTS, LIST_ENTERED, LIST_IN_FORCE, ago_bounds, as_date, in_window, sql_date
from features.schema import EVENT_CODES
from features.sql import DUCKDB, related_features, relation_steps, weights_at
from features.version import FEATURE_VERSION

_CODE = {code: i for i, code in enumerate(EVENT_CODES)}
# Entities per pass over the events: a million entities' events (~35 million) fit in about 3 GiB.
ENTITIES_PER_PASS = 1_000_000

_ENTITIES_QUERY = f"""
SELECT {", ".join("e." + c for c in ENTITY_COLUMNS)}
FROM _entity_index i JOIN entities e USING (entity_id)
ORDER BY i.idx
"""

_LISTS_QUERY = """
SELECT i.idx, l.list, {in_force} AS in_force
FROM lists l JOIN _entity_index i USING (entity_id)
WHERE {entered}
"""

_EVENTS_QUERY = """
SELECT idx, code, ago, quantity, amount FROM (
    SELECT i.idx - {start} AS idx,
           enum_code(TRY_CAST(ev.event_type AS _event_type))::UTINYINT AS code,
           date_diff('day', ev.occurred_on, {as_of})::INTEGER AS ago,
           ev.quantity::DOUBLE AS quantity,
           coalesce(ev.amount, 0)::DOUBLE AS amount
    FROM events ev JOIN (SELECT * FROM _entity_index WHERE idx >= {start} AND idx < {stop}) i ON {join}
    WHERE {counts}
) WHERE code IS NOT NULL
"""


def in_force(lists: pd.DataFrame, as_of: date) -> np.ndarray:
    """Which list entries (``list``, ``entered_on``, ``removed_on``) are in force at ``as_of``."""
    return pointintime.mask(LIST_IN_FORCE, lists, as_of)


def _attribute(spec: Attribute, entities: pd.DataFrame, as_of: date) -> np.ndarray:
    if spec.as_of_month:
        return np.full(len(entities), as_of.month, dtype=np.int64)
    column = entities[spec.column]
    if spec.age:
        return ((pd.Timestamp(as_of) - pd.to_datetime(column)).dt.days / 365.25).to_numpy(dtype=np.float64)
    if spec.equals is not None:
        return (column == spec.equals).to_numpy(dtype=bool)
    return column.to_numpy()


def _assemble(
    entities: pd.DataFrame,
    entries: pd.DataFrame,
    events: dict[str, np.ndarray],
    as_of: date,
    related: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The feature table from its inputs, whichever engine loaded them.

    ``entities``: the entities registered by ``as_of``, sorted by entity_id (row i is entity index i);
    ``entries``: the list entries made by ``as_of`` with ``idx``, ``list`` and ``in_force``; ``events``: the events that
    count at ``as_of`` as columns ``idx``, ``code``, ``ago`` (days), ``quantity``, ``amount``; ``related``:
    the relationship features by name, row i for entity i (``_related_columns``; None: no links, zeros).
    """
    n = len(entities)
    aggregates = _EventColumns(events, n, as_of)
    values: dict[str, object] = {"entity_id": entities["entity_id"].astype(str).to_numpy(), "as_of": as_of}
    for f in CATALOGUE:
        if f.source is Source.ENTITY:
            values[f.name] = _attribute(f.spec, entities, as_of)
        elif f.source is Source.LISTS:
            mine = (entries["list"] == f.spec.list_name).to_numpy()
            idx = entries["idx"].to_numpy()[mine]
            if isinstance(f.spec, ListEntries):
                values[f.name] = np.bincount(idx, minlength=n).astype(np.int64)
            else:
                flag = np.zeros(n, dtype=bool)
                flag[idx[entries["in_force"].to_numpy(dtype=bool)[mine]]] = True
                values[f.name] = flag
        elif f.source is Source.RELATIONS:
            values[f.name] = related[f.name] if related is not None else np.zeros(n)
        else:
            value = aggregates.evaluate(f.spec)
            values[f.name] = value if f.fill is None else np.where(np.isnan(value), f.fill, value)
    del aggregates  # the events, before the frame is built
    return _framed(values)


def _framed(values: dict[str, object]) -> pd.DataFrame:
    """``conform(pd.DataFrame(values))`` built once: each catalogue column coerced to its dtype first."""
    return pd.DataFrame(
        {
            name: _coerce(np.asarray(column), f.dtype, name) if (f := FEATURES.get(name)) else column
            for name, column in values.items()
        }
    )


class _EventColumns:
    """The qualifying events, partitioned by type, with per-type aggregates over entity indices.

    ``_USES`` counts how often building the catalogue asks for each per-type aggregate: an aggregate is
    kept until its last use and then dropped, so the pass holds the few that are shared, not all of them.
    """

    def __init__(self, columns: dict[str, np.ndarray], n_entities: int, as_of: date):
        self.n = n_entities
        self.as_of = as_of
        code = columns.pop("code")
        # One counting sort by type code turns every type into a contiguous slice, records kept in order;
        # each column is moved into place and its source freed before the next.
        bounds, positions = _code_positions(code, len(EVENT_CODES))
        del code
        ordered = {}
        for name in ("idx", "ago", "quantity", "amount"):
            ordered[name] = _scatter(columns.pop(name), positions)
        del positions
        self.parts: dict[int, tuple[np.ndarray, ...]] = {
            c: tuple(ordered[k][bounds[c] : bounds[c + 1]] for k in ("idx", "ago", "quantity", "amount"))
            for c in range(len(EVENT_CODES))
            if bounds[c + 1] > bounds[c]
        }
        self._uses = Counter(_USES)
        self._cache: dict[tuple, np.ndarray] = {}

    def _per_type(self, code: int, agg: Aggregate) -> np.ndarray:
        key = _key(code, agg)
        result = self._cache.get(key)
        if result is None:
            result = self._compute(code, agg)
        self._uses[key] -= 1
        if self._uses[key] > 0:
            self._cache[key] = result
        else:
            self._cache.pop(key, None)
        return result

    def _compute(self, code: int, agg: Aggregate) -> np.ndarray:
        measure = agg.measure
        if code not in self.parts:
            return np.full(self.n, np.inf) if measure is Measure.YEARS_SINCE else np.zeros(self.n)
        idx, ago, quantity, amount = self.parts[code]
        bounds = ago_bounds(self.as_of, agg.months, agg.skip_months, agg.calendar_year)
        upper, lower = -1 if bounds[0] is None else bounds[0], bounds[1]  # the kernels' -1: no upper bound
        if measure is Measure.YEARS_SINCE:
            return _windowed_latest(idx, ago, lower, upper, self.n)
        if measure is Measure.QUANTITY:
            return _windowed_sums(idx, ago, quantity, lower, upper, self.n)
        if measure in (Measure.AMOUNT, Measure.DECAYED):
            mask = in_window(ago, bounds)
            if measure is Measure.AMOUNT:
                return _ordered_sums(idx[mask], amount[mask], self.n)
            return _ordered_sums(idx[mask], weights_at(ago[mask], self.as_of, agg.half_life_months), self.n)
        # ROWS, and KINDS which counts the types with at least one row
        return _windowed_counts(idx, ago, lower, upper, self.n)

    def aggregate(self, agg: Aggregate) -> np.ndarray:
        per_type = [self._per_type(_CODE[t], agg) for t in agg.types]
        if agg.measure is Measure.YEARS_SINCE:
            days = np.minimum.reduce(per_type)
            return np.minimum(YEARS_SINCE_CAP, days / 365.25)
        if agg.measure is Measure.KINDS:
            per_type = [(p > 0).astype(np.float64) for p in per_type]
        total = per_type[0].astype(np.float64, copy=True)
        for p in per_type[1:]:
            total += p
        return total

    def evaluate(self, spec: Aggregate | Ratio) -> np.ndarray:
        if isinstance(spec, Aggregate):
            return self.aggregate(spec)
        denominator = self.aggregate(spec.denominator) * spec.scale + spec.smoothing
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, self.aggregate(spec.numerator) / denominator, np.nan)


def _key(code: int, agg: Aggregate) -> tuple:
    """What a per-type aggregate depends on: two specs with the same key share one computation."""
    measure = (agg.measure is Measure.KINDS and Measure.ROWS) or agg.measure
    return (code, measure, agg.months, agg.skip_months, agg.half_life_months, agg.calendar_year)


def _aggregates_of(spec: Aggregate | Ratio) -> tuple[Aggregate, ...]:
    return (spec,) if isinstance(spec, Aggregate) else (spec.numerator, spec.denominator)


def _uses() -> Counter:
    """How many times building the catalogue asks for each per-type aggregate (``_key``)."""
    uses: Counter = Counter()
    for f in CATALOGUE:
        if f.source not in (Source.ENTITY, Source.LISTS, Source.RELATIONS):
            uses.update(_key(_CODE[t], agg) for agg in _aggregates_of(f.spec) for t in agg.types)
    return uses


_USES = _uses()


# ---- compiled kernels over the events of one type ------------------------------------------------------
# Each returns exactly what the numpy expression in its docstring returns (the tests compare the feature
# table with the SQL engines bit for bit); compiled, they read the records once, without the masks and
# copies numpy needs.


@nb.njit(cache=True)
def _code_positions(code: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """A stable counting sort by ``code`` (an event type, or an entity index): each code's first position
    (``bounds``, with the end) and each record's position in code order (``np.argsort(code,
    kind="stable")`` inverted)."""
    bounds = np.zeros(n_codes + 1, dtype=np.int64)
    for c in code:
        bounds[c + 1] += 1
    for c in range(n_codes):
        bounds[c + 1] += bounds[c]
    next_free = bounds[:-1].copy()
    positions = np.empty(len(code), dtype=np.int64)
    for i in range(len(code)):
        positions[i] = next_free[code[i]]
        next_free[code[i]] += 1
    return bounds, positions


@nb.njit(cache=True)
def _scatter(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``out[positions] = values``."""
    out = np.empty_like(values)
    for i in range(len(values)):
        out[positions[i]] = values[i]
    return out


@nb.njit(cache=True)
def _windowed_counts(idx: np.ndarray, ago: np.ndarray, lower: int, upper: int, n: int) -> np.ndarray:
    """``np.bincount(idx[m], minlength=n)`` as floats, ``m = lower <= ago < upper`` (``upper`` < 0: none)."""
    out = np.zeros(n, dtype=np.float64)
    for i in range(len(idx)):
        if ago[i] >= lower and (upper < 0 or ago[i] < upper):
            out[idx[i]] += 1.0
    return out


@nb.njit(cache=True)
def _windowed_sums(idx: np.ndarray, ago: np.ndarray, values: np.ndarray, lower: int, upper: int, n: int):
    """``np.bincount(idx[m], weights=values[m], minlength=n)``: added in record order, as bincount does."""
    out = np.zeros(n, dtype=np.float64)
    for i in range(len(idx)):
        if ago[i] >= lower and (upper < 0 or ago[i] < upper):
            out[idx[i]] += values[i]
    return out


@nb.njit(cache=True)
def _windowed_latest(idx: np.ndarray, ago: np.ndarray, lower: int, upper: int, n: int) -> np.ndarray:
    """``np.minimum.at(inf, idx[m], ago[m])``: days since each entity's latest record in the window."""
    out = np.full(n, np.inf)
    for i in range(len(idx)):
        if ago[i] >= lower and (upper < 0 or ago[i] < upper) and ago[i] < out[idx[i]]:
            out[idx[i]] = ago[i]
    return out


@nb.njit(cache=True)
def _ordered_sums(idx: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per entity, the sum of its ``values`` added in ascending order from 0.0: floats summed in an order
    no engine's scan can change, the order ``features.sql`` renders. (``np.bincount`` of the records
    ``np.lexsort((values, idx))`` orders.) A counting sort by entity, then each entity's values sorted."""
    starts, positions = _code_positions(idx, n)
    grouped = _scatter(values, positions)
    out = np.zeros(n, dtype=np.float64)
    for e in range(n):
        a, b = starts[e], starts[e + 1]
        if b - a > 1:
            grouped[a:b] = np.sort(grouped[a:b])
        total = 0.0
        for j in range(a, b):
            total += grouped[j]
        out[e] = total
    return out


def _index_entities(ds: Dataset, as_of: date) -> tuple[int, str]:
    """Number the entities registered by ``as_of`` 0..n-1 by entity_id, in a temporary table.

    Returns the count and the join condition for events: on the 64-bit hash of the id (integer keys probe
    much faster than strings), unless two registered ids share a hash, then on the id itself.
    """
    ds.con.execute(
        "CREATE OR REPLACE TEMP TABLE _entity_index AS "
        "SELECT entity_id, hash(entity_id) AS h, (row_number() OVER (ORDER BY entity_id) - 1)::INTEGER AS idx "
        f"FROM entities WHERE registered_on <= {sql_date(as_of)}"
    )
    [(n, distinct)] = ds.con.execute("SELECT count(*), count(DISTINCT h) FROM _entity_index").fetchall()
    return n, "hash(ev.entity_id) = i.h" if n == distinct else "ev.entity_id = i.entity_id"


def build_features(ds: Dataset, as_of: date | str) -> pd.DataFrame:
    """The feature table at ``as_of``: one row per entity registered by then, keyed by ``entity_id``.

    Columns: ``entity_id``, ``as_of`` and every catalogue feature in catalogue order; rows by entity_id.
    Entities are built ``ENTITIES_PER_PASS`` at a time (one pass over the events each), so memory stays
    that of a million entities however many there are; an entity's features depend on its records only,
    so the passes give the same frame as one would.
    """
    as_of = as_date(as_of)
    n, join = _index_entities(ds, as_of)
    # Through Arrow: several times cheaper than DuckDB's own conversion to pandas for a million rows.
    entities = ds.con.sql(_ENTITIES_QUERY).to_arrow_table().to_pandas(date_as_object=False)
    lists = ds.con.execute(
        _LISTS_QUERY.format(
            in_force=pointintime.sql(LIST_IN_FORCE, as_of, "l"), entered=pointintime.sql(LIST_ENTERED, as_of, "l")
        )
    ).df()
    related = _related_columns(ds, as_of, entities["entity_id"])
    frames = []
    for start in range(0, max(n, 1), ENTITIES_PER_PASS):
        stop = min(start + ENTITIES_PER_PASS, n)
        here = lists["idx"].between(start, stop - 1).to_numpy()
        frames.append(
            _assemble(
                entities.iloc[start:stop].reset_index(drop=True),
                lists[here].assign(idx=lists["idx"].to_numpy()[here] - start),
                _event_columns(ds, as_of, join, start, stop),
                as_of,
                None if related is None else {name: column[start:stop] for name, column in related.items()},
            )
        )
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _related_columns(ds: Dataset, as_of: date, entity_ids: pd.Series) -> dict[str, np.ndarray] | None:
    """The relationship features of the entities ``entity_ids`` (in that order) from
    ``features.sql.relation_steps`` run on DuckDB one step at a time (each a temporary table, dropped at
    the end), or None when the dataset has no links at all (nothing is run: a dataset without
    ``relations`` costs what it always did)."""
    [(links,)] = ds.con.execute("SELECT count(*) FROM relations").fetchall()
    if not links:
        return None
    steps = relation_steps(as_of, DUCKDB)
    try:
        for name, body in steps:
            ds.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {body}")
        found = ds.con.sql(f"SELECT * FROM {steps[-1][0]}").to_arrow_table().to_pandas()
    finally:
        for name, _ in reversed(steps):
            ds.con.execute(f"DROP TABLE IF EXISTS {name}")
    at = pd.Index(entity_ids.astype(str)).get_indexer(found["entity_id"].astype(str))
    here = at >= 0
    out = {}
    for f in related_features():
        column = np.zeros(len(entity_ids), dtype=np.float64)
        column[at[here]] = found[f.name].to_numpy(dtype=np.float64)[here]
        out[f.name] = column
    return out


def _event_columns(ds: Dataset, as_of: date, join: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """The events that count at ``as_of`` of the entities with index in [start, stop), as numpy columns
    (``idx`` from 0 at ``start``)."""
    # Row order does not matter here; letting DuckDB stream unordered saves time and memory.
    ds.con.execute("SET preserve_insertion_order = false")
    try:
        query = _EVENTS_QUERY.format(
            as_of=sql_date(as_of),
            join=join,
            counts=pointintime.sql(EVENT_COUNTS, as_of, "ev"),
            start=int(start),
            stop=int(stop),
        )
        arrow = ds.con.sql(query).to_arrow_table()
    finally:
        ds.con.execute("RESET preserve_insertion_order")
    columns = {}
    for name in list(arrow.column_names):
        columns[name] = arrow.column(name).to_numpy()
        arrow = arrow.drop_columns([name])  # free each Arrow column as soon as numpy has it
    return columns


def features_from_arrow(result: pa.Table) -> pd.DataFrame:
    """The result of ``features.sql.feature_query`` (an Arrow table, from any engine) as ``build_features``
    returns it: ``entity_id``, ``as_of`` as dates, every feature with its catalogue dtype."""
    values: dict[str, object] = {}
    for name in result.column_names:
        column = result.column(name).to_numpy(zero_copy_only=False)
        values[name] = column.astype(object) if column.dtype.kind == "M" else column  # dates as datetime.date
    return _framed(values)


def build_features_from_frames(
    entities: pd.DataFrame,
    events: pd.DataFrame,
    lists: pd.DataFrame,
    as_of: date | str,
    relations: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``build_features`` for a few entities held in memory (an API request), without a database.

    The frames must already be valid (the service's request models check the contract). Loading is done
    with pandas; the features are computed by the same ``_assemble`` as for a dataset folder. Links
    (``relations``) need the records of the entities at their other ends, so when there are any the
    relationship features are the one SQL query, on an in-memory DuckDB over these frames; without links
    they are zeros.
    """
    as_of = as_date(as_of)
    day = pd.Timestamp(as_of)
    registered = entities[pd.to_datetime(entities["registered_on"]) <= day]
    registered = registered.sort_values("entity_id", kind="stable").reset_index(drop=True)
    index = pd.Index(registered["entity_id"].astype(str))
    known = events[pointintime.mask(EVENT_COUNTS, events, as_of)]
    idx = index.get_indexer(known["entity_id"].astype(str))
    code = known["event_type"].map(_CODE).to_numpy(dtype=np.float64, na_value=np.nan)
    keep = (idx >= 0) & ~np.isnan(code)
    known = known[keep]
    columns = {
        "idx": idx[keep].astype(np.int32),
        "code": code[keep].astype(np.uint8),
        "ago": (day - pd.to_datetime(known["occurred_on"])).dt.days.to_numpy(dtype=np.int32),
        "quantity": known["quantity"].to_numpy(dtype=np.float64),
        "amount": known["amount"].fillna(0).to_numpy(dtype=np.float64),
    }
    entered = lists[pointintime.mask(LIST_ENTERED, lists, as_of)].assign(in_force=lambda t: in_force(t, as_of))
    list_idx = index.get_indexer(entered["entity_id"].astype(str))
    frame = entered[list_idx >= 0].assign(idx=list_idx[list_idx >= 0])
    related = None
    if relations is not None and len(relations):
        ds = Dataset.from_frames(entities, events, lists, relations=relations, threads=1)
        related = _related_columns(ds, as_of, registered["entity_id"])
    return _assemble(registered, frame[["idx", "list", "in_force"]], columns, as_of, related)


def _coerce(values: np.ndarray, dtype: str, name: str) -> np.ndarray | pd.Categorical:
    if dtype == "category":
        return pd.Categorical(np.asarray(values, dtype=object), categories=CATEGORIES[name])
    if values.dtype.kind == "O":
        values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    if dtype in ("bool", "int") and values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0)
    if dtype == "bool":
        return values.astype(bool, copy=False)
    if dtype == "int":
        return values.astype(np.int64, copy=False)
    return values.astype(np.float64, copy=False)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a feature frame the catalogue's dtypes (bool, int64, float64, fixed categories)."""
    data = {
        column: _coerce(frame[column].to_numpy(), f.dtype, column) if (f := FEATURES.get(column)) else frame[column]
        for column in frame.columns
    }
    return pd.DataFrame(data, index=frame.index)


def model_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """The model's input: the catalogue features in catalogue order with model-ready dtypes.

    Training and scoring both call this, so their inputs cannot drift apart.
    """
    missing = [name for name in FEATURE_NAMES if name not in features.columns]
    if missing:
        raise ValueError(f"features must include every catalogue feature; missing {missing}")
    matrix = conform(features[FEATURE_NAMES])
    for f in CATALOGUE:
        if f.dtype == "bool":
            matrix[f.name] = matrix[f.name].astype("int8")
    return matrix


__all__ = [
    "FEATURE_VERSION",
    "build_features",
    "build_features_from_frames",
    "conform",
    "features_from_arrow",
    "in_force",
    "model_matrix",
]
