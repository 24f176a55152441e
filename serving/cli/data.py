"""CLI commands for data: demo-data, validate, features."""

from serving.cli.app import app  # noqa: F401
