"""The fast paths behind what-if scoring and risk lookups give the answers of the plain ones.

Differential tests: each shortcut (numpy feature columns, the serial TreeSHAP kernels, the request-to-frame
conversion, coalesced lookups) against the straightforward code it replaces. The policy engine has its own
in ``tests/models/test_policy.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import date

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine

from features.build import FEATURE_VERSION, build_features, build_features_from_frames, model_matrix
from features.catalogue import CATEGORIES, FEATURE_NAMES, FEATURES
from features.columns import feature_columns
from features.dataset import Dataset
from features.errors import InvalidInput
from features.evidence import EntityHistory, evidence, records_evidence
from features.schema import ENTITIES, EVENTS, LISTS
from features.single import single_features
from features.snapshots import build_outcomes
from features.synth import generate
from models.calibration import Calibrator
from models.gate import FIRST_VERSION
from models.policy import load_policy
from models.scorer import Scorer
from models.treeshap import PARALLEL_MIN_ROWS, PatternTreeSHAP, numeric_matrix
from serving import db
from serving.explanations import what_if_row
from serving.lookups import Lookups
from serving.schemas import ScoreRequest
from serving.scoring import history_frames, score_history
from serving.store import latest_score
from tests.serving.conftest import POLICY_PATH, bare_history, make_entities, sign_in, store_run

AS_OF = date(2024, 12, 31)


@pytest.fixture(scope="module")
def world():
    return generate(1500, seed=12)


@pytest.fixture(scope="module")
def features(world) -> pd.DataFrame:
    return build_features(Dataset.from_frames(world.entities, world.events, world.lists), AS_OF)


@pytest.fixture(scope="module")
def scorer(world) -> Scorer:
    ds = Dataset.from_frames(world.entities, world.events, world.lists)
    frames = []
    for snapshot in (date(2021, 12, 31), date(2022, 12, 31), date(2023, 6, 30)):
        frames.append(build_features(ds, snapshot).merge(build_outcomes(ds, snapshot), on="entity_id"))
    data = pd.concat(frames, ignore_index=True)
    matrix = model_matrix(data)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 10, "verbose": -1, "seed": 1},
        lgb.Dataset(matrix, label=data["outcome"]),
        num_boost_round=60,
    )
    calibrator = Calibrator("platt").fit(booster.predict(matrix, raw_score=True), data["outcome"].to_numpy())
    return Scorer(booster, calibrator, list(FEATURE_NAMES), FEATURE_VERSION, model_version="3")


@pytest.fixture(scope="module")
def policy():
    return load_policy(POLICY_PATH)


def unruly(features: pd.DataFrame) -> pd.DataFrame:
    """The same rows as callers outside ``features.build`` may hand them over: objects, floats with
    NaN where integers belong, strings for booleans, an unknown and a missing industry."""
    rng = np.random.default_rng(4)
    frame = features.copy()
    frame["industry"] = frame["industry"].astype(object)
    frame.loc[frame.index[:7], "industry"] = "Z"
    frame.loc[frame.index[7:15], "industry"] = None
    for name in [n for n in FEATURE_NAMES if FEATURES[n].dtype == "int"][:5]:
        column = frame[name].astype(float)
        column[rng.random(len(frame)) < 0.1] = np.nan
        frame[name] = column
    flag = next(n for n in FEATURE_NAMES if FEATURES[n].dtype == "bool")
    frame[flag] = frame[flag].map({True: "true", False: "0"}).astype(object)
    floats = [n for n in FEATURE_NAMES if FEATURES[n].dtype == "float"]
    frame.loc[frame.index[20:40], floats[0]] = np.nan
    frame.loc[frame.index[40:45], floats[-1]] = np.inf
    return frame


@pytest.mark.parametrize("rows", [None, 3], ids=["all-rows", "few-rows"])
@pytest.mark.parametrize("shape", ["built", "unruly"])
def test_the_numeric_matrix_is_the_model_matrix(scorer, features, shape, rows):
    frame = features if shape == "built" else unruly(features)
    frame = frame if rows is None else frame.iloc[[0, 9, 41]]  # rows with an unknown and a missing industry
    expected = numeric_matrix(model_matrix(frame), scorer.booster)
    got = scorer.numeric(feature_columns(frame))
    np.testing.assert_array_equal(got, expected)  # NaN where NaN, every other bit equal
    assert scorer.booster.predict(got, raw_score=True).tolist() == scorer.log_odds(frame).tolist()


def test_feature_columns_have_the_catalogue_types(features):
    columns = feature_columns(unruly(features))
    for name in FEATURE_NAMES:
        dtype = FEATURES[name].dtype
        expected = {"bool": np.bool_, "int": np.int64, "float": np.float64, "category": np.int16}[dtype]
        assert columns[name].dtype == expected, name
    codes = columns["industry"]
    assert (codes[:15] == -1).all() and (codes[15:] >= 0).all() and (codes < len(CATEGORIES["industry"])).all()
    with pytest.raises(ValueError, match="missing"):
        feature_columns(features.drop(columns=[FEATURE_NAMES[3]]))


def test_scores_of_one_row_at_a_time_equal_the_batch(scorer, policy, features):
    rows = features.head(PARALLEL_MIN_ROWS + 100)  # big enough for the parallel kernels
    whole = Scorer(scorer.booster, scorer.calibrator, scorer.feature_names, FEATURE_VERSION, model_version="3")
    batch = whole.score(rows, policy)
    single = Scorer(scorer.booster, scorer.calibrator, scorer.feature_names, FEATURE_VERSION, model_version="3")
    single.prepare()
    picked = [0, 1, 5, 17, 300, 1001, len(rows) - 1]
    one_by_one = pd.concat([single.score(rows.iloc[[i]], policy) for i in picked], ignore_index=True)
    pd.testing.assert_frame_equal(one_by_one, batch.iloc[picked].reset_index(drop=True), check_exact=True)


def test_score_columns_are_the_score_frame(scorer, policy, features):
    rows = features.head(40)
    frame = scorer.score(rows, policy)
    columns = scorer.score_columns(rows, policy)
    assert list(columns) == list(frame.columns)
    for name, values in columns.items():
        assert list(values) == frame[name].tolist(), name
    assert what_if_row({k: v[3:4] for k, v in columns.items()}, policy)["reasons"] == json.loads(
        frame["reasons"].iloc[3]
    )


def test_serial_and_parallel_treeshap_kernels_agree_bit_for_bit(scorer, features):
    x = numeric_matrix(model_matrix(features), scorer.booster)[: 2 * PARALLEL_MIN_ROWS]
    parallel = PatternTreeSHAP(scorer.booster).contributions(x)
    grown = PatternTreeSHAP(scorer.booster)
    serial = np.vstack([grown.contributions(x[i : i + 7]) for i in range(0, len(x), 7)])  # many small calls
    np.testing.assert_array_equal(serial, parallel)
    np.testing.assert_array_equal(grown.contributions(x), parallel)
    expected = scorer.booster.predict(x, pred_contrib=True)
    np.testing.assert_allclose(parallel, expected, rtol=0, atol=1e-10)


def _plain_frames(history) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The obvious conversion: records from ``model_dump``, then ``pd.to_datetime`` on the dates."""
    entity = pd.DataFrame([history.entity.model_dump()], columns=ENTITIES.column_names)
    events = pd.DataFrame([e.model_dump() for e in history.events], columns=EVENTS.column_names)
    lists = pd.DataFrame([row.model_dump() for row in history.lists], columns=LISTS.column_names)
    for frame, table in ((entity, ENTITIES), (events, EVENTS), (lists, LISTS)):
        for column in table.columns:
            if column.type.value == "DATE":
                frame[column.name] = pd.to_datetime(frame[column.name])
    return entity, events, lists


