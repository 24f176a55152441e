"""Command line: ``ipcredit``. Each submodule registers its commands on the one Typer app."""

from serving.cli import data, ledger, model, service  # noqa: F401  (registers commands)
from serving.cli.app import app

__all__ = ["app"]
