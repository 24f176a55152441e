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
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from features.build import features_from_arrow
from features.spark import spark_features
from models.policy import Policy
from models.scorefile import DETAIL_COLUMNS, score_batch, score_schema, text_column
from models.scorer import Scorer

PARTITION_BY: tuple[str, ...] = ("as_of",)


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
        yield score_batch(columns, schema)


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
    # Each file sorted by entity_id (a sort within each task, no shuffle): ``merged_scores`` streams them.
    ordered = scores.sortWithinPartitions(*PARTITION_BY, "entity_id")
    ordered.write.mode("overwrite").partitionBy(*PARTITION_BY).parquet(str(folder))
    return folder


def merged_scores(folder: str | Path, columns: list[str], rows: int) -> Iterator[pa.Table] | None:
    """The rows of a folder written by ``write_scores`` in ``entity_id`` order (``read_scores``' order),
    ``rows`` at a time, holding only the ids of the run and a few thousand rows of each file: the files
    are each sorted, so the next ``rows`` of the merged order take the next rows of each file. ``None`` when
    a file is not sorted (a folder written otherwise: read it with ``read_scores``)."""
    files = sorted(p for p in Path(folder).glob("as_of=*/*.parquet") if not p.name.startswith((".", "_")))
    ids = [pq.read_table(f, columns=["entity_id"]).column("entity_id") for f in files]
    if any(len(i) > 1 and not pc.all(pc.less_equal(i[:-1], i[1:])).as_py() for i in ids):
        return None
    if not files:
        return iter(())
    origin = np.repeat(np.arange(len(files)), [len(i) for i in ids])
    order = pc.sort_indices(pa.chunked_array([c for i in ids for c in i.chunks], type=pa.string())).to_numpy()
    source = origin[order]  # the file of each row of the merged order
    del ids, origin, order
    wanted = [c for c in columns if c != "as_of"]
    readers = [_Rows(f, wanted) for f in files]

    def groups() -> Iterator[pa.Table]:
        for start in range(0, len(source), rows):
            part = source[start : start + rows]
            counts = np.bincount(part, minlength=len(files))
            pieces = [readers[f].take(int(counts[f])) for f in np.flatnonzero(counts)]
            table = pa.concat_tables(pieces)
            # The pieces lie file after file; a stable sort of the files says where each row goes.
            place = np.empty(len(part), dtype=np.int64)
            place[np.argsort(part, kind="stable")] = np.arange(len(part))
            yield table.take(place).select(columns)

    return groups()


class _Rows:
    """The rows of one part file, read a few thousand at a time, with its ``as_of`` (the folder's)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.as_of = date.fromisoformat(path.parent.name.removeprefix("as_of="))
        self.batches = pq.ParquetFile(path).iter_batches(batch_size=4096, columns=columns)
        self.held: pa.Table | None = None

    def take(self, n: int) -> pa.Table:
        """The next ``n`` rows of the file."""
        pieces = [self.held] if self.held is not None else []
        have = self.held.num_rows if self.held is not None else 0
        while have < n:
            batch = next(self.batches)
            pieces.append(pa.Table.from_batches([batch]))
            have += batch.num_rows
        held = pa.concat_tables(pieces)
        self.held = held.slice(n)
        taken = held.slice(0, n)
        return taken.append_column("as_of", pa.array([self.as_of] * n, pa.date32()))


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
    withdrawals: bool = False,
) -> Path:
    """Every entity of the dataset ``folder`` scored as of ``as_of`` on Spark — features and score rows
    computed in the executors — and written to ``parts`` (Parquet partitioned by ``as_of``). Nothing is
    collected to the driver. ``withdrawals``: ``folder`` is the ledger's overlay (``features.spark.load_tables``)."""
    features = spark_features(spark, folder, as_of, ordered=False, withdrawals=withdrawals)
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
