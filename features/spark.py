"""Features on Spark: a dataset folder as Spark tables, and the catalogue's feature query run on them.

The query is ``features.sql.feature_query(as_of, SPARK)``, rendered from the same catalogue and the same
point-in-time conditions as everything else; nothing here defines a feature. ``load_tables`` reads each
table where ``features.dataset.table_source`` finds it (a Parquet file, a folder of Parquet files
partitioned by region or month, or CSV) and casts the contract's columns as the DuckDB views do
(``features.sql.typed_columns``). ``spark_features`` returns the Spark DataFrame (for scoring in the
executors, ``models/spark_scoring.py``); ``write_features`` has the executors write it as Parquet parts
and ``read_features`` reads them on the driver as the frame ``features.build.build_features`` returns,
bit for bit (never collected through the driver's JVM).

pyspark is imported only here and in ``models/spark_scoring.py``: the base install works without it
(``pip install '.[spark]'`` adds it; Spark needs Java 17).

Validation is not repeated here: callers validate the folder first (``features.validate``, on DuckDB),
so every value cast here is one the contract allows.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.functions import col, from_utc_timestamp
from pyspark.sql.types import StringType

from features.build import features_from_arrow
from features.dataset import DatasetError, table_source, timestamp_zones
from features.errors import Unavailable
from features.pointintime import as_date
from features.schema import TABLES, WITHDRAWN_ON, ColumnType
from features.sql import DECAY_TABLE, SPARK, decay_table, feature_query, typed_columns

# What a session needs to give the same answers as DuckDB and to stay quiet: UTC (dates never shift),
# partition folders read as text (region=210600 stays a code, not a number), Parquet binary without a
# string annotation (Hive, Impala) read as text, no UI.
BASE_CONFIG: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.binaryAsString": "true",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def java_problem() -> str | None:
    """Why Spark cannot start here (no Java 17 or later on PATH or JAVA_HOME), or ``None``."""
    home = os.environ.get("JAVA_HOME")
    java = Path(home) / "bin" / "java" if home else shutil.which("java")
    if not java or not Path(java).exists():
        return (
            "Spark needs Java 17 or later: none found on PATH or in JAVA_HOME "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    return None


class SparkSettings(BaseSettings):
    """The Spark session ipcredit starts, from ``IPCREDIT_SPARK_*`` (read when a session is asked for).

    ``master``: ``local[*]`` (every core of this machine, in one JVM) or a cluster's master URL;
    ``driver_memory`` / ``executor_memory``: JVM heaps (``8g``); ``shuffle_partitions``: partitions of the
    aggregation (default Spark's 200, coalesced by adaptive execution); ``local_dir``: where shuffles spill
    (default ``ipcredit-spark`` in the system's temporary folder). Anything else goes in ``config``
    (``IPCREDIT_SPARK_CONFIG='{"spark.executor.cores": "4"}'``) or Spark's own ``spark-defaults.conf``.
    """

    model_config = SettingsConfigDict(env_prefix="IPCREDIT_SPARK_", extra="ignore")

    master: str = "local[*]"
    driver_memory: str | None = None
    executor_memory: str | None = None
    shuffle_partitions: int | None = None
    local_dir: Path | None = None
    config: dict[str, str] = {}


def spark_session(settings: SparkSettings | None = None, *, app_name: str = "ipcredit") -> SparkSession:
    """A Spark session for ipcredit (``getOrCreate``: an existing session is reused with its settings).

    Local mode runs everything in one JVM on this machine, the Python workers with this interpreter; on a
    cluster, ship the same environment to the executors (docs/scale.md). Raises ``Unavailable`` when there
    is no Java to run Spark.
    """
    settings = settings if settings is not None else SparkSettings()
    problem = java_problem()
    if problem:
        raise Unavailable(problem)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    values = dict(BASE_CONFIG)
    values["spark.local.dir"] = str(settings.local_dir or Path(tempfile.gettempdir()) / "ipcredit-spark")
    if settings.driver_memory:
        values["spark.driver.memory"] = settings.driver_memory
    if settings.executor_memory:
        values["spark.executor.memory"] = settings.executor_memory
    if settings.shuffle_partitions:
        values["spark.sql.shuffle.partitions"] = str(settings.shuffle_partitions)
    values.update(settings.config)
    builder = SparkSession.builder.master(settings.master).appName(app_name)
    for key, value in values.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_job(settings: SparkSettings | None = None) -> Iterator[SparkSession]:
    """A session for one command: started here and stopped at the end, so that its JVM's memory is back
    before the driver reads the results; a session already running in this process is left running."""
    running = SparkSession.getActiveSession()
    spark = spark_session(settings)
    try:
        yield spark
    finally:
        if running is None:
            spark.stop()


def _read(spark: SparkSession, path: Path) -> DataFrame:
    if path.suffix == ".csv":
        # Text, as DuckDB reads CSV: every value is cast by the typed select below.
        return (
            spark.read.option("header", "true")
            .option("quote", '"')
            .option("escape", '"')
            .option("multiLine", "true")
            .option("encoding", "UTF-8")
            .csv(str(path))
        )
    return spark.read.parquet(str(path))


def load_tables(spark: SparkSession, folder: str | Path, *, withdrawals: bool = False) -> dict[str, DataFrame]:
    """The contract tables of ``folder`` as typed Spark DataFrames, registered as the temporary views
    ``entities``, ``events``, ``lists`` and ``relations`` that ``features.sql.feature_query`` reads (an
    optional table that is absent is an empty view, as on DuckDB). ``withdrawals``: ``folder`` is the
    ledger's overlay (``serving.cli.ledger.spark_folder``), whose lists carry the ledger's ``withdrawn_on``;
    a delivery's never counts."""
    folder = Path(folder)
    tables = {}
    for table in TABLES:
        path, problem = table_source(folder, table.name)
        if path is None and table.optional and str(problem).startswith("missing"):
            tables[table.name] = spark.sql(f"SELECT {', '.join(typed_columns(table, {}, SPARK))} WHERE 1 = 0")
            tables[table.name].createOrReplaceTempView(table.name)
            continue
        if path is None:
            raise DatasetError(f"{table.name}: {problem}")
        raw = _read(spark, path)
        if path.suffix != ".csv":
            # A timestamp with a time zone counts on the date in its own zone, as the DuckDB views read it.
            for name, zone in timestamp_zones(path).items():
                if name in table.column_names and table.column(name).type is ColumnType.DATE:
                    raw = raw.withColumn(name, from_utc_timestamp(col(name), zone))
        text = {f.name: isinstance(f.dataType, StringType) for f in raw.schema.fields}
        wanted = [*table.column_names, WITHDRAWN_ON] if withdrawals else table.column_names
        present = {name: text[name] for name in wanted if name in text}
        typed = raw.selectExpr(*typed_columns(table, present, SPARK, quote_name=lambda n: f"`{n}`"))
        typed.createOrReplaceTempView(table.name)
        tables[table.name] = typed
    return tables


def spark_features(
    spark: SparkSession, folder: str | Path, as_of: date | str, *, ordered: bool = True, withdrawals: bool = False
) -> DataFrame:
    """The feature table at ``as_of`` as a Spark DataFrame: the columns of ``build_features``, one row per
    entity registered by ``as_of`` (sorted by ``entity_id`` unless ``ordered`` is False: scoring does not
    need the order, and a global sort is a shuffle). ``withdrawals``: as in ``load_tables``."""
    day = as_date(as_of)
    load_tables(spark, folder, withdrawals=withdrawals)
    weights = pa.Table.from_pandas(decay_table(day), preserve_index=False)
    spark.createDataFrame(weights).createOrReplaceTempView(DECAY_TABLE)
    return spark.sql(feature_query(day, SPARK, ordered=ordered))


def write_features(
    spark: SparkSession, folder: str | Path, as_of: date | str, parts: str | Path, *, withdrawals: bool = False
) -> Path:
    """The feature table at ``as_of`` written by the executors as Parquet parts in ``parts`` (replaced):
    nothing is collected through the driver's JVM, whose heap a few million rows of 55 columns would fill.
    ``withdrawals``: as in ``load_tables``."""
    spark_features(spark, folder, as_of, ordered=False, withdrawals=withdrawals).write.mode("overwrite").parquet(
        str(parts)
    )
    return Path(parts)


def read_features(parts: str | Path) -> pd.DataFrame:
    """Parts written by ``write_features`` as the frame ``build_features`` returns (dtypes, values, rows by
    ``entity_id``). The rows are sorted here, not by Spark: a global sort is a sampling job and a shuffle
    (Spark and Python order strings by code point alike)."""
    table = pq.read_table(str(parts))
    order = pc.sort_indices(table.column("entity_id"))  # the ids are unique: the rows' order
    # Sorted a column at a time, each read column let go: one copy of the table at a time, not two.
    columns = {}
    for name in table.column_names:
        columns[name] = table.column(name).take(order)
        table = table.drop_columns([name])
    return features_from_arrow(pa.table(columns))


def build_features_spark(spark: SparkSession, folder: str | Path, as_of: date | str) -> pd.DataFrame:
    """``build_features`` computed by Spark over the dataset folder: the same frame, bit for bit (through
    Parquet parts in a temporary folder; on a cluster use ``write_features`` with a shared folder)."""
    with tempfile.TemporaryDirectory(prefix="ipcredit-features-") as scratch:
        return read_features(write_features(spark, folder, as_of, Path(scratch) / "parts"))
