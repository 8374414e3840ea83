"""Reviewers' labels back into the model: corrections in the review database -> `clippings labels
export` -> `clippings train --labels --init news` -> `clippings export` -> `clippings eval`, on
the sample feed's clippings (a small round trip; docs/review.md has the figures of a larger one).
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
import torch
from review_fixtures import (apply, link, raw, review_app, review_database_url, review_engine,  # noqa: F401
                             review_settings, reviewer)

from clippings.cli import main
from clippings.data.dataset import load_dataset

pytestmark = pytest.mark.integration


def _decisions(sample_feed) -> tuple[list, str, str]:
    """Raw events and link events for the sample feed as a linker with one mistake would decide:
    every clipping joins the first of its entity, except one put into another entity.
    -> (events, the misplaced clipping, a clipping of its true entity)."""
    records = load_dataset(sample_feed).records
    by_entity = defaultdict(list)
    for r in records:
        by_entity[r.entity].append(r)
    groups = [g for g in by_entity.values() if len(g) >= 2]
    wrong, home, other = groups[0][1], groups[0][0], groups[1][0]
    events = []
    for offset, r in enumerate(records):
        events.append(raw(r.id, r.text, image=r.image.read_bytes()))
        founder = by_entity[r.entity][0]
        if r is wrong:
            events.append(link(r.id, f"e-{other.id}", matched=other.id, sim=0.86, offset=offset))
        elif r is founder:
            events.append(link(r.id, offset=offset))
        else:
            events.append(link(r.id, f"e-{founder.id}", matched=founder.id, sim=0.95, offset=offset))
    return events, wrong.id, home.id


def test_reviewed_labels_fine_tune_the_shipped_model(review_engine, reviewer, review_database_url, sample_feed,
                                                      tmp_path, capsys):
    events, wrong, home = _decisions(sample_feed)
    apply(review_engine, *events)
    client, token = reviewer
    assert client.post(f"/reject/{wrong}", data={"csrf_token": token, "target_id": home}).status_code == 302
    for r in load_dataset(sample_feed).records:  # the reviewer went through every other decision
        if r.id != wrong:
            client.post(f"/confirm/{r.id}", data={"csrf_token": token})

    labels = tmp_path / "labels"
    assert main(["labels", "export", "--out", str(labels), "--database-url", review_database_url]) == 0
    ds = load_dataset(labels)
    truth = {r.id: r.entity for r in load_dataset(sample_feed).records}
    exported = {r.id: r.entity for r in ds.records}
    assert set(exported) == set(truth)
    assert exported[wrong] == exported[home]  # the reject is in the labels
    same = {(a, b) for a in truth for b in truth if truth[a] == truth[b]}
    assert same == {(a, b) for a in exported for b in exported if exported[a] == exported[b]}
    assert ds.split("train") and ds.split("val") and ds.split("test")

    run, model = tmp_path / "run", tmp_path / "model"
    assert main(["train", "--labels", str(labels), "--init", "news", "--out", str(run),
                 "--stage1-epochs", "0", "--stage2-epochs", "1", "--classes-per-batch", "4", "--instances", "2",
                 "--threads", "1", "--device", "cpu"]) == 0
    ckpt = torch.load(run / "best.pt", weights_only=False)
    assert ckpt["train_config"]["val_split"] == "val" and ckpt["train_config"]["val_data"] == str(labels)
    assert main(["export", str(run), "--out", str(model)]) == 0
    manifest = json.loads((model / "manifest.json").read_text())
    shipped = json.loads((sample_feed.parent / "models" / "news" / "manifest.json").read_text())
    assert manifest["version"] != shipped["version"] and manifest["image_weight"] is not None
    assert manifest["preset"] == shipped["preset"] == "lede-grid-trunk"  # no --preset: the one news was trained with

    capsys.readouterr()
    for name in ("news", str(model)):  # before and after, on the labels' test split (thresholds tuned on val)
        assert main(["eval", str(labels), "--model", name, "--json"]) == 0
        scores = json.loads(capsys.readouterr().out)
        assert scores["task"] == "dedup" and scores["n"] == len(ds.split("test"))
        assert scores["model"]["version"] == (shipped if name == "news" else manifest)["version"]
