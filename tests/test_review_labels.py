"""`clippings labels export`: the reviewed clippings as a dataset load_dataset reads, entities as
corrected, splits by a stable hash of the entity."""

from __future__ import annotations

import json
import uuid

import pytest
from review_fixtures import (ADMIN_URL, apply, database_url_of, link, png, raw, review_app, review_database_url, review_engine,  # noqa: F401
                             review_settings, reviewer)

from clippings.cli import main
from clippings.data.dataset import load_dataset
from clippings.review.labels import NoReviewedClippings, export_labels, split_of
from clippings.services.schemas import CorrectionRef

pytestmark = pytest.mark.integration


def _stream(engine):
    apply(engine, *(raw(c, image=png((30 * i, 60, 90))) for i, c in enumerate("abcdefg")), raw("t", "text only"),
          link("a"), link("b", "e-a", matched="a", sim=0.9), link("c", "e-a", matched="a", sim=0.87),
          link("d"), link("e", "e-d", matched="d", sim=0.95), link("f"), link("g"), link("t", "e-g", matched="g", sim=0.9))


def test_export_round_trip(review_engine, reviewer, review_database_url, tmp_path):
    client, token = reviewer
    _stream(review_engine)
    client.post("/reject/c", data={"csrf_token": token})  # c leaves e-a for an entity of its own
    client.post("/merge/d", data={"csrf_token": token, "target_id": "f"})  # e-d and e-f become one
    client.post("/confirm/t", data={"csrf_token": token})
    out = tmp_path / "labels"
    assert main(["labels", "export", "--out", str(out), "--database-url", review_database_url]) == 0
    ds = load_dataset(out)
    entity = {r.id: r.entity for r in ds.records}
    assert set(entity) == set("abcdefgt")  # touched, and every member of the entities involved
    assert entity["a"] == entity["b"] != entity["c"]
    assert entity["d"] == entity["e"] == entity["f"]
    assert entity["g"] == entity["t"] and len(set(entity.values())) == 4
    for r in ds.records:
        assert r.split == split_of(r.entity) and (r.image is not None) == (r.id != "t")
    summary = json.loads((out / "labels.json").read_text())
    assert summary["records"] == 8 and summary["entities"] == 4 and summary["corrections"] == 3
    assert sum(summary["splits"].values()) == 8
    with pytest.raises(Exception, match="not empty"):
        export_labels(review_database_url, out)


def test_corrections_the_linker_applied_are_not_applied_twice(review_engine, reviewer, review_database_url, tmp_path):
    from sqlalchemy import select

    from clippings.review.tables import corrections

    client, token = reviewer
    _stream(review_engine)
    client.post("/reject/c", data={"csrf_token": token})
    with review_engine.connect() as conn:
        row = conn.execute(select(corrections)).one()
    ref = CorrectionRef(id=str(row.id), action="reject", reviewer="ada", at_ms=1)
    apply(review_engine, link("c", "e-c", correction=ref), link("h", "e-c", matched="c", sim=0.9))  # h joins c later
    apply(review_engine, raw("h", "a later reprint"))
    export_labels(review_database_url, tmp_path / "out")
    entity = {r.id: r.entity for r in load_dataset(tmp_path / "out").records}
    assert entity["c"] == entity["h"] == "e-c" and entity["a"] == entity["b"] == "e-a"


def test_the_splits_are_stable_and_about_70_15_15():
    counts = {"train": 0, "val": 0, "test": 0}
    for i in range(4000):
        counts[split_of(f"e-{i}")] += 1
    assert split_of("e-1") == split_of("e-1")
    assert 0.66 < counts["train"] / 4000 < 0.74 and 0.12 < counts["val"] / 4000 < 0.18


def test_nothing_reviewed_is_a_clear_error(review_engine, review_database_url, tmp_path, capsys):
    _stream(review_engine)
    with pytest.raises(NoReviewedClippings, match="no corrections"):
        export_labels(review_database_url, tmp_path / "x")
    assert main(["labels", "export", "--out", str(tmp_path / "y"), "--database-url", review_database_url]) == 2
    assert "review some decisions first" in capsys.readouterr().err



@pytest.fixture
def unmigrated_database_url():
    """A database the review page never ran on: no tables at all."""
    import psycopg

    name = f"review_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield database_url_of(name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_the_review_page_never_ran_on_is_a_clear_error(unmigrated_database_url, tmp_path, capsys):
    """A new user's first `labels export`, before `clippings review` made the tables: one line
    that says what to run, not a traceback about a missing relation; no output folder."""
    assert main(["labels", "export", "--out", str(tmp_path / "y"), "--database-url", unmigrated_database_url]) == 2
    err = capsys.readouterr().err
    assert "no review tables" in err and "clippings review" in err and "Traceback" not in err
    assert not (tmp_path / "y").exists()


def test_a_database_that_does_not_answer_is_a_clear_error(tmp_path, capsys):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    assert main(["labels", "export", "--out", str(tmp_path / "y"), "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the review database" in err and "Traceback" not in err

def test_migrate_command(review_database_url, capsys):
    assert main(["review", "migrate", "--database-url", review_database_url]) == 0
    assert "revision 0001" in capsys.readouterr().out
