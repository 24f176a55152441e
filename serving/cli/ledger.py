"""CLI: the decision ledger. ``ledger export`` / ``ledger import``, and the ledger every feature build of
``score``, ``train`` and ``features`` lays over its dataset folder.

Where the commands read the ledger from (``ledger_options``):

- by default, the service database (``IPCREDIT_DATABASE_URL``, else the default SQLite file): every
  decision up to its latest ``seq``, or up to ``--ledger-seq N`` to reproduce a stored row; with the
  default SQLite file not created yet there is no ledger, and the command says so;
- ``--ledger FILE``: an exported ledger file instead (validated row by row like an import);
- ``--no-ledger``: the delivery alone, said on stderr.

What was applied (the seq, the count) and every disagreement between the folder and the ledger is printed
on stderr. ``--engine spark`` reads the dataset with the ledger laid over it (``spark_folder``: DuckDB's
overlaid tables written as Parquet for the run), so both engines build from the same rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from features.dataset import Dataset
from features.errors import InvalidInput
from features.schema import TABLES
from serving.cli.app import app, check_output_path, exit_code, fail, print_problems, write_frame

ledger_app = typer.Typer(
    help="The decision ledger: the regulator's decisions laid over every dataset.", no_args_is_help=True
)
app.add_typer(ledger_app, name="ledger")
err = Console(stderr=True)

LedgerFile = Annotated[
    Path | None,
    typer.Option("--ledger", help="an exported ledger file to apply instead of the service database's ledger"),
]
LedgerSeq = Annotated[
    int | None,
    typer.Option("--ledger-seq", min=0, help="apply the decisions up to this seq only (reproduce a stored row)"),
]
NoLedger = Annotated[bool, typer.Option("--no-ledger", help="the delivery alone: apply no decision")]


@dataclass(frozen=True)
class Applied:
    """What a command laid over its dataset: the seq it read up to (``None``: no ledger read) and the
    conflicts, as JSON for the run record."""

    seq: int | None
    decisions: int
    conflicts: str | None


def _problem_frame(problems) -> pd.DataFrame:
    rows = []
    for p in problems:
        loc = list(p.loc)
        rows.append(
            {
                "table": loc[0] if loc else "ledger",
                "row": loc[1] if len(loc) > 2 else None,
                "column": loc[-1] if len(loc) > 1 else None,
                "value": p.input,
                "message": p.msg,
            }
        )
    return pd.DataFrame(rows)


def read_ledger_file(path: Path) -> pd.DataFrame:
    """An exported ledger file (``.csv`` or ``.parquet``), validated row by row: every problem printed as
    ledger / row / column / value / message and exit 2."""
    from serving import ledger

    if path.suffix.lower() not in (".csv", ".parquet"):
        raise fail(f"--ledger {path}: the file name must end in .csv or .parquet")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path, dtype=str)
    except Exception as exc:  # any reader failure: the file is not a table
        raise fail(f"{path}: cannot be read as a ledger file ({exc.__class__.__name__}); nothing was written") from None
    problems = ledger.check_import(frame)
    if problems:
        print_problems(_problem_frame(problems[:50]), len(problems), str(path))
        raise fail(f"{path}: {len(problems)} problem(s) in the ledger file; nothing was written")
    return frame


def _database_has_ledger(settings) -> bool:
    """The service database exists (a server URL always does; the default SQLite file once created)."""
    if settings.database_url:
        return True
    return (Path(settings.data_dir) / "ipcredit.db").exists()


def apply_ledger(ds: Dataset, ledger_file: Path | None, ledger_seq: int | None, no_ledger: bool) -> Applied:
    """Lay the ledger the options name over ``ds`` (see the module docstring); print what it did."""
    from features.ledger import LEDGER_COLUMNS, normalise, overlay_dataset
    from serving import ledger
    from serving.db import open_store
    from serving.settings import load_settings

    if no_ledger:
        if ledger_file is not None or ledger_seq is not None:
            raise fail("--no-ledger cannot be combined with --ledger or --ledger-seq")
        err.print("ledger not applied (--no-ledger): the delivery alone")
        return Applied(seq=None, decisions=0, conflicts=None)
    if ledger_file is not None:
        frame = read_ledger_file(ledger_file)
        decisions = normalise(frame[[c for c in LEDGER_COLUMNS if c in frame.columns]])
        latest = int(decisions["seq"].max()) if len(decisions) else 0
        where = str(ledger_file)
    else:
        settings = load_settings()
        if not _database_has_ledger(settings):
            if ledger_seq:
                raise fail(f"--ledger-seq {ledger_seq}: there is no service database, so no ledger to read")
            err.print("no service database yet: no ledger decisions applied (seq 0)")
            return Applied(seq=0, decisions=0, conflicts=None)
        else:
            engine = open_store(settings.db_url)
            with engine.connect() as conn:
                latest = ledger.current_seq(conn)
                decisions = ledger.ledger_frame(conn, ledger_seq)
            engine.dispose()
            where = "the service database"
    if ledger_seq is not None:
        if ledger_seq > latest:
            raise fail(f"--ledger-seq must not be after the ledger's latest decision {latest}; got {ledger_seq}")
        decisions = decisions[decisions["seq"] <= ledger_seq]
        latest = ledger_seq
    if decisions.empty:  # nothing decided: the typed views stay as they are (no extra joins to run)
        err.print(f"ledger from {where}: no decision applied (seq {latest})")
        return Applied(seq=latest, decisions=0, conflicts=None)
    try:
        report = overlay_dataset(ds, decisions)
    except InvalidInput as exc:
        raise fail(f"the ledger cannot be applied: {exc}; nothing was written", exit_code(exc)) from None
    err.print(f"ledger from {where}: {report.decisions} decision(s) applied, up to seq {latest}")
    for line in report.describe()[1:]:
        err.print(f"[yellow]conflict[/yellow] {line}")
    return Applied(seq=latest, decisions=report.decisions, conflicts=ledger.conflicts_json(report))


@contextmanager
def spark_folder(ds: Dataset, data: Path, applied: Applied, beside: Path) -> Iterator[tuple[Path, bool]]:
    """The folder ``--engine spark`` reads, and whether it is the ledger's overlay (Spark then reads its
    lists' ``withdrawn_on``: ``features.spark.load_tables``): ``data`` itself when no decision applies; else
    the dataset with the ledger laid over it (DuckDB's overlaid views), written as Parquet beside ``beside``
    and removed afterwards, so Spark builds from exactly the rows DuckDB builds from."""
    if not applied.decisions:
        yield data, False
        return
    folder = beside.parent / f".{beside.name}.ledger"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        with err.status(f"laying the ledger over {data} for Spark"):
            for table in TABLES:
                target = folder / f"{table.name}.parquet"
                ds.con.execute(f"COPY (SELECT * FROM {table.name}) TO '{target}' (FORMAT parquet)")
        yield folder, True
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@ledger_app.command("export")
def export(out: Annotated[Path, typer.Option("--out", help="ledger file, .csv or .parquet")]) -> None:
    """Write every decision of the service database's ledger (with its decision_id, basis, evidence, rule,
    who decided and when) to FILE, atomically."""
    from serving import ledger
    from serving.cli.service import _engine

    check_output_path(out)
    engine = _engine()
    with engine.connect() as conn:
        frame = ledger.export_frame(conn)
    write_frame(frame, out)
    err.print(f"wrote {out}: {len(frame)} decision(s), up to seq {int(frame['seq'].max()) if len(frame) else 0}")


@ledger_app.command("import")
def import_(path: Annotated[Path, typer.Argument(help="a ledger file written by ledger export")]) -> None:
    """Append the decisions of FILE that the ledger does not have yet (by decision_id), in their seq order,
    in one transaction; every row is validated first (exit 2, nothing written, on any problem). Importing
    the same file twice adds nothing."""
    from serving import ledger
    from serving.auth import cli_principal
    from serving.cli.service import _engine

    frame = read_ledger_file(path)
    try:
        result = ledger.import_frame(_engine(), frame, cli_principal())
    except InvalidInput as exc:
        print_problems(_problem_frame(exc.problems), exc.total, str(path))
        raise fail(f"{path}: nothing was imported", exit_code(exc)) from None
    typer.echo(
        f"imported {result.added} decision(s), {result.skipped} already in the ledger; ledger at seq {result.seq}"
    )
