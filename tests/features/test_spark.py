"""One catalogue, two engines: Spark computes the feature table DuckDB does, bit for bit, from every table
layout (Parquet files, partitioned folders, CSV), and ``ipcredit features --engine spark`` writes the same
file as ``--engine duckdb``. The Spark tests share one local session (``spark`` in tests/conftest.py)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.build import build_features
from features.dataset import load_dataset
from features.spark import build_features_spark
from features.synth import generate
from features.validate import validate_dataset
from serving.cli import app
from tests.features.test_sql import DATES, write_world

pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    world = generate(300, seed=8)
    root = tmp_path_factory.mktemp("spark-worlds")
    return {layout: write_world(world, root / layout, layout) for layout in ("files", "partitioned", "csv")}


def test_spark_features_equal_duckdb_bit_for_bit(spark, folders):
    ds = load_dataset(folders["files"])
    for as_of in DATES:
        expected = build_features(ds, as_of)
        got = build_features_spark(spark, folders["files"], as_of)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("layout", ["partitioned", "csv"])
def test_spark_reads_every_layout_duckdb_reads(spark, folders, layout):
    as_of = date(2024, 2, 29)
    expected = build_features(load_dataset(folders["files"]), as_of)
    pd.testing.assert_frame_equal(build_features_spark(spark, folders[layout], as_of), expected, check_exact=True)


def test_features_command_writes_the_same_file_on_either_engine(spark, folders, tmp_path):
    runner = CliRunner()
    files = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.parquet"
        args = ["features", "--data", str(folders["partitioned"]), "--as-of", "2025-12-31", "--out", str(out)]
        result = runner.invoke(app, [*args, "--engine", engine])
        assert result.exit_code == 0, result.output
        files[engine] = out.read_bytes()
    assert files["spark"] == files["duckdb"]
    bad = runner.invoke(
        app,
        [
            "features",
            "--data",
            str(folders["files"]),
            "--as-of",
            "2025-12-31",
            "--out",
            str(tmp_path / "x.parquet"),
            "--engine",
            "polars",
        ],
    )
    assert bad.exit_code == 2 and "--engine must be duckdb or spark" in bad.output
    assert not (tmp_path / "x.parquet").exists()


def test_spark_reads_quirky_deliveries_as_duckdb_does(spark, tmp_path):
    # Text as plain Parquet binary (Hive, Impala), list dates as timestamps in Beijing time, quantities written
    # 2.0 and flags 1.0 / 0.0 in CSV (pandas' float columns), and flags 是 / 否 (a Chinese export's yes and
    # no): both engines read the values they stand for.
    world = generate(80, seed=9)
    as_of = date(2024, 2, 29)
    expected = build_features(load_dataset(write_world(world, tmp_path / "plain", "files")), as_of)
    folder = write_world(world, tmp_path / "quirks", "files")
    lists = world.lists.copy()
    for name in ("entered_on", "removed_on"):
        lists[name] = pd.to_datetime(lists[name]).dt.tz_localize("Asia/Shanghai")
    lists = pa.Table.from_pandas(lists, preserve_index=False)
    lists = lists.set_column(lists.schema.get_field_index("basis"), "basis", lists.column("basis").cast(pa.binary()))
    pq.write_table(lists, folder / "lists.parquet")
    for table, floats in (("events", {"quantity": "float64"}), ("entities", {"online_seller": "float64"})):
        (folder / f"{table}.parquet").unlink()
        frame = getattr(world, table).astype(floats)
        if table == "entities":
            words = frame["online_seller"].map({1.0: "是", 0.0: " 否"})
            frame["online_seller"] = frame["online_seller"].astype(object).where(frame.index % 2 == 0, words)
        frame.to_csv(folder / f"{table}.csv", index=False, date_format="%Y-%m-%d")
    text = (folder / "entities.csv").read_text()
    assert all(flag in text for flag in (",1.0,", ",0.0,", ",是,", ", 否,"))
    ds = load_dataset(folder)
    assert validate_dataset(ds).ok
    pd.testing.assert_frame_equal(build_features(ds, as_of), expected, check_exact=True)
    pd.testing.assert_frame_equal(build_features_spark(spark, folder, as_of), expected, check_exact=True)
