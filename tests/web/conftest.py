"""Fixtures for the page tests: a live server on its own seeded database, another on the simulated pilot
(built once per session), a headless Chromium, and a logged-in TestClient for the fast tests.

The live server gets a database of its own (never the shared, per-test-rolled-back ``database_url``
one): the server's requests commit for real, from another thread, and the browser sees those commits.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import _fresh_database, drop_database, migrate

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_PASSWORD = "clearline-demo"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class LiveServer:
    url: str
    database_url: str
    brand_id: int

    def session(self) -> Session:
        """A session on the live database, for arranging data and checking what the pages did."""
        from clearline.kit.db import engine_for

        return Session(engine_for(self.database_url), expire_on_commit=False)


def _point_settings_at(url: str | None) -> None:
    from clearline.config import get_settings

    if url is None:
        os.environ.pop("CLEARLINE_DATABASE_URL", None)
    else:
        os.environ["CLEARLINE_DATABASE_URL"] = url
    get_settings.cache_clear()


@contextmanager
def _serving(url: str) -> Iterator[str]:
    """Uvicorn serving the real app on ``url``'s database in a background thread; yields the base URL.
    Settings point at that database while it serves (the app opens its sessions from them) and are
    restored afterwards."""
    import uvicorn

    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    server = None
    thread = None
    try:
        _point_settings_at(url)
        from clearline.app import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=15)
        _point_settings_at(previous)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[LiveServer]:
    """Uvicorn serving the real app in a background thread, on a fresh migrated database seeded with the
    pilot. The session fixture in tests/conftest.py points CLEARLINE_DATABASE_URL at the shared database;
    that value is restored afterwards. It is set up first (``database_url``), so a TestClient test in the
    same module cannot set it while a server runs and have it overwritten when the server stops."""
    from clearline.demo.seed import seed_pilot
    from clearline.kit.db import engine_for

    url = _fresh_database(tmp_path_factory.mktemp("live"), "live")
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    try:
        migrate(url)
        _point_settings_at(url)
        with Session(engine_for(url)) as session:
            brand_id = seed_pilot(session).brand_id
            session.commit()
        _point_settings_at(previous)
        with _serving(url) as base_url:
            yield LiveServer(url=base_url, database_url=url, brand_id=brand_id)
    finally:
        _point_settings_at(previous)
        engine_for(url).dispose()
        drop_database(url)


@dataclass
class PilotDatabase:
    url: str
    brand_id: int


@pytest.fixture(scope="session")
def pilot_database(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[PilotDatabase]:
    """The whole pilot, as `clearline demo` builds it: the seed, 30 simulated days of clicks, orders,
    returns and a chargeback, briefs and approvals, and the approved, paid and reconciled monthly payout.
    Built once per test session (the simulation takes the better part of a minute) and shared by every
    module that serves it: their tests add to it, so none may rely on it being untouched. The shared
    ``database_url`` is set up first, for the reason ``live_server`` gives."""
    from clearline.demo.seed import seed_pilot
    from clearline.demo.simulate import pilot_briefs, pilot_payout, simulate_pilot
    from clearline.kit.db import engine_for

    url = _fresh_database(tmp_path_factory.mktemp("pilot"), "pilot")
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    try:
        migrate(url)
        _point_settings_at(url)
        with Session(engine_for(url)) as session:
            brand_id = seed_pilot(session).brand_id
            session.commit()
            for step in (simulate_pilot, pilot_briefs, pilot_payout):
                step(session)
                session.commit()
    except BaseException:
        drop_database(url)
        raise
    finally:
        _point_settings_at(previous)
    yield PilotDatabase(url=url, brand_id=brand_id)
    engine_for(url).dispose()
    drop_database(url)


@pytest.fixture(scope="module")
def pilot_server(pilot_database: PilotDatabase) -> Iterator[LiveServer]:
    """A live server on the simulated pilot (orders, commissions, a payout), one per module."""
    with _serving(pilot_database.url) as base_url:
        yield LiveServer(url=base_url, database_url=pilot_database.url, brand_id=pilot_database.brand_id)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """Debian's Chromium driven by Playwright; no browser is ever downloaded."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server: LiveServer):  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies) per test, with relative URLs resolved against the server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def pilot_page(browser, pilot_server: LiveServer):  # type: ignore[no-untyped-def]
    """A fresh browser context on the pilot server, as ``page`` is on the seeded one."""
    context = browser.new_context(base_url=pilot_server.url)
    # The pilot's pages are the biggest (hundreds of orders and commission lines): allow a busy machine.
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, email: str, password: str = DEMO_PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Log the browser in through the login form and wait until it has left it (hashing the password
    takes a while on a busy machine, longer than an assertion's default wait)."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def html_client(client: TestClient) -> TestClient:
    """The app's TestClient asking for HTML, as a browser does (domain errors then render error pages)."""
    client.headers["accept"] = "text/html"
    return client


def log_in(client: TestClient, email: str, password: str) -> str:
    """Log the TestClient in and return the session's CSRF token (read from a page, as a form would)."""
    answer = client.post("/login", data={"email": email, "password": password}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = CSRF_INPUT.search(client.get("/").text)
    assert found, "no CSRF token on the page"
    return found.group(1)
