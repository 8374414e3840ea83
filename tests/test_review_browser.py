"""The review page in headless Chromium. On the live stack (broker, embedder, linker, the sample
feed): a reviewer rejects a duplicate through the page; the row, the Correction event, and the
linker's answer to it. Then what a browser must refuse: a wrong password, a POST without its
CSRF token, a caption's HTML."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from review_fixtures import (PASSWORD, apply, browser, browser_login, click_through, link, raw,  # noqa: F401
                             review_database_url, review_engine, review_server, review_settings)
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from sqlalchemy import text
from stream_checks import client, sample_events, wait_for

from clippings.services.linker.store import RedisState, redis_client
from clippings.services.local.replay import publish
from clippings.services.schemas import Correction, LinkEvent

pytestmark = pytest.mark.integration
# The README's picture: written only when asked (CLIPPINGS_SCREENSHOT=docs/images/review.png), so
# that a test run leaves the checkout as it was; otherwise the page is still rendered and sized.
SCREENSHOT = Path(os.environ["CLIPPINGS_SCREENSHOT"]) if os.environ.get("CLIPPINGS_SCREENSHOT") else None
SCREENSHOT_MAX_BYTES = 300_000


def save_screenshot(driver, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    # 256 colours: a page of text and two small photos stays sharp and small.
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    assert path.stat().st_size < SCREENSHOT_MAX_BYTES


def _duplicate(engine) -> tuple[str, str, int]:
    """A duplicate decision of the stream: (clipping id, its entity, its link event's partition)."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, entity_id, origin_partition FROM decisions WHERE is_duplicate "
                                "ORDER BY similarity, id LIMIT 1")).first()
    assert row is not None, "the sample feed has duplicates"
    return tuple(row)


def test_reject_a_duplicate_through_the_page_on_the_live_stack(
        run_service, review_server, review_engine, browser, kafka_bootstrap, topics, topic_reader, sample_feed,
        redis_url, redis_prefix, tmp_path):
    run_service("embedder")
    run_service("linker")
    events, labels = sample_events(sample_feed)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    server = review_server()
    wait_for(lambda: server.reader.applied >= 2 * len(labels), 120, "the review database did not get the stream")
    cid, old_entity, partition = _duplicate(review_engine)

    browser_login(browser, server.url)
    browser.get(f"{server.url}decision/{cid}")
    assert browser.find_element(By.ID, "clipping-id").text == cid
    save_screenshot(browser, SCREENSHOT or tmp_path / "review.png")
    click_through(browser, By.ID, "reject")
    assert "stored and published" in browser.find_element(By.CSS_SELECTOR, ".flash").text

    with review_engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM corrections")).one()
    assert (row.action, row.clipping_id, row.target_id, row.reviewer) == ("reject", cid, None, "ada")
    assert row.published_at is not None and row.kafka_partition == partition
    (msg,) = topic_reader(topics.corrections, lambda recs: len(recs) >= 1, 30)
    assert msg.partition() == partition
    assert Correction.model_validate_json(msg.value()).id == str(row.id)

    # From here on the linker's part: it applies the correction (issue 11, linker side).
    state = RedisState(redis_client(redis_url), redis_prefix)
    wait_for(lambda: state.current_entities([cid]).get(cid) not in (None, old_entity), 60,
             "the linker did not move the rejected clipping in Redis")
    new_entity = state.current_entities([cid])[cid]
    assert cid in state.members(new_entity) and cid not in state.members(old_entity)
    applied = [LinkEvent.model_validate_json(m.value()) for m in topic_reader(
        topics.links, lambda recs: any(b'"correction"' in m.value() for m in recs), 60)]
    (event,) = [e for e in applied if e.correction is not None]
    assert (event.id, event.entity_id, event.correction.id) == (cid, new_entity, str(row.id))
    wait_for(lambda: "applied by the linker" in _page(browser, f"{server.url}entity/{new_entity}"), 30,
             "the page did not show the linker applying the correction")

    # A copy of the clipping sent again under a new id joins the clipping's new entity, not the old one.
    original = next(e for e in events if e.id == cid)
    publish(client(kafka_bootstrap, topics), [original.model_copy(update={"id": f"{cid}-again"})], progress=False)
    again = [LinkEvent.model_validate_json(m.value()) for m in topic_reader(
        topics.links, lambda recs: any(f'"id":"{cid}-again"'.encode() in m.value() for m in recs), 60)]
    (copy,) = [e for e in again if e.id == f"{cid}-again"]
    assert copy.entity_id == state.current_entities([cid])[cid] != old_entity


def _page(driver, url: str) -> str:
    driver.get(url)
    return driver.page_source


def test_the_browser_refuses_a_wrong_password_a_forged_post_and_a_caption_s_html(
        review_server, review_engine, browser):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    apply(review_engine, raw("a", "FLOOD " + evil), raw("b", "FLOOD " + evil),
          link("a"), link("b", "e-a", matched="a", sim=0.91))
    server = review_server(read_events=False)

    browser_login(browser, server.url, password=PASSWORD + "!")
    assert "Wrong password" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    browser.get(f"{server.url}decision/b")
    assert browser.current_url.startswith(f"{server.url}login")

    browser_login(browser, server.url)
    browser.get(f"{server.url}decision/b")
    assert evil in browser.find_element(By.CSS_SELECTOR, "p.ocr").text  # shown as text ...
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (... and never run)
    assert browser.find_elements(By.CSS_SELECTOR, "p.ocr img") == []

    # A form posted without its token (as a forged cross-site form would be) is refused.
    browser.execute_script("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    click_through(browser, By.ID, "confirm")
    assert "Form expired or forged" in browser.page_source and "CSRF" in browser.page_source
    with review_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM corrections")).scalar() == 0
