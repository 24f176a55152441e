"""The point-in-time rule of CONTRACT section 2, defined once and rendered for each engine.

What counts at a date D:
- an event recorded on or before D and not repaired on or before D (a repaired record no longer counts);
- a list entry entered on or before D, not removed on or before D, and not lapsed: a serious-violation
  entry lapses ``SERIOUS_VIOLATION_LAPSE_YEARS`` after entry even without a removal date, an untrustworthy
  entry ``UNTRUSTWORTHY_MANAGEMENT_YEARS`` after entry (its management period);
- among the entries ever made, one entered on or before D and not withdrawn by the ledger on or before D.

Each rule is a tuple of conditions (data, not code), and every engine renders the same tuple: ``sql``
for DuckDB (the feature build over a dataset folder), ``mask`` for pandas frames (a history posted to the
API), ``clause`` for SQLAlchemy (the service's public lists); the ``sql`` text is valid DuckDB and Spark
SQL alike, so the Spark feature query (``features/sql.py``) carries the same conditions. Every condition
compares a column with a date bound computed here once (and every window with ``window_days``), so the
engines never differ in calendar arithmetic. ``FEATURE_VERSION`` hashes the rules, so changing one
changes the version of every feature built.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from sqlalchemy import ColumnElement, Table, and_, not_, or_, true

from features.schema import SERIOUS_VIOLATION_LAPSE_YEARS, WITHDRAWN_ON


def sql_date(d: date) -> str:
    """A date as a SQL literal (DuckDB and Spark)."""
    return f"DATE '{d.isoformat()}'"


def as_date(value: date | str | pd.Timestamp) -> date:
    """An as-of date given as a date, a pandas timestamp or an ISO string."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(value, date):
        return value
    raise TypeError(f"as_of must be a date or an ISO date string; got {type(value).__name__}")


def window_days(as_of: date, months: int) -> int:
    """The days in the ``months`` calendar months up to ``as_of``: an event that occurred ``ago`` days before
    D is in the window "the last N months" when ``ago < window_days(D, N)`` (it occurred after the same day
    N months earlier). Every engine compares with this one number."""
    return (as_of - (as_of - relativedelta(months=months))).days


@lru_cache(maxsize=1024)  # every engine asks for the same few windows at the same few dates
def ago_bounds(
    as_of: date, months: int | None, skip_months: int = 0, calendar_year: int | None = None
) -> tuple[int | None, int]:
    """A window as bounds on ``ago`` (days from occurrence to D): an event is in it when
    ``lower <= ago < upper`` (``upper`` None: no older bound). A window of months reaches back ``months``
    and leaves out the latest ``skip_months``; a ``calendar_year`` window is the calendar year that many
    years before D's (0: D's own year up to D; 1: the whole year before). Every engine takes its bounds here."""
    if calendar_year is not None:
        upper = (as_of - date(as_of.year - calendar_year, 1, 1)).days + 1
        lower = (as_of - date(as_of.year - calendar_year + 1, 1, 1)).days + 1 if calendar_year else 0
        return upper, lower
    upper = None if months is None else window_days(as_of, months)
    return upper, window_days(as_of, skip_months) if skip_months else 0


def in_window(ago: np.ndarray, bounds: tuple[int | None, int]) -> np.ndarray:
    """Which of the days ``ago`` lie in a window given as ``ago_bounds``."""
    upper, lower = bounds
    inside = ago >= lower
    return inside if upper is None else inside & (ago < upper)


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column])


@dataclass(frozen=True)
class OnDate:
    """``column`` compared with D: ``"<="`` (started by D) or ``">"`` (ends after D); ``open_ended`` lets a
    missing value pass (an end not yet reached: no repair, no removal)."""

    column: str
    op: Literal["<=", ">"]
    open_ended: bool = False

    def sql(self, alias: str, as_of: date) -> str:
        compared = f"{alias}.{self.column} {self.op} {sql_date(as_of)}"
        return f"({alias}.{self.column} IS NULL OR {compared})" if self.open_ended else compared

    def mask(self, frame: pd.DataFrame, as_of: date) -> np.ndarray:
        if self.open_ended and self.column not in frame:
            return np.ones(len(frame), dtype=bool)  # an end the frame does not hold was never reached
        values = _dates(frame, self.column)
        compared = _COMPARE[self.op](values, pd.Timestamp(as_of))
        return (compared | values.isna() if self.open_ended else compared).to_numpy(dtype=bool)

    def clause(self, table: Table, as_of: date) -> ColumnElement[bool]:
        column = table.c[self.column]
        compared = _COMPARE[self.op](column, as_of)
        return or_(column.is_(None), compared) if self.open_ended else compared