def _without_events(world) -> list[str]:
    """The world's entities with no event at all, in entity-table order."""
    ids = world.entities.entity_id
    return ids[~ids.isin(world.events.entity_id)].tolist()


def _request(world, entity_id: str) -> ScoreRequest:
    def rows(frame: pd.DataFrame) -> list[dict]:
        part = frame[frame.entity_id == entity_id]
        records = json.loads(part.to_json(orient="records", date_format="iso"))
        return [{k: (v[:10] if isinstance(v, str) and k.endswith("_on") else v) for k, v in r.items()} for r in records]

    body = {"as_of": AS_OF.isoformat(), "entity": rows(world.entities)[0]}
    return ScoreRequest.model_validate({**body, "events": rows(world.events), "lists": rows(world.lists)})


def test_request_frames_are_the_plain_frames(world):
    counts = world.events.entity_id.value_counts()
    listed = set(world.lists.entity_id)
    chosen = [counts.index[0], next(i for i in counts.index if i in listed), counts.index[-1]]
    chosen.append(_without_events(world)[0])
    for entity_id in chosen:
        request = _request(world, entity_id)
        fast, plain = history_frames(request), _plain_frames(request)
        for got, expected in zip(fast, plain, strict=True):
            if len(expected):
                pd.testing.assert_frame_equal(got, expected, check_exact=True)
        pd.testing.assert_frame_equal(
            build_features_from_frames(*fast, AS_OF), build_features_from_frames(*plain, AS_OF), check_exact=True
        )


