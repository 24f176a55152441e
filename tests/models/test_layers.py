"""Scoring stands on its own: importing the scorer, the policy engine or the reason text loads neither
the registry nor MLflow (loading a model is the registry's job, and the registry imports the scorer)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["models.scorer", "models.policy", "models.reasons", "models.scorefile"])
def test_scoring_does_not_import_the_registry(module):
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow' or m == 'models.registry'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
