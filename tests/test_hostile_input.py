"""Hostile input against the real embedder and linker processes, the real broker and Redis.

About 55 kinds of bad or odd raw records (tests/hostile_records.py lists them with the outcome
each must have), each followed in its partition by a real clipping of the sample feed. Every
bad record must reach the DLQ with its reason and a detail that gives away no path, address,
port, errno text or the bad value; every good and every odd-but-valid one must be linked; no
service may die, log a traceback or write a raw control character to its log; the embedder's
memory stays bounded; the local HTTP servers named in the records are never connected to.
A second test opts loopback in, so a server that drips one byte every 2 s is fetched from: the
per-fetch deadline must end it while the clippings behind it are linked.

Every problem found is listed, kind by kind, in one failure message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from clippings.data.dataset import load_dataset
from clippings.services.local.replay import raw_event
from clippings.services.local.stack import wait_ready
from clippings.services.schemas import DlqRecord, LinkEvent
from hostile_records import ALLOWED_HTTP_HOSTS, LINKED, Hostile, Targets, hostile_records, leaks, record

pytestmark = pytest.mark.integration

RSS_LIMIT = 1_000_000_000  # the embedder and its children; about 0.16 GB measured with the shipped model
OUTCOME_WAIT_S = 60.0  # every record decided this long after the last was published
PARTITIONS = 4  # of the raw topic (conftest.topics)


# -- local servers the records point at; they count the connections they get -------------------
class CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True


def image_server(body: bytes) -> CountingServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = CountingServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class SlowDrip:
    """Answers every connection with an image, one byte every 2 s."""

    body: bytes
    connections: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    sock: socket.socket = field(default_factory=socket.socket)

    def start(self) -> "SlowDrip":
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.body) + self.body
        with conn:
            for i in range(len(reply)):
                if self.stop.wait(2.0):
                    return
                try:
                    conn.sendall(reply[i:i + 1])
                except OSError:
                    return


@pytest.fixture
def local_servers(sample_feed):
    body = next((sample_feed / "images").glob("*.jpg")).read_bytes()
    fast, slow = image_server(body), SlowDrip(body).start()
    yield fast, slow
    fast.shutdown()
    fast.server_close()
    slow.stop.set()
    slow.sock.close()


# -- the embedder's memory, sampled while the records go through ---------------------------------
class MemoryWatch(threading.Thread):
    """Peak RSS of a process and its children; past the limit the process is killed, so a
    runaway read cannot take this shared machine down with it."""

    def __init__(self, proc, limit: int):
        super().__init__(daemon=True)
        self.proc, self.limit, self.peak, self.killed = proc, limit, 0, False
        self.halt = threading.Event()

    def run(self) -> None:
        root = psutil.Process(self.proc.pid)
        while not self.halt.wait(0.1) and self.proc.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.killed = True
                self.proc.kill()


# -- building and publishing the feed -----------------------------------------------------------
def make_targets(tmp_path: Path, sample_feed: Path, redis_url: str, fast, slow) -> Targets:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    sample = sorted((sample_feed / "images").glob("*.jpg"))[0]
    shutil.copy(sample, allowed / "good.jpg")
    shutil.copy(sample, outside / "secret.jpg")
    (allowed / "link-out.jpg").symlink_to(outside / "secret.jpg")
    os.mkfifo(allowed / "pipe.png")
    return Targets(allowed=allowed, sample_image=sample, redis_port=urlsplit(redis_url).port or 6379,
                   http_port=fast.server_address[1], slow_port=slow.port)


def good_records(sample_feed: Path, allowed: Path, n: int) -> list[tuple[str, bytes]]:
    """n real clippings; every fourth by a file:// reference under the allowed root."""
    records = load_dataset(sample_feed).records
    out = []
    for i in range(n):
        ev = raw_event(records[i % len(records)], "sample", "default", f"good-{i:02d}-", "inline", 700_000)
        if i % 4 == 3 and ev.image is not None:
            path = allowed / f"good-{i:02d}.jpg"
            path.write_bytes(ev.image)
            ev = ev.model_copy(update={"image": None, "image_uri": path.as_uri(),
                                       "image_sha256": hashlib.sha256(ev.image).hexdigest()})
        out.append((ev.id, ev.to_bytes()))
    return out


