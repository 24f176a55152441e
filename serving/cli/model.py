"""CLI commands for models: train, score, models, promote."""
