"""Model test fixtures: seeded feature snapshots, a small trained model, a tiny synthetic world on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.build import FEATURE_VERSION
from features.synth import generate
from models.config import parse_config
from models.evaluate import Evaluation, evaluate_model
from models.policy import load_policy
from models.train import TrainedModel, train_model
from serving.settings import PROJECT_ROOT
from tests.models.factories import quarter_ends, snapshots

POLICY_PATH = PROJECT_ROOT / "models" / "policy.toml"
# Small and fast: a few dozen trees are enough to test behaviour, not accuracy.
# One LightGBM thread: OpenMP spinning on a busy 2-core machine costs more than it saves at this size.
FAST = {
    "lightgbm": {"num_threads": 1},
    "boosting": {"max_rounds": 80, "early_stopping_rounds": 15},
    "evaluation": {"shap_sample": 300, "scorecard_max_rows": 4000, "min_group_rows": 100, "min_group_positives": 5},
}


@pytest.fixture(scope="session")
def policy():
    return load_policy(POLICY_PATH)


@pytest.fixture(scope="session")
def fast_config():
    return parse_config(FAST)


@pytest.fixture(scope="session")
def factory_snapshots():
    """1,500 entities over 10 quarter ends, with a known logistic truth."""
    return snapshots(1500, quarter_ends("2021-03-31", 10), seed=11)


@pytest.fixture(scope="session")
def trained(factory_snapshots, policy, fast_config) -> TrainedModel:
    return train_model(factory_snapshots, policy, config=fast_config, feature_version=FEATURE_VERSION)


@pytest.fixture(scope="session")
def evaluation(trained, factory_snapshots, policy) -> Evaluation:
    return evaluate_model(trained, factory_snapshots, policy)


@pytest.fixture(scope="session")
def scorer(trained):
    return trained.scorer


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A 1,200-entity synthetic world written as Parquet (the real input path)."""
    folder = tmp_path_factory.mktemp("tiny-world")
    world = generate(1200, seed=5)
    for name in ("entities", "events", "lists"):
        getattr(world, name).to_parquet(folder / f"{name}.parquet", index=False)
    return folder
