"""Dates bounded everywhere: nothing after today (the server's date, or the pinned ``today`` of the
settings) or before 1900, by one rule (``serving.dates``), in every request model, query parameter, stored
run and command line option."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from typer.testing import CliRunner

from models.policy import load_policy
from serving.cli import app as cli
from serving.store import ScoreRunRecord, StoreError, save_score_run
from tests.serving.conftest import POLICY_PATH, bare_history, make_entities, make_scores, roster

TODAY = date(2025, 6, 30)
FUTURE = "2999-01-01"
ENTITY = bare_history("2025-06-30", name="丹东示例科技有限公司", registered_on="2018-03-01")["entity"]


@pytest.fixture
def live(serve, engine, tokens):
    from tests.serving.conftest import store_run

    store_run(engine, make_entities(40, seed=3))
    return serve(today=TODAY)


def locs(response) -> list[list]:
    return [item["loc"] for item in response.json()["detail"]]


def test_the_rule(tmp_path):
    from serving import dates

    with dates.pinned(TODAY):
        assert dates.today() == TODAY
        assert dates.problem(TODAY) is None and dates.problem(date(1900, 1, 1)) is None
        assert "after today (2025-06-30)" in dates.problem(date(2025, 7, 1))
        assert "before 1900-01-01" in dates.problem(date(1, 1, 1))
        with pytest.raises(ValueError, match="after today"):
            dates.check(date(2999, 1, 1))
        assert dates.parse("2025-06-30", "--as-of") == TODAY
        with pytest.raises(Exception, match="must not be after today"):
            dates.parse(FUTURE, "--as-of")
    assert dates.today() != TODAY or date.today() == TODAY, "the pin ends with the block"


def test_far_future_and_ancient_dates_are_refused_in_every_request(live, tokens):
    with live.client(tokens["analyst"]) as analyst:
        for as_of in ("2025-07-01", FUTURE, "0001-01-01"):
            response = analyst.post("/v1/score", json={"as_of": as_of, "entity": ENTITY})
            assert response.status_code == 422, response.text
            assert ["body", "as_of"] in locs(response)
        response = analyst.post(
            "/v1/score", json={"as_of": "2025-06-30", "entity": {**ENTITY, "registered_on": FUTURE}}
        )
        assert response.status_code == 422 and ["body", "entity", "registered_on"] in locs(response)
        event = {
            "event_id": "E1",
            "entity_id": ENTITY["entity_id"],
            "event_type": "patent_filed",
            "occurred_on": "2025-01-01",
            "recorded_on": FUTURE,
        }
        response = analyst.post("/v1/score", json={"as_of": "2025-06-30", "entity": ENTITY, "events": [event]})
        assert response.status_code == 422 and ["body", "events", 0, "recorded_on"] in locs(response)
        # The pinned today itself is allowed: without a model the answer is 503, not a date problem.
        assert analyst.post("/v1/score", json={"as_of": "2025-06-30", "entity": ENTITY}).status_code == 503

        response = analyst.post("/v1/score-runs", json={"dataset": "data", "as_of": FUTURE})
        assert response.status_code == 422 and ["body", "as_of"] in locs(response)
        response = analyst.get("/v1/events", params={"since": FUTURE})
        assert response.status_code == 422 and ["query", "since"] in locs(response)

    with live.client(tokens["admin"]) as admin:
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
    with live.client(tokens["supervisor"]) as supervisor:
        draw = supervisor.post("/v1/sampling/draws", json={}).json()
        chosen = draw["selected"][0]["entity_id"]
        result = {"entity_id": chosen, "outcome": "passed", "inspected_on": FUTURE}
        response = supervisor.post(f"/v1/sampling/draws/{draw['draw_id']}/results", json={"results": [result]})
        assert response.status_code == 422 and ["body", "results", 0, "inspected_on"] in locs(response)

    with live.client(tokens["reviewer"]) as reviewer:
        repair = {"decision": "repair", "version": 1, "repairs": [{"event_id": "E1", "repaired_on": FUTURE}]}
        response = reviewer.post("/v1/objections/1/decision", json=repair)
        assert response.status_code == 422 and ["body", "repairs", 0, "repaired_on"] in locs(response)


def test_public_lists_refuse_dates_out_of_bounds_instead_of_failing(live):
    with live.client() as public:
        for on in ("0001-01-01", FUTURE):
            response = public.get("/v1/public/lists", params={"list": "serious_violation", "on": on})
            assert response.status_code == 422, response.text
            assert response.json()["detail"][0]["loc"] == ["query", "on"]
        assert public.get("/v1/public/lists", params={"list": "red", "on": "2025-06-30"}).status_code == 200


def test_the_store_refuses_a_run_after_today(engine):
    policy = load_policy(POLICY_PATH)
    frame = make_entities(5)
    run = ScoreRunRecord(
        scores=make_scores(frame, as_of=date(2025, 6, 30)),
        entities=frame,
        as_of=date(2025, 6, 30),
        dataset_fingerprint="x",
        data_source="x",
        policy_text=POLICY_PATH.read_text(encoding="utf-8"),
        policy_version=policy.version_tag,
        model_version="1",
        feature_version="test",
    )
    far = replace(run, as_of=date(2999, 1, 1), scores=run.scores.assign(as_of="2999-01-01"))
    with pytest.raises(StoreError, match="after today"):
        save_score_run(engine, far)
    with pytest.raises(StoreError, match="after today"):
        save_score_run(engine, replace(run, scores=run.scores.assign(as_of=date(2998, 1, 1))))
    save_score_run(engine, run)


def test_the_command_line_uses_the_same_rule(db_url, tmp_path):
    env = {"IPCREDIT_DATABASE_URL": db_url, "IPCREDIT_DATA_DIR": str(tmp_path), "IPCREDIT_TODAY": TODAY.isoformat()}
    runner = CliRunner()
    for args in (
        ["events", "export", "--out", str(tmp_path / "events.csv"), "--since", "2025-07-01"],
        ["score", "--data", str(tmp_path), "--as-of", FUTURE, "--out", str(tmp_path / "s.parquet")],
        ["features", "--data", str(tmp_path), "--as-of", "1899-12-31", "--out", str(tmp_path / "f.parquet")],
    ):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "must not be" in result.output, result.output
    # only the form the help names: Python would also read 20250630 and 2025-W26-1 as dates
    for written in ("20250630", "2025-W26-1", "2025-6-30"):
        args = ["score", "--data", str(tmp_path), "--as-of", written, "--out", str(tmp_path / "s.parquet")]
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 2 and "must be a date written YYYY-MM-DD" in " ".join(result.output.split())
    result = runner.invoke(
        cli, ["events", "export", "--out", str(tmp_path / "events.csv"), "--since", "2025-06-30"], env=env
    )
    assert result.exit_code == 0, result.output