_COMPARE = {"<=": operator.le, ">": operator.gt}


def recorded_by(column: str) -> OnDate:
    """``column`` is on or before D (and not missing)."""
    return OnDate(column, "<=")


def not_ended_by(column: str) -> OnDate:
    """``column`` (an end: a repair, a removal) is missing or after D."""
    return OnDate(column, ">", open_ended=True)


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
            f"AND {alias}.{self.start} <= {sql_date(self.last_lapsed_start(as_of))})"
        )

    def mask(self, frame: pd.DataFrame, as_of: date) -> np.ndarray:
        bound = pd.Timestamp(self.last_lapsed_start(as_of))
        kind = (frame[self.kind_column] == self.kind).to_numpy(dtype=bool)
        return ~(kind & (_dates(frame, self.start) <= bound).to_numpy(dtype=bool))

    def clause(self, table: Table, as_of: date) -> ColumnElement[bool]:
        bound = self.last_lapsed_start(as_of)
        return not_(and_(table.c[self.kind_column] == self.kind, table.c[self.start] <= bound))


Condition = OnDate | LapsesAfter

EVENT_COUNTS: tuple[Condition, ...] = (recorded_by("recorded_on"), not_ended_by("repaired_on"))
"""An event counts at D: recorded by D, not repaired by D."""

SERIOUS_VIOLATION_LAPSE = LapsesAfter("entered_on", SERIOUS_VIOLATION_LAPSE_YEARS, "list", "serious_violation")
# An untrustworthy entry (失信主体) is managed for a period of about a year (国家知识产权局知识产权信用管理规定,
# 2022) and then stops counting, removed or not. The policy states the same period (``[lifecycle]`` in
# models/policy.toml) and is refused on load when it differs: the period decides feature values, so it is
# feature code, hashed into FEATURE_VERSION.
UNTRUSTWORTHY_MANAGEMENT_YEARS = 1
UNTRUSTWORTHY_LAPSE = LapsesAfter("entered_on", UNTRUSTWORTHY_MANAGEMENT_YEARS, "list", "untrustworthy")
LAPSES: tuple[LapsesAfter, ...] = (SERIOUS_VIOLATION_LAPSE, UNTRUSTWORTHY_LAPSE)
LIST_IN_FORCE: tuple[Condition, ...] = (recorded_by("entered_on"), not_ended_by("removed_on"), *LAPSES)
"""A list entry is in force at D: entered by D, not removed by D, not lapsed."""
LIST_ENTERED: tuple[Condition, ...] = (recorded_by("entered_on"), not_ended_by(WITHDRAWN_ON))
"""A list entry was made by D, in force or ended (``ListEntries``), and not withdrawn by D: an entry the
ledger withdrew (annulled on review, entered in error) was never truly made, and from its withdrawal on it
no longer counts among the entries ever made; before it, it did (the past stays as it was)."""


def lapses_on(list_name: str, entered_on: date) -> date | None:
    """The day an entry of ``list_name`` entered on ``entered_on`` lapses (``None``: that list never lapses)."""
    ends = [d for d in (lapse.ends_on(list_name, entered_on) for lapse in LAPSES) if d is not None]
    return min(ends) if ends else None


def list_entry_ends(list_name: str, entered_on: date, removed_on: date | None) -> date | None:
    """The day a list entry stops counting: its removal or its lapse, whichever comes first (``None``:
    neither, it stays in force)."""
    ends = [d for d in (removed_on, lapses_on(list_name, entered_on)) if d is not None]
    return min(ends) if ends else None


RELATION_KNOWN: tuple[Condition, ...] = (recorded_by("recorded_on"), recorded_by("from_on"))
"""A link between two entities is known at D: recorded by D and begun by D (it may have ended since)."""
RELATION_IN_FORCE: tuple[Condition, ...] = (*RELATION_KNOWN, not_ended_by("to_on"))
"""A link is in force at D: recorded by D, begun by D, not ended by D (``to_on`` is the day it ends)."""

RULES: dict[str, tuple[Condition, ...]] = {
    "events": EVENT_COUNTS,
    "lists": LIST_IN_FORCE,
    "relations": RELATION_IN_FORCE,
}


def sql(rule: tuple[Condition, ...], as_of: date, alias: str) -> str:
    """The rule as a SQL condition on the table aliased ``alias``: plain comparisons with date literals,
    the same text in DuckDB and Spark SQL (``features.sql`` renders it into both)."""
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
