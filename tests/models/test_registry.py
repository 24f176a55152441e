"""The registry's errors are the project's typed errors: an unknown version is not found."""

from __future__ import annotations

import pytest

from features.errors import InvalidInput, NotFound
from models import registry


def test_an_unknown_version_is_not_found_and_a_promotion_needs_a_reason(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(NotFound, match="no version '9'") as caught:
        registry.promote("9", "no such thing", tracking_uri=store)
    assert isinstance(caught.value, registry.RegistryError)
    with pytest.raises(NotFound, match="no version with alias"):
        registry.load_scorer("models:/ipcredit@champion", store)
    with pytest.raises(InvalidInput, match="needs a reason"):
        registry.promote("1", "  ", tracking_uri=store)
