"""Yearly inspection plans through the HTTP API: a year simulated month by month on the demo world.

The world is the service tests' (``conftest.py``): 4000 entities in four districts, one stored score run
at 2025-12-31, today pinned at 2026-12-31 so every month of 2026 can be drawn in turn.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from models.policy import PolicyError, load_policy, parse_policy
from serving.plans import draw_counts, expected_counts
from tests.serving.conftest import POLICY_PATH, make_entities, make_lists, roster, store_run

TODAY = date(2026, 12, 31)
REGION = "210600"  # the city: its districts 210600 and 210602


@pytest.fixture
def world(engine):
    entities = make_entities(4000)
    store_run(engine, entities, lists=make_lists(entities))
    return entities


def _start(serve, tokens, **overrides):
    live = serve(today=TODAY, **overrides)
    with live.client(tokens["admin"]) as admin:
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
    return live


def _outcome(entity_id: str, month: int) -> str:
    """A fixed mix: about 5 % could not be inspected, 15 % with findings, the rest without."""
    h = int(hashlib.sha256(f"{entity_id}{month}".encode()).hexdigest()[:8], 16) % 100
    return "not_inspected" if h < 5 else "findings" if h < 20 else "no_findings"


def _post_outcomes(client, draw, day: date, skip=()):
    outcomes = []
    for s in draw["selected"]:
        if s["entity_id"] in skip:
            continue
        outcome = _outcome(s["entity_id"], day.month)
        outcomes.append(
            {
                "entity_id": s["entity_id"],
                "inspector_id": s["inspectors"][0],
                "outcome": outcome,
                "finding_kind": "counterfeit_patent" if outcome == "findings" else None,
                "inspected_on": day.isoformat(),
            }
        )
    if outcomes:
        response = client.post(f"/v1/sampling/draws/{draw['draw_id']}/outcomes", json={"outcomes": outcomes})
        assert response.status_code == 201, response.text
    return outcomes


def _simulate(client, plan_id: str, *, complaints=0, unreported_month=None):
    """Draw every month of the plan, post the outcomes ten days into the month; before months 4 to 9
    lodge a complaint against ``complaints`` A-tier entities inspected earlier. Returns the inspections
    per entity (day, random or not), the complaints (entity -> day), the plan draws and each drawn
    entity's tier."""
    tier_of: dict[str, str] = {}
    inspections: dict[str, list[tuple[date, bool]]] = {}
    complained: dict[str, date] = {}
    made = []
    for month in range(1, 13):
        if complaints and 4 <= month <= 9:
            day = date(2026, month, 1) - timedelta(days=3)
            earlier = [
                e
                for e, seen in inspections.items()
                if e not in complained and seen and tier_of[e] == "A" and seen[-1][1]
            ]
            for entity_id in sorted(earlier)[:complaints]:
                task = client.post(
                    f"/v1/plans/{plan_id}/tasks",
                    json={
                        "entity_id": entity_id,
                        "trigger": "complaint",
                        "reference": f"投诉{month}",
                        "received_on": day.isoformat(),
                    },
                )
                assert task.status_code == 201, task.text
                complained[entity_id] = day
                done = client.post(
                    f"/v1/plans/tasks/{task.json()['task_id']}/outcome",
                    json={
                        "outcomes": [
                            {
                                "entity_id": entity_id,
                                "inspector_id": task.json()["inspectors"][1],
                                "outcome": "no_findings",
                                "inspected_on": day.isoformat(),
                            }
                        ]
                    },
                )
                assert done.status_code == 201, done.text
                inspections[entity_id].append((day, False))
        response = client.post(f"/v1/plans/{plan_id}/draws")
        assert response.status_code == 201, response.text
        made.append(response.json())
        draw = response.json()["draw"]
        day = date(2026, month, 11)
        skip = {s["entity_id"] for s in draw["selected"][:3]} if month == unreported_month else set()
        for o in _post_outcomes(client, draw, day, skip):
            if o["outcome"] != "not_inspected":
                inspections.setdefault(o["entity_id"], []).append((day, True))
        for s in draw["selected"]:
            tier_of[s["entity_id"]] = s["tier"]
    return inspections, complained, made, tier_of


