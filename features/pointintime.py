"""The point-in-time rule of CONTRACT section 2, defined once and rendered for each engine.

What counts at a date D:
- an event recorded on or before D and not repaired on or before D (a repaired record no longer counts);
- a list entry entered on or before D, not removed on or before D, and not lapsed: a serious-violation
  entry lapses ``SERIOUS_VIOLATION_LAPSE_YEARS`` after entry even without a removal date.

Each rule is a tuple of conditions (data, not code), and every engine renders the same tuple: ``sql``
for DuckDB (the feature build over a dataset folder), ``mask`` for pandas frames (a history posted to the
API), ``clause`` for SQLAlchemy (the service's public lists). Every condition compares a column with a
date bound computed here once, so the engines never differ in calendar arithmetic. ``FEATURE_VERSION``
hashes the rules, so changing one changes the version of every feature built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from sqlalchemy import ColumnElement, Table, and_, not_, or_, true

from features.schema import SERIOUS_VIOLATION_LAPSE_YEARS


def _sql_date(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column])


@dataclass(frozen=True)
class RecordedBy:
    """``column`` is on or before D (and not missing)."""

    column: str

    def sql(self, alias: str, as_of: date) -> str:
        return f"{alias}.{self.column} <= {_sql_date(as_of)}"

    def mask(self, frame: pd.DataFrame, as_of: date) -> np.ndarray:
        return (_dates(frame, self.column) <= pd.Timestamp(as_of)).to_numpy(dtype=bool)

    def clause(self, table: Table, as_of: date) -> ColumnElement[bool]:
        return table.c[self.column] <= as_of


@dataclass(frozen=True)
class NotEndedBy:
    """``column`` (an end: a repair, a removal) is missing or after D."""

    column: str

    def sql(self, alias: str, as_of: date) -> str:
        return f"({alias}.{self.column} IS NULL OR {alias}.{self.column} > {_sql_date(as_of)})"

    def mask(self, frame: pd.DataFrame, as_of: date) -> np.ndarray:
        ends = _dates(frame, self.column)
        return (ends.isna() | (ends > pd.Timestamp(as_of))).to_numpy(dtype=bool)

    def clause(self, table: Table, as_of: date) -> ColumnElement[bool]:
        return or_(table.c[self.column].is_(None), table.c[self.column] > as_of)


@dataclass(frozen=True)
class LapsesAfter:
    """Rows whose ``kind_column`` is ``kind`` stop counting ``years`` after ``start`` (on that anniversary).

    Anniversaries follow calendar arithmetic (``relativedelta``): an entry of 29 February lapses on
    28 February. Every engine compares ``start`` with one bound, ``last_lapsed_start(D)``.
    """

    start: str
    years: int
    kind_column: str
    kind: str

    def ends_on(self, kind: str, start: date) -> date | None:
        """The day a row of ``kind`` started on ``start`` stops counting, or ``None`` if it never lapses."""
        return start + relativedelta(years=self.years) if kind == self.kind else None

    def last_lapsed_start(self, as_of: date) -> date:
        """The latest start whose row has lapsed by ``as_of`` (``ends_on`` is non-decreasing in the start,
        so the rows lapsed by D are exactly those that started on or before this day)."""
        bound = as_of - relativedelta(years=self.years)
        while bound + timedelta(days=1) + relativedelta(years=self.years) <= as_of:
            bound += timedelta(days=1)  # a start on 29 February ends on 28 February
        return bound

    def sql(self, alias: str, as_of: date) -> str:
        return (
            f"NOT ({alias}.{self.kind_column} = '{self.kind}' "
            f"AND {alias}.{self.start} <= {_sql_date(self.last_lapsed_start(as_of))})"
        )

    def mask(self, frame: pd.DataFrame, as_of: date) -> np.ndarray:
        bound = pd.Timestamp(self.last_lapsed_start(as_of))
        kind = (frame[self.kind_column] == self.kind).to_numpy(dtype=bool)
        return ~(kind & (_dates(frame, self.start) <= bound).to_numpy(dtype=bool))

    def clause(self, table: Table, as_of: date) -> ColumnElement[bool]:
        bound = self.last_lapsed_start(as_of)
        return not_(and_(table.c[self.kind_column] == self.kind, table.c[self.start] <= bound))


Condition = RecordedBy | NotEndedBy | LapsesAfter

EVENT_COUNTS: tuple[Condition, ...] = (RecordedBy("recorded_on"), NotEndedBy("repaired_on"))
"""An event counts at D: recorded by D, not repaired by D."""

SERIOUS_VIOLATION_LAPSE = LapsesAfter("entered_on", SERIOUS_VIOLATION_LAPSE_YEARS, "list", "serious_violation")
LIST_IN_FORCE: tuple[Condition, ...] = (RecordedBy("entered_on"), NotEndedBy("removed_on"), SERIOUS_VIOLATION_LAPSE)
"""A list entry is in force at D: entered by D, not removed by D, not lapsed."""

RULES: dict[str, tuple[Condition, ...]] = {"events": EVENT_COUNTS, "lists": LIST_IN_FORCE}


def sql(rule: tuple[Condition, ...], as_of: date, alias: str) -> str:
    """The rule as a SQL condition on the table aliased ``alias`` (DuckDB dialect)."""
    return " AND ".join(condition.sql(alias, as_of) for condition in rule)


def mask(rule: tuple[Condition, ...], frame: pd.DataFrame, as_of: date) -> np.ndarray:
    """The rule on a pandas frame: a boolean array, True for the rows that count at ``as_of``."""
    keep = np.ones(len(frame), dtype=bool)
    for condition in rule:
        keep &= condition.mask(frame, as_of)
    return keep


def clause(rule: tuple[Condition, ...], table: Table, as_of: date) -> ColumnElement[bool]:
    """The rule as a SQLAlchemy condition on ``table`` (any dialect the service runs on)."""
    return and_(true(), *(condition.clause(table, as_of) for condition in rule))


def fingerprint_text() -> str:
    """The rules as text (their dataclass reprs): a part of ``FEATURE_VERSION``."""
    return repr(RULES)
