"""CLI commands for the service: serve, tokens."""