def test_a_year_of_monthly_draws_inspects_each_tier_at_its_planned_rate(serve, world, tokens, engine):
    live = _start(serve, tokens)
    with live.client(tokens["supervisor"]) as client:
        plan = client.post("/v1/plans", json={"region": REGION, "year": 2026})
        assert plan.status_code == 201, plan.text
        plan_id = plan.json()["plan_id"]
        assert client.post("/v1/plans", json={"region": REGION, "year": 2026}).status_code == 409
        _, _, made, _ = _simulate(client, plan_id, unreported_month=6)
        over = client.post(f"/v1/plans/{plan_id}/draws")
        assert over.status_code == 409 and "all its 12 draws" in over.json()["detail"]
        got = client.get(f"/v1/plans/{plan_id}").json()
        coverage = client.get(f"/v1/plans/{plan_id}/coverage").json()

    # Each tier's random draws over the year match its plan: ratio x frequency x entities. The count of a
    # draw is its expectation rounded at random, and each draw aims at the rest of the target, so the
    # year's total lies within 1 of the target — unless the minimum-probability floor lifted a draw above
    # the rest of the target (a small tier: m x E / P per draw is more than the target spread over the
    # year), and then the year draws more than its target by design, never less.
    rules = got["rules"]["tiers"]
    sizes = made[0]["tiers"]
    floor = load_policy(POLICY_PATH).sampling.min_inclusion_probability
    for tier in "ABCD":
        target = rules[tier]["ratio"] * rules[tier]["frequency"] * sizes[tier]["population"]
        drawn = got["progress"]["tiers"][tier]["drawn"]
        assert got["progress"]["tiers"][tier]["planned"] == pytest.approx(target, abs=1e-3)
        assert drawn == sum(m["tiers"][tier]["count"] for m in made)
        steps = [m["tiers"][tier] for m in made]
        lifted = [
            s["expected"] > 0 and s["expected"] == pytest.approx(floor * s["eligible"] / len(made)) for s in steps
        ]
        if any(lifted):
            assert drawn >= target - 1.5, (tier, drawn, target)
            # Once the year's target is reached, a draw still selects only at the floor's rate.
            before = 0
            for step, at_floor in zip(steps, lifted, strict=True):
                assert before < target or at_floor or step["expected"] == 0, (tier, before, target, step)
                before += step["count"]
        else:
            assert abs(drawn - target) <= 1.5, (tier, drawn, target)
    # Progress counts what came back; the three left unreported in June are overdue by December.
    total = got["progress"]["total"]
    assert total["overdue"] == 3
    assert total["inspected"] + total["not_inspected"] + total["overdue"] == total["drawn"]
    assert total["findings"] > 0 and total["not_inspected"] > 0
    assert got["progress"]["periods_drawn"] == 12 and len(got["draws"]) == 12

    # Every selection carries its tier's stored probability x / eligible, and x is what the draw expected.
    for m in made:
        for s in m["draw"]["selected"]:
            row = m["tiers"][s["tier"]]
            assert s["inclusion_probability"] == pytest.approx(row["expected"] / row["eligible"], rel=1e-6)
        for row in m["tiers"].values():
            assert math.floor(row["expected"]) <= row["count"] <= math.ceil(row["expected"])
            assert row["eligible"] + row["resting"] == row["population"]
    # 不免抽: every entity of the region had a positive probability in some draw.
    assert coverage["entities"] == sum(sizes[t]["population"] for t in "ABCD")
    assert coverage["positive"] == coverage["entities"] and coverage["never"] == []
    assert coverage["min_probability"] > 0