# ---- coalesced lookups -----------------------------------------------------------------------------------


def test_concurrent_lookups_answer_as_single_lookups(engine):
    entities = make_entities(60, seed=9)
    store_run(engine, entities)
    ids = entities.entity_id.tolist()
    asked = ids * 2 + ["91210600MA0000000X"] * 3  # repeats and an unknown id, all at once
    with engine.connect() as conn:
        expected = [latest_score(conn, i) for i in asked]

    async def ask() -> list:
        lookups = Lookups(engine, max_batch=16, max_inflight=2)
        return await asyncio.gather(*(lookups.get(i) for i in asked))

    assert asyncio.run(ask()) == expected


def test_a_failing_batch_fails_each_of_its_lookups(tmp_path):
    broken = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every query fails

    async def ask():
        lookups = Lookups(broken)
        return await asyncio.gather(*(lookups.get(f"id{i}") for i in range(5)), return_exceptions=True)

    outcomes = asyncio.run(ask())
    assert len(outcomes) == 5 and all(isinstance(o, Exception) for o in outcomes)
    broken.dispose()


def test_reads_are_retried_once_on_a_dead_connection(db_url, engine):
    if not db_url.startswith("postgresql"):
        pytest.skip("needs a server connection that can be killed")
    entities = make_entities(3, seed=2)
    store_run(engine, entities)
    served = db.make_engine(db_url)
    with served.connect() as conn:  # one pooled connection, then killed from outside
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        admin.commit()
    assert db.read(served, latest_score, entities.entity_id[0])["entity_id"] == entities.entity_id[0]
    served.dispose()


def _plain_reasons(contrib: np.ndarray, columns: dict, top_k: int) -> list[str]:
    """Per row, the obvious way: sort, take the top k non-zero, ``json.dumps`` each reason."""
    out = []
    for i in range(contrib.shape[0]):
        ranked = sorted(range(contrib.shape[1]), key=lambda j: (-abs(contrib[i, j]), j))
        reasons = []
        for j in [j for j in ranked if contrib[i, j] != 0][:top_k]:
            name = FEATURE_NAMES[j]
            value = columns[name][i]
            if FEATURES[name].dtype == "category":
                value = None if value < 0 else CATEGORIES[name][value]
            value = value.item() if hasattr(value, "item") else value
            zh, en = FEATURES[name].describe(None if isinstance(value, float) and np.isnan(value) else value)
            shown = None if isinstance(value, float) and not np.isfinite(value) else value
            reasons.append(
                {"feature": name, "value": shown, "contribution": float(contrib[i, j]), "text_zh": zh, "text_en": en}
            )
        out.append(json.dumps(reasons, ensure_ascii=False, separators=(",", ":")))
    return out


