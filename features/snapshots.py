"""Training snapshots: point-in-time features at several as-of dates, each with its 12-month outcome.

The outcome at D is 1 when an adverse event is *recorded* in (D, D + 12 months]: what the model predicts
is what a supervisor would learn in the year after scoring. A snapshot date is usable only when that
whole window lies inside the data; ``snapshot_dates`` picks such dates, ``build_snapshots`` refuses any
other.

Real deliveries have gaps (years without any record) and thin early years. ``plan_snapshots`` picks the
dates from the data itself: quarter ends with at least a year of recorded history before them, whose
outcome window is not thin - under the usual records per registered entity over the whole span *and*
under the usual records of the three years from it (a window falling in a gap would label everyone 0
because nobody was looking, not because nobody violated; a registry growing faster than its records lowers
the recent windows' records per entity, not their records, and they stay) - and holds at least one adverse
record; the latest ``count`` of those, with the reason each other candidate was skipped. Beyond the latest
``SNAPSHOTS`` dates, older ones are taken only while the snapshot rows (entities registered by each date)
stay within ``max_rows``: a thin record gains from every year it has, a large one has rows enough in four
years and would only train longer (``models.train`` compares the two designs on the validation fold).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from features.build import build_features, conform
from features.catalogue import FEATURE_NAMES
from features.dataset import Dataset
from features.errors import InvalidInput
from features.ledger import outcome_view
from features.pointintime import as_date, sql_date
from features.schema import ADVERSE_CODES, EVENT_TYPES, EventClass

OUTCOME_MONTHS = 12
SNAPSHOTS = 16  # quarterly snapshots a model is trained on at least, where the data has them: four years
MAX_SNAPSHOTS = 40  # ... and at most, by default: ten years, while the rows stay within MAX_ROWS
MAX_ROWS = 1_000_000  # snapshot rows (entity x date) beyond which no date older than the latest 16 is added
HISTORY_MONTHS = 12  # recorded history a snapshot date needs before it
MIN_COVERAGE = 0.8  # a window under this share of the usual records per entity, and of the records ahead, is thin
AHEAD = 12  # the windows from a date on (three years) whose usual records are the ones ahead of it
MIN_YEAR_SHARE = 0.1  # history begins at the first month whose next 12 hold this share of a usual 12 months' records
_ADVERSE_IN = ", ".join(f"'{c}'" for c in ADVERSE_CODES)
# What ``outcome_records`` counts: every record the hidden conduct leaves, the warning signs as well.
TRACE_CODES: tuple[str, ...] = tuple(
    e.code for e in EVENT_TYPES if e.event_class in (EventClass.ADVERSE, EventClass.SIGNAL)
)
_TRACE_IN = ", ".join(f"'{c}'" for c in TRACE_CODES)


def build_outcomes(ds: Dataset, as_of: date | str, *, months: int = OUTCOME_MONTHS) -> pd.DataFrame:
    """Per entity registered by as_of, what is recorded in (as_of, as_of + months]: ``outcome`` = 1 when an
    adverse event is, and ``outcome_records``, how many adverse and signal records (complaints, takedowns,
    late reports) are: a denser trace of the same conduct, which training may learn from first
    (``models.train``, config ``pretrain``). With a ledger applied, on each record's final version
    (corrected, withdrawn ones left out)."""
    as_of = as_date(as_of)
    until = as_of + relativedelta(months=months)
    frame = ds.con.execute(
        f"""
        SELECT e.entity_id, coalesce(o.outcome, 0) AS outcome, coalesce(o.records, 0) AS outcome_records
        FROM entities e
        LEFT JOIN (
            SELECT entity_id, max((event_type IN ({_ADVERSE_IN}))::INT) AS outcome, count(*) AS records
            FROM {outcome_view(ds)}
            WHERE event_type IN ({_TRACE_IN})
              AND recorded_on > {sql_date(as_of)} AND recorded_on <= {sql_date(until)}
            GROUP BY entity_id
        ) o USING (entity_id)
        WHERE e.registered_on <= {sql_date(as_of)}
        ORDER BY e.entity_id
        """
    ).df()
    frame["entity_id"] = frame["entity_id"].astype(str)
    frame["outcome"] = frame["outcome"].astype("int8")
    frame["outcome_records"] = frame["outcome_records"].astype("int32")
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
        return empty.assign(outcome=pd.Series(dtype="int8"), outcome_records=pd.Series(dtype="int32"))
    out = pd.concat(frames, ignore_index=True)
    out["outcome"] = out["outcome"].astype("int8")
    out["outcome_records"] = out["outcome_records"].astype("int32")
    return out


@dataclass(frozen=True)
class SnapshotPlan:
    """The as-of dates chosen for training, oldest first, and why every other candidate was left out."""

    dates: list[date]
    skipped: list[tuple[date, str]] = field(default_factory=list)
    first_record: date | None = None
    data_end: date | None = None
    records: int = 0  # events in the delivery, and how many of them are adverse (what an outcome needs)
    adverse_records: int = 0

    def describe(self) -> list[str]:
        """Lines for a person: the dates used, then runs of skipped dates with their reason."""
        lines = []
        if self.dates:
            lines.append(f"using {len(self.dates)} quarterly as-of dates {self.dates[0]}..{self.dates[-1]}")
        else:
            lines.append("no usable as-of date")
        runs: list[list] = []
        used = sorted(self.dates)
        for day, reason in self.skipped:
            # A run goes on while the reason stays the same and no date used lies between.
            if (
                runs
                and runs[-1][2] == reason
                and bisect.bisect_right(used, runs[-1][1]) == bisect.bisect_left(used, day)
            ):
                runs[-1][1] = day
            else:
                runs.append([day, day, reason])
        for start, end, reason in runs:
            span = str(start) if start == end else f"{start}..{end}"
            lines.append(f"skipped {span}: {reason}")
        return lines

    def skipped_by_reason(self) -> list[tuple[str, int]]:
        """How many dates each kind of reason left out, most first (a reason's figures in brackets dropped)."""
        counts = Counter(reason.split(" (")[0] for _, reason in self.skipped)
        return counts.most_common()


def _usual_ahead(counts: list[int], held: list[int], i: int) -> float:
    """The usual records of the windows from candidate ``i`` on: the 75th percentile over the first ``AHEAD``
    windows holding records (``held``: their indices, in order; three years); near the end of the data, the
    ones just before make up the number, so that a last year thinner than the years before it is still seen
    as thin."""
    ahead = [j for j in held if j >= i][:AHEAD]
    ahead = [j for j in held if j < i][len(ahead) - AHEAD :] + ahead if len(ahead) < AHEAD else ahead
    return float(np.quantile([counts[j] for j in ahead], 0.75)) if ahead else 0.0


def plan_snapshots(
    ds: Dataset,
    *,
    as_of_end: date | None = None,
    count: int = SNAPSHOTS,
    months: int = OUTCOME_MONTHS,
    min_coverage: float = MIN_COVERAGE,
    max_rows: int | None = None,
) -> SnapshotPlan:
    """Choose up to ``count`` quarter ends where outcomes can be observed (see the module docstring); with
    ``max_rows``, dates older than the latest ``SNAPSHOTS`` only while the snapshot rows stay within it."""
    monthly = ds.con.execute(
        f"""
        SELECT date_trunc('month', recorded_on)::DATE AS month, count(*) AS records,
               count(*) FILTER (WHERE event_type IN ({_ADVERSE_IN})) AS adverse
        FROM events GROUP BY 1 ORDER BY 1
        """
    ).df()
    end = ds.data_end()
    totals = {"records": int(monthly["records"].sum()), "adverse_records": int(monthly["adverse"].sum())}
    if monthly.empty or end is None:
        return SnapshotPlan(dates=[], data_end=end, **totals)
    month = pd.to_datetime(monthly["month"]).dt.to_period("M")
    first_record = month.iloc[0].start_time.date()
    # Records and adverse records per month, on a dense calendar, so a window is a slice.
    calendar = pd.period_range(month.iloc[0], pd.Period(end, "M"), freq="M")
    records = pd.Series(monthly["records"].to_numpy(), index=month).reindex(calendar, fill_value=0).to_numpy()
    adverse = pd.Series(monthly["adverse"].to_numpy(), index=month).reindex(calendar, fill_value=0).to_numpy()
    # History begins with the first month of records whose next 12 months hold a real share of a usual
    # year's records: a stray record decades before the rest - a legacy entry, a mistyped year - does not
    # make the years between history, nor the first months after it dates with a year of history behind them.
    year_ahead = np.convolve(records, np.ones(HISTORY_MONTHS, dtype=np.int64))[HISTORY_MONTHS - 1 :]
    usual_year = float(np.median(year_ahead[year_ahead > 0]))
    begins = calendar[int(np.argmax((records > 0) & (year_ahead >= MIN_YEAR_SHARE * usual_year)))].start_time.date()
    first = begins + relativedelta(months=HISTORY_MONTHS) - relativedelta(days=1)
    every = (end.year - first_record.year + 1) * 4
    candidates = [d for d in snapshot_dates(ds, as_of_end=as_of_end, count=every, months=months) if d >= first]
    if not candidates:
        return SnapshotPlan(dates=[], first_record=first_record, data_end=end, **totals)
    registered = np.sort(pd.to_datetime(ds.con.execute("SELECT registered_on FROM entities").df()["registered_on"]))
    window_records, window_adverse, rate, rows = [], [], [], {}
    for d in candidates:
        start = calendar.get_loc(pd.Period(d, "M")) + 1  # the months after D's month ...
        window_records.append(int(records[start : start + months].sum()))  # ... up to D + months
        window_adverse.append(int(adverse[start : start + months].sum()))
        entities = int(np.searchsorted(registered, np.datetime64(d), side="right"))
        rows[d] = entities
        rate.append(window_records[-1] / entities if entities else 0.0)
    # A window is thin when its records per registered entity fall under 80 % of the usual over the whole
    # span and its records under 80 % of the usual over the windows of the three years from it that hold
    # records (near the end, with the ones before it): a window half inside a gap, thin early years, a last
    # year thinner than those before. "Usual" is the 75th percentile: over the span it is robust to a gap
    # covering up to a quarter of the span (where gaps cover more it is taken over the windows holding
    # records, else every date would be "under 80 %"); over three years, to the three part-filled windows on
    # either side of a gap. A registry that grows faster than its records (new registrations that never
    # file, entities closed without a deregistration date, a batch of entities migrated in) lowers the later
    # windows' records per entity but not their records: they stay, and they are the present the model is
    # for.
    usual = float(np.quantile(rate, 0.75))
    if usual == 0 and any(window_records):
        usual = float(np.quantile([r for r, n in zip(rate, window_records, strict=True) if n > 0], 0.75))
    held = [j for j, n in enumerate(window_records) if n > 0]
    eligible, skipped = [], []
    for i, (d, n, a, r) in enumerate(zip(candidates, window_records, window_adverse, rate, strict=True)):
        ahead = _usual_ahead(window_records, held, i)
        if n == 0:
            skipped.append((d, "no record at all in its outcome window (a gap in the data)"))
        elif (usual <= 0 or r < min_coverage * usual) and n < min_coverage * ahead:
            skipped.append(
                (
                    d,
                    f"its outcome window holds under {min_coverage:.0%} of the usual records per entity, and "
                    f"of the records of the windows after it ({n:,} against {ahead:,.0f}: a gap or thin data)",
                )
            )
        elif a == 0:
            skipped.append((d, "no adverse record in its outcome window"))
        else:
            eligible.append(d)
    chosen = eligible[-count:] if count > 0 else []
    skipped += [
        (d, f"older than the {count} latest usable dates (raise --quarters to use it)") for d in eligible[:-count]
    ]
    if max_rows is not None and len(chosen) > SNAPSHOTS:
        total = sum(rows[d] for d in chosen[-SNAPSHOTS:])
        keep = SNAPSHOTS
        for d in reversed(chosen[:-SNAPSHOTS]):  # newest first
            if total + rows[d] > max_rows:
                break
            total += rows[d]
            keep += 1
        skipped += [
            (
                d,
                f"older than the latest {SNAPSHOTS} dates and beyond {max_rows:,} snapshot rows "
                "(raise --max-rows to use it)",
            )
            for d in chosen[:-keep]
        ]
        chosen = chosen[-keep:]
    return SnapshotPlan(dates=chosen, skipped=sorted(skipped), first_record=first_record, data_end=end, **totals)
