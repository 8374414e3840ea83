"""The streaming services against the real broker and real Redis, with the shipped model.

End to end on the labelled sample feed, dead letters for each kind of bad input, two
embedders in one group, a linker killed with SIGKILL, a broker paused past the client
timeouts, and a Redis restart: every clipping ends up linked exactly once, and the online
entities equal offline single-linkage clustering of the same vectors.
"""

from __future__ import annotations

import io
import json
import signal
import threading
import time
import urllib.request
import uuid

import numpy as np
import pytest
from confluent_kafka import Producer
from PIL import Image
from stream_checks import (assert_linked_exactly_once, client, committed_offsets, first_vectors, links_by_id,
                           manifest_cuts, metric, mixed_feed, sample_events, wait_for)

from clippings.data.dataset import load_dataset
from clippings.evaluation.linking import single_linkage
from clippings.runtime.manifest import Manifest
from clippings.runtime.probability import match_probability, reference_cuts
from clippings.services.local.replay import publish
from clippings.services.schemas import DlqRecord, EmbeddedClipping, LinkEvent, RawClipping
from clippings.services.local.stack import RedisServer
from clippings.services.linker.store import RedisState, redis_client

pytestmark = pytest.mark.integration


def test_sample_feed_end_to_end(run_service, kafka_bootstrap, topics, topic_reader, sample_feed,
                                news_model, redis_url, redis_prefix):
    from clippings.runtime.onnx_model import OnnxEmbedder
    from clippings.services.local.tail import LinkTally

    embedder = run_service("embedder")
    linker = run_service("linker")
    events, labels = sample_events(sample_feed)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    state = RedisState(redis_client(redis_url), redis_prefix)
    cuts = manifest_cuts(news_model)
    links = assert_linked_exactly_once(topic_reader, topics, set(labels), state, cuts, 90)

    # The flags are right: a clipping is a duplicate exactly when a clipping of its cluster was
    # linked before it, the clusters being offline single linkage of the same vectors.
    records = sorted(topic_reader(topics.links, lambda recs: len(recs) >= len(labels)),
                     key=lambda m: (m.partition(), m.offset()))  # decision order
    decided = [LinkEvent.model_validate_json(m.value()) for m in records]
    streamed = first_vectors(topic_reader(topics.embedded, lambda recs: len(recs) >= len(labels)))
    cluster = dict(zip(streamed, single_linkage(np.stack(list(streamed.values())), cuts.dedup)))  # all complete
    seen: set[int] = set()
    for link in decided:
        assert link.is_duplicate == (cluster[link.id] in seen), link
        seen.add(cluster[link.id])
    tally = LinkTally(labels=labels)
    for link in decided:
        tally.add(link)
    # ... and the labels agree with every flag: the shipped model gets the whole sample feed right.
    assert len(labels) == 44
    assert (tally.flags_correct, tally.unlabelled, tally.repeats) == (len(labels), 0, 0)
    assert all(len(p) == 1 for p in links.values())  # nothing was re-emitted in a clean run

    # The streamed vectors are the ones offline evaluation computes.
    ds = load_dataset(sample_feed)
    offline = OnnxEmbedder(news_model).embed([Image.open(r.image) if r.image else None for r in ds.records],
                                             [r.text for r in ds.records])
    cos = np.einsum("nd,nd->n", offline, np.stack([streamed[r.id] for r in ds.records]))
    assert cos.min() > 0.999

    # Each event's match probability is the one `clippings eval` reads off the manifest's curve
    # for the same pair of offline vectors (the sample feed's clippings are all complete).
    manifest = Manifest.load(news_model)
    row = {r.id: i for i, r in enumerate(ds.records)}
    with_partner = [link for link in decided if link.neighbours]
    assert {link.id for link in decided if link.is_duplicate} <= {link.id for link in with_partner}
    for link in with_partner:
        partner = link.matched_id or link.neighbours[0].id
        pair_cos = float(offline[row[link.id]] @ offline[row[partner]])
        want = match_probability(pair_cos, reference_cuts(manifest)[0], manifest.match_probability)
        assert link.probability == pytest.approx(want, abs=1e-4), link

    port_e, port_l = embedder.service.http.port, linker.service.http.port
    assert metric(port_e, 'clippings_events_out_total{stage="embedder"}') == len(labels)
    assert metric(port_l, 'clippings_events_out_total{stage="linker"}') == len(labels)
    assert metric(port_l, "clippings_duplicates_flagged_total") == tally.duplicates
    assert metric(port_l, "clippings_entities_created_total") - metric(port_l, "clippings_entities_merged_total") \
        == state.entity_count()
    assert metric(port_l, "clippings_end_to_end_seconds_count") == len(labels)
    assert metric(port_e, "clippings_inference_seconds_count") >= 1
    version = json.loads((news_model / "manifest.json").read_text())["version"]
    assert metric(port_e, "clippings_model_info{") == 1 and metric(port_l, "clippings_model_info{") == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port_e}/metrics", timeout=5) as resp:
        assert f'version="{version}"' in resp.read().decode()
    vectors = sum(metric(port_l, f'clippings_index_vectors{{block="default",partition="{p}"}}') or 0 for p in (0, 1))
    assert vectors == len(labels)
    wait_for(lambda: metric(port_e, f'clippings_consumer_lag{{partition="0",topic="{topics.raw}"}}') == 0
             and metric(port_l, 'clippings_ready{stage="linker"}') == 1, 10, "lag and readiness metrics")


