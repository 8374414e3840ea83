"""A model with text evidence through the real broker and Redis: the embedder publishes the
served vectors (pooled + the captions' character pairs), the linker indexes them, and its
entities are offline single linkage of what `clippings eval` computes for the same clippings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score
from stream_checks import client, first_vectors, sample_events

from clippings.data.dataset import load_dataset
from clippings.evaluation.linking import single_linkage
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.services.linker.store import RedisState, redis_client
from clippings.services.local.replay import publish
from clippings.services.schemas import LinkEvent

pytestmark = pytest.mark.integration


@pytest.fixture
def text_model(news_model, tmp_path):
    import shutil

    out = tmp_path / "news-text"
    shutil.copytree(news_model, out)
    m = Manifest.load(out)
    m.model_copy(update={"text_evidence": {"weight": 0.3, "dim": 256}, "version": f"{m.version}-text"}).save(out)
    return out


def test_linker_links_the_served_vectors_as_eval_clusters_them(run_service, topics, topic_reader, kafka_bootstrap,
                                                              sample_feed, text_model, redis_url, redis_prefix):
    run_service("embedder", model=str(text_model))
    run_service("linker", model=str(text_model))
    events, labels = sample_events(sample_feed)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    records = topic_reader(topics.links, lambda recs: len(recs) >= len(labels), 120)
    decided = [LinkEvent.model_validate_json(m.value()) for m in records]
    assert {d.id for d in decided} == set(labels)

    emb = OnnxEmbedder(text_model)
    ds = load_dataset(sample_feed)
    offline = emb.embed([Image.open(r.image) if r.image else None for r in ds.records], [r.text for r in ds.records])
    assert offline.shape[1] == emb.manifest.served_dim == OnnxEmbedder("news").manifest.served_dim + 256
    streamed = first_vectors(topic_reader(topics.embedded, lambda recs: len(recs) >= len(labels)))
    assert np.einsum("nd,nd->n", offline, np.stack([streamed[r.id] for r in ds.records])).min() > 0.999

    cut = emb.manifest.thresholds["dedup"]
    entities = RedisState(redis_client(redis_url), redis_prefix).current_entities([r.id for r in ds.records])
    clusters = single_linkage(offline, cut)
    assert adjusted_rand_score(clusters, [entities[r.id] for r in ds.records]) == 1.0
    assert any(d.is_duplicate for d in decided) and all(d.similarity is None or d.similarity >= cut - 1e-6
                                                        for d in decided)


@pytest.fixture
def cuts_model(news_model, tmp_path):
    import shutil

    out = tmp_path / "news-cuts"
    shutil.copytree(news_model, out)
    m = Manifest.load(out)
    th = {**m.thresholds, "text_only": 0.6, "image_only": 0.95}
    m.model_copy(update={"thresholds": th, "version": f"{m.version}-cuts"}).save(out)
    return out


def test_linker_holds_clippings_missing_a_photo_to_the_manifests_cut(run_service, topics, topic_reader, kafka_bootstrap,
                                                                    sample_feed, cuts_model, redis_url, redis_prefix):
    """A third of a mixed feed has lost its photo: the linker's entities are offline single
    linkage of the streamed vectors with the manifest's pair cuts, which differ from one cut."""
    from clippings.evaluation.linking import single_linkage
    from clippings.runtime.modality import pattern_codes
    from clippings.services.schemas import EmbeddedClipping
    from stream_checks import mixed_feed

    run_service("embedder", model=str(cuts_model))
    run_service("linker", model=str(cuts_model))
    events = mixed_feed(sample_feed, 120, seed=7)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    ids = {e.id for e in events}
    topic_reader(topics.links, lambda recs: len({LinkEvent.model_validate_json(m.value()).id for m in recs}) >= len(ids), 120)
    embedded = {}
    for m in topic_reader(topics.embedded, lambda recs: len(recs) >= len(ids)):
        ev = EmbeddedClipping.model_validate_json(m.value())
        embedded.setdefault(ev.id, ev)
    order = sorted(ids)
    vectors = np.stack([embedded[c].array() for c in order])
    codes = pattern_codes(np.array([embedded[c].has_image for c in order], np.float32),
                          np.array([embedded[c].has_text for c in order], np.float32))
    assert (codes == 1).sum() >= 20
    th = Manifest.load(cuts_model).thresholds
    entities = RedisState(redis_client(redis_url), redis_prefix).current_entities(order)
    offline = single_linkage(vectors, th["dedup"], codes, th["text_only"], th["image_only"])
    assert adjusted_rand_score(offline, [entities[c] for c in order]) == 1.0
    assert adjusted_rand_score(offline, single_linkage(vectors, th["dedup"])) < 1.0
