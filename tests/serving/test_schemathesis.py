"""Property-based requests generated from the OpenAPI document: the service never answers 5xx.

Runs against a real server on SQLite with stored scores, a roster and an admin token, so generated
requests reach the handlers (not only the auth check). No model is loaded: scoring routes must answer
503 by design, which this test accepts for them and for nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from serving.app import create_app
from serving.db import open_store
from serving.roster import save_roster
from serving.tokens import create_token
from tests.serving.conftest import make_entities, make_lists, roster, settings_for, start_server, store_run

SCORING = {("POST", "/v1/score"), ("POST", "/v1/score-runs"), ("POST", "/v1/objections/{objection_id}/decision")}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'service.db'}"
    engine = open_store(url)
    entities = make_entities(200, seed=4)
    store_run(engine, entities, lists=make_lists(entities))
    with engine.begin() as conn:
        save_roster(conn, roster(), replace=True)
    token = create_token(engine, "admin", "fuzz")[1]
    engine.dispose()
    server = start_server(settings_for(url, tmp))
    yield server, token
    server.stop()


# The OpenAPI document is built without starting anything (create_app does no I/O until its lifespan);
# the requests go to the live server.
schema = schemathesis.openapi.from_dict(create_app(settings_for("sqlite://", Path("/nonexistent"))).openapi())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, fuzzed):
    server, token = fuzzed
    response = case.call(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    if (case.method.upper(), case.path) in SCORING and response.status_code == 503:
        assert "scoring is unavailable" in response.json()["detail"]
        return
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
    )
