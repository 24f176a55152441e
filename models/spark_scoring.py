"""Scoring on Spark: the registered scorer applied per partition, explanations computed in the executors.

``score_spark`` maps the Arrow batches of a Spark feature DataFrame (``features.spark.spark_features``)
through ``Scorer.score_columns`` with ``mapInArrow``: each executor's Python worker receives the scorer and
the policy once (a broadcast), builds the TreeSHAP pattern tables once, and turns every batch into score
rows — score, tiers, fired rules, review flag, reasons, contributions — with the very code ``ipcredit
score`` runs on DuckDB. Nothing is collected to the driver: ``write_scores`` writes the rows as Parquet
partitioned by ``as_of`` from the executors, one file per partition, and ``read_scores`` reads such a
folder back as the frame ``Scorer.score`` returns (the score file of ``models/scorefile.py`` and, with
``details``, everything a stored run needs), so a Spark run is written and imported like any other.

pyspark is imported only here and in ``features/spark.py``.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from pyspark.sql import DataFrame, SparkSession

from features.build import features_from_arrow
from features.spark import spark_features
from models.policy import Policy
from models.scorefile import DETAIL_COLUMNS, EXTRA_COLUMNS, SCORE_COLUMNS, text_column
from models.scorer import Scorer

_STRING = pa.string()
# The Arrow type of every column ``Scorer.score_columns`` returns.
_TYPES: dict[str, pa.DataType] = {
    "entity_id": _STRING,
    "as_of": pa.date32(),
    "score": pa.float64(),
    "model_tier": _STRING,
    "tier": _STRING,
    "rules": _STRING,
    "review": pa.bool_(),
    "model_version": _STRING,
    "reasons": _STRING,
    "policy_version": _STRING,
    "feature_version": _STRING,
    "base_value": pa.float64(),
    "log_odds": pa.float64(),
    "contributions": _STRING,
    "features": _STRING,
}
PARTITION_BY: tuple[str, ...] = ("as_of",)


def score_schema(details: bool = False) -> pa.Schema:
    """The columns of a score row in order: the score file's, the extras, and with ``details`` the full
    explanation (``contributions``, ``features``)."""
    names = [*SCORE_COLUMNS, *EXTRA_COLUMNS, *(DETAIL_COLUMNS if details else ())]
    return pa.schema([pa.field(name, _TYPES[name]) for name in names])


@dataclass(frozen=True)
class _Job:
    """What every executor needs to score: sent once per worker as a broadcast."""

    token: str
    scorer: Scorer
    policy: Policy
    top_k: int
    details: bool


# Per Python worker: the prepared scorer of each job (pattern tables built once, not once per task).
_PREPARED: dict[str, Scorer] = {}


def _prepared(job: _Job) -> Scorer:
    scorer = _PREPARED.get(job.token)
    if scorer is None:
        _PREPARED.clear()
        scorer = _PREPARED[job.token] = job.scorer.prepare()
    return scorer


def score_batches(batches: Iterator[pa.RecordBatch], job: _Job) -> Iterator[pa.RecordBatch]:
    """Score rows for Arrow batches of features: what each executor runs (also callable without Spark)."""
    scorer = _prepared(job)
    schema = score_schema(job.details)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        features = features_from_arrow(pa.Table.from_batches([batch]))
        columns = scorer.score_columns(features, job.policy, top_k=job.top_k, details=job.details)
        arrays = [pa.array(_plain(columns[field.name]), type=field.type) for field in schema]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _plain(values: np.ndarray | list) -> np.ndarray | list:
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        return values.astype(object)
    return values


def score_spark(
    features: DataFrame, scorer: Scorer, policy: Policy, *, top_k: int = 5, details: bool = False
) -> DataFrame:
    """Score rows for a Spark feature DataFrame, computed in the executors (lazy, like any DataFrame).

    ``details`` adds ``contributions`` and ``features`` (every feature's contribution and value), which is
    what a stored run needs; the score file does without them.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0; got {top_k}")
    portable = dataclasses.replace(scorer)  # the fields only: caches are rebuilt in the executors
    job = _Job(uuid.uuid4().hex, portable, policy, top_k, details)
    shared = features.sparkSession.sparkContext.broadcast(job)

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return score_batches(batches, shared.value)

    return features.mapInArrow(score_partition, _spark_schema(details))


def _spark_schema(details: bool) -> str:
    spark_types = {pa.string(): "STRING", pa.date32(): "DATE", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
    return ", ".join(f"{f.name} {spark_types[f.type]}" for f in score_schema(details))


def write_scores(scores: DataFrame, folder: str | Path) -> Path:
    """Write score rows from the executors as Parquet partitioned by ``as_of`` (``as_of=2025-12-31/``),
    replacing ``folder``."""
    folder = Path(folder)
    scores.write.mode("overwrite").partitionBy(*PARTITION_BY).parquet(str(folder))
    return folder


def read_scores(folder: str | Path) -> pd.DataFrame:
    """A folder written by ``write_scores`` as the frame ``Scorer.score`` returns: the same columns in the
    same order and types, one row per entity sorted by ``entity_id`` (``Scorer.score``'s order for
    features from ``build_features``)."""
    partitioning = pds.partitioning(pa.schema([pa.field("as_of", pa.date32())]), flavor="hive")
    table = pds.dataset(str(folder), format="parquet", partitioning=partitioning).to_table()
    details = all(name in table.column_names for name in DETAIL_COLUMNS)
    table = table.select(score_schema(details).names)
    # Sorted by the ids alone, each text column taken as large strings: reasons pass 2 GiB at ~2M rows.
    order = pc.sort_indices(table.column("entity_id"))
    frame = {}
    for name in table.column_names:  # text chunked as Scorer.score chunks it: the same frame, the same file
        column = table.column(name)
        if pa.types.is_string(column.type):
            frame[name] = text_column(column.cast(pa.large_string()).take(order).chunks)
        else:
            frame[name] = column.take(order).to_pandas(date_as_object=True)
        table = table.drop_columns([name])
    return pd.DataFrame(frame)


def score_to_parts(
    spark: SparkSession,
    folder: str | Path,
    as_of: date | str,
    scorer: Scorer,
    policy: Policy,
    *,
    parts: str | Path,
    top_k: int = 5,
    details: bool = False,
) -> Path:
    """Every entity of the dataset ``folder`` scored as of ``as_of`` on Spark — features and score rows
    computed in the executors — and written to ``parts`` (Parquet partitioned by ``as_of``). Nothing is
    collected to the driver."""
    features = spark_features(spark, folder, as_of, ordered=False)
    return write_scores(score_spark(features, scorer, policy, top_k=top_k, details=details), parts)


def score_dataset_spark(
    spark: SparkSession,
    folder: str | Path,
    as_of: date | str,
    scorer: Scorer,
    policy: Policy,
    *,
    parts: str | Path,
    top_k: int = 5,
    details: bool = False,
) -> pd.DataFrame:
    """``score_to_parts``, read back as ``Scorer.score``'s frame: row for row what
    ``scorer.score(build_features(ds, as_of), policy)`` gives on DuckDB."""
    score_to_parts(spark, folder, as_of, scorer, policy, parts=parts, top_k=top_k, details=details)
    return read_scores(parts)


def remove_scores(folder: str | Path) -> None:
    """Delete a folder written by ``write_scores``."""
    shutil.rmtree(folder, ignore_errors=True)