def test_reasons_are_the_plain_json_byte_for_byte(scorer, features):
    from models.reasons import reasons_json

    frame = unruly(features).head(400)
    columns = feature_columns(frame)
    contrib, _ = scorer.contributions(frame)
    contrib[:5] = 0.0  # nothing to explain
    contrib[5:9, :3] = [1e-05, -1e16, 0.1 + 0.2]  # number formats: exponents, rounding
    cache: dict = {}
    for top_k in (0, 1, 5):
        expected = _plain_reasons(contrib, columns, top_k)
        assert reasons_json(contrib, columns, top_k, cache).tolist() == expected
        assert reasons_json(contrib, columns, top_k, cache).tolist() == expected  # with the cache filled


def test_a_model_trained_on_other_features_is_not_served(scorer, serve, tmp_path, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the model check does not depend on the database")
    stale = Scorer(scorer.booster, scorer.calibrator, scorer.feature_names, "an-older-feature-version")
    live = serve(model_uri=str(stale.save(tmp_path / "stale")))
    health = live.client().get("/health").json()
    assert health["status"] == "degraded" and health["model_version"] is None
    assert any("features version" in reason for reason in health["reasons"]), health["reasons"]


def test_a_champion_that_failed_its_gate_says_so_to_whoever_reads_its_tiers(
    scorer, serve, tokens, tmp_path, db_url, engine
):
    """The first version is champion whatever its gate said (the contract's ``score`` needs one): the pages
    of the people who read its tiers say which checks it failed and why it scores all the same."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the pages do not depend on the database")
    gate = {"gate": "failed", "gate_failed": ["ece_limit", "reference_psi"], "promotion_reason": FIRST_VERSION}
    metadata = {**gate, "model_version": "1"}  # the version of the stored rows below
    failed = Scorer(scorer.booster, scorer.calibrator, scorer.feature_names, FEATURE_VERSION, metadata=metadata)
    live = serve(model_uri=str(failed.save(tmp_path / "failed")))
    entity_id = make_entities(40, seed=3)["entity_id"].iloc[0]
    store_run(engine, make_entities(40, seed=3))
    words = "failed its promotion gate (ece_limit, reference_psi); it became champion only because it was the first"
    with live.client(tokens["analyst"]) as api:  # what a program reading the tiers gets: each row says it
        row = api.get(f"/v1/entities/{entity_id}/risk").json()
        assert row["model_version"] == "1" and words in row["model_caveat"]
        batch = api.post("/v1/entities/risk", json={"entity_ids": [entity_id]}).json()
        assert batch["found"][0]["model_caveat"] == row["model_caveat"]
        assert api.get(f"/v1/entities/{entity_id}/explanation").json()["model_caveat"] == row["model_caveat"]
        what_if = api.post("/v1/score", json=bare_history("2025-12-31"))
        assert what_if.status_code == 200 and what_if.json()["model_caveat"] == row["model_caveat"]
        objection = api.post("/v1/objections", json={"score_id": row["score_id"], "grounds": "数据有误"}).json()
        assert api.get(f"/v1/score-runs/{row['run_id']}").json()["model_caveat"] == row["model_caveat"]
        assert api.get("/v1/score-runs").json()[0]["model_caveat"] == row["model_caveat"]
    pages = (("supervisor", "/ui/"), ("reviewer", "/ui/"), ("analyst", "/ui/models"))
    entity_pages = (
        ("supervisor", f"/ui/entities/{entity_id}"),
        ("reviewer", f"/ui/objections/{objection['objection_id']}"),
    )
    for role, page in (*pages, *entity_pages):
        with live.client() as client:
            sign_in(client, tokens[role])
            html = client.get(page).text
            assert words in " ".join(html.split()), (role, page)
    assert live.client().get("/health").json()["status"] == "ok"  # a failed gate is not an outage

    passed = Scorer(
        scorer.booster, scorer.calibrator, scorer.feature_names, FEATURE_VERSION, metadata={"gate": "passed"}
    )
    passed_uri = str(passed.save(tmp_path / "passed"))
    live = serve(model_uri=passed_uri)
    with live.client() as client:
        sign_in(client, tokens["supervisor"])
        assert 'id="model-caveat"' not in client.get("/ui/").text
        assert 'id="model-caveat"' not in client.get(f"/ui/entities/{entity_id}").text
    with live.client(tokens["analyst"]) as api:
        assert api.get(f"/v1/entities/{entity_id}/risk").json()["model_caveat"] is None
        assert api.get("/v1/score-runs").json()[0]["model_caveat"] is None
        assert api.post("/v1/score", json=bare_history("2025-12-31")).json()["model_caveat"] is None


def test_a_row_of_an_older_version_that_failed_its_gate_is_read_with_that_versions_caveat(tmp_path, db_url):
    """Rows scored by a version other than the champion: the caveat comes from that version's registry tags
    (without loading its model), read once; a version the registry does not know has none, and a service
    that does not serve from the registry does not ask it."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the registry does not depend on the service database")
    from mlflow import MlflowClient

    from serving.scorers import Scorers
    from tests.serving.conftest import settings_for

    settings = settings_for(db_url, tmp_path, model_uri="models:/ipcredit@champion")
    uri = settings.tracking_uri  # the registry too: a client's default registry is whatever was set last
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("ipcredit")
    tags = {"gate": "failed", "gate_failed": "calibration", "promotion_reason": "kept by the data team for the audit"}
    client.create_model_version("ipcredit", source=str(tmp_path / "v1"), tags=tags)
    client.create_model_version("ipcredit", source=str(tmp_path / "v2"), tags={"gate": "passed", "gate_failed": ""})
    scorers = Scorers(settings)  # no champion loaded: only the registry speaks
    assert scorers.known_caveat("1") == (False, None)  # the async risk route then asks in a thread
    said = scorers.caveat_of("1")
    assert scorers.known_caveat("1") == (True, said)
    assert said.startswith("model version 1 failed its promotion gate (calibration); it was promoted by hand: kept by")
    client.set_model_version_tag("ipcredit", "1", "gate", "passed")
    assert scorers.caveat_of("1") == said  # read once
    assert scorers.caveat_of("2") is None and scorers.caveat_of("9") is None
    assert scorers.caveat_of("local:scorer") is None
    local = Scorers(settings_for(db_url, tmp_path, model_uri=str(tmp_path / "scorer")))
    assert local.caveat_of("2") is None  # served from a folder: the registry is not asked


