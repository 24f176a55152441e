"""Scoring in the service: a history or a dataset becomes features, and features become scores.

The scoring code is the training code: a history becomes a ``features.dataset.Dataset``, is validated by
``features.validate``, turned into features by ``features.build`` and scored by ``models.scorer`` — the
same functions ``ipcredit score`` uses, so serving cannot drift from training. Which scorer scores is
``serving/scorers.py``'s business; how a scored row is answered, ``serving/explanations.py``'s.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from features.build import FEATURE_VERSION, build_features, build_features_from_frames
from features.columns import value_columns
from features.dataset import Dataset, DatasetError
from features.errors import InvalidInput, Problem
from features.ledger import overlay_frames
from features.schema import ENTITIES, EVENTS, LISTS, ColumnType, Table
from features.single import feature_values
from features.validate import check_frames
from models.policy import Policy, parse_policy
from models.scorer import Scorer
from serving import dates
from serving.schemas import History

# What-if scorings run at once per process (the rest wait their turn on the event loop): scoring is
# CPU-bound Python, so more at once only contend for the GIL; use more worker processes for more cores.
SCORINGS_AT_ONCE = 1
# A posted history of at most this many records (events and list entries), with no decision of the ledger
# about its entity, is scored on the event loop in short steps: a thread costs such a request about 30 % more
# CPU in GIL hand-offs, and under a stream of other requests the event loop starves the thread of the GIL
# (docs/service.md, Performance). Longer ones are scored in a thread, leaving the event loop free.
INLINE_RECORDS = 500


def history_frames(history: History) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three contract tables of one posted history.

    Built column by column from the validated request objects (dates become ``datetime64[s]`` directly),
    which costs a fraction of a frame of ``model_dump`` records followed by ``pd.to_datetime``; the frames
    are the same (``tests/serving/test_fast_scoring.py``)."""
    return (
        _table([history.entity], ENTITIES),
        _table(history.events, EVENTS),
        _table(history.lists, LISTS),
    )


def _table(rows: list[BaseModel], table: Table) -> pd.DataFrame:
    names = table.column_names
    if not rows:
        frame = pd.DataFrame([], columns=names)
        for column in table.columns:
            if column.type is ColumnType.DATE:
                frame[column.name] = pd.to_datetime(frame[column.name])
        return frame
    data: dict[str, Any] = {}
    for column in table.columns:
        values = [getattr(row, column.name, None) for row in rows]
        data[column.name] = np.array(values, dtype="datetime64[s]") if column.type is ColumnType.DATE else values
    return pd.DataFrame(data, columns=names)


# The field of a ``History`` that holds each contract table (the entity is one object, not a list).
_HISTORY_FIELD = {"entities": "entity", "events": "events", "lists": "lists"}


def history_problems(exc: DatasetError) -> InvalidInput:
    """A dataset built from a posted history, found invalid, as problems at the history's field paths:
    ``("events", 12, "quantity")`` (table, 1-based row, column) becomes ``("events", 11, "quantity")``
    (field, list index, field), and the entities table's only row is the ``entity`` object."""
    problems = []
    for problem in exc.problems:
        if not problem.loc:
            problems.append(problem)
            continue
        table, *rest = problem.loc
        loc: list[str | int] = [_HISTORY_FIELD.get(str(table), str(table))]
        for part in rest:
            if isinstance(part, int):
                if table != "entities":
                    loc.append(part - 1)
            else:
                loc.append(part)
        problems.append(Problem(tuple(loc), problem.msg, problem.input))
    return InvalidInput(problems, total=exc.total)


def dataset_from_history(entity: pd.DataFrame, events: pd.DataFrame, lists: pd.DataFrame, source: str) -> Dataset:
    """A validated in-memory dataset of one entity's history; ``InvalidInput`` at the history's field
    paths when the contract is broken."""
    ds = Dataset.from_frames(entity, events, lists, source=source, threads=1)
    try:
        check_frames(ds, latest=dates.today())
    except DatasetError as exc:
        raise history_problems(exc) from exc
    return ds


def overlaid_frames(
    history: History, ledger: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``history_frames`` with the ledger's decisions (``features.ledger`` columns) laid over them, as a
    dataset folder gets them in a run (``features.ledger.overlay_frames``)."""
    entity, events, lists = history_frames(history)
    if ledger is None or ledger.empty:
        return entity, events, lists
    events, lists, _ = overlay_frames(events, lists, ledger)
    return entity, events, lists


def score_history(
    scorer: Scorer, policy: Policy, history: History, as_of: date, ledger: pd.DataFrame | None = None
) -> dict[str, np.ndarray | list]:
    """Score one posted history (already checked against the contract by its request model) without a
    database: the in-memory feature path, then the scorer, with ``ledger``'s decisions (those about the
    posted entity) laid over the history first. Returns the scorer's columns (``Scorer.score_columns``:
    what ``Scorer.score`` frames), one item per scored row."""
    if ledger is None or ledger.empty:
        # No decision to lay over: the one-history path over the request's own records (features.single,
        # the same catalogue and point-in-time rule, the same row bit for bit) instead of pandas frames,
        # scored from its values without a one-row frame.
        values = feature_values(history.entity, history.events, history.lists, as_of)
        if values is None:
            raise _not_registered(as_of)
        ids, dates = np.array([values["entity_id"]], dtype=object), np.array([values["as_of"]], dtype=object)
        return scorer.score_feature_columns(value_columns(values), ids, dates, policy)
    features = build_features_from_frames(*overlaid_frames(history, ledger), as_of)
    if features.empty:
        raise _not_registered(as_of)
    return scorer.score_columns(features, policy)


def _not_registered(as_of: date) -> InvalidInput:
    return InvalidInput.at(
        "as_of",
        "as_of must be on or after the entity's registered_on (nothing to score before it)",
        as_of.isoformat(),
    )


def score_dataset(scorer: Scorer, policy: Policy, ds: Dataset, as_of: date) -> pd.DataFrame:
    """Features at ``as_of`` for every entity of ``ds``, scored with ``scorer`` under ``policy``."""
    features = build_features(ds, as_of)
    if features.empty:
        raise _not_registered(as_of)
    return scorer.score(features, policy)


def feature_version() -> str:
    """The version of the feature code the service runs."""
    return FEATURE_VERSION


def feature_version_of(scores: pd.DataFrame) -> str:
    """The feature version ``scores`` were computed with (its column; else the service's own)."""
    if "feature_version" in scores.columns and len(scores):
        return str(scores["feature_version"].iloc[0])
    return feature_version()


@lru_cache(maxsize=64)
def policy_from_text(text: str) -> Policy:
    """The policy a run was scored with, parsed from the text stored with the run."""
    return parse_policy(text, source="stored policy")
