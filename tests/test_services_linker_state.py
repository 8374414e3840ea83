"""The linker's record in Redis, and what happens when Redis loses it (real Redis servers).

One transaction per batch; a write retried after Redis came back writes the whole batch; the
watermark never goes back; Redis' persistence is checked at start. Lost state (keys deleted
between runs, mid-run, or a Redis restart without an append-only file) is noticed: a log
line, clippings_linker_state_lost_total, /readyz 503 until an operator resolves it.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from clippings.services.linker.decide import DecisionRule, Item, decide_batch
from clippings.services.linker.partition import PartitionState
from clippings.services.schemas import EmbeddedClipping, KafkaPosition
from clippings.services.local.stack import RedisServer, free_port, redis_answers, redis_server_binary
from clippings.services.linker.store import RedisState, redis_client

DIM = 8
TOPIC = "clippings.embedded"


def outcomes_of(n: int, partition: int = 0) -> list:
    """n decisions of unrelated clippings (each founds its entity), as the linker records them."""
    rule = DecisionRule(threshold=0.9, search="range", knn_k=8, neighbours_in_event=3, model_version="v1")
    items = []
    for i in range(n):
        v = np.zeros(DIM, np.float32)
        v[i % DIM] = 1 if i < DIM else -1
        ev = EmbeddedClipping(id=f"c{partition}-{i}", block="b", model="m", model_version="v1", dim=DIM,
                              vector=EmbeddedClipping.pack(v), has_image=False, has_text=True,
                              origin=KafkaPosition(topic="raw", partition=0, offset=i), raw_ts_ms=1, embedded_ts_ms=2)
        items.append(Item(KafkaPosition(topic=TOPIC, partition=partition, offset=i), ev, ev.array()))
    return decide_batch(PartitionState(TOPIC, partition, DIM, "Flat", "v1"), items, {}, rule, now_ms=3)


def test_a_batch_is_recorded_in_one_transaction(redis_url, redis_prefix):
    """Seen from Redis itself (MONITOR): every write of the batch between one MULTI and its EXEC,
    the write-once fields as one HSET per hash, then one SADD per clipping."""
    store = RedisState(redis_client(redis_url), redis_prefix)
    store.ping()
    port = str(store.client.client_info()["addr"].rsplit(":", 1)[1])  # our connection, among other tests'
    watcher = redis_client(redis_url)
    outcomes = outcomes_of(6)
    with watcher.monitor() as monitor:
        store.record(outcomes, {0: 6})
        store.client.echo("end-of-batch")
        ours = []
        while not ours or ours[-1] != "ECHO end-of-batch":
            cmd = monitor.next_command()
            if cmd["client_port"] == port:
                ours.append(cmd["command"])
    ours = [c for c in ours if c.split()[0] not in ("HELLO", "SELECT", "CLIENT")][:-1]
    assert ours[0] == "MULTI" and ours[-1] == "EXEC" and "MULTI" not in ours[1:] and "EXEC" not in ours[:-1]
    assert sum(c.startswith(f"HSET {redis_prefix}:decision ") for c in ours) == 1
    assert [c.split()[0] for c in ours[1:-1]] == ["HSET"] * 4 + ["SADD"] * 6 + ["EVAL"]  # EVAL: the watermark
    assert store.decision_count() == 6
    assert store.current_entities([f"c0-{i}" for i in range(6)]) == {f"c0-{i}": f"e-c0-{i}" for i in range(6)}


def test_a_write_that_timed_out_is_retried_whole(redis_prefix, tmp_path):
    """The transaction's reply does not come in time (writes paused on the server): the retry
    must send the batch again, not an empty transaction."""
    own = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        store = RedisState(redis_client(own.url, socket_timeout_s=1), redis_prefix, timeout_s=60)
        store.ping()
        redis_client(own.url).client_pause(2500, all=False)  # write commands wait 2.5 s
        store.record(outcomes_of(5), {0: 5})
        assert store.decision_count() == 5 and store.watermarks([0]) == {0: 5}
    finally:
        own.stop()



def test_redis_gone_for_longer_than_the_timeout_is_given_up_on():
    """Counted from the first failure, not from each retry: the linker exits (Kubernetes
    restarts it) instead of retrying for ever."""
    from clippings.services.errors import StateStoreUnavailable

    import threading

    store = RedisState(redis_client(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.2), "gone", timeout_s=1.5)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            store.decisions(["c"])
        except BaseException as exc:  # noqa: BLE001 (handed to the test's thread)
            raised.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(15)  # a bounded wait: a store that never gives up fails here, not by hanging the suite
    assert not worker.is_alive(), "still retrying 15 s after Redis went away (timeout_s 1.5)"
    assert isinstance(raised[0], StateStoreUnavailable) and "unreachable for 2s" in str(raised[0])


def test_a_reject_is_recorded_as_the_linker_applied_it(redis_url, redis_prefix):
    """The clipping leaves its entity's members for a new entity, which is its own canonical."""
    from clippings.services.linker.correct import apply_correction
    from clippings.services.schemas import Correction

    rule = DecisionRule(threshold=0.5, search="range", knn_k=8, neighbours_in_event=3, model_version="v1")
    state = PartitionState(TOPIC, 0, DIM, "Flat", "v1")
    vectors = np.eye(DIM, dtype=np.float32)[[0, 0]]  # two copies: one entity
    items = []
    for i, v in enumerate(vectors):
        ev = EmbeddedClipping(id=f"r{i}", block="b", model="m", model_version="v1", dim=DIM,
                              vector=EmbeddedClipping.pack(v), has_image=False, has_text=True,
                              origin=KafkaPosition(topic="raw", partition=0, offset=i), raw_ts_ms=1, embedded_ts_ms=2)
        items.append(Item(KafkaPosition(topic=TOPIC, partition=0, offset=i), ev, ev.array()))
    store = RedisState(redis_client(redis_url), redis_prefix)
    store.record(decide_batch(state, items, {}, rule, now_ms=3), {0: 2})
    assert store.members("e-r0") == {"r0", "r1"}
    c = Correction(id="k1", action="reject", block="b", clipping_id="r1", reviewer="ann", at_ms=5)
    here = KafkaPosition(topic="clippings.corrections", partition=0, offset=0)
    applied = apply_correction(state, c, 2, rule, here, now_ms=9)
    store.record_correction(applied, 0, 2, here, None)
    new = applied.created
    assert store.current_entities(["r0", "r1"]) == {"r0": "e-r0", "r1": new}
    assert store.members("e-r0") == {"r0"} and store.members(new) == {"r1"}
    assert store.client.hget(store.key("canonical"), new).decode() == new

