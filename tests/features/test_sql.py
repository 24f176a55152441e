"""One catalogue, rendered as SQL per dialect: the text is pinned by golden files, and the DuckDB rendering
gives ``build_features``'s frame bit for bit (the Spark rendering is run in ``test_spark.py``). Table folders
(partitioned Parquet) read like single files, and a folder's DuckDB connection runs within its settings."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds
import pytest

from features.build import build_features, features_from_arrow
from features.dataset import Dataset, DuckDBSettings, load_dataset, table_source
from features.sql import DIALECTS, DUCKDB, decay_table, feature_query, weights_at
from features.synth import generate
from features.validate import validate_dataset

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_DATE = date(2025, 12, 31)
# Month ends, a leap day and a day whose 24-month half-life spans a leap year.
DATES = (date(2019, 3, 31), date(2024, 2, 29), date(2025, 12, 31))


def run_duckdb(ds: Dataset, as_of: date) -> pd.DataFrame:
    """The rendered feature query, run by DuckDB on the dataset's typed views."""
    ds.con.register("_decay", decay_table(as_of))
    return features_from_arrow(ds.con.sql(feature_query(as_of, DUCKDB)).to_arrow_table())


@pytest.fixture(scope="module")
def world():
    return generate(400, seed=21)


def write_world(world, folder: Path, layout: str) -> Path:
    """The world as a dataset folder: ``files`` (one Parquet file per table), ``csv``, or ``partitioned``
    (entities by region, events by month of occurrence, lists in two files, relations in one)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("entities", "events", "lists", "relations"):
        frame = getattr(world, name)
        if layout == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
        elif name == "relations":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        elif layout == "files" or name == "lists":
            if layout == "files":
                frame.to_parquet(folder / f"{name}.parquet", index=False)
            else:
                (folder / "lists").mkdir()
                half = len(frame) // 2
                frame.iloc[:half].to_parquet(folder / "lists" / "part-0.parquet", index=False)
                frame.iloc[half:].to_parquet(folder / "lists" / "part-1.parquet", index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            key = "region"
            if name == "events":
                month = pa.array(pd.to_datetime(frame["occurred_on"]).dt.strftime("%Y-%m"))
                table, key = table.append_column("month", month), "month"
            pds.write_dataset(
                table,
                folder / f"{name}.parquet",
                format="parquet",
                partitioning=pds.partitioning(pa.schema([(key, pa.string())]), flavor="hive"),
            )
    return folder


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_rendered_sql_is_the_golden_file(dialect):
    golden = GOLDEN / f"feature_query.{dialect}.sql"
    text = feature_query(GOLDEN_DATE, DIALECTS[dialect])
    if os.environ.get("IPCREDIT_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with IPCREDIT_UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text(encoding="utf-8"), (
        f"the {dialect} feature query changed: review the difference, then rerun with IPCREDIT_UPDATE_GOLDEN=1"
    )


def test_duckdb_runs_the_rendered_sql_to_the_same_bits(world):
    assert len(world.relations), "the demo world links entities: the relationship features are compared too"
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=world.relations)
    for as_of in DATES:
        pd.testing.assert_frame_equal(run_duckdb(ds, as_of), build_features(ds, as_of), check_exact=True)


def test_float_sums_do_not_depend_on_the_order_of_the_rows(world):
    # Fines and decayed counts are added in ascending order in every engine: the same bits, whatever order
    # a scan meets the events in.
    shuffled = world.events.sample(frac=1.0, random_state=3).reset_index(drop=True)
    first = build_features(Dataset.from_frames(world.entities, world.events, world.lists), DATES[-1])
    second = build_features(Dataset.from_frames(world.entities, shuffled, world.lists), DATES[-1])
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_decayed_weights_come_from_one_table():
    as_of = date(2024, 2, 29)
    table = decay_table(as_of)
    ago = np.array([0, 1, 365, 731, 3000, len(table) - 1])
    for months in (12, 24):
        assert np.array_equal(weights_at(ago, as_of, months), table[f"w_{months}m"].to_numpy()[ago])
    assert weights_at(np.array([0]), as_of, 24)[0] == 1.0


@pytest.mark.parametrize("layout", ["partitioned", "csv"])
def test_a_partitioned_folder_or_csv_gives_the_same_features(world, tmp_path, layout):
    files = load_dataset(write_world(world, tmp_path / "files", "files"))
    other = load_dataset(write_world(world, tmp_path / layout, layout))
    assert validate_dataset(other).ok
    for as_of in DATES[1:]:
        pd.testing.assert_frame_equal(build_features(other, as_of), build_features(files, as_of), check_exact=True)


def test_rows_of_a_table_folder_are_numbered_across_its_files(world, tmp_path):
    folder = write_world(world, tmp_path / "w", "files")
    events = world.events
    (folder / "events.parquet").unlink()
    (folder / "events").mkdir()
    events.iloc[:100].to_parquet(folder / "events" / "a.parquet", index=False)
    broken = events.iloc[100:].copy()
    broken.iloc[2, broken.columns.get_loc("event_type")] = "not_a_code"
    broken.to_parquet(folder / "events" / "b.parquet", index=False)
    (folder / "events" / "_SUCCESS.parquet").write_bytes(b"")  # a writer's bookkeeping: not data
    report = validate_dataset(load_dataset(folder))
    problems = report.problems
    assert list(problems[["table", "row", "column"]].itertuples(index=False, name=None)) == [
        ("events", 103, "event_type")
    ]


def test_a_table_is_found_once(tmp_path):
    (tmp_path / "events").mkdir()
    assert table_source(tmp_path, "events") == (None, "events/ holds no .parquet file")
    (tmp_path / "events.csv").write_text("event_id\n")
    path, problem = table_source(tmp_path, "events")
    assert path is None and problem == "ambiguous: both events/ and events.csv are present; keep one"
    path, problem = table_source(tmp_path, "lists")
    assert path is None and problem.startswith("missing: expected lists.parquet or lists.csv")


def test_a_file_linked_from_outside_a_table_folder_is_refused(world, tmp_path):
    folder = write_world(world, tmp_path / "w", "files")
    outside = tmp_path / "elsewhere.parquet"
    (folder / "lists.parquet").rename(outside)
    (folder / "lists").mkdir()
    (folder / "lists" / "part.parquet").symlink_to(outside)
    path, problem = table_source(folder, "lists")
    assert path is None and "must be a file inside it" in problem


def test_duckdb_runs_within_its_memory_limit_and_spills_to_its_folder(world, tmp_path):
    folder = write_world(world, tmp_path / "w", "files")
    spill = tmp_path / "spill"
    limited = load_dataset(folder, settings=DuckDBSettings(memory_limit="48MB", temp_directory=spill))
    limit, temp = limited.con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone()
    assert limit.endswith("MiB") and float(limit.split()[0]) <= 48 and temp == str(spill)
    assert validate_dataset(limited).ok
    pd.testing.assert_frame_equal(
        build_features(limited, DATES[-1]), build_features(load_dataset(folder), DATES[-1]), check_exact=True
    )


def test_duckdb_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IPCREDIT_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("IPCREDIT_DUCKDB_TEMP_DIRECTORY", str(tmp_path))
    settings = DuckDBSettings()
    assert settings.memory_limit == "1GB" and settings.temp_directory == tmp_path
    assert f"SET temp_directory = '{tmp_path}'" in settings.statements()


def test_the_base_install_needs_no_pyspark(world, tmp_path):
    # pyspark is an optional extra: every module but the two Spark ones imports without it, and the CLI
    # says what to install when --engine spark is asked for.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import features.build, features.sql, features.dataset, models.scorer, models.registry, serving.cli\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(serving.cli.app, ['features', '--data', sys.argv[1], '--as-of', '2025-12-31',"
        " '--out', sys.argv[2], '--engine', 'spark'])\n"
        "assert r.exit_code == 1 and \"pip install '.[spark]'\" in r.output, r.output\n"
    )
    folder = write_world(world, tmp_path / "w", "files")
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(tmp_path / "x.parquet")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_building_in_passes_gives_the_same_frame(world, monkeypatch):
    import features.build

    ds = Dataset.from_frames(world.entities, world.events, world.lists)
    whole = build_features(ds, DATES[-1])
    monkeypatch.setattr(features.build, "ENTITIES_PER_PASS", 37)
    pd.testing.assert_frame_equal(build_features(ds, DATES[-1]), whole, check_exact=True)
