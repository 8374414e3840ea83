"""The review page on the stack `clippings up` runs (its own broker; embedder, linker and the page
as child processes; the page on a scratch PostgreSQL database), driven in headless Chromium:
log in with the stack's password, reject a duplicate, and follow the correction everywhere it
goes: the database row, clippings.corrections, Redis, the linker's correction link event, and
the linker's next decision for a copy of the rejected clipping."""

from __future__ import annotations

import secrets

import pytest
from review_fixtures import browser, browser_login, click_through  # noqa: F401
from selenium.webdriver.common.by import By
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from conftest import read_topic
from stream_checks import wait_for

from clippings.services.config import ClientSettings, load_settings
from clippings.services.linker.store import RedisState, redis_client
from clippings.services.local.replay import publish, raw_event
from clippings.services.local.review import DEFAULT_DATABASE
from clippings.services.local.stack import LocalStack, free_port
from clippings.services.schemas import Correction, LinkEvent

pytestmark = pytest.mark.integration


def test_reject_on_the_demo_stack(browser, redis_url, news_model, sample_feed, tmp_path):  # noqa: F811
    from clippings.data.dataset import load_dataset

    password = secrets.token_urlsafe(9)
    stack = LocalStack(workdir=tmp_path, model=str(news_model), redis_url=redis_url, image_roots=[sample_feed],
                       redis_prefix=f"demo-{secrets.token_hex(4)}", delete_redis_keys=True,
                       review_database=DEFAULT_DATABASE, review_port=free_port(), review_password=password)
    records = load_dataset(sample_feed).records
    with stack:
        s = load_settings(ClientSettings, kafka_bootstrap_servers=stack.bootstrap)
        events = [raw_event(r, "sample", "default", "", "inline", 700_000) for r in records]
        publish(s, events, progress=False)
        db = create_engine(make_url(DEFAULT_DATABASE).set(database=stack.review.scratch))
        wait_for(lambda: _count(db, "SELECT count(*) FROM decisions") == len(records), 120, "the page read the stream")
        with db.connect() as conn:
            cid, old = conn.execute(text("SELECT id, entity_id FROM decisions WHERE is_duplicate "
                                         "ORDER BY similarity, id LIMIT 1")).one()

        browser_login(browser, stack.review.url, password=password)
        browser.get(f"{stack.review.url}decision/{cid}")
        click_through(browser, By.ID, "reject")
        assert "stored and published" in browser.find_element(By.CSS_SELECTOR, ".flash").text

        with db.connect() as conn:
            row = conn.execute(text("SELECT * FROM corrections")).one()
        assert (row.action, row.clipping_id, row.published_at is not None) == ("reject", cid, True)
        [published] = read_topic_values(stack.bootstrap, s.topic_corrections, 1)
        assert Correction.model_validate_json(published).id == str(row.id)

        state = RedisState(redis_client(redis_url), stack.redis_prefix)
        wait_for(lambda: state.current_entities([cid])[cid] != old, 60, "the linker moved the clipping in Redis")
        new = state.current_entities([cid])[cid]
        assert cid not in state.members(old) and state.members(new) == {cid}
        links = [LinkEvent.model_validate_json(v) for v in read_topic_values(stack.bootstrap, s.topic_links,
                                                                             len(records) + 1)]
        [fix] = [e for e in links if e.correction is not None]
        assert (fix.id, fix.entity_id, fix.correction.id, fix.correction.reviewer) == (cid, new, str(row.id), "ada")

        copy = next(e for e in events if e.id == cid).model_copy(update={"id": f"{cid}-copy"})
        publish(s, [copy], progress=False)
        links = [LinkEvent.model_validate_json(v) for v in read_topic_values(stack.bootstrap, s.topic_links,
                                                                             len(records) + 2)]
        [decided] = [e for e in links if e.id == f"{cid}-copy"]
        assert decided.entity_id == new and old not in decided.merged_entities
        db.dispose()


def read_topic_values(bootstrap: str, topic: str, n: int) -> list[bytes]:
    return [m.value() for m in read_topic(bootstrap, topic, lambda recs: len(recs) >= n, 60)]


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()
