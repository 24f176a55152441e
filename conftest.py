"""Repository-wide pytest hooks."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Run the analyst notebook against its own temporary MLflow store.

    ``mlflow.set_tracking_uri`` writes ``MLFLOW_TRACKING_URI`` into the process environment, and module-scoped
    fixtures of other tests in the same worker can leave it pointing at their temporary stores; the notebook's
    kernel inherits the environment, so it is cleared here before the kernel starts.
    """
    if str(item.path).endswith(".ipynb"):
        os.environ.pop("MLFLOW_TRACKING_URI", None)