# ---- the one-history feature path (features.single) -------------------------------------------------------


def _varied_entities(world, k: int = 60) -> list[str]:
    """The busiest history, listed ones, one without events, and a random sample of the rest."""
    counts = world.events.entity_id.value_counts()
    listed = list(dict.fromkeys(world.lists.entity_id))
    quiet = _without_events(world)
    rng = np.random.default_rng(15)
    sample = rng.choice(world.entities.entity_id.to_numpy(), size=k, replace=False).tolist()
    return list(dict.fromkeys([counts.index[0], *listed[:10], *quiet[:3], *sample]))


def _plain_columns(scorer, policy, request: ScoreRequest, as_of: date) -> dict:
    """What-if scoring the way it was: the history as pandas frames, ``build_features_from_frames``."""
    return scorer.score_columns(build_features_from_frames(*history_frames(request), as_of), policy)


@pytest.mark.parametrize("as_of", [AS_OF, date(2022, 6, 30), date(2024, 2, 29)])
def test_what_if_features_and_scores_are_the_frame_path(world, scorer, policy, as_of):
    """On the world's histories (records after the date included: the requests carry them all) the fast
    path gives the frame path's feature row and every scored column, bit for bit."""
    scored = 0
    for entity_id in _varied_entities(world):
        request = _request(world, entity_id)
        expected = build_features_from_frames(*history_frames(request), as_of)
        got = single_features(request.entity, request.events, request.lists, as_of)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        # The records behind them, read from the request's records, are those its frames give.
        posted = records_evidence(request.entity, request.events, request.lists, as_of)
        assert posted == evidence(EntityHistory(*history_frames(request)), as_of), entity_id
        if expected.empty:
            with pytest.raises(InvalidInput, match="registered_on"):
                score_history(scorer, policy, request, as_of)
            continue
        fast, plain = score_history(scorer, policy, request, as_of), _plain_columns(scorer, policy, request, as_of)
        assert list(fast) == list(plain)
        for name, values in plain.items():
            assert list(fast[name]) == list(values), (entity_id, name)
        scored += 1
    assert scored >= 40