def png(size, color=(90, 90, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_the_embedder_assembles_its_batch_as_eval_does(news_model, sample_feed):
    """The service preprocesses images in its decode pool, then OnnxEmbedder.assemble: the same
    arrays as OnnxEmbedder.prepare (eval, export) gives for the same clippings."""
    from clippings.runtime.onnx_model import OnnxEmbedder
    from clippings.runtime.preprocess import prepare_image

    emb = OnnxEmbedder(news_model)
    records = load_dataset(sample_feed).records[:6]
    images = [Image.open(r.image) if r.image else None for r in records]
    images[1] = None  # a clipping without an image: zeros, and absent for pooling
    texts = [r.text or "" for r in records]
    served = emb.assemble([None if img is None else prepare_image(img, emb.preprocess) for img in images], texts)
    for got, want in zip(served, emb.prepare(images, texts)):
        np.testing.assert_array_equal(got, want)
    assert served[1][1] == 0 and served[1].sum() == len(records) - sum(img is None for img in images)


def test_dead_letters_for_each_kind_of_bad_input(run_service, kafka_bootstrap, topics, topic_reader,
                                                 news_model, tmp_path):
    noise = io.BytesIO()
    Image.effect_noise((300, 300), 80).convert("RGB").save(noise, format="PNG")  # incompressible
    outside = tmp_path / "outside.png"
    outside.write_bytes(png((20, 20)))
    run_service("embedder", image_inline_max_bytes=50_000, image_max_pixels=1_000_000,
                image_file_roots=[tmp_path / "allowed"])
    run_service("linker")
    raw = {
        "schema": b'{"text": "a record without an id"}',
        "not_json": b"\x00\x01 not json at all",
        "empty": RawClipping(id="bad-empty", text="  ").to_bytes(),
        "image_too_large": RawClipping(id="bad-large", image=noise.getvalue()).to_bytes(),
        "image_undecodable": RawClipping(id="bad-bytes", image=b"GIF89a but not really").to_bytes(),
        "decompression_bomb": RawClipping(id="bad-bomb", image=png((1500, 1000))).to_bytes(),
        "image_fetch_failed": RawClipping(id="bad-uri", image_uri=outside.as_uri()).to_bytes(),
        "good": RawClipping(id="good-1", text="FLOOD WATERS RISE -- Residents leave their homes.").to_bytes(),
    }
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for name, value in raw.items():
        p.produce(topics.raw, value=value, key=name.encode(), headers=[("trace", name.encode())])
    # Bad records on the linker's input too: another model's vector, a broken vector, broken JSON.
    dim = Manifest.load(news_model).served_dim
    version = json.loads((news_model / "manifest.json").read_text())["version"]
    unit = np.zeros(dim, np.float32)
    unit[0] = 1
    emb = dict(block="default", model="x", dim=dim, has_image=False, has_text=True,
               origin={"topic": topics.raw, "partition": 0, "offset": 0}, raw_ts_ms=1, embedded_ts_ms=1)
    linker_bad = {
        "model_mismatch": EmbeddedClipping(id="bad-model", model_version="other", vector=EmbeddedClipping.pack(unit), **emb),
        "vector_invalid": EmbeddedClipping(id="bad-vector", model_version=version,
                                           vector=EmbeddedClipping.pack(unit * np.float32("nan")), **emb),
    }
    for name, ev in linker_bad.items():
        p.produce(topics.embedded, value=ev.to_bytes(), key=b"default")
    p.produce(topics.embedded, value=b'{"id": "half a record"', key=b"default")
    p.flush(10)

    dead = topic_reader(topics.dlq, lambda recs: len(recs) >= 10, 60)
    by_reason: dict[str, list] = {}
    for m in dead:
        rec = DlqRecord.from_headers(m.headers())
        by_reason.setdefault(rec.reason, []).append((rec, m))
    assert sorted(by_reason) == sorted(["schema", "empty", "image_too_large", "image_undecodable",
                                        "decompression_bomb", "image_fetch_failed", "model_mismatch",
                                        "vector_invalid"])
    assert len(by_reason["schema"]) == 3  # no id, not JSON (embedder), broken JSON (linker)
    for reason, entries in by_reason.items():
        for rec, m in entries:
            assert rec.origin.topic in (topics.raw, topics.embedded) and rec.detail
            if rec.origin.topic == topics.raw:
                key = m.key().decode()
                assert m.value() == raw[key]  # the original bytes, untouched
                assert ("trace", key.encode()) in m.headers()  # and its headers
                assert rec.stage == "embedder"
            else:
                assert rec.stage == "linker"
    assert by_reason["model_mismatch"][0][0].clipping_id == "bad-model"
    # ... and the stream went on: the good clipping is linked.
    links = links_by_id(topic_reader(topics.links, lambda recs: len(recs) >= 1, 60))
    assert set(links) == {"good-1"}


def test_two_embedders_share_one_group(run_service, kafka_bootstrap, topics, topic_reader, sample_feed,
                                       news_model, redis_url, redis_prefix):
    first = run_service("embedder", kafka_client_id="embedder-a")
    second = run_service("embedder", kafka_client_id="embedder-b")
    run_service("linker")
    wait_for(lambda: first.service.assigned and second.service.assigned
             and len(first.service.assigned | second.service.assigned) == 4, 60, "both embedders assigned")
    assert not first.service.assigned & second.service.assigned
    events = mixed_feed(sample_feed, 120, seed=2)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert_linked_exactly_once(topic_reader, topics, {e.id for e in events}, state, manifest_cuts(news_model))
    counts = [metric(st.service.http.port, 'clippings_events_in_total{stage="embedder"}') for st in (first, second)]
    assert min(counts) > 0 and sum(counts) == len(events)


def test_linker_killed_with_sigkill_loses_nothing_and_assigns_nothing_twice(
        run_service, spawn_service, kafka_bootstrap, topics, topic_reader, sample_feed, news_model,
        redis_url, redis_prefix, tmp_path):
    from clippings.services.local.stack import wait_ready

    run_service("embedder")
    group = f"linker-{uuid.uuid4().hex[:8]}"
    snap_env = {"CLIPPINGS_SNAPSHOT_EVERY_EVENTS": "25", "CLIPPINGS_SNAPSHOT_INTERVAL_S": "1",
                "CLIPPINGS_GROUP_ID": group}
    first = spawn_service("linker", "linker-a", snap_env)
    wait_ready([first], 90)
    events = mixed_feed(sample_feed, 150, seed=3)
    feeder = threading.Thread(target=publish, args=(client(kafka_bootstrap, topics), events),
                              kwargs=dict(rate=15, progress=False))
    feeder.start()
    linked = 'clippings_events_out_total{stage="linker"}'
    wait_for(lambda: (metric(first.metrics_port, linked) or 0) >= 40, 60, "40 links")
    first.proc.send_signal(signal.SIGKILL)  # mid-stream: about 100 clippings still to come
    first.proc.wait(10)
    committed = committed_offsets(kafka_bootstrap, group, topics.embedded)  # what the dead one got to commit
    second = spawn_service("linker", "linker-b", snap_env)
    wait_ready([second], 90)
    feeder.join(60)
    state = RedisState(redis_client(redis_url), redis_prefix)
    links = assert_linked_exactly_once(topic_reader, topics, {e.id for e in events}, state,
                                       manifest_cuts(news_model))
    # Repeats only from the uncommitted window: a decision whose input lies below the committed
    # offset was acknowledged before the kill, and is not emitted again.
    for payloads in links.values():
        origin = LinkEvent.model_validate_json(payloads[0]).origin
        if origin.offset < committed[origin.partition]:
            assert len(payloads) == 1, (origin, committed, len(payloads))
    # The second linker started from the first one's snapshot and replayed the rest.
    restored = [int(line.split("snapshot_offset=")[1].split()[0])
                for line in second.log_path.read_text().splitlines() if "event=assigned" in line]
    assert any(0 < offset < len(events) for offset in restored), restored

    # SIGTERM: finish, snapshot, commit, exit 0.
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(30) == 0
    log_text = second.log_path.read_text()
    assert "event=draining" in log_text and "event=stopped" in log_text
    snaps = list((tmp_path / "snapshots").glob(f"{topics.embedded}/*/CURRENT"))
    covered = sum(int(p.read_text().split("-")[1]) for p in snaps)  # snap-<next offset>-<nonce>
    assert covered == len(topic_reader(topics.embedded))  # the final snapshots cover every record


def test_broker_paused_past_the_client_timeouts(broker, spawn_service, kafka_bootstrap, topics, topic_reader,
                                                sample_feed, news_model, redis_url, redis_prefix):
    from clippings.services.local.stack import wait_ready

    env = {"CLIPPINGS_KAFKA_SOCKET_TIMEOUT_MS": "5000"}
    services = [spawn_service("embedder", env=env), spawn_service("linker", env=env)]
    wait_ready(services, 90)
    events = mixed_feed(sample_feed, 90, seed=4)
    feeder = threading.Thread(target=publish, args=(client(kafka_bootstrap, topics), events),
                              kwargs=dict(rate=10, progress=False))
    feeder.start()
    time.sleep(3)  # some before ...
    broker.pause()
    try:
        time.sleep(12)  # ... during (longer than the session and socket timeouts) ...
    finally:
        broker.resume()
    feeder.join(120)  # ... and after
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert_linked_exactly_once(topic_reader, topics, {e.id for e in events}, state, manifest_cuts(news_model), 180)
    assert all(s.proc.poll() is None for s in services)  # rode it out, no restart needed


def test_redis_restart_mid_stream(spawn_service, kafka_bootstrap, topics, topic_reader, sample_feed,
                                  news_model, redis_prefix, tmp_path):
    from clippings.services.local.stack import wait_ready

    own = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        env = {"CLIPPINGS_REDIS_URL": own.url, "CLIPPINGS_REDIS_SOCKET_TIMEOUT_S": "2"}
        services = [spawn_service("embedder"), spawn_service("linker", env=env)]
        wait_ready(services, 90)
        events = mixed_feed(sample_feed, 90, seed=5)
        feeder = threading.Thread(target=publish, args=(client(kafka_bootstrap, topics), events),
                                  kwargs=dict(rate=10, progress=False))
        feeder.start()
        linked = 'clippings_events_out_total{stage="linker"}'
        wait_for(lambda: (metric(services[1].metrics_port, linked) or 0) >= 20, 60, "20 links")
        own.kill()  # SIGKILL mid-stream, 70 clippings still to come
        time.sleep(4)
        own.start()
        feeder.join(60)
        state = RedisState(redis_client(own.url), redis_prefix)
        assert_linked_exactly_once(topic_reader, topics, {e.id for e in events}, state, manifest_cuts(news_model))
        assert all(s.proc.poll() is None for s in services)
        assert "redis_unavailable" in services[1].log_path.read_text()
        assert "redis_state_lost" not in services[1].log_path.read_text()  # with appendonly nothing was lost
        assert services[1].ready()
    finally:
        own.stop()