def publish(bootstrap: str, topic: str, kinds: list[Hostile], goods: list[tuple[str, bytes]]) -> dict:
    """Each hostile record, then a good one behind it in the same partition -> {(partition, offset): what}."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 16_000_000, "acks": "all"})
    placed: dict = {}
    failed: list[str] = []

    def on_delivery(what):
        def done(err, msg):
            if err is not None:
                failed.append(f"{what}: {err.str()}")
            else:
                placed[(msg.partition(), msg.offset())] = what
        return done

    for i, (h, (gid, good)) in enumerate(zip(kinds, goods)):
        producer.produce(topic, value=h.value, key=h.raw_key, partition=i % PARTITIONS,
                         headers=[("hostile", h.kind.encode())] + h.headers, on_delivery=on_delivery(h))
        producer.produce(topic, value=good, key=gid, partition=i % PARTITIONS, on_delivery=on_delivery(gid))
        producer.poll(0)
    assert producer.flush(60) == 0, "records still unsent after 60 s"
    # A record the broker refuses tests nothing: say so rather than pass without it.
    assert not failed, f"the broker refused test records: {failed}"
    return placed


# -- reading what came out ------------------------------------------------------------------------
@dataclass
class Outcome:
    links: set[str] = field(default_factory=set)
    dead: dict = field(default_factory=dict)  # (partition, offset) of the raw record -> [(DlqRecord, msg)]
    unreadable: list[str] = field(default_factory=list)


def collect(bootstrap: str, topics, want_links: set[str], want_dead: int, services, watch) -> Outcome:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hostile-{os.getpid()}-{time.time_ns()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in (topics.links, topics.dlq)
                     for p in consumer.list_topics(t, timeout=10).topics[t].partitions])
    out, deadline, settle_until = Outcome(), time.monotonic() + OUTCOME_WAIT_S, None
    try:
        while time.monotonic() < (settle_until or deadline):
            for m in consumer.consume(200, 0.2):
                if m.error() is None:
                    _take(out, m, topics)
            done = want_links <= out.links and len(out.dead) >= want_dead
            if done and settle_until is None:
                settle_until = time.monotonic() + 2.0  # anything extra (a good record dead-lettered) shows up now
            if any(s.proc.poll() is not None for s in services) or watch.killed:
                break
    finally:
        consumer.close()
    return out


def _take(out: Outcome, m, topics) -> None:
    if m.topic() == topics.links:
        out.links.add(LinkEvent.model_validate_json(m.value()).id)
        return
    try:
        rec = DlqRecord.from_headers(m.headers())
    except ValueError as exc:
        out.unreadable.append(f"dlq offset {m.offset()}: {str(exc)[:200]}")
        return
    out.dead.setdefault((rec.origin.partition, rec.origin.offset) if rec.origin.topic == topics.raw
                        else ("foreign", rec.origin.topic, rec.origin.offset), []).append((rec, m))


# -- judging it -----------------------------------------------------------------------------------
def judge_kind(h: Hostile, pos, out: Outcome) -> list[str]:
    dead = out.dead.get(pos, [])
    if h.expect == {LINKED}:
        problems = [] if h.clipping_id in out.links else ["not linked"]
        return problems + [f"dead-lettered as {rec.reason}: {rec.detail[:120]!r}" for rec, _ in dead]
    if not dead:
        return [f"no dead letter (expected {'/'.join(sorted(h.expect))})"
                + (", it was linked" if h.clipping_id in out.links else "")]
    problems = []
    for rec, m in dead:
        if rec.reason not in h.expect or rec.stage != "embedder":
            problems.append(f"{rec.stage}/{rec.reason} (expected {'/'.join(sorted(h.expect))}): {rec.detail[:120]!r}")
        problems += [f"detail gives away {what}: {rec.detail[:160]!r}" for what in leaks(rec.detail, h.secrets)]
        if h.clipping_id is not None and rec.clipping_id != h.clipping_id:
            problems.append(f"clipping_id {str(rec.clipping_id)[:40]!r}, expected {h.clipping_id!r}")
        if rec.clipping_id is not None and len(rec.clipping_id) > 512:
            problems.append(f"clipping_id of {len(rec.clipping_id)} chars: no valid id is over 512")
        problems += judge_copy(h, rec, m)
    return problems


def judge_copy(h: Hostile, rec: DlqRecord, m) -> list[str]:
    """The DLQ copy is the record as it was (docs/events.md), but for parts the DLQ record names
    as cut to make it fit one message (a 10 MB value, a 100 KB key)."""
    cut = set(getattr(rec, "truncated", None) or [])
    problems = []
    value_ok = m.value() == h.value or ("value" in cut and h.value is not None and h.value.startswith(m.value() or b""))
    if not value_ok:
        problems.append(f"DLQ copy's value differs ({len(m.value()) if m.value() is not None else None} bytes, "
                        f"sent {len(h.value) if h.value is not None else None}), not declared cut")
    if m.key() != h.raw_key and "key" not in cut:
        problems.append("DLQ copy's key differs, not declared cut")
    sent = [("hostile", h.kind.encode())] + [(k, v) for k, v in h.headers if k != "clippings.dlq"]
    missing = [k for k, v in sent if (k, v) not in (m.headers() or [])]
    if missing and "headers" not in cut:
        problems.append(f"DLQ copy lost headers {missing}, not declared cut")
    return problems


def judge(kinds: list[Hostile], goods: list[tuple[str, bytes]], placed: dict, out: Outcome) -> list[str]:
    where = {what.kind if isinstance(what, Hostile) else what: pos for pos, what in placed.items()}
    problems = [f"{h.kind}: {p}" for h in kinds for p in judge_kind(h, where[h.kind], out)]
    for gid, _ in goods:
        if gid not in out.links:
            problems.append(f"good {gid} (behind {kinds[int(gid[5:7])].kind}): not linked")
        problems += [f"good {gid}: dead-lettered as {rec.reason}: {rec.detail[:120]!r}"
                     for rec, _ in out.dead.get(where[gid], [])]
    stray = [pos for pos in out.dead if pos not in placed]
    problems += [f"DLQ record of unknown origin {pos}: {[r.reason for r, _ in out.dead[pos]]}" for pos in stray]
    problems += out.unreadable
    groups: dict[str, set[str]] = {}
    for h in kinds:
        for rec, _ in out.dead.get(where[h.kind], []) if h.group else []:
            groups.setdefault(h.group, set()).add(rec.detail)
    problems += [f"group {g}: {len(d)} different details tell the targets apart: {sorted(d)[:3]}"
                 for g, d in groups.items() if len(d) > 1]
    return problems


def judge_services(services, watch: MemoryWatch) -> list[str]:
    problems = []
    for svc in services:
        if svc.proc.poll() is not None:
            problems.append(f"{svc.name} exited with status {svc.proc.returncode}")
        log = svc.log_path.read_bytes()
        if b"Traceback" in log:
            problems.append(f"{svc.name} logged a traceback:\n{svc.log_tail(15)}")
        for char, name in ((b"\x1b", "ESC"), (b"\r", "CR"), (b"\x07", "BEL")):
            if char in log:
                problems.append(f"{svc.name} log holds a raw {name} byte (log injection)")
    if watch.killed or watch.peak > RSS_LIMIT:
        problems.append(f"embedder RSS reached {watch.peak / 1e9:.2f} GB (limit {RSS_LIMIT / 1e9:.1f} GB; killed)")
    return problems


def judge_metrics(embedder, out: Outcome) -> list[str]:
    """clippings_events_failed_total counts every dead letter by reason, as the DLQ holds them."""
    counted: Counter = Counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{embedder.metrics_port}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("clippings_events_failed_total{") and 'stage="embedder"' in line:
                counted[line.split('reason="')[1].split('"')[0]] += int(float(line.rsplit(" ", 1)[1]))
    dead = Counter(rec.reason for pos, entries in out.dead.items() if pos[0] != "foreign" for rec, _ in entries)
    return [] if +counted == dead else [f"failed-events metric {dict(counted)} != DLQ {dict(dead)}"]


def embedder_env(targets: Targets, **extra: str) -> dict[str, str]:
    return {
        "CLIPPINGS_IMAGE_FILE_ROOTS": json.dumps([str(targets.allowed), "/dev"]),
        "CLIPPINGS_IMAGE_HTTP_ALLOWED": "true",
        "CLIPPINGS_IMAGE_HTTP_HOSTS": json.dumps(list(ALLOWED_HTTP_HOSTS)),
        "CLIPPINGS_IMAGE_FETCH_TIMEOUT_S": "3",
        "CLIPPINGS_METRICS_HOST": "127.0.0.1",
    } | {f"CLIPPINGS_{k.upper()}": v for k, v in extra.items()}


def run_feed(kinds: list[Hostile], env: dict[str, str], spawn_service, kafka_bootstrap, topics, sample_feed,
             targets: Targets) -> list[str]:
    """Start both services, publish the kinds with good records between them -> every problem seen."""
    goods = good_records(sample_feed, targets.allowed, len(kinds))
    services = [spawn_service("embedder", env=env),
                spawn_service("linker", env={"CLIPPINGS_METRICS_HOST": "127.0.0.1"})]
    wait_ready(services, 120)
    watch = MemoryWatch(services[0].proc, RSS_LIMIT)
    watch.start()
    try:
        placed = publish(kafka_bootstrap, topics.raw, kinds, goods)
        want_links = {gid for gid, _ in goods} | {h.clipping_id for h in kinds if h.expect == {LINKED}}
        out = collect(kafka_bootstrap, topics, want_links, sum(h.expect != {LINKED} for h in kinds), services, watch)
    finally:
        watch.halt.set()
        watch.join(5)
    problems = judge_services(services, watch)
    if services[0].proc.poll() is None:
        problems += judge_metrics(services[0], out)
    return problems + judge(kinds, goods, placed, out)


def test_hostile_records_dead_lettered_and_good_ones_linked(spawn_service, kafka_bootstrap, topics, redis_url,
                                                            sample_feed, local_servers, tmp_path):
    fast, slow = local_servers
    targets = make_targets(tmp_path, sample_feed, redis_url, fast, slow)
    kinds = hostile_records(targets)
    assert len(kinds) >= 30
    problems = run_feed(kinds, embedder_env(targets), spawn_service, kafka_bootstrap, topics, sample_feed, targets)
    for name, server in (("image server", fast), ("slow-drip server", slow)):
        if server.connections:  # loopback on the allow-list is still refused, before connecting
            problems.append(f"the local {name} got {server.connections} connection(s): SSRF, the fetch was not refused")
    assert not problems, f"{len(problems)} problem(s) with hostile input:\n" + "\n".join(problems)


def test_a_slow_image_server_holds_up_no_other_clipping(spawn_service, kafka_bootstrap, topics, redis_url,
                                                        sample_feed, local_servers, tmp_path):
    """Loopback opted in, so the fetch happens: the per-fetch deadline, not the address rule, ends it."""
    fast, slow = local_servers
    targets = make_targets(tmp_path, sample_feed, redis_url, fast, slow)
    uri = f"http://localhost:{slow.port}/slow.jpg"
    kinds = [Hostile(f"slow_drip_{i}", record(id=f"bad-slow-{i}", image_uri=uri, text="a caption"),
                     frozenset({"image_fetch_failed"}), secrets=(uri, str(slow.port)), group="slow",
                     clipping_id=f"bad-slow-{i}") for i in range(PARTITIONS)]
    env = embedder_env(targets, image_http_hosts='["localhost"]', image_http_private_allowed="true")
    problems = run_feed(kinds, env, spawn_service, kafka_bootstrap, topics, sample_feed, targets)
    if not slow.connections:
        problems.append("the slow server was never connected to: the deadline was not what stopped the fetch")
    assert not problems, f"{len(problems)} problem(s) with a slow image server:\n" + "\n".join(problems)
