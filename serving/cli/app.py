"""The ``ipcredit`` Typer application and the helpers its commands share."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ipcredit",
    help="Risk scoring for credit-based tiered supervision in the IP field (以信用为基础的分级分类监管).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit status for invalid input (CONTRACT: "exits with status 2, having written nothing").
EXIT_INVALID = 2


def fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    """Print ``message`` to stderr and return the exit to raise."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)
