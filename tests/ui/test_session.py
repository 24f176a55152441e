"""The pages' safeguards over real HTTP (no browser needed): sessions, CSRF, scopes, hostile input and
errors as pages, on a real server over SQLite and PostgreSQL with stored score rows."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from serving.tokens import create_token, revoke_token
from serving.ui.session import SESSIONS_PER_TOKEN
from tests.serving.conftest import (  # noqa: F401
    SECRET,
    db_url,
    engine,
    make_entities,
    make_lists,
    serve,
    sign_in,
    store_run,
    tokens,
)


@pytest.fixture
def live(serve, engine, tokens):  # noqa: F811
    entities = make_entities(60, seed=3)
    store_run(engine, entities, lists=make_lists(entities))
    return serve(), entities


def page_secret(client: httpx.Client, path: str = "/ui/") -> str:
    return SECRET.search(client.get(path).text).group(1)


def test_a_session_cookie_holds_no_token_and_ends_with_sign_out_or_revocation(live, engine, tokens):  # noqa: F811
    server, _ = live
    with server.client() as client:
        answer = sign_in(client, tokens["supervisor"])
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
        cookie = answer.headers["set-cookie"]
        assert (
            "ipcredit_session=" in cookie
            and "HttpOnly" in cookie
            and "SameSite=strict" in cookie.replace("Strict", "strict")
        )
        assert "Path=/ui" in cookie and tokens["supervisor"] not in cookie
        assert client.get("/ui/").status_code == 200
        client.post("/ui/sign-out", data={"csrf": page_secret(client)})
        gone = client.get("/ui/")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/sign-in?next=")

    # A token revoked after sign-in ends its sessions (within the verifier's cache time).
    token_id, token = create_token(engine, "reviewer", "soon-revoked")
    with server.client() as client:
        sign_in(client, token)
        assert client.get("/ui/objections").status_code == 200
        revoke_token(engine, token_id)
        server.server.config.app.state.tokens.forget()
        assert client.get("/ui/objections").status_code == 303


def test_a_session_is_known_to_every_worker_and_survives_a_restart(live, serve, engine, tokens):  # noqa: F811
    """Sessions are rows of the service database: a second server on it (another worker, or the service
    restarted) knows the session, and signing out on one ends it on the other."""
    first, _ = live
    second = serve()
    with first.client() as client:
        assert sign_in(client, tokens["supervisor"]).status_code == 303
        cookie = client.cookies["ipcredit_session"]
    with second.client() as other:
        other.cookies.set("ipcredit_session", cookie, path="/ui")
        assert other.get("/ui/").status_code == 200
        other.post("/ui/sign-out", data={"csrf": page_secret(other)})
    with first.client() as client:
        client.cookies.set("ipcredit_session", cookie, path="/ui")
        assert client.get("/ui/").status_code == 303
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT session_hash, token_hash FROM ui_sessions")).all()
    assert all(cookie not in row and tokens["supervisor"] not in row for row in stored)


def test_a_token_keeps_its_newest_sessions_and_a_hostile_cookie_names_none(live, tokens):  # noqa: F811
    server, _ = live
    cookies = []
    for _ in range(SESSIONS_PER_TOKEN + 2):
        with server.client() as client:
            assert sign_in(client, tokens["reviewer"]).status_code == 303
            cookies.append(client.cookies["ipcredit_session"])
    with server.client() as client:
        for cookie, alive in ((cookies[0], False), (cookies[1], False), (cookies[2], True), (cookies[-1], True)):
            client.cookies.set("ipcredit_session", cookie, path="/ui")
            assert client.get("/ui/objections").status_code == (200 if alive else 303)
        for hostile in ("x" * 5000, "' OR 1=1 --", ""):
            client.cookies.set("ipcredit_session", hostile, path="/ui")
            assert client.get("/ui/objections").status_code == 303


def test_forms_need_the_sessions_secret_and_sign_in_needs_its_own(live, tokens):  # noqa: F811
    server, _ = live
    with server.client() as client:
        page = client.get("/ui/sign-in")
        forged = client.post("/ui/sign-in", data={"csrf": "forged", "token": tokens["admin"]})
        assert forged.status_code == 403 and "text/html" in forged.headers["content-type"]
        assert "csrf" in forged.text and "ipcredit_session" not in forged.headers.get("set-cookie", "")
        assert page.status_code == 200
        sign_in(client, tokens["supervisor"])
        refused = client.post("/ui/draws", data={"region": "210600"})
        assert refused.status_code == 403 and "csrf" in refused.text and "<html" in refused.text
        other = httpx.Client(base_url=server.base_url)
        sign_in(other, tokens["supervisor"])
        # Another session's secret is not this session's.
        assert client.post("/ui/draws", data={"csrf": page_secret(other), "region": "210600"}).status_code == 403
        other.close()


def test_without_a_session_pages_are_refused_before_any_body_is_read(live):
    server, _ = live
    with server.client() as client:
        answer = client.post(
            "/ui/draws", content=b"x" * 10, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert answer.status_code == 401 and "<html" in answer.text and "Sign in again" in answer.text
        assert client.get("/ui/entities/91210600MA0QC0K819").headers["location"] == (
            "/ui/sign-in?next=%2Fui%2Fentities%2F91210600MA0QC0K819"
        )
        # The public pages need no session.
        assert client.get("/ui/public/lists?list=serious_violation").status_code == 200
        assert client.get("/ui/public/draws").status_code == 200


def test_sign_in_goes_back_to_a_page_of_this_site_only(live, tokens):  # noqa: F811
    server, _ = live
    for target in ("//evil.example/x", "https://evil.example/", "/v1/entities", "/\\evil.example"):
        with server.client() as client:
            assert sign_in(client, tokens["supervisor"], next_=target).headers["location"] == "/ui/", target
    with server.client() as client:
        assert sign_in(client, tokens["supervisor"], next_="/ui/draws").headers["location"] == "/ui/draws"


def test_hostile_input_gets_a_page_naming_the_field(live, tokens):  # noqa: F811
    server, _ = live
    with server.client() as client:
        page = client.get("/ui/sign-in")
        secret = SECRET.search(page.text).group(1)
        long = client.post("/ui/sign-in", data={"csrf": secret, "token": "x" * 5000})
        assert long.status_code == 422 and "form.token" in long.text and "<html" in long.text
        sign_in(client, tokens["supervisor"])
        cases = {
            "/ui/entities/not-a-code": (422, "path.entity_id"),
            "/ui/entities/91210600MA0QC0K819": (404, "has no stored score"),
            "/ui/public/lists?list=red&on=2999-01-01": (422, "query.on"),
            "/ui/public/lists?list=abnormal_operation": (422, "query.list"),
            "/ui/draws/nope": (404, "draw nope not found"),
            "/ui/entities?q=" + "x" * 500: (422, "query.q"),
            "/ui/objections": (403, "needs one of"),
            "/ui/no-such-page": (404, "Not Found"),
        }
        for path, (status, words) in cases.items():
            answer = client.get(path)
            assert answer.status_code == status, (path, answer.text[:400])
            assert words in answer.text and "text/html" in answer.headers["content-type"], path
        secret = page_secret(client, "/ui/draws")
        bad = client.post("/ui/draws", data={"csrf": secret, "ratio_D": "7", "budget": "-1"})
        assert bad.status_code == 422 and "ratios.D" in bad.text and "budget" in bad.text
        many = client.post("/ui/draws", data={"csrf": secret, **{f"f{i}": "1" for i in range(3000)}})
        assert many.status_code == 422 and "form" in many.text


def test_the_entity_page_says_when_its_score_came_long_after_the_deliverys_last_record(serve, engine, tokens):  # noqa: F811
    # The page shows how far the delivery reached and, when the score is as of long after it, that the days
    # since counted as empty; a run within its delivery says nothing more.
    from datetime import timedelta

    from tests.serving.conftest import AS_OF

    entities = make_entities(10, seed=5)
    store_run(engine, entities.iloc[:5], data_end=AS_OF - timedelta(days=10))
    store_run(engine, entities.iloc[5:], data_end=AS_OF - timedelta(days=200), seed=1)
    server = serve()
    with server.client() as client:
        sign_in(client, tokens["supervisor"])
        fresh = " ".join(client.get(f"/ui/entities/{entities.entity_id.iloc[0]}").text.split())
        stale = " ".join(client.get(f"/ui/entities/{entities.entity_id.iloc[5]}").text.split())
    assert f'数据截至 <span lang="en" class="en">data up to</span></dt><dd>{AS_OF - timedelta(days=10)}' in fresh
    assert "评分日期晚于" not in fresh
    assert (
        "评分日期晚于数据最后一条记录 200 天" in stale
        and "Scored 200 days after the delivery&#39;s last record" in stale
    )


def test_a_region_scoped_token_sees_and_draws_its_region_only(live, engine):  # noqa: F811
    server, entities = live
    scoped = create_token(engine, "supervisor", "scoped", region="410000")[1]
    inside = entities[entities.region.str.startswith("41")].entity_id.iloc[0]
    outside = entities[entities.region.str.startswith("21")].entity_id.iloc[0]
    with server.client() as client:
        sign_in(client, scoped)
        assert client.get(f"/ui/entities/{inside}").status_code == 200
        assert client.get(f"/ui/entities/{outside}").status_code == 404
        found = client.get("/ui/entities", params={"q": "示例企业"}).text
        assert inside in found and outside not in found
        secret = page_secret(client, "/ui/draws")
        refused = client.post("/ui/draws", data={"csrf": secret, "region": "210600"})
        assert refused.status_code == 422 and "filter.region" in refused.text
