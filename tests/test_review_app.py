"""The review pages with Flask's test client, on the real PostgreSQL: login, CSRF on every POST,
escaping, the filters and the needs-review order, the image policy."""

from __future__ import annotations

import pytest
from review_fixtures import (PASSWORD, apply, csrf_token, link, login, png, raw, review_app, review_database_url,  # noqa: F401
                             review_engine, review_settings, reviewer)

from clippings.errors import ConfigError

pytestmark = pytest.mark.integration


def test_every_page_needs_a_login(review_app):
    client = review_app.test_client()
    for path in ("/", "/queue", "/decision/x", "/entity/e-x", "/image/x"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], path


def test_probes_answer_without_a_login_and_readiness_follows_the_database(review_app, review_settings):
    client = review_app.test_client()
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert "Set-Cookie" not in client.get("/healthz").headers  # no session for a probe

    from clippings.review.app import create_app
    from clippings.review.db import make_engine

    away = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/postgres")
    unready = create_app(review_settings(), away, publisher=None).test_client()
    resp = unready.get("/readyz")
    assert resp.status_code == 503 and "database: OperationalError" in resp.get_data(as_text=True)
    assert "127.0.0.1:1" not in resp.get_data(as_text=True)
    assert unready.get("/healthz").status_code == 200
    away.dispose()


def test_a_wrong_password_is_refused(review_app):
    client = review_app.test_client()
    resp = login(client, password=PASSWORD + "x")
    assert resp.status_code == 401 and "Wrong password" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert login(client).status_code == 302 and client.get("/").status_code == 200


def test_the_login_goes_back_only_to_this_site(review_app):
    client = review_app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"csrf_token": token, "reviewer": "ada", "password": PASSWORD,
                                       "next": "//evil.example/x"})
    assert resp.headers["Location"] == "/"


def test_every_post_without_a_csrf_token_is_refused(review_engine, reviewer):
    client, _ = reviewer
    apply(review_engine, raw("a"), raw("b"), link("a"), link("b", "e-a", matched="a", sim=0.9))
    for path, data in (("/login", {"reviewer": "x", "password": PASSWORD}), ("/logout", {}),
                       ("/confirm/b", {}), ("/reject/b", {}), ("/merge/b", {"target_id": "a"})):
        resp = client.post(path, data=data)
        assert resp.status_code == 400, path
        assert "CSRF" in resp.get_data(as_text=True), path
        bad = client.post(path, data=data | {"csrf_token": "forged"})
        assert bad.status_code == 400, path
    with review_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM corrections").scalar() == 0
    assert client.get("/").status_code == 200  # still logged in: the logout was refused too


def test_a_caption_with_html_is_shown_as_text(review_engine, reviewer):
    client, _ = reviewer
    evil = "<script>alert(1)</script>"
    apply(review_engine, raw("a", "FLOOD " + evil), raw(f"b{evil}", "FLOOD " + evil),
          link("a"), link(f"b{evil}", "e-a", matched="a", sim=0.93))
    for path in ("/", f"/decision/b{evil}", "/entity/e-a"):
        page = client.get(path).get_data(as_text=True)
        assert evil not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    resp = client.get("/")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_filters_and_the_needs_review_order(review_engine, reviewer):
    client, _ = reviewer
    apply(review_engine,
          link("n1", linked_ms=1, neighbours=(("x", 0.845, "e-x"),)),  # new, just under the threshold
          link("d1", "e-n1", matched="n1", sim=0.99, linked_ms=2),
          link("d2", "e-n1", matched="n1", sim=0.86, linked_ms=3),
          link("d3", "e-n1", matched="n1", sim=0.90, linked_ms=4, block="b2"),
          link("n2", linked_ms=5))  # new, no neighbour: nothing to rank it by
    order = lambda page: [cid for cid in ("n1", "d1", "d2", "d3", "n2")  # noqa: E731
                          if f">{cid}</a>" in page]
    page = client.get("/").get_data(as_text=True)
    assert page.index(">n2</a>") < page.index(">d3</a>") < page.index(">d1</a>") < page.index(">n1</a>")
    assert order(client.get("/?block=b2").get_data(as_text=True)) == ["d3"]
    assert order(client.get("/?decision=new").get_data(as_text=True)) == ["n1", "n2"]
    assert order(client.get("/?decision=duplicate&min_sim=0.88").get_data(as_text=True)) == ["d1", "d3"]
    assert order(client.get("/?min_sim=0.85&max_sim=0.95").get_data(as_text=True)) == ["d2", "d3"]
    queue = client.get("/queue").get_data(as_text=True)
    ranked = sorted(["n1", "d1", "d2", "d3"], key=lambda cid: queue.index(f">{cid}</a>"))
    assert ranked == ["n1", "d2", "d3", "d1"]  # 0.005, 0.01, 0.05, 0.14 from the threshold
    assert ">n2</a>" not in queue


def test_reviewed_clippings_leave_the_queue(review_engine, reviewer):
    client, token = reviewer
    apply(review_engine, link("a"), link("b", "e-a", matched="a", sim=0.86))
    assert ">b</a>" in client.get("/queue").get_data(as_text=True)
    assert client.post("/confirm/b", data={"csrf_token": token}).status_code == 302
    assert ">b</a>" not in client.get("/queue").get_data(as_text=True)


def test_images_inline_or_under_an_allowed_root_only(review_engine, reviewer, tmp_path):
    client, _ = reviewer
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "ok.png").write_bytes(png())
    (tmp_path / "outside.png").write_bytes(png())
    (allowed / "notes.txt").write_text("not an image")
    apply(review_engine, raw("inline", image=png()), raw("ok", image_uri=f"file://{allowed}/ok.png"),
          raw("out", image_uri=f"file://{tmp_path}/outside.png"), raw("up", image_uri=f"file://{allowed}/../outside.png"),
          raw("txt", image_uri=f"file://{allowed}/notes.txt"), raw("web", image_uri="https://example.org/a.png"),
          *(link(c) for c in ("inline", "ok", "out", "up", "txt", "web")))
    for cid in ("inline", "ok"):
        resp = client.get(f"/image/{cid}")
        assert resp.status_code == 200 and resp.mimetype == "image/png", cid
        assert f'src="/image/{cid}"' in client.get(f"/decision/{cid}").get_data(as_text=True)
    for cid in ("out", "up", "txt", "web"):
        assert client.get(f"/image/{cid}").status_code == 404, cid
        page = client.get(f"/decision/{cid}").get_data(as_text=True)
        assert "no image" in page and f'src="/image/{cid}"' not in page, cid


def test_the_decision_page_marks_differing_characters(review_engine, reviewer):
    client, _ = reviewer
    apply(review_engine, raw("a", "FLOOD WATERS RISE"), raw("b", "FL00D WATERS RISE"),
          link("a"), link("b", "e-a", matched="a", sim=0.912345))
    page = client.get("/decision/b").get_data(as_text=True)
    assert "<mark>00</mark>" in page and "<mark>OO</mark>" in page
    assert "0.912" in page and "0.850" in page and "v-test" in page


def test_no_password_no_server(review_settings):
    from clippings.review.app import create_app
    from clippings.review.server import ReviewServer

    settings = review_settings(review_password=None)
    with pytest.raises(ConfigError, match="CLIPPINGS_REVIEW_PASSWORD"):
        ReviewServer(settings).start()
    with pytest.raises(ConfigError, match="CLIPPINGS_REVIEW_PASSWORD"):
        create_app(settings, None, None)
    assert PASSWORD not in repr(review_settings())