def test_rest_periods_leave_a_tiers_entities_alone_unless_a_complaint_comes_in(serve, world, tokens, tmp_path: Path):
    # A policy that asks far more of tier A than its rest period allows (once a year for every entity,
    # with 270 days' rest): the draws must take every A entity that may be drawn, and no more.
    text = POLICY_PATH.read_text(encoding="utf-8").replace(
        "A = { ratio = 0.03, frequency = 1.0 }", "A = { ratio = 1.0, frequency = 2.0 }"
    )
    assert "ratio = 1.0, frequency = 2.0" in text
    policy = tmp_path / "policy.toml"
    policy.write_text(text, encoding="utf-8")
    live = _start(serve, tokens, policy_path=policy)
    with live.client(tokens["supervisor"]) as client:
        plan_id = client.post("/v1/plans", json={"region": REGION, "year": 2026}).json()["plan_id"]
        inspections, complained, made, tier_of = _simulate(client, plan_id, complaints=2)
        progress = client.get(f"/v1/plans/{plan_id}").json()["progress"]

    assert len(complained) >= 4
    rest = timedelta(days=270)
    repeated_after_complaint = 0
    for entity_id, seen in inspections.items():
        if tier_of[entity_id] != "A":
            continue
        days = sorted(d for d, _ in seen)
        for before, after in itertools.pairwise(days):
            if after - before < rest:
                assert entity_id in complained and before < complained[entity_id] <= after, (entity_id, days)
                repeated_after_complaint += 1
    assert repeated_after_complaint >= 1, "a complaint lifts the rest period"
    # The A draws were bounded by the rest period, not by the target (which they could not reach).
    assert any(m["tiers"]["A"]["resting"] > 0 for m in made)
    assert progress["tiers"]["A"]["drawn"] < progress["tiers"]["A"]["planned"]
    # D never rests; targeted tasks are kept apart and never counted as random.
    assert all(m["tiers"]["D"]["resting"] == 0 for m in made)
    assert progress["targeted"]["tasks"] == {"complaint": len(complained)}
    assert progress["total"]["drawn"] == sum(len(m["draw"]["selected"]) for m in made)


def test_results_of_a_plan_draw_show_on_its_public_page_without_tiers(serve, world, tokens):
    live = _start(serve, tokens)
    with live.client(tokens["supervisor"]) as client:
        plan_id = client.post("/v1/plans", json={"region": REGION, "year": 2026, "period": "quarter"}).json()["plan_id"]
        made = client.post(f"/v1/plans/{plan_id}/draws").json()
        outcomes = _post_outcomes(client, made["draw"], date(2026, 2, 3))
    draw_id = made["draw"]["draw_id"]
    with live.client() as public:
        page = public.get(f"/v1/public/draws/{draw_id}", params={"limit": 10_000}).json()
        verified = public.get(f"/v1/public/draws/{draw_id}/verify").json()
    assert verified["verified"], verified["checks"]
    shown = {s["entity_id"]: s for s in page["selected"]}
    for o in outcomes:
        entry = shown[o["entity_id"]]
        assert entry["outcome"] == o["outcome"]
        assert entry["result"] == {"no_findings": "passed", "findings": "failed", "not_inspected": None}[o["outcome"]]
        if o["outcome"] == "findings":
            assert entry["finding_kind"] == "counterfeit_patent"
    assert '"tier"' not in str(page).replace("'", '"') and "score" not in str(page)


