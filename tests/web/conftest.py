"""Fixtures for the page tests: a live server on its own seeded database, a headless Chromium, and a
logged-in TestClient for the fast tests.

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


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Uvicorn serving the real app in a background thread, on a fresh migrated database seeded with the
    pilot. The session fixture in tests/conftest.py points CLEARLINE_DATABASE_URL at the shared database;
    that value is restored afterwards."""
    import uvicorn

    from clearline.demo.seed import seed_pilot
    from clearline.kit.db import engine_for

    url = _fresh_database(tmp_path_factory.mktemp("live"), "live")
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    server = None
    thread = None
    try:
        migrate(url)
        _point_settings_at(url)
        with Session(engine_for(url)) as session:
            brand_id = seed_pilot(session).brand_id
            session.commit()

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
        yield LiveServer(url=f"http://127.0.0.1:{port}", database_url=url, brand_id=brand_id)
    finally:
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=15)
        _point_settings_at(previous)
        engine_for(url).dispose()
        drop_database(url)


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
