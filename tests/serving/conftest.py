"""Service tests run a real uvicorn server on a free loopback port, on SQLite and on PostgreSQL.

PostgreSQL tests are marked ``postgres`` and run when ``IPCREDIT_TEST_POSTGRES_URL`` points at a server
(CI starts one); each test gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from features import uscc
from models.policy import load_policy
from serving.app import create_app
from serving.db import open_store
from serving.settings import PROJECT_ROOT, Settings
from serving.store import ScoreRunRecord, save_score_run
from serving.tokens import create_token

POSTGRES_URL = os.environ.get("IPCREDIT_TEST_POSTGRES_URL")
POLICY_PATH = PROJECT_ROOT / "models" / "policy.toml"
AS_OF = date(2025, 12, 31)


# ---- databases ------------------------------------------------------------------------------------------


def _postgres_schema_url(base: str, schema: str) -> str:
    url = make_url(base)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty service database: an SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("IPCREDIT_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def settings_for(db_url: str, tmp_path: Path, **overrides) -> Settings:
    """Settings that touch nothing outside ``tmp_path``: no model unless ``model_uri`` is given."""
    values = {
        "database_url": db_url,
        "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "data_dir": tmp_path,
        "policy_path": POLICY_PATH,
        # Every test client comes from 127.0.0.1: the rate limit has its own tests (test_limits.py).
        "rate_limit_per_second": 10_000,
        "rate_limit_burst": 10_000,
    }
    values.update(overrides)
    return Settings(**values)


# ---- a real server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Running:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: Settings) -> Running:
    """Start ``create_app(settings)`` under uvicorn in a thread; return when it accepts connections."""
    return start_app(create_app(settings))


def start_app(app) -> Running:
    """Start ``app`` under uvicorn in a thread; return when it accepts connections."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return Running(f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture
def serve(db_url, tmp_path) -> Iterator[Callable[..., Running]]:
    """Start servers on this test's database (``serve(**settings_overrides)``); all stopped afterwards."""
    running: list[Running] = []

    def _start(**overrides) -> Running:
        server = start_server(settings_for(db_url, tmp_path, **overrides))
        running.append(server)
        return server

    yield _start
    for server in running:
        server.stop()