def test_the_watermark_only_rises_and_each_write_reports_what_it_held(redis_url, redis_prefix):
    store = RedisState(redis_client(redis_url), redis_prefix)
    assert store.record([], {0: 40, 1: 7}) == {0: 0, 1: 0}
    assert store.record([], {0: 25, 1: 9}) == {0: 40, 1: 7}  # a replay below: 0 stays at 40
    assert store.record([], {0: 0, 2: 0}) == {0: 40, 2: 0}  # 0: only read
    assert store.watermarks([0, 1, 2]) == {0: 40, 1: 9, 2: 0}


def _server(tmp_path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(tmp_path), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while not redis_answers(url):
        assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
        time.sleep(0.05)
    return proc, url


@pytest.mark.parametrize("args,expected", [
    (("--appendonly", "yes"), ("yes", "")),
    (("--appendonly", "no"), ("no", "")),
    (("--rename-command", "CONFIG", ""), (None, "unknown command")),  # as managed Redis refuses it
])
def test_appendonly_is_read_or_said_unreadable(tmp_path, args, expected):
    proc, url = _server(tmp_path, *args)
    try:
        value, detail = RedisState(redis_client(url), "p").appendonly()
        assert value == expected[0] and expected[1] in detail
    finally:
        proc.kill()
        proc.wait(10)


# -- the linker, with lost state ---------------------------------------------------------------
def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def lost_count(linker) -> float:
    for line in _get(linker.service.http.port, "/metrics")[1].splitlines():
        if line.startswith("clippings_linker_state_lost_total "):
            return float(line.split()[1])
    raise AssertionError("clippings_linker_state_lost_total is not exported")


def wait_until(condition, what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        time.sleep(0.1)


def unready_for_lost_state(linker) -> bool:
    """Up and running but unready for exactly this reason (the other conditions hold)."""
    linker.check()
    if linker.service.http is None:  # still starting
        return False
    return _get(linker.service.http.port, "/readyz") == (503, "not ready: redis_state\n")


def feed(kafka_bootstrap, topics, news_model, rng, ids: list[str], partitions=(0, 1)) -> None:
    from test_services_linker_input import embedded, model_of, produce, unit_rows

    dim, version = model_of(news_model)
    vectors = unit_rows(rng, len(ids), dim)
    produce(kafka_bootstrap, topics.embedded, [(partitions[i % len(partitions)], "b", embedded(cid, "b", v, version))
                                               for i, (cid, v) in enumerate(zip(ids, vectors))])


def lines(caplog, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"event={event} ")]


@pytest.mark.integration
def test_state_lost_between_runs_is_noticed_until_resolved(run_service, kafka_bootstrap, topics, topic_reader,
                                                           news_model, redis_url, redis_prefix, caplog):
    caplog.set_level("INFO")
    rng = np.random.default_rng(20)
    state = RedisState(redis_client(redis_url), redis_prefix)
    first = run_service("linker")
    feed(kafka_bootstrap, topics, news_model, rng, [f"a{i}" for i in range(20)])
    topic_reader(topics.links, lambda recs: len(recs) >= 20, 90)
    first.stop()

    # A restart with Redis intact: ready, nothing reported.
    again = run_service("linker")
    assert lost_count(again) == 0 and not lines(caplog, "redis_state_lost")
    again.stop()

    state.delete_all()  # Redis lost everything the linker recorded
    lost = run_service("linker", wait=False)
    wait_until(lambda: unready_for_lost_state(lost), "unready: redis_state")
    found = lines(caplog, "redis_state_lost")
    assert len(found) == 2 and lost_count(lost) == 2
    for p in (0, 1):
        assert any(f"partition={p} expected_offset=10 found_offset=0 check=assignment" in line for line in found)
    assert sorted(state.lost_marks([0, 1, 2])) == [0, 1]
    # It goes on linking new clippings.
    feed(kafka_bootstrap, topics, news_model, rng, ["new-1"], partitions=(1,))
    topic_reader(topics.links, lambda recs: len(recs) >= 21, 90)
    lost.stop()

    # Restarted, it finds the unresolved finding and stays unready ...
    caplog.clear()
    still = run_service("linker", wait=False)
    wait_until(lambda: unready_for_lost_state(still), "still unready")
    assert len(lines(caplog, "redis_state_lost_unresolved")) == 2 and lost_count(still) == 2
    assert not lines(caplog, "redis_state_lost")  # the same loss is not reported as a new one
    still.stop()

    # ... until an operator resolves it (docs/operations.md#clippingslinkerstatelost).
    state.client.delete(f"{redis_prefix}:state_lost")
    resolved = run_service("linker")
    assert lost_count(resolved) == 0


@pytest.mark.integration
def test_state_lost_mid_run_is_noticed_at_the_next_batch(run_service, kafka_bootstrap, topics, topic_reader,
                                                         news_model, redis_url, redis_prefix, caplog):
    caplog.set_level("INFO")
    rng = np.random.default_rng(21)
    linker = run_service("linker")
    feed(kafka_bootstrap, topics, news_model, rng, [f"m{i}" for i in range(10)])
    topic_reader(topics.links, lambda recs: len(recs) >= 10, 90)
    assert lost_count(linker) == 0
    RedisState(redis_client(redis_url), redis_prefix).delete_all()
    # One record on partition 0 only: its batch checks both partitions.
    feed(kafka_bootstrap, topics, news_model, rng, ["m-after"], partitions=(0,))
    wait_until(lambda: unready_for_lost_state(linker), "unready: redis_state")
    found = lines(caplog, "redis_state_lost")
    assert lost_count(linker) == 2 and len(found) == 2
    assert all("expected_offset=5 found_offset=0 check=batch" in line for line in found)


@pytest.mark.integration
def test_a_redis_restart_without_appendonly_is_noticed(run_service, kafka_bootstrap, topics, topic_reader,
                                                       news_model, redis_prefix, tmp_path, caplog):
    caplog.set_level("INFO")
    rng = np.random.default_rng(22)
    own = RedisServer(tmp_path / "redis", appendonly=False).start()  # Redis' default: no append-only file
    try:
        linker = run_service("linker", redis_url=own.url, redis_socket_timeout_s=2)
        assert any("appendonly=no" in line for line in lines(caplog, "redis_not_durable"))
        feed(kafka_bootstrap, topics, news_model, rng, [f"r{i}" for i in range(10)])
        topic_reader(topics.links, lambda recs: len(recs) >= 10, 90)
        own.kill()
        own.start()  # empty
        feed(kafka_bootstrap, topics, news_model, rng, ["r-after"], partitions=(1,))
        wait_until(lambda: unready_for_lost_state(linker), "unready: redis_state")
        assert lost_count(linker) == 2
        topic_reader(topics.links, lambda recs: len(recs) >= 11, 90)  # and it linked the new one
    finally:
        own.stop()
