"""Browser tests of the pages: a demo world made the way ``make demo`` makes it, served by a real uvicorn
server on loopback, driven by Debian's headless Chromium through Selenium.

The world is built once per session with the command line itself (``demo-data``, ``train`` twice into a
temporary MLflow store, ``score --store`` for two months, ``inspectors``): real data, a real registry,
real stored runs. Chromium and its driver are given by path (``/usr/bin/chromium``,
``/usr/bin/chromedriver``), so Selenium Manager never downloads anything; without them every browser
test is skipped, saying so. Each test saves screenshots of the pages it visits in ``var/screenshots``
(ignored by git, so a test run leaves the checkout clean); ``make screenshots`` runs these tests with
``IPCREDIT_SCREENSHOTS=docs/screenshots`` to refresh the ones the docs show.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app as cli
from serving.db import open_store
from serving.settings import PROJECT_ROOT
from serving.tokens import create_token
from tests.models.factories import fast_toml
from tests.serving.conftest import Running, settings_for, start_server

CHROMIUM = Path(os.environ.get("IPCREDIT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("IPCREDIT_CHROMEDRIVER", "/usr/bin/chromedriver"))
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("IPCREDIT_SCREENSHOTS") or PROJECT_ROOT / "var" / "screenshots")
AS_OF = "2025-12-31"
PREVIOUS = "2025-11-30"
# "Today" for the pages: a fixed date after the demo's as-of, so dates shown and checked do not move.
AS_OF_TODAY = "2026-01-20"
ENTITIES = 1500

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver",
)


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, f"ipcredit {' '.join(args)}: {result.output}"
    return result.stdout


@dataclass
class Site:
    """The demo world as served: where it lives, the server, a token per role."""

    folder: Path
    server: Running
    tokens: dict[str, str]
    tracking_uri: str

    @property
    def url(self) -> str:
        return self.server.base_url


def build_world(folder: Path) -> dict[str, str]:
    """Generate, train (twice), score two months into the service database and load a roster, as
    ``make demo`` does; return the environment the commands ran with."""
    env = world_env(folder)
    (folder / "mlruns").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        data = folder / "data"
        _run("demo-data", "--out", str(data), "--entities", str(ENTITIES), "--seed", "7")
        for rounds in (60, 30):
            config = folder / f"fast-{rounds}.toml"
            config.write_text(fast_toml(rounds))
            # A new world has no ledger decisions: --no-ledger says so instead of reading an empty ledger.
            _run("train", "--data", str(data), "--config", str(config), "--no-ledger")
        # The first version is the champion the service scores with; the second waits as challenger.
        _run("promote", "1", "--reason", "the demo's first model")
        for day in (PREVIOUS, AS_OF):
            out = folder / f"scores-{day}.parquet"
            _run("score", "--data", str(data), "--as-of", day, "--out", str(out), "--store", "--no-ledger")
        _run("inspectors", "demo", "--out", str(folder / "roster.csv"), "--count", "40")
        _run("inspectors", "load", "--file", str(folder / "roster.csv"), "--replace")
    return env


def world_env(folder: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        "IPCREDIT_DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
        "IPCREDIT_DATASET_ROOT": str(folder),
    }


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Iterator[Site]:
    """The demo world served. ``IPCREDIT_UI_WORLD=DIR`` reuses a world ``build_world`` made before (copied,
    so the tests never change it): for iterating on the pages without a minute of training each run."""
    folder = tmp_path_factory.mktemp("ui-world")
    prebuilt = os.environ.get("IPCREDIT_UI_WORLD")
    if prebuilt:
        shutil.copytree(prebuilt, folder, dirs_exist_ok=True)
        env = world_env(folder)
    else:
        env = build_world(folder)
    settings = settings_for(
        env["IPCREDIT_DATABASE_URL"],
        folder,
        mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"],
        dataset_root=folder,
        today=AS_OF_TODAY,
    )
    engine = open_store(settings.db_url)
    tokens = {
        role: create_token(engine, role, f"ui-{role}")[1] for role in ("supervisor", "analyst", "reviewer", "admin")
    }
    tokens["reviewer2"] = create_token(engine, "reviewer", "ui-reviewer-2")[1]
    tokens["supervisor_210000"] = create_token(engine, "supervisor", "ui-supervisor-liaoning", region="210000")[1]
    engine.dispose()
    server = start_server(settings)
    try:
        yield Site(folder, server, tokens, env["MLFLOW_TRACKING_URI"])
    finally:
        server.stop()


# ---- the browser ----------------------------------------------------------------------------------------


class Browser:
    """One headless Chromium window on the site: sign in, open pages, check them with axe, shoot them."""

    def __init__(self, site: Site, width: int = 1280, height: int = 900) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=zh-CN"):
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        self.driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        self.driver.set_page_load_timeout(60)
        self.site = site
        self.axe = AXE.read_text(encoding="utf-8")

    def open(self, path: str) -> None:
        self.driver.get(self.site.url + path)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("body").text

    def sign_in(self, token: str, path: str = "/ui/sign-in") -> None:
        self.open(path)
        self.find("#token").send_keys(token)
        self.find("form button[type=submit]").click()

    def violations(self) -> list[dict]:
        """axe-core's serious and critical violations on the page as it is now."""
        self.driver.execute_script(self.axe)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations)).catch(e => done(String(e)));"
        )
        assert isinstance(result, list), result
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result
            if v["impact"] in ("serious", "critical")
        ]

    def check(self, name: str) -> None:
        """No serious or critical axe violation, and a screenshot as ``<SCREENSHOTS>/<name>.png``."""
        found = self.violations()
        assert not found, f"{name}: {json.dumps(found, ensure_ascii=False)}"
        self.shoot(name)

    def shoot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return Math.min(document.body.scrollHeight, 4000)")
        width = self.driver.get_window_size()["width"]
        self.driver.set_window_size(width, max(height + 120, 600))
        temporary = SCREENSHOTS / f".{name}.png"
        self.driver.save_screenshot(str(temporary))
        temporary.replace(SCREENSHOTS / f"{name}.png")  # written whole, then renamed

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture
def browser(site) -> Iterator[Browser]:
    b = Browser(site)
    yield b
    b.quit()


@pytest.fixture
def phone(site) -> Iterator[Browser]:
    b = Browser(site, width=390, height=844)
    yield b
    b.quit()


def wait_for(predicate, timeout: float = 30.0):
    """``predicate()`` once it is true; a page still loading (an element gone stale, not there yet) is
    waited for, not failed on. Chromium's driver reports an element of the page being replaced either as
    stale or, read mid-navigation, as an inspector error that the node "does not belong to the document"."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None
        except WebDriverException as exc:
            if "does not belong to the document" not in str(exc):
                raise
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")
