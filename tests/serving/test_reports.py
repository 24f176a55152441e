"""The monitoring loop as analysts and supervisors meet it: a synthetic world whose delivery drifts half way
through the monitored year (a new industry mix, five times the complaints) -> train -> a stored run before
the drift and one after -> the monthly reports, kept in the service database -> served over HTTP and as
Prometheus gauges. The report after the drift flags the drifted features, and only those."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features import uscc
from features.synth import generate
from models.policy import load_policy
from serving.cli import app
from serving.db import open_store
from serving.plans import create_plan
from serving.tokens import create_token
from tests.models.factories import fast_toml
from tests.serving.conftest import POLICY_PATH, settings_for, start_server

runner = CliRunner()
BEFORE, AFTER = "2025-06-30", "2025-12-31"
DRIFT_FROM = pd.Timestamp("2025-07-01")
# The features the injected complaints move (every complaint window, the whole-history total, the decayed count).
INJECTED = {
    "industry",
    "complaint_received_3m",
    "complaint_received_12m",
    "complaint_received_all",
    "complaints_decayed",
}


def _write(folder, entities, events, lists):
    folder.mkdir()
    for name, frame in (("entities", entities), ("events", events), ("lists", lists)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)


def _drifted(world, seed: int = 3):
    """The later delivery: a third more entities, copies of random existing ones with their histories but
    all in wholesale and retail (F) — a new industry mix — and five times the complaints from July 2025 on."""
    rng = np.random.default_rng(seed)
    entities, events = world.entities, world.events
    chosen = entities.sample(len(entities) // 3, random_state=seed)
    taken = set(entities["entity_id"])
    fresh = []
    while len(fresh) < len(chosen):
        body = "91" + str(rng.choice(chosen["region"].to_numpy())) + "".join(rng.choice(list("0123456789ABCDEFGH"), 9))
        code = body + uscc.check_character(body)
        if code not in taken:
            taken.add(code)
            fresh.append(code)
    renamed = dict(zip(chosen["entity_id"], fresh, strict=True))
    clones = chosen.assign(entity_id=chosen["entity_id"].map(renamed), industry="F")
    copied = events[events["entity_id"].isin(renamed)].copy()
    copied["entity_id"] = copied["entity_id"].map(renamed)
    copied["event_id"] = "C" + copied["event_id"].astype(str)
    # Four more complaints for every one received from July on, each against an entity drawn at random.
    late = events[(events["event_type"] == "complaint_received") & (events["recorded_on"] >= DRIFT_FROM)]
    ids = entities["entity_id"].to_numpy()
    extra = pd.concat(
        [late.assign(event_id=f"X{k}" + late["event_id"], entity_id=rng.choice(ids, len(late))) for k in (1, 2, 3, 4)]
    )
    grown = pd.concat([entities, clones], ignore_index=True)
    return grown, pd.concat([events, copied, extra], ignore_index=True), world.lists


@pytest.mark.slow
def test_drift_half_way_is_flagged_reported_served_and_gauged(db_url, tmp_path, monkeypatch):
    world = generate(1500, seed=13)
    delivered, drifted = tmp_path / "delivered", tmp_path / "drifted"
    _write(delivered, world.entities, world.events, world.lists)
    _write(drifted, *_drifted(world))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("IPCREDIT_DATABASE_URL", db_url)
    (tmp_path / "fast.toml").write_text(fast_toml())

    def run(*args):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result

    run("train", "--data", delivered, "--config", tmp_path / "fast.toml")
    # The run before the drift comes from the first delivery, the one after from the later one.
    run("score", "--data", delivered, "--as-of", BEFORE, "--out", tmp_path / "before.csv", "--store")
    run("score", "--data", drifted, "--as-of", AFTER, "--out", tmp_path / "after.csv", "--store")
    region = str(world.entities["region"].iloc[0])
    store = open_store(db_url)
    create_plan(store, load_policy(POLICY_PATH), {"region": region, "year": 2025}, None)
    store.dispose()
    for day in (BEFORE, AFTER):
        run("report", "--as-of", day, "--out", tmp_path / f"report-{day}", "--no-log")
    before = json.loads((tmp_path / f"report-{BEFORE}" / "report.json").read_text(encoding="utf-8"))
    after = json.loads((tmp_path / f"report-{AFTER}" / "report.json").read_text(encoding="utf-8"))
    newly = set(after["drift_flagged"]) - set(before["drift_flagged"])
    assert {"industry", "complaint_received_12m"} <= newly, after["drift_flagged"]
    assert newly <= INJECTED | {"score"}, newly  # nothing that was not drifted
    assert not INJECTED & set(before["drift_flagged"])
    # The provincial summary: tiers by region over every entity, the region's plan with its progress.
    provincial = after["provincial"]
    assert sum(sum(r[t] for t in "ABCD") for r in provincial["tiers_by_region"]) == after["entities"]
    assert [p["region"] for p in provincial["plans"]] == [region]
    assert provincial["plans"][0]["planned"] > 0 and provincial["plans"][0]["drawn"] == 0
    assert provincial["ledger_decisions_this_month"] == {}
    assert "抽查计划进度" in (tmp_path / f"report-{AFTER}" / "report.html").read_text(encoding="utf-8")
    # Issued again from the same runs: the same report, kept once.
    again = run("report", "--as-of", AFTER, "--out", tmp_path / "again", "--no-log")
    assert "kept as report 2 " in " ".join(again.stderr.split())

    engine = open_store(db_url)
    analyst = create_token(engine, "analyst", "analyst")[1]
    supervisor = create_token(engine, "supervisor", "national supervisor")[1]
    scoped = create_token(engine, "supervisor", "Dandong", region="210600")[1]
    reviewer = create_token(engine, "reviewer", "reviewer")[1]
    live = start_server(settings_for(db_url, tmp_path, today=date(2026, 1, 15)))
    try:
        with live.client(supervisor) as http:
            listed = http.get("/v1/reports").json()
            assert [r["as_of"] for r in listed] == [AFTER, BEFORE] and listed[0]["report_id"] == 2
            figures = http.get("/v1/reports/2")
            assert figures.status_code == 200
            assert figures.content == (tmp_path / f"report-{AFTER}" / "report.json").read_bytes()
            page = http.get("/v1/reports/2/html")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert page.text == (tmp_path / f"report-{AFTER}" / "report.html").read_text(encoding="utf-8")
            assert http.get("/v1/reports/99").status_code == 404
            for bad in ("0", "-1", "x", "9" * 30):
                assert http.get(f"/v1/reports/{bad}").status_code == 422
            assert http.get("/v1/reports", params={"limit": 10_000}).status_code == 422
        for token in (scoped, reviewer):
            with live.client(token) as http:
                refused = http.get("/v1/reports")
                assert refused.status_code == 403, refused.text
        with live.client() as http:
            assert http.get("/v1/reports/2/html").status_code == 401
        with live.client(analyst) as http:  # a Prometheus scraper holds an analyst's token
            gauges = http.get("/metrics").text
        assert "ipcredit_report_available 1.0" in gauges
        assert 'ipcredit_drift_flagged{feature="industry"} 1.0' in gauges
        assert 'ipcredit_drift_flagged{feature="age_years"} 0.0' in gauges
        assert f"ipcredit_drift_flagged_features {float(len(after['drift_flagged']))}" in gauges

        # An analyst issues the report through the service: the same figures, the same report.
        with live.client(analyst) as http:
            job = http.post("/v1/reports", json={"as_of": AFTER}, params={"wait": 60})
            assert job.status_code == 202, job.text
            assert job.headers["location"].startswith("/v1/reports/jobs/")
            assert job.json()["status"] == "done" and job.json()["report_id"] == 2, job.json()
            # A report job is not a score-run job, nor the other way round.
            assert http.get(f"/v1/score-runs/jobs/{job.json()['job_id']}").status_code == 404
            for body in ({"as_of": "2999-01-01"}, {"as_of": AFTER, "seed": 1}, {"as_of": AFTER, "dataset": "../.."}):
                refused = http.post("/v1/reports", json=body)
                assert refused.status_code == 422, (body, refused.text)
            missing = http.post("/v1/reports", json={"as_of": "2016-06-30"}, params={"wait": 60}).json()
            assert missing["status"] == "failed" and missing["problem"]["status"] == 404
        with live.client(supervisor) as http:
            assert http.post("/v1/reports", json={"as_of": AFTER}).status_code == 403
    finally:
        live.stop()
        engine.dispose()
