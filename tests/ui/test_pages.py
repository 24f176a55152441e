"""One test per journey through the pages, in headless Chromium against the demo world on a real server:
sign in → find → act → see the result; every page visited is checked with axe-core (no serious or
critical violation) and saved as a screenshot (``var/screenshots``; ``make screenshots`` refreshes the
ones in docs/screenshots)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.ui.conftest import AS_OF, Browser, Site, needs_chromium, wait_for

pytestmark = [needs_chromium, pytest.mark.slow, pytest.mark.xdist_group("ui")]


def riskiest(site: Site, region: str | None = None, besides: tuple[str, ...] = ()) -> pd.Series:
    """The highest-scored entity (of ``region``; not of the regions ``besides``)."""
    scores = pd.read_parquet(site.folder / f"scores-{AS_OF}.parquet")
    if region:
        scores = scores[scores["entity_id"].str[2:8] == region]
    scores = scores[~scores["entity_id"].str[2:8].isin(besides)]
    return scores.sort_values("score").iloc[-1]


def names(site: Site) -> pd.DataFrame:
    return pd.read_parquet(site.folder / "data" / "entities.parquet")


def file_objection(site: Site, entity_id: str, grounds: str) -> int:
    with site.server.client(site.tokens["supervisor"]) as api:
        score_id = api.get(f"/v1/entities/{entity_id}/risk").json()["score_id"]
        answer = api.post("/v1/objections", json={"score_id": score_id, "grounds": grounds})
        assert answer.status_code == 201, answer.text
        return answer.json()["objection_id"]


def test_sign_in_with_the_keyboard_keeps_the_token_from_scripts_and_sign_out_ends_the_session(browser: Browser, site):
    from selenium.webdriver.common.keys import Keys

    entity = riskiest(site)
    browser.open(f"/ui/entities/{entity.entity_id}")  # not signed in: sent to sign in, the page remembered
    assert "/ui/sign-in?next=" in browser.driver.current_url
    browser.check("sign-in")
    # Keyboard only: the skip link comes first, then the site's links, then the form.
    active = browser.driver.switch_to.active_element
    active.send_keys(Keys.TAB)
    assert "跳到正文" in browser.driver.switch_to.active_element.text
    browser.find("#token").send_keys("ipc_not-a-token", Keys.ENTER)
    assert "令牌无效" in wait_for(lambda: browser.text())
    browser.check("sign-in-refused")
    browser.find("#token").send_keys(site.tokens["supervisor"], Keys.ENTER)
    wait_for(lambda: f"/ui/entities/{entity.entity_id}" in browser.driver.current_url)
    assert entity.entity_id in browser.text()
    # The session cookie is HttpOnly and SameSite=Strict: scripts never see it, nor the token.
    assert "ipcredit_session" not in browser.driver.execute_script("return document.cookie")
    cookie = browser.driver.get_cookie("ipcredit_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and site.tokens["supervisor"] not in cookie["value"]
    browser.find("form.who button").click()
    wait_for(lambda: "/ui/sign-in" in browser.driver.current_url)
    browser.open("/ui/")
    assert "/ui/sign-in" in browser.driver.current_url


def test_supervisor_finds_an_entity_draws_records_a_result_and_downloads_the_draw(browser: Browser, site):
    entity = riskiest(site, region="210600")
    name = names(site).set_index("entity_id").loc[entity.entity_id, "name"]
    browser.sign_in(site.tokens["supervisor"])
    wait_for(lambda: browser.driver.current_url.endswith("/ui/"))
    browser.check("home-supervisor")

    browser.find("#q").send_keys(name[2:6])  # part of the name
    browser.find("form.search button").click()
    wait_for(lambda: "/ui/entities?q=" in browser.driver.current_url)
    browser.check("search")
    browser.find(f'a[href="/ui/entities/{entity.entity_id}"]').click()
    wait_for(lambda: entity.entity_id in browser.driver.current_url)
    text = browser.text()
    assert name in text and f"{entity.tier} · " in text and f"{100 * entity.score:.1f} %" in text
    assert "主要原因" in text and "历史记录" in text
    assert "数据截至" in text and "评分日期晚于" not in text  # scored within its delivery: nothing to caveat
    if entity.rules:
        assert entity.rules.split(";")[0] in text and "法律依据" in text
    assert len(browser.find_all("ol.timeline li")) > 0
    browser.check("entity")
    browser.find("#grounds").send_keys("处罚决定已被撤销")  # the entity objects to its score
    browser.find('form[action$="/objections"] button').click()
    wait_for(lambda: "异议待复核" in browser.find("ol.timeline").text)
    assert "处罚决定已被撤销" in browser.find("ol.timeline").text

    browser.open("/ui/draws")
    browser.find("#region").clear()
    browser.find("#region").send_keys("210600")
    browser.find("form.grid button[type=submit]").click()
    wait_for(lambda: "/ui/draws/" in browser.driver.current_url)
    draw_id = browser.driver.current_url.rstrip("/").split("/")[-1]
    rows = browser.find_all("table.selected tbody tr")
    assert rows and all("INS" in r.text for r in rows)  # every selected entity has its inspectors
    browser.check("draw")

    first = (
        browser.find("table.selected tbody tr select[name^=outcome_]").get_attribute("name").removeprefix("outcome_")
    )
    from selenium.webdriver.support.ui import Select

    Select(browser.find(f'select[name="outcome_{first}"]')).select_by_value("findings")
    Select(browser.find(f'select[name="finding_kind_{first}"]')).select_by_value("counterfeit_patent")
    browser.driver.execute_script(
        "document.querySelector(arguments[0]).value = '2026-01-10'", f'input[name="inspected_on_{first}"]'
    )
    browser.find(f'input[name="findings_{first}"]').send_keys("假冒专利标识")
    browser.find('form[action$="/outcomes"] button[type=submit]').click()
    wait_for(lambda: "发现问题" in browser.find("table.selected tbody").text)
    assert "counterfeit_patent" in browser.find("table.selected tbody").text
    browser.check("draw-with-result")

    csv = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];fetch(arguments[0]).then(r => r.text()).then(done);",
        f"/ui/draws/{draw_id}/csv",
    )
    lines = csv.strip().splitlines()
    assert (
        lines[0]
        == "entity_id,name,tier,inclusion_probability,inspectors,result,outcome,finding_kind,inspected_by,inspected_on"
    )
    assert any(line.startswith(first) and ",failed,findings,counterfeit_patent,INS" in line for line in lines[1:])
    assert len(lines) - 1 == len(rows)

    browser.open("/ui/draws")
    browser.check("draws")

    # The region's yearly plan: made, its first period drawn, its progress counted.
    browser.open("/ui/plans")
    browser.find("#plan-region").clear()
    browser.find("#plan-region").send_keys("210600")
    browser.find('form[action="/ui/plans"] button').click()
    wait_for(lambda: browser.find_all('form[action$="/draws"] button'))
    browser.find('form[action$="/draws"] button').click()
    wait_for(lambda: "/ui/draws/" in browser.driver.current_url)
    planned = len(browser.find_all("table.selected tbody tr"))
    browser.open("/ui/plans")
    total = browser.find_all("section table tbody tr")[-1].text.split()
    assert "1 / 12" in browser.text() and int(total[3]) == planned  # 合计 total: planned, drawn, ...
    browser.check("plans")


def test_reviewer_reads_the_waterfall_tries_a_repair_and_is_told_when_someone_decided_meanwhile(browser: Browser, site):
    entity = riskiest(site, besides=("210600", "410100"))  # their riskiest are objected to elsewhere
    objection_id = file_objection(site, entity.entity_id, "两条不良记录已整改完毕，请求信用修复。")
    browser.sign_in(site.tokens["reviewer"], path="/ui/sign-in?next=/ui/objections")
    wait_for(lambda: browser.driver.current_url.endswith("/ui/objections"))
    browser.check("objections")
    browser.find(f'a[href="/ui/objections/{objection_id}"]').click()
    wait_for(lambda: f"/ui/objections/{objection_id}" in browser.driver.current_url)

    chart = browser.find("svg.waterfall")
    bars = chart.find_elements("css selector", "a")
    assert len(bars) >= 5  # each feature bar links to what lies behind it
    target = bars[0].get_dom_attribute("href")
    assert "#feature-" in target and browser.find_all(f"tr#{target.split('#')[1]}")
    browser.check("objection")

    # Recourse: the fewest records whose repair or lapse lowers the tier (or why it cannot say).
    browser.find('a[href$="/recourse#recourse"]').click()
    answer = wait_for(lambda: browser.find_all('section[aria-labelledby="recourse"] [role="status"]'))
    assert answer[0].text.strip()
    browser.check("objection-recourse")

    boxes = browser.find_all('form[action$="/what-if"] input[name="repair"]')
    assert boxes, "the riskiest entity has adverse records to repair"
    for box in boxes:
        box.click()
    browser.find('form[action$="/what-if"] button[type=submit]').click()
    result = wait_for(lambda: browser.find_all(".what-if"))
    assert "→" in result[0].text and len(browser.find_all("svg.waterfall")) == 2
    browser.check("objection-what-if")

    # Another reviewer decides while this page is open: the decision sent from it gets 409, shown as such.
    browser.find("#d-uphold").click()
    browser.find("#note").send_keys("记录属实，维持原等级。")
    with site.server.client(site.tokens["reviewer2"]) as api:
        answer = api.post(f"/v1/objections/{objection_id}/decision", json={"decision": "uphold", "version": 1})
        assert answer.status_code == 200, answer.text
    browser.find('form[action$="/decision"] button[type=submit]').click()
    conflict = wait_for(lambda: browser.find_all("#conflict"))
    assert "ui-reviewer-2" in conflict[0].text and "decided meanwhile by" in conflict[0].text
    assert browser.find("#note").get_attribute("value") == "记录属实，维持原等级。"  # nothing lost
    assert browser.find("#d-uphold").is_selected()
    browser.check("objection-conflict")

    # A second objection decided from the page: a repair the policy refuses comes back as a 422 page naming
    # the field, with the form as sent; then the reviewer upholds the row.
    other = riskiest(site, region="410100")
    second = file_objection(site, other.entity_id, "不良记录已修复。")
    browser.open(f"/ui/objections/{second}")
    repairable = browser.find_all('form[action$="/decision"] input[name="repair"]')
    browser.find("#note").send_keys("已核实。")
    if repairable:
        browser.find("#d-repair").click()
        repairable[0].click()
        browser.find('form[action$="/decision"] button[type=submit]').click()
        problem = wait_for(lambda: browser.find_all(".problem"))
        assert "repairs.0" in problem[0].text
        assert browser.find("#note").get_attribute("value") == "已核实。" and browser.find("#d-repair").is_selected()
        browser.check("objection-refused")
    browser.find("#d-uphold").click()
    browser.find('form[action$="/decision"] button[type=submit]').click()
    wait_for(lambda: "已于" in browser.text() and "uphold" in browser.text())
    assert "已核实。" in browser.text()
    browser.check("objection-decided")


def test_analyst_reads_versions_and_runs_promotes_the_challenger_and_reads_the_report(browser: Browser, site):
    browser.sign_in(site.tokens["analyst"], path="/ui/sign-in?next=/ui/models")
    wait_for(lambda: browser.driver.current_url.endswith("/ui/models"))
    table = browser.find("#versions + div table").text
    assert "champion" in table and "challenger" in table and "AUC" in table
    assert len(browser.find_all("#h-runs + div tbody tr")) >= 2
    browser.check("models")

    from selenium.webdriver.support.ui import Select

    Select(browser.find("#version")).select_by_value("2")
    browser.find("#reason").send_keys("二号模型通过准入，晋升为冠军 the challenger passed review")
    browser.find('form[action="/ui/models/promote"] button').click()
    wait_for(lambda: "二号模型通过准入" in browser.text())
    rows = {r.find_element("css selector", "th").text: r.text for r in browser.find_all("#versions + div tbody tr")}
    assert "champion" in rows["2"] and "champion" not in rows["1"]
    assert "服务中的模型版本： 2" in browser.text() or "Model version in service: 2" in browser.text()
    browser.check("models-promoted")

    browser.open(f"/ui/report?as_of={AS_OF}")
    frame = browser.find("iframe.report")
    browser.driver.switch_to.frame(frame)
    assert "PSI" in browser.text() or "drift" in browser.text().lower()
    browser.driver.switch_to.default_content()
    browser.check("report")


def test_the_public_sees_lists_the_register_and_a_verified_draw_never_a_score_or_tier(browser: Browser, site):
    with site.server.client(site.tokens["supervisor"]) as api:
        drawn = api.post("/v1/sampling/draws", json={"filter": {"region": "410100"}})
        assert drawn.status_code == 201, drawn.text
        draw = drawn.json()
    browser.open("/ui/public/lists?list=serious_violation")
    assert "严重违法失信名单" in browser.text()
    browser.check("public-lists")
    browser.open("/ui/public/draws")
    browser.find(f'a[href="/ui/public/draws/{draw["draw_id"]}"]').click()
    wait_for(lambda: draw["draw_id"] in browser.driver.current_url)
    text = browser.text()
    assert all(s["entity_id"] in text for s in draw["selected"][:20])
    browser.check("public-draw")
    browser.find(f'a[href="/ui/public/draws/{draw["draw_id"]}/verify"]').click()
    wait_for(lambda: "核验通过" in browser.text())
    browser.check("public-draw-verified")
    for page in ("/ui/public/lists?list=red", "/ui/public/draws", f"/ui/public/draws/{draw['draw_id']}"):
        browser.open(page)
        text = browser.find("main").text.lower()
        assert not [w for w in ("信用风险", "评分", "等级", "score", "tier") if w in text], page
        assert 'class="tier' not in browser.driver.page_source, page
    browser.open("/ui/public/draws")
    browser.check("public-draws")


def test_errors_are_pages_naming_what_is_wrong_and_scopes_hold(browser: Browser, site):
    browser.sign_in(site.tokens["supervisor_210000"])
    wait_for(lambda: browser.driver.current_url.endswith("/ui/"))
    elsewhere = riskiest(site, region="410100")
    browser.open(f"/ui/entities/{elsewhere.entity_id}")  # another region's entity does not exist here
    assert "404" in browser.find("h1").text and "has no stored score" in browser.text()
    browser.check("error-404")
    browser.open("/ui/entities/not-a-credit-code")
    assert "422" in browser.find("h1").text and "path.entity_id" in browser.text()
    browser.check("error-422")
    browser.open("/ui/objections")  # a supervisor is no reviewer
    assert "403" in browser.find("h1").text and "needs one of" in browser.text()
    browser.check("error-403")
    browser.open("/ui/public/lists?list=red&on=2100-01-01")
    assert "422" in browser.find("h1").text and "query.on" in browser.text()
    # A form without the session's secret is refused before anything is done.
    status = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/ui/draws', {method: 'POST', body: new URLSearchParams({region: '210600'})})"
        ".then(r => r.text().then(t => done([r.status, t])));"
    )
    assert status[0] == 403 and "csrf" in status[1] and "<html" in status[1]
    # A region-scoped supervisor cannot draw outside the region.
    browser.open("/ui/draws")
    browser.find("#region").clear()
    browser.find("#region").send_keys("410100")
    browser.find("form.grid button[type=submit]").click()
    wait_for(lambda: "422" in browser.find("h1").text)
    assert "filter.region" in browser.text() and "must lie within the token's region" in browser.text()


def test_pages_read_at_phone_width(phone: Browser, site):
    entity = riskiest(site)
    phone.sign_in(site.tokens["admin"], path=f"/ui/sign-in?next=/ui/entities/{entity.entity_id}")
    wait_for(lambda: entity.entity_id in phone.driver.current_url)
    for name, path in (("entity-phone", f"/ui/entities/{entity.entity_id}"), ("draws-phone", "/ui/draws")):
        phone.open(path)
        overflow = phone.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{path} is {overflow}px wider than the phone"
        phone.check(name)
    phone.open("/ui/public/draws")
    phone.check("public-draws-phone")