def test_plans_refuse_hostile_input(serve, world, tokens, engine):
    from serving.tokens import create_token

    live = _start(serve, tokens)
    _, scoped = create_token(engine, "supervisor", "zz", region="410100")
    with live.client(tokens["supervisor"]) as client:
        far = client.post("/v1/plans", json={"region": REGION, "year": 2099})
        assert far.status_code == 422 and far.json()["detail"][0]["loc"] == ["body", "year"]
        bad = client.post("/v1/plans", json={"region": "21060", "year": 2026})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "region"]
        extra = client.post("/v1/plans", json={"region": REGION, "year": 2026, "seed": 1})
        assert extra.status_code == 422
        assert client.post("/v1/plans", json={"region": REGION, "year": 2026, "period": "week"}).status_code == 422
        plan_id = client.post("/v1/plans", json={"region": REGION, "year": 2026}).json()["plan_id"]
        draw = client.post(f"/v1/plans/{plan_id}/draws").json()["draw"]
        first = draw["selected"][0]
        # An outcome by an inspector who was not assigned, a finding without its kind, a day after today.
        good = {
            "entity_id": first["entity_id"],
            "inspector_id": first["inspectors"][0],
            "outcome": "no_findings",
            "inspected_on": "2026-01-05",
        }

        def post(**change):
            return client.post(f"/v1/sampling/draws/{draw['draw_id']}/outcomes", json={"outcomes": [good | change]})

        wrong = post(inspector_id="I999")
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "outcomes", 0, "inspector_id"]
        kindless = post(outcome="findings")
        assert kindless.status_code == 422 and kindless.json()["detail"][0]["loc"][-1] == "finding_kind"
        future = post(inspected_on="2027-01-05")
        assert future.status_code == 422 and future.json()["detail"][0]["loc"][-1] == "inspected_on"
        stranger = post(entity_id=world[world.region == "410100"].entity_id.iloc[0])
        assert stranger.status_code == 422 and stranger.json()["detail"][0]["loc"][-1] == "entity_id"
        assert post().status_code == 201
        assert post().status_code == 409
        too_many = client.post(f"/v1/sampling/draws/{draw['draw_id']}/outcomes", json={"outcomes": [good] * 10_001})
        assert too_many.status_code in (413, 422)
        # A task for an entity of another region, and an unknown trigger.
        other = world[world.region == "410100"].entity_id.iloc[0]
        task = client.post(
            f"/v1/plans/{plan_id}/tasks",
            json={"entity_id": other, "trigger": "complaint", "reference": "x", "received_on": "2026-02-01"},
        )
        assert task.status_code == 422 and task.json()["detail"][0]["loc"] == ["body", "entity_id"]
        rumour = client.post(
            f"/v1/plans/{plan_id}/tasks",
            json={"entity_id": first["entity_id"], "trigger": "rumour", "reference": "x", "received_on": "2026-02-01"},
        )
        assert rumour.status_code == 422
    with live.client(scoped) as client:
        assert client.get(f"/v1/plans/{plan_id}").status_code == 404, "another region's plan does not exist for it"
        assert client.post(f"/v1/plans/{plan_id}/draws").status_code == 404
        out = client.post("/v1/plans", json={"region": REGION, "year": 2026})
        assert out.status_code == 422 and out.json()["detail"][0]["loc"] == ["body", "region"]
        assert client.get("/v1/plans").json()["plans"] == []
    with live.client(tokens["analyst"]) as client:
        assert client.post("/v1/plans", json={"region": REGION, "year": 2025}).status_code == 403


def test_a_draws_count_has_its_expected_value_exactly():
    # The stored probability x / E is exact only if the count's expectation is x: check the randomised
    # rounding over 20,000 seeds (tolerance: 4 standard errors of a Bernoulli mean).
    expected = {"A": 0.245, "B": 11.6833, "C": 18.4625, "D": 6.0}
    eligible = {"A": 98, "B": 1402, "C": 422, "D": 49}
    runs = 20_000
    totals = dict.fromkeys("ABCD", 0)
    for seed in range(runs):
        for tier, n in draw_counts(expected, eligible, seed).items():
            assert math.floor(expected[tier]) <= n <= math.ceil(expected[tier])
            totals[tier] += n
    for tier, x in expected.items():
        frac = x % 1
        tolerance = 4 * math.sqrt(frac * (1 - frac) / runs) + 1e-12
        assert abs(totals[tier] / runs - x) <= tolerance, (tier, totals[tier] / runs, x)
    assert draw_counts({"A": 5.0, "B": 0.0, "C": 0.0, "D": 3.7}, {"A": 2, "B": 0, "C": 0, "D": 9}, 1)["A"] == 2


