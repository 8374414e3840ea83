"""Fixtures of the review application's tests: a fresh PostgreSQL database per test session
(review_test_<random>, dropped at the end), settings on the session's broker and the test's
topics, a logged-in Flask test client, and events made by hand.

PostgreSQL is the one at CLIPPINGS_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres,
trust auth); when it does not answer the tests fail, they never skip.
"""

from __future__ import annotations

import io
import os
import re
import uuid

import pytest
from PIL import Image

from clippings.services.schemas import CorrectionRef, KafkaPosition, LinkEvent, Neighbour, RawClipping

ADMIN_URL = os.environ.get("CLIPPINGS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery staple"
TABLES = ("corrections", "membership", "correction_events", "decisions", "clippings")


def database_url_of(database: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def review_database_url() -> str:
    import psycopg

    from clippings.review.db import migrate

    name = f"review_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"no PostgreSQL answers at {ADMIN_URL} ({exc}); start it or name one in "
                    "CLIPPINGS_TEST_POSTGRES_URL", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            migrate(database_url_of(name))
            yield database_url_of(name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def review_engine(review_database_url):
    """The session's database, emptied for this test."""
    from sqlalchemy import text

    from clippings.review.db import make_engine

    engine = make_engine(review_database_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
    yield engine
    engine.dispose()


@pytest.fixture
def review_settings(kafka_bootstrap, topics, redis_url, redis_prefix, review_database_url, tmp_path):
    from clippings.review.settings import load_review_settings

    def make(**overrides):
        base = dict(kafka_bootstrap_servers=kafka_bootstrap, **topics.settings(),
                    review_database_url=review_database_url, review_password=PASSWORD, review_port=0,
                    review_secret_key="test-secret-" + uuid.uuid4().hex, review_group_id=f"rev-{uuid.uuid4().hex[:8]}",
                    redis_url=redis_url, redis_prefix=redis_prefix, review_image_roots=[tmp_path / "allowed"],
                    review_publish_timeout_s=10.0, kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=500)
        return load_review_settings(**(base | overrides))

    return make


@pytest.fixture
def review_app(review_settings, review_engine):
    """The Flask app on the real database and broker (no reader thread: tests apply events)."""
    from clippings.review.app import create_app
    from clippings.review.publish import CorrectionPublisher
    from clippings.review.server import _redis_state

    settings = review_settings()
    publisher = CorrectionPublisher(settings, review_engine)
    app = create_app(settings, review_engine, publisher, _redis_state(settings))
    app.config["TESTING"] = True
    yield app
    publisher.close()


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client, reviewer: str = "ada", password: str = PASSWORD):
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"csrf_token": csrf_token(page), "reviewer": reviewer, "password": password})


@pytest.fixture
def reviewer(review_app):
    """A test client logged in as 'ada', and the CSRF token of its session."""
    client = review_app.test_client()
    assert login(client).status_code == 302
    return client, csrf_token(client.get("/").get_data(as_text=True))


def png(color=(120, 30, 30), size=(40, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def raw(cid: str, text: str = "", block: str = "b1", **kw) -> RawClipping:
    return RawClipping(id=cid, text=text or f"caption of {cid}", block=block, **kw)


def link(cid: str, entity: str | None = None, *, block: str = "b1", matched: str | None = None,
         sim: float | None = None, threshold: float = 0.85, partition: int = 0, offset: int = 0,
         merged: tuple[str, ...] = (), neighbours: tuple[tuple[str, float, str], ...] = (),
         correction: CorrectionRef | None = None, linked_ms: int = 1_000) -> LinkEvent:
    return LinkEvent(
        id=cid, block=block, entity_id=entity or f"e-{cid}", is_duplicate=matched is not None, matched_id=matched,
        similarity=sim, neighbours=[Neighbour(id=i, similarity=s, entity_id=e) for i, s, e in neighbours],
        merged_entities=list(merged), model_version="v-test", threshold=threshold,
        origin=KafkaPosition(topic="embedded", partition=partition, offset=offset), raw_ts_ms=1, embedded_ts_ms=2,
        linked_ts_ms=linked_ms, correction=correction)


def apply(engine, *events) -> int:
    """Events applied as the reader would -> how many were new."""
    from clippings.review.ingest import apply_link, apply_raw

    with engine.begin() as conn:
        return sum(apply_raw(conn, e) if isinstance(e, RawClipping) else apply_link(conn, e) for e in events)


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    """Headless Chromium through selenium; missing, it fails (scripts/install.sh installs it)."""
    from pathlib import Path

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            pytest.fail(f"{path} missing: apt-get install chromium chromium-driver (scripts/install.sh does)",
                        pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def review_server(review_settings, review_engine):
    """review_server(read_events=..., **settings) -> a started ReviewServer on a free port; stopped after."""
    from clippings.review.server import ReviewServer

    started = []

    def start(read_events: bool = True, **overrides):
        server = ReviewServer(review_settings(**overrides), read_events=read_events).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def browser_login(driver, base_url: str, password: str = PASSWORD, reviewer: str = "ada") -> None:
    from selenium.webdriver.common.by import By

    driver.get(base_url + "login")
    driver.find_element(By.ID, "reviewer").send_keys(reviewer)
    driver.find_element(By.ID, "password").send_keys(password)
    # The next page (the list, or the login page again with its message) must have replaced this
    # one: a page asked for before that would be asked for without the session.
    click_through(driver, By.ID, "login")


def click_through(driver, by: str, value: str) -> None:
    """Find a form's button, click it and wait until the page it posts to has replaced this one:
    a find_element right after a bare click() may still search the old page. The button is
    found again when the page changed under it before the click (Chrome then refuses the click:
    the node no longer belongs to the document), so the click happens exactly once."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    for attempt in range(3):
        element = WebDriverWait(driver, 30).until(expected_conditions.element_to_be_clickable((by, value)))
        try:
            element.click()
            break
        except WebDriverException as exc:
            if attempt == 2 or not _detached(exc):
                raise
    WebDriverWait(driver, 30).until(lambda _: _replaced(element))


def _detached(exc: Exception) -> bool:
    """Chrome reports a node of a replaced page either as stale or, while the new page is still
    being attached, as an inspector error that the node no longer belongs to the document."""
    return "stale" in str(exc).lower() or "does not belong to the document" in str(exc)


def _replaced(element) -> bool:
    # selenium's staleness_of only knows the first of the two answers; the second failed CI once.
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException as exc:
        if _detached(exc):
            return True
        raise
    return False
