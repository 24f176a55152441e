"""The one error model: typed domain errors, their one HTTP translation (RFC 9457 problem details) and their
exit codes on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import pytest
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel

from features.dataset import DatasetError, load_dataset
from features.errors import Conflict, InvalidInput, NotFound, Problem, Unavailable
from features.validate import validate_dataset
from serving.app import create_app
from serving.cli.app import EXIT_FAILED, EXIT_INVALID, exit_code
from serving.errors import PROBLEM_JSON, register_error_handlers
from serving.sampling import SamplingError
from serving.scoring import history_problems
from tests.serving.conftest import settings_for, start_app


class Body(BaseModel):
    count: int


@pytest.fixture(scope="module")
def raising():
    """A running app whose ``GET /raise`` raises the exception set in ``state.exc``."""
    app = FastAPI()
    register_error_handlers(app)

    @app.get("/raise")
    def raise_it() -> None:
        raise app.state.exc

    @app.post("/body")
    def body(_: Body, limit: Annotated[int, Query(ge=1)] = 1) -> None:
        return None

    server = start_app(app)
    with server.client() as client:
        yield app, client
    server.stop()


def problem_of(raising, exc=None, method: str = "GET", path: str = "/raise", **kwargs) -> tuple[int, dict, dict]:
    app, client = raising
    app.state.exc = exc
    response = client.request(method, path, **kwargs)
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and body["type"]
    return response.status_code, body, response.headers


def test_invalid_input_is_422_with_fastapi_items_led_by_the_request_part(raising):
    error = InvalidInput([Problem(("ratios", "D"), "too low", 0.1), Problem(("budget",), "too high")])
    status, body, _ = problem_of(raising, error)
    assert status == 422 and body["type"] == "urn:ipcredit:problem:invalid-input"
    assert body["detail"] == [
        {"loc": ["body", "ratios", "D"], "msg": "too low", "type": "value_error", "input": 0.1},
        {"loc": ["body", "budget"], "msg": "too high", "type": "value_error"},
    ]
    assert "total" not in body
    _, body, _ = problem_of(raising, InvalidInput.at("entity_id", "entity_id is bad", "X", where="path"))
    assert body["detail"][0]["loc"] == ["path", "entity_id"]
    _, body, _ = problem_of(raising, InvalidInput([Problem(("a",), "first")], total=40))
    assert body["total"] == 40


def test_subclasses_answer_as_their_base_and_roster_problems_have_no_body_path(raising):
    _, body, _ = problem_of(raising, SamplingError("ratios.D must lie within", ("ratios", "D")))
    assert body["detail"][0]["loc"] == ["body", "ratios", "D"]
    _, body, _ = problem_of(raising, SamplingError("the roster has 1", where="roster"))
    assert body["detail"][0]["loc"] == ["roster"]


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (NotFound("draw x not found"), 404, "not-found"),
        (Conflict("objection 3 was already decided"), 409, "conflict"),
        (Unavailable("scoring is unavailable: no model", retry_after=60), 503, "unavailable"),
    ],
)
def test_not_found_conflict_and_unavailable_keep_their_sentence_as_detail(raising, error, status, kind):
    answered, body, headers = problem_of(raising, error)
    assert answered == status and body["type"] == f"urn:ipcredit:problem:{kind}"
    assert body["detail"] == str(error)
    if status == 503:
        assert headers["retry-after"] == "60"


def test_fastapi_errors_have_the_same_shape_and_keep_their_detail(raising):
    denied = HTTPException(401, "invalid or revoked token", {"WWW-Authenticate": "Bearer"})
    status, body, headers = problem_of(raising, denied)
    assert status == 401 and body["detail"] == "invalid or revoked token" and body["type"] == "about:blank"
    assert body["title"] == "Unauthorized" and headers["www-authenticate"] == "Bearer"
    status, body, _ = problem_of(raising, None, "POST", "/body", params={"limit": 0}, json={"count": "x"})
    assert status == 422 and body["type"] == "urn:ipcredit:problem:invalid-input"
    assert {tuple(item["loc"]) for item in body["detail"]} == {("body", "count"), ("query", "limit")}
    status, body, _ = problem_of(raising, None, "GET", "/nowhere")
    assert status == 404 and body["detail"] == "Not Found"


def test_an_unexpected_error_is_a_500_problem_without_internals(raising):
    status, body, _ = problem_of(raising, RuntimeError("secret path /srv/x"))
    assert status == 500 and "secret" not in body["detail"]


def test_dataset_problems_are_table_row_column_paths_and_re_root_under_the_request_field(tmp_path):
    entities = pd.DataFrame(
        {
            "entity_id": ["91210600MA0QC0K819"],
            "name": ["x"],
            "kind": ["bank"],
            "industry": ["C"],
            "region": ["210600"],
            "registered_on": ["2020-01-01"],
            "registered_capital": [None],
            "online_seller": ["true"],
        }
    )
    entities.to_csv(tmp_path / "entities.csv", index=False)
    report = validate_dataset(load_dataset(tmp_path))
    error = DatasetError("invalid", report.problems, report.total)
    assert isinstance(error, InvalidInput) and str(error) == "invalid"
    assert error.frame is report.problems and error.total == report.total
    locs = [p.loc for p in error.problems]
    assert ("entities", 1, "kind") in locs, locs
    assert ("events",) in locs, "a missing table has the table alone as its path"
    rooted = error.under("dataset")
    assert ("dataset", "entities", 1, "kind") in [p.loc for p in rooted.problems]
    assert next(p for p in rooted.problems if p.loc[-1] == "kind").input == "bank"
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "nope")
    assert [p.loc for p in info.value.under("dataset").problems] == [("dataset",)]


def test_a_posted_history_reports_its_own_field_paths():
    error = DatasetError(
        "invalid",
        pd.DataFrame(
            [
                {"table": "entities", "row": 1, "column": "kind", "value": "bank", "message": "must be one of"},
                {"table": "events", "row": 3, "column": "quantity", "value": "0", "message": "must be at least 1"},
                {"table": "lists", "row": None, "column": "basis", "value": None, "message": "missing"},
            ]
        ),
    )
    assert [p.loc for p in history_problems(error).problems] == [
        ("entity", "kind"),
        ("events", 2, "quantity"),
        ("lists", "basis"),
    ]


def test_the_command_line_maps_the_same_types_to_exit_codes():
    assert exit_code(InvalidInput("bad")) == exit_code(DatasetError("bad")) == EXIT_INVALID == 2
    for error in (NotFound("x"), Conflict("x"), Unavailable("x")):
        assert exit_code(error) == EXIT_FAILED == 1


def test_the_openapi_document_describes_error_answers_as_problem_details():
    document = create_app(settings_for("sqlite://", Path("/nonexistent"))).openapi()
    answers = document["paths"]["/v1/entities/{entity_id}/risk"]["get"]["responses"]
    for status in ("401", "403", "404", "422", "503"):
        schema = answers[status]["content"][PROBLEM_JSON]["schema"]
        assert {"type", "title", "status", "detail"} <= set(schema["properties"]), status
        assert "application/json" not in answers[status]["content"]