def test_expected_counts_keep_everyone_eligible_above_the_floor():
    spec = load_policy(POLICY_PATH).plans
    sizes = {"A": 100, "B": 1000, "C": 400, "D": 50}
    # The target is met already: the floor m x E / P still gives every eligible entity a chance.
    done = {"A": 10, "B": 500, "C": 800, "D": 200}
    out = expected_counts(spec, sizes, sizes, done, k=6, periods=12, floor=0.01)
    for tier in "ABCD":
        assert out[tier]["probability"] == pytest.approx(0.01 / 12)
    # Early in the year: the rest of the target over the remaining draws, at most everyone eligible.
    out = expected_counts(spec, sizes, {"A": 100, "B": 1000, "C": 400, "D": 3}, {}, k=1, periods=12, floor=0.01)
    assert out["B"]["expected"] == pytest.approx(0.10 * 1000 / 12)
    assert out["D"]["expected"] == 3 and out["D"]["probability"] == 1.0
    assert expected_counts(spec, sizes, {"A": 0, "B": 0, "C": 0, "D": 0}, {}, k=1, periods=12, floor=0.01)["A"] == {
        "target": 3.0,
        "expected": 0.0,
        "probability": 0.0,
    }


def test_the_policy_refuses_rest_periods_that_would_exempt_anyone():
    text = POLICY_PATH.read_text(encoding="utf-8")
    with pytest.raises(PolicyError, match=r"rest_days\.A must lie between 0 and 273"):
        parse_policy(text.replace("rest_days = { A = 270,", "rest_days = { A = 300,"))
    with pytest.raises(PolicyError, match="must not give D"):
        parse_policy(text.replace("rest_days = { A = 270,", "rest_days = { D = 30, A = 270,"))


def test_plans_do_not_overlap_and_department_tokens_come_from_the_admin_api(serve, world, tokens):
    live = _start(serve, tokens)
    with live.client(tokens["supervisor"]) as client:
        assert client.post("/v1/plans", json={"region": REGION, "year": 2026}).status_code == 201
        district = client.post("/v1/plans", json={"region": "210602", "year": 2026})
        assert district.status_code == 409 and "overlaps region 210600" in district.json()["detail"]
        assert client.post("/v1/plans", json={"region": "410100", "year": 2026}).status_code == 201
        assert client.post("/v1/plans", json={"region": "210602", "year": 2025}).status_code == 201
        assert [p["region"] for p in client.get("/v1/plans", params={"year": 2026}).json()["plans"]] == [
            "210600",
            "410100",
        ]
    with live.client(tokens["admin"]) as admin:
        made = admin.post("/v1/admin/tokens", json={"role": "department", "benefits": ["fee_reduction"]})
        assert made.status_code == 201 and made.json()["benefits"] == ["fee_reduction"]
        bare = admin.post("/v1/admin/tokens", json={"role": "department"})
        assert bare.status_code == 422 and bare.json()["detail"][0]["loc"] == ["body", "benefits"]
    with live.client(made.json()["token"]) as department:
        assert department.get("/v1/plans").status_code == 403


def test_the_same_outcome_posted_twice_at_once_is_recorded_once(serve, world, tokens, engine):
    from concurrent.futures import ThreadPoolExecutor

    live = _start(serve, tokens)
    with live.client(tokens["supervisor"]) as client:
        plan_id = client.post("/v1/plans", json={"region": REGION, "year": 2026}).json()["plan_id"]
        draw = client.post(f"/v1/plans/{plan_id}/draws").json()["draw"]
    first = draw["selected"][0]
    body = {
        "outcomes": [
            {
                "entity_id": first["entity_id"],
                "inspector_id": first["inspectors"][0],
                "outcome": "no_findings",
                "inspected_on": "2026-01-05",
            }
        ]
    }

    def post(_):
        with live.client(tokens["supervisor"]) as client:
            return client.post(f"/v1/sampling/draws/{draw['draw_id']}/outcomes", json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(post, range(4)))
    assert statuses == [201, 409, 409, 409]
    with engine.connect() as conn:
        added = conn.execute(
            text("SELECT count(*) FROM ledger WHERE event_id = :e"),
            {"e": f"INS-{draw['draw_id'][:12]}-{first['entity_id']}"},
        ).scalar()
    assert added == 1
