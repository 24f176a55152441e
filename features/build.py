"""Point-in-time features, outcomes and training snapshots.

Features "as of" a date D see only what was known at D (CONTRACT section 2):
- events recorded on or before D, and never one repaired on or before D;
- list entries in force at D: entered on or before D, not removed on or before D, and for the
  serious-violation list not older than three years (the entry lapses even without a removal date).
Windows count events by ``occurred_on`` within the N months up to D.

One SQL query, generated from the feature catalogue, computes every feature for every entity in a single
scan of the events; DuckDB runs it over Parquet out of core.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import date

import pandas as pd
from dateutil.relativedelta import relativedelta

from features import __version__
from features.catalogue import CATALOGUE, CATEGORIES, FEATURE_NAMES, Source, catalogue_fingerprint
from features.dataset import Dataset
from features.schema import ADVERSE_CODES, EVENT_CODES, SERIOUS_VIOLATION_LAPSE_YEARS

OUTCOME_MONTHS = 12
_WINDOWS = sorted({3, 12, 24, 36})
_ADVERSE_IN = ", ".join(f"'{c}'" for c in ADVERSE_CODES)

_QUERY = """
WITH ev AS (
    SELECT entity_id, CAST(event_type AS _event_type) AS event_type, occurred_on, quantity, amount,
           date_diff('day', occurred_on, {as_of}) AS days_ago
    FROM events
    WHERE recorded_on <= {as_of} AND (repaired_on IS NULL OR repaired_on > {as_of})
      AND event_type IN ({event_codes})
),
ev_agg AS (
    SELECT entity_id, {event_aggregates}
    FROM ev GROUP BY entity_id
),
li AS (
    SELECT entity_id, list FROM lists
    WHERE entered_on <= {as_of} AND (removed_on IS NULL OR removed_on > {as_of})
      AND NOT (list = 'serious_violation' AND entered_on + INTERVAL {lapse_years} YEAR <= {as_of})
),
li_agg AS (
    SELECT entity_id, {list_aggregates}
    FROM li GROUP BY entity_id
)
SELECT e.entity_id, {as_of} AS as_of, {columns}
FROM entities e
LEFT JOIN ev_agg USING (entity_id)
LEFT JOIN li_agg USING (entity_id)
WHERE e.registered_on <= {as_of}
ORDER BY e.entity_id
"""

FEATURE_VERSION = f"{__version__}+{catalogue_fingerprint()}{hashlib.sha256(_QUERY.encode()).hexdigest()[:4]}"


def _date_sql(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _as_date(value: date | str | pd.Timestamp) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(value, date):
        return value
    raise TypeError(f"as_of must be a date or an ISO date string; got {type(value).__name__}")


def features_sql(as_of: date) -> str:
    """The feature query at ``as_of``, generated from the catalogue."""
    params = {"as_of": _date_sql(as_of)}
    params |= {f"since_{m}": _date_sql(as_of - relativedelta(months=m)) for m in _WINDOWS}
    aggregates = {Source.EVENTS: [], Source.LISTS: []}
    columns = []
    for f in CATALOGUE:
        expr = f.sql.format(**params)
        if f.source is Source.ENTITY:
            columns.append(f"{expr} AS {f.name}")
            continue
        aggregates[f.source].append(f"{expr} AS {f.name}")
        if f.dtype == "bool":
            columns.append(f"coalesce({f.name}, false) AS {f.name}")
        elif f.fill is None:
            columns.append(f.name)
        else:
            columns.append(f"coalesce({f.name}, {f.fill}) AS {f.name}")
    return _QUERY.format(
        as_of=params["as_of"],
        event_codes=", ".join(f"'{c}'" for c in EVENT_CODES),
        lapse_years=SERIOUS_VIOLATION_LAPSE_YEARS,
        event_aggregates=",\n           ".join(aggregates[Source.EVENTS]),
        list_aggregates=",\n           ".join(aggregates[Source.LISTS]),
        columns=",\n       ".join(columns),
    )


def _ensure_enum(ds: Dataset) -> None:
    # Comparing a small enum is much cheaper than comparing strings in ~50 FILTER clauses per event.
    exists = ds.con.execute("SELECT count(*) FROM duckdb_types() WHERE type_name = '_event_type'").fetchone()[0]
    if not exists:
        codes = ", ".join(f"'{c}'" for c in EVENT_CODES)
        ds.con.execute(f"CREATE TYPE _event_type AS ENUM ({codes})")


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a feature frame the catalogue's dtypes (bool, int64, float64, fixed categories)."""
    out = frame.copy()
    for f in CATALOGUE:
        column = out[f.name]
        if f.dtype == "bool":
            out[f.name] = column.fillna(False).astype(bool)
        elif f.dtype == "int":
            out[f.name] = column.fillna(0).astype("int64")
        elif f.dtype == "float":
            out[f.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            out[f.name] = pd.Categorical(column.astype("object"), categories=CATEGORIES[f.name])
    return out


def build_features(ds: Dataset, as_of: date | str) -> pd.DataFrame:
    """The feature table at ``as_of``: one row per entity registered by then, keyed by ``entity_id``.

    Columns: ``entity_id``, ``as_of`` and every catalogue feature in catalogue order.
    """
    as_of = _as_date(as_of)
    _ensure_enum(ds)
    frame = ds.con.execute(features_sql(as_of)).df()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["entity_id"] = frame["entity_id"].astype(str)
    return conform(frame)


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


def build_outcomes(ds: Dataset, as_of: date | str, *, months: int = OUTCOME_MONTHS) -> pd.DataFrame:
    """``outcome`` = 1 when an adverse event is recorded in (as_of, as_of + months], per entity registered by as_of."""
    as_of = _as_date(as_of)
    until = as_of + relativedelta(months=months)
    frame = ds.con.execute(
        f"""
        SELECT e.entity_id, coalesce(o.outcome, 0) AS outcome
        FROM entities e
        LEFT JOIN (
            SELECT entity_id, 1 AS outcome FROM events
            WHERE event_type IN ({_ADVERSE_IN})
              AND recorded_on > {_date_sql(as_of)} AND recorded_on <= {_date_sql(until)}
            GROUP BY entity_id
        ) o USING (entity_id)
        WHERE e.registered_on <= {_date_sql(as_of)}
        ORDER BY e.entity_id
        """
    ).df()
    frame["entity_id"] = frame["entity_id"].astype(str)
    frame["outcome"] = frame["outcome"].astype("int8")
    return frame


def snapshot_dates(ds: Dataset, *, count: int = 16, months: int = OUTCOME_MONTHS) -> list[date]:
    """The latest ``count`` quarter ends whose whole outcome window lies inside the data."""
    end = ds.data_end()
    if end is None:
        return []
    start = ds.con.execute("SELECT min(registered_on) FROM entities").fetchone()[0]
    last_allowed = end - relativedelta(months=months)
    quarter_ends = pd.date_range(end=pd.Timestamp(last_allowed), periods=count, freq="QE")
    return [d.date() for d in quarter_ends if start is None or d.date() >= start]


def build_snapshots(
    ds: Dataset,
    as_of_dates: Iterable[date | str] | None = None,
    *,
    progress: Callable[[date], None] | None = None,
) -> pd.DataFrame:
    """Features and outcomes stacked over several as-of dates (default: ``snapshot_dates(ds)``).

    Each date whose outcome window runs past the end of the data is refused: its labels would be wrong.
    """
    dates = [_as_date(d) for d in (snapshot_dates(ds) if as_of_dates is None else as_of_dates)]
    end = ds.data_end()
    frames = []
    for d in sorted(dates):
        if end is None or d + relativedelta(months=OUTCOME_MONTHS) > end:
            raise ValueError(
                f"as-of date {d} needs outcomes up to {d + relativedelta(months=OUTCOME_MONTHS)}, "
                f"but the data ends on {end}"
            )
        features = build_features(ds, d)
        outcomes = build_outcomes(ds, d)
        frames.append(features.merge(outcomes, on="entity_id", how="left", validate="one_to_one"))
        if progress:
            progress(d)
    if not frames:
        empty = conform(pd.DataFrame(columns=["entity_id", "as_of", *FEATURE_NAMES]))
        return empty.assign(outcome=pd.Series(dtype="int8"))
    out = pd.concat(frames, ignore_index=True)
    out["outcome"] = out["outcome"].astype("int8")
    return out


__all__ = [
    "FEATURE_VERSION",
    "build_features",
    "build_outcomes",
    "build_snapshots",
    "conform",
    "features_sql",
    "model_matrix",
    "snapshot_dates",
]
