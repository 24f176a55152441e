"""Training snapshots: point-in-time features at several as-of dates, each with its 12-month outcome.

The outcome at D is 1 when an adverse event is *recorded* in (D, D + 12 months]: what the model predicts
is what a supervisor would learn in the year after scoring. A snapshot date is usable only when that
whole window lies inside the data; ``snapshot_dates`` picks such dates, ``build_snapshots`` refuses any
other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

import pandas as pd
from dateutil.relativedelta import relativedelta

from features.build import build_features, conform
from features.catalogue import FEATURE_NAMES
from features.dataset import Dataset
from features.errors import InvalidInput
from features.pointintime import as_date, sql_date
from features.schema import ADVERSE_CODES

OUTCOME_MONTHS = 12
SNAPSHOTS = 16  # quarterly snapshots a model is trained on by default: four years
_ADVERSE_IN = ", ".join(f"'{c}'" for c in ADVERSE_CODES)


def build_outcomes(ds: Dataset, as_of: date | str, *, months: int = OUTCOME_MONTHS) -> pd.DataFrame:
    """``outcome`` = 1 when an adverse event is recorded in (as_of, as_of + months], per entity registered by as_of."""
    as_of = as_date(as_of)
    until = as_of + relativedelta(months=months)
    frame = ds.con.execute(
        f"""
        SELECT e.entity_id, coalesce(o.outcome, 0) AS outcome
        FROM entities e
        LEFT JOIN (
            SELECT entity_id, 1 AS outcome FROM events
            WHERE event_type IN ({_ADVERSE_IN})
              AND recorded_on > {sql_date(as_of)} AND recorded_on <= {sql_date(until)}
            GROUP BY entity_id
        ) o USING (entity_id)
        WHERE e.registered_on <= {sql_date(as_of)}
        ORDER BY e.entity_id
        """
    ).df()
    frame["entity_id"] = frame["entity_id"].astype(str)
    frame["outcome"] = frame["outcome"].astype("int8")
    return frame


def snapshot_dates(
    ds: Dataset, *, as_of_end: date | None = None, count: int = SNAPSHOTS, months: int = OUTCOME_MONTHS
) -> list[date]:
    """Up to ``count`` quarter ends for snapshots, oldest first: the last at or before ``as_of_end``
    (default: the latest whose whole ``months`` outcome window lies inside the data), none before the
    first registration."""
    end = ds.data_end()
    if end is None:
        return []
    last = end - relativedelta(months=months)
    if as_of_end is not None:
        last = min(last, as_of_end)
    first = ds.con.execute("SELECT min(registered_on) FROM entities").fetchone()[0]
    quarter_ends = pd.date_range(end=pd.Timestamp(last), periods=count, freq="QE")
    return [d.date() for d in quarter_ends if first is None or d.date() >= first]


def build_snapshots(
    ds: Dataset,
    as_of_dates: Iterable[date | str] | None = None,
    *,
    progress: Callable[[date], None] | None = None,
) -> pd.DataFrame:
    """Features and outcomes stacked over several as-of dates (default: ``snapshot_dates(ds)``).

    Each date whose outcome window runs past the end of the data is refused: its labels would be wrong.
    """
    dates = [as_date(d) for d in (snapshot_dates(ds) if as_of_dates is None else as_of_dates)]
    end = ds.data_end()
    frames = []
    for d in sorted(dates):
        if end is None or d + relativedelta(months=OUTCOME_MONTHS) > end:
            raise InvalidInput(
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