@pytest.fixture
def engine(db_url):
    engine = open_store(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tokens(engine) -> dict[str, str]:
    """One token per role."""
    return {
        role: create_token(engine, role, f"test-{role}")[1] for role in ("supervisor", "analyst", "reviewer", "admin")
    }


# ---- data -----------------------------------------------------------------------------------------------


def make_ids(n: int, seed: int = 0, region: str = "210600") -> list[str]:
    """``n`` distinct valid unified social credit codes."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(uscc.ALPHABET[:10] + "ABCDEFGH"))
    ids: set[str] = set()
    while len(ids) < n:
        body = "91" + region + "".join(rng.choice(alphabet, 9))
        ids.add(body + uscc.check_character(body))
    return sorted(ids)


# The pages' sign-in form over plain HTTP: its CSRF secret, then the token.
SECRET = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(client: httpx.Client, token: str, next_: str = "/ui/") -> httpx.Response:
    page = client.get("/ui/sign-in")
    secret = SECRET.search(page.text).group(1)
    return client.post("/ui/sign-in", data={"csrf": secret, "token": token, "next": next_})


REGIONS = ("210600", "210602", "410100", "410102")


def make_entities(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regions = rng.choice(REGIONS, n)
    ids = []
    for region in REGIONS:
        ids += make_ids(int((regions == region).sum()), seed=seed * 10 + REGIONS.index(region), region=region)
    order = np.argsort(regions, kind="stable")
    frame = pd.DataFrame(
        {
            "entity_id": ids,
            "name": [f"示例企业{i:05d}有限公司" for i in range(n)],
            "kind": rng.choice(["enterprise", "agency"], n, p=[0.9, 0.1]),
            "industry": rng.choice(list("CFIM"), n),
            "region": regions[order],
            "registered_on": pd.to_datetime("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D"),
            "registered_capital": rng.uniform(1, 1000, n).round(1),
            "online_seller": rng.random(n) < 0.3,
        }
    )
    return frame


FEATURES_SHOWN = ("adverse_12m", "on_red_list", "age_years")


def make_scores(
    entities: pd.DataFrame, *, as_of: date = AS_OF, seed: int = 0, model_version: str = "1"
) -> pd.DataFrame:
    """A score frame with every column the scorer writes, computed from a small fixed linear model."""
    policy = load_policy(POLICY_PATH)
    rng = np.random.default_rng(seed)
    n = len(entities)
    values = {
        "adverse_12m": rng.poisson(0.3, n),
        "on_red_list": rng.random(n) < 0.05,
        "age_years": rng.uniform(0.5, 10, n).round(2),
    }
    weights = {"adverse_12m": 1.2, "on_red_list": -0.8, "age_years": -0.1}
    base = -2.5
    contributions = {k: weights[k] * np.asarray(v, dtype=float) for k, v in values.items()}
    log_odds = base + sum(contributions.values())
    score = 1 / (1 + np.exp(-log_odds))
    tiers = policy.model_tiers(score)
    rows = []
    for i in range(n):
        contrib = {k: float(contributions[k][i]) for k in values}
        feats = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in values.items()}
        top = sorted(contrib, key=lambda k: -abs(contrib[k]))[:2]
        rows.append(
            {
                "entity_id": entities["entity_id"].iloc[i],
                "as_of": as_of,
                "score": float(score[i]),
                "model_tier": tiers[i],
                "tier": tiers[i],
                "rules": "SV_LIST" if tiers[i] == "D" and i % 2 else "",
                "review": False,
                "model_version": model_version,
                "reasons": json.dumps([{"feature": k, "value": feats[k], "contribution": contrib[k]} for k in top]),
                "policy_version": policy.version_tag,
                "feature_version": "test",
                "base_value": base,
                "log_odds": float(log_odds[i]),
                "contributions": json.dumps(contrib),
                "features": json.dumps(feats),
            }
        )
    frame = pd.DataFrame(rows)
    assert np.allclose(
        frame["base_value"] + [sum(json.loads(c).values()) for c in frame["contributions"]], frame["log_odds"]
    )
    assert not any(math.isnan(s) for s in frame["score"])
    return frame


def make_lists(entities: pd.DataFrame) -> pd.DataFrame:
    ids = entities["entity_id"].tolist()
    return pd.DataFrame(
        [
            {
                "entity_id": ids[0],
                "list": "red",
                "entered_on": "2024-03-01",
                "removed_on": None,
                "basis": "国知局示范企业",
            },
            {
                "entity_id": ids[1],
                "list": "serious_violation",
                "entered_on": "2021-06-01",
                "removed_on": None,
                "basis": "市监严重违法〔2021〕1号",
            },
            {
                "entity_id": ids[2],
                "list": "serious_violation",
                "entered_on": "2024-06-01",
                "removed_on": None,
                "basis": "市监严重违法〔2024〕7号",
            },
            {
                "entity_id": ids[3],
                "list": "untrustworthy",
                "entered_on": "2025-01-10",
                "removed_on": "2025-08-01",
                "basis": "国知局失信〔2025〕3号",
            },
            {
                "entity_id": ids[4],
                "list": "untrustworthy",
                "entered_on": "2025-02-10",
                "removed_on": None,
                "basis": "国知局失信〔2025〕9号",
            },
        ]
    )


def store_run(
    engine, entities: pd.DataFrame, *, as_of: date = AS_OF, seed: int = 0, lists=None, data_end: date | None = None
) -> int:
    policy = load_policy(POLICY_PATH)
    run = ScoreRunRecord(
        scores=make_scores(entities, as_of=as_of, seed=seed),
        entities=entities,
        lists=lists,
        as_of=as_of,
        dataset_fingerprint=f"test-{seed}",
        data_source="tests",
        policy_text=POLICY_PATH.read_text(encoding="utf-8"),
        policy_version=policy.version_tag,
        model_version="1",
        feature_version="test",
        data_end=data_end,
    )
    return save_score_run(engine, run)


def roster(n: int = 12, regions=REGIONS) -> list[dict]:
    return [{"inspector_id": f"I{i:03d}", "name": f"检查员{i}", "region": regions[i % len(regions)]} for i in range(n)]


def bare_history(as_of: str, entity_id: str = "91210600MA0QC0K819", **entity) -> dict:
    """A what-if body: one entity with no events or list entries (``entity`` overrides its fields)."""
    base = {
        "entity_id": entity_id,
        "name": "x",
        "kind": "enterprise",
        "industry": "C",
        "region": "210600",
        "registered_on": "2020-01-01",
    }
    return {"as_of": as_of, "entity": {**base, **entity}}


# ---- a small real model --------------------------------------------------------------------------------


def train_scorer(
    world, snapshots, folder: Path, *, model_version: str, rounds: int = 40, relations: bool = False
) -> Path:
    """A small LightGBM scorer fitted on ``world``'s features and outcomes at ``snapshots``, calibrated and
    saved as a scorer directory under ``folder`` (served with ``model_uri``): no MLflow registry needed.
    With ``relations`` the world's links feed the relationship features (so they carry contributions)."""
    import lightgbm as lgb

    from features.build import FEATURE_VERSION, build_features, model_matrix
    from features.catalogue import FEATURE_NAMES
    from features.dataset import Dataset
    from features.snapshots import build_outcomes
    from models.calibration import Calibrator
    from models.scorer import Scorer

    links = world.relations if relations else None
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=links)
    frames = [build_features(ds, day).merge(build_outcomes(ds, day), on="entity_id") for day in snapshots]
    data = pd.concat(frames, ignore_index=True)
    matrix = model_matrix(data)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 8, "min_data_in_leaf": 20, "verbose": -1, "seed": 1},
        lgb.Dataset(matrix, label=data["outcome"]),
        num_boost_round=rounds,
    )
    calibrator = Calibrator("platt").fit(booster.predict(matrix, raw_score=True), data["outcome"].to_numpy())
    scorer = Scorer(
        booster, calibrator, list(FEATURE_NAMES), FEATURE_VERSION, metadata={"model_version": model_version}
    )
    return scorer.save(folder / "scorer")
