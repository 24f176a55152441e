"""The ``ipcredit`` Typer application and the helpers its commands share."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from features.dataset import Dataset, DatasetError
from features.errors import InvalidInput, IPCreditError
from features.validate import load_valid_dataset
from models.scorefile import ROW_GROUP_ROWS  # a frame's file: the score file's row groups, a group at a time
from serving import dates

app = typer.Typer(
    name="ipcredit",
    help="Risk scoring for credit-based tiered supervision in the IP field (以信用为基础的分级分类监管).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit status for invalid input (CONTRACT: "exits with status 2, having written nothing"); for any other
# failure (a model that cannot be loaded, a record not found, a conflict, an outage).
EXIT_INVALID = 2
EXIT_FAILED = 1


def exit_code(exc: IPCreditError) -> int:
    """The exit status for a domain error: the command line's translation of the typed errors."""
    return EXIT_INVALID if isinstance(exc, InvalidInput) else EXIT_FAILED


def fail(problem: str | IPCreditError, code: int | None = None) -> typer.Exit:
    """Print ``problem`` to stderr and return the exit to raise: ``code``, or for a domain error the
    status its type maps to (``exit_code``), else ``EXIT_INVALID``."""
    if code is None:
        code = exit_code(problem) if isinstance(problem, IPCreditError) else EXIT_INVALID
    typer.secho(str(problem), err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def warn(message: str | None) -> None:
    """Print ``message`` to stderr as a warning (the command goes on), when there is one."""
    if message:
        typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)


@app.callback()
def _pin_today(ctx: typer.Context) -> None:
    # Every command bounds its dates by the same "today" as the service (IPCREDIT_TODAY pins it), for
    # the command's run only (a test runner invokes many commands in one process).
    from serving.dates import pinned
    from serving.settings import load_settings

    ctx.with_resource(pinned(load_settings().today))


def parse_date(value: str, option: str) -> date:
    """A date option: ISO ``YYYY-MM-DD`` within the bounds of ``serving.dates`` (not after today, not
    before 1900); otherwise the problem is printed and the command exits with status 2."""
    from serving.dates import parse

    try:
        return parse(value, option)
    except InvalidInput as exc:
        raise fail(exc.problems[0].msg, exit_code(exc)) from None


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` (``.parquet`` or ``.csv``) atomically: a temporary file, then a rename."""
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".csv"}:
        raise fail(f"output file {path} must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".parquet":
            _write_parquet(frame, tmp)
        else:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_parquet(frame: pd.DataFrame, path: str) -> None:
    schema = pa.Schema.from_pandas(frame.head(ROW_GROUP_ROWS), preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(frame), 1), ROW_GROUP_ROWS):
            part = pa.Table.from_pandas(frame.iloc[start : start + ROW_GROUP_ROWS], preserve_index=False)
            writer.write_table(part.cast(schema), row_group_size=ROW_GROUP_ROWS)


def check_output_path(path: Path) -> Path:
    """Refuse an output file name we cannot write before doing any work."""
    if path.suffix.lower() not in {".parquet", ".csv"}:
        raise fail(f"--out {path}: the file name must end in .parquet or .csv")
    return path


def print_problems(report_problems: pd.DataFrame, total: int, source: str) -> None:
    """Show a validation report: the first problems as a table, and the total."""
    console = Console(stderr=True)
    table = Table(title=f"{source}: {total} problem{'s' if total != 1 else ''}", show_lines=False)
    for column in ("table", "row", "column", "value", "message"):
        table.add_column(column, overflow="fold")
    for row in report_problems.itertuples(index=False):
        table.add_row(*("" if pd.isna(v) else str(v) for v in row))
    console.print(table)
    if total > len(report_problems):
        console.print(f"… and {total - len(report_problems)} more")


def open_dataset(path: Path) -> Dataset:
    """Load and validate the dataset at ``path``; on any problem print the report and exit with status 2."""
    try:
        return load_valid_dataset(path, latest=dates.today())
    except DatasetError as exc:
        if len(exc.frame):
            print_problems(exc.frame, exc.total, str(path))
        raise fail(f"{exc}; nothing was written", exit_code(exc)) from None