def test_what_if_over_http_answers_what_the_frame_path_scores(world, scorer, policy, serve, tokens, tmp_path, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the feature path does not depend on the database")
    live = serve(model_uri=str(scorer.save(tmp_path / "model")))
    with live.client(tokens["analyst"]) as client:
        for entity_id in _varied_entities(world, k=2)[:8]:
            request = _request(world, entity_id)
            body = request.model_dump_json().encode()
            response = client.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 200, response.text[:500]
            got = response.json()
            plain = {k: v[0] for k, v in _plain_columns(scorer, policy, request, AS_OF).items()}
            for name in ("score", "base_value", "log_odds", "model_tier", "tier", "rules", "review"):
                assert got[name] == (plain[name].item() if hasattr(plain[name], "item") else plain[name]), name
            shown = [{k: r[k] for k in ("feature", "value", "contribution")} for r in json.loads(plain["reasons"])]
            assert [{k: r[k] for k in ("feature", "value", "contribution")} for r in got["reasons"]] == shown


def test_a_what_if_answers_the_same_on_the_event_loop_and_in_a_thread(
    world, scorer, serve, tokens, tmp_path, db_url, monkeypatch
):
    """A short history is scored on the event loop, a long one in a thread (``scoring.INLINE_RECORDS``):
    the same request gets the same answer, byte for byte, whichever way it is scored."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the feature path does not depend on the database")
    from serving import scoring
    from serving.routers import whatif

    threaded = []
    in_thread = whatif._score_and_trace
    monkeypatch.setattr(whatif, "_score_and_trace", lambda *a: threaded.append(1) or in_thread(*a))
    live = serve(model_uri=str(scorer.save(tmp_path / "model")))
    requests = [_request(world, e) for e in _varied_entities(world, k=2)[:8]]
    long = sum(len(r.events) + len(r.lists) > scoring.INLINE_RECORDS for r in requests)
    assert long < len(requests)
    bodies = [r.model_dump_json().encode() for r in requests]
    headers = {"Content-Type": "application/json"}
    with live.client(tokens["analyst"]) as client:
        as_served = [client.post("/v1/score", content=b, headers=headers) for b in bodies]
        assert all(r.status_code == 200 for r in as_served), [r.text[:300] for r in as_served]
        assert len(threaded) == long
        monkeypatch.setattr(scoring, "INLINE_RECORDS", 0)
        in_threads = [client.post("/v1/score", content=b, headers=headers) for b in bodies]
    assert len(threaded) == long + len(bodies)
    assert [r.content for r in in_threads] == [r.content for r in as_served]


def test_a_large_body_is_validated_in_a_thread_with_the_answers_of_the_event_loop(
    world, scorer, serve, tokens, tmp_path, db_url, monkeypatch
):
    """Past ``serving.bodies.LOOP_BODY_BYTES`` a JSON body is validated in a worker thread, not on the event
    loop: a valid history, one breaking a rule in 120 events (the first 50 listed, ``total`` 120), one dated
    after the pinned today and one that is not JSON get the same answers, byte for byte, as when every body
    is validated on the loop."""
    if not db_url.startswith("sqlite"):
        pytest.skip("validation does not depend on the database")
    from serving import bodies, schemas

    checked_in = []
    check = schemas.entity_id_problem
    monkeypatch.setattr(
        schemas, "entity_id_problem", lambda v: checked_in.append(threading.current_thread()) or check(v)
    )
    live = serve(model_uri=str(scorer.save(tmp_path / "model")), today=date(2026, 1, 31))
    busiest = _request(world, world.events.entity_id.value_counts().index[0]).model_dump(mode="json")
    small = _request(world, _without_events(world)[0]).model_dump(mode="json")
    broken = {**busiest, "events": [{**e, "quantity": 0} if i % 5 == 0 else e for i, e in enumerate(busiest["events"])]}
    late = {**busiest, "events": [*busiest["events"][:-1], {**busiest["events"][-1], "recorded_on": "2026-02-01"}]}
    bodies_sent = [json.dumps(b).encode() for b in (busiest, small, broken, late)]
    bodies_sent.append(bodies_sent[0][:-100])  # cut off: not JSON
    sizes = [len(b) > bodies.LOOP_BODY_BYTES for b in bodies_sent]
    assert sizes == [True, False, True, True, True] and len(busiest["events"]) >= 600
    headers = {"Content-Type": "application/json"}

    def send(client) -> list:
        answers = []
        for body in bodies_sent:
            checked_in.clear()
            answers.append((client.post("/v1/score", content=body, headers=headers), set(checked_in)))
        return answers

    with live.client(tokens["analyst"]) as client:
        threaded = send(client)
        monkeypatch.setattr(bodies, "LOOP_BODY_BYTES", 2**40)
        on_loop = send(client)
    assert [r.status_code for r, _ in threaded] == [200, 200, 422, 422, 422], [r.text[:300] for r, _ in threaded]
    assert [r.content for r, _ in threaded] == [r.content for r, _ in on_loop]
    loop_thread = live.thread
    assert {t for _, seen in on_loop for t in seen} == {loop_thread}
    for (_, seen), large in zip(threaded, sizes, strict=True):
        if seen:  # the body that is not JSON is refused before any field is checked
            assert (loop_thread not in seen) if large else (seen == {loop_thread})
    problems = threaded[2][0].json()
    assert problems["total"] == len(range(0, len(busiest["events"]), 5)) and len(problems["detail"]) == 50
    assert problems["detail"][0]["loc"] == ["body", "events", 0, "quantity"]
    assert "must not be after today (2026-01-31)" in threaded[3][0].text
    assert threaded[4][0].json()["detail"][0]["type"] == "json_invalid"


def test_every_api_route_with_a_body_validates_a_large_one_in_a_thread():
    import importlib
    import pkgutil

    from serving import routers
    from serving.bodies import ThreadedBodyRoute

    with_body = []
    for info in pkgutil.iter_modules(routers.__path__):
        for route in importlib.import_module(f"serving.routers.{info.name}").router.routes:
            if route.body_field is not None:
                with_body.append(route.path)
                assert isinstance(route, ThreadedBodyRoute), route.path
    assert len(with_body) >= 15 and {
        "/v1/score",
        "/v1/sampling/draws/{draw_id}/results",
        "/v1/admin/inspectors",
    } <= set(with_body)


class _Text(BaseModel):
    text: str


@pytest.mark.parametrize("size", [1_000, 200_000])  # validated on the loop, in a thread
def test_a_body_the_client_abandons_gets_the_answer_fastapi_gives(size):
    from fastapi import APIRouter, FastAPI

    from serving.bodies import LOOP_BODY_BYTES, ThreadedBodyRoute
    from serving.errors import register_error_handlers

    router = APIRouter(route_class=ThreadedBodyRoute)

    @router.post("/echo")
    async def echo(body: _Text) -> dict:
        return {"length": len(body.text)}

    app = FastAPI()
    app.include_router(router)
    register_error_handlers(app)
    part = json.dumps({"text": "x" * size}).encode()[: size // 2]
    incoming = [{"type": "http.request", "body": part, "more_body": True}, {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", str(size + 12).encode())]
    scope = {"type": "http", "method": "POST", "path": "/echo", "headers": headers, "query_string": b""}
    asyncio.run(
        app({**scope, "http_version": "1.1", "scheme": "http", "server": ("t", 80), "root_path": ""}, receive, send)
    )
    assert (size > LOOP_BODY_BYTES) == (size == 200_000)
    assert sent[0]["status"] == 400 and b"error parsing the body" in sent[1]["body"], sent[1]["body"][:300]
