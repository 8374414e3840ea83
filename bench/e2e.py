"""End-to-end bench through the broker and Redis: the sustained clippings/s of the whole path,
and the latency from publish to link event at fractions of that rate.

    python -m bench.e2e                          # the default model, 1 embedder, 1 linker
    python -m bench.e2e --env CLIPPINGS_ONNX_THREADS=1 --env CLIPPINGS_MODEL_VARIANT=int8

The real stack (clippings.services.local.stack.LocalStack): a Tansu broker, the Redis at --redis
under a fresh key prefix (removed afterwards), the topics, and `clippings embedder` and
`clippings linker` as child processes. Real clippings (inline images, as `clippings replay`
sends them) are published by a producer in this process; a consumer here reads
clippings.links.

1. warm-up: a few events, until they are linked (the group has joined, the models are warm);
2. burst: events published as fast as possible; the rate at which link events come out while
   the backlog drains (full batches: the best case);
3. sustained: a bisection with short paced probes between a quarter of the burst rate and the
   burst rate, for the highest rate at which the lag does not grow (--rates skips it);
4. paced: for each --fractions f, events at f x the sustained rate for --window seconds
   (or at each of --rates). Latency per clipping = the link record's broker timestamp (set
   when the linker produced it) minus the raw record's (set when this producer sent it):
   publish -> link event, split into hops at the timestamps inside the link event. The backlog
   (published - linked) is sampled every second: the lag grows when it climbs through the
   second half of the window or takes long to drain after it.
CPU seconds per clipping of each process come from /proc (psutil) and Redis's INFO.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from bench.common import add_common_args, load_records, machine, pct, results_path, table, write_json


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="news")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="a running Redis (default: %(default)s)")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--embedders", type=int, default=1)
    p.add_argument("--linkers", type=int, default=1)
    p.add_argument("--env", action="append", default=[], metavar="CLIPPINGS_X=V",
                   help="a setting for both services (repeatable)")
    p.add_argument("--records", type=int, default=600, help="distinct clippings cycled through (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--burst", type=int, default=3000, help="events of the capacity phase")
    p.add_argument("--fractions", nargs="+", type=float, default=[0.5, 0.9])
    p.add_argument("--window", type=float, default=40.0, help="seconds of each paced phase")
    p.add_argument("--probes", type=int, default=4, help="bisection steps searching the sustained rate")
    p.add_argument("--probe-window", type=float, default=15.0, help="seconds of each probe")
    p.add_argument("--rates", nargs="+", type=float,
                   help="paced rates (clippings/s) instead of fractions of the sustained rate (no search)")
    p.add_argument("--drain-timeout", type=float, default=180.0)
    add_common_args(p, "e2e")
    args = p.parse_args(argv)
    args.out = results_path(args, "e2e")
    if args.quick:
        args.records, args.warmup, args.burst, args.rates, args.window = 40, 10, 60, [20.0], 3.0
        args.drain_timeout = 60.0
    return args


class LinkReader(threading.Thread):
    """Reads clippings.links from the beginning; keeps, per clipping id, the first link seen."""

    def __init__(self, bootstrap: str, topic: str, fetch_wait_ms: int):
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        # Latency comes from the records' broker timestamps, so how long this reader's fetches
        # wait changes only when it sees them; it reads as the services do (their fetch wait),
        # where 10 ms had cost the broker 0.6 ms of CPU a clipping.
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": fetch_wait_ms})
        self.topic = topic
        # id -> (raw record ts, embedded_ts, linked_ts, link record ts) in ms, and the receive time in s
        self.seen: dict[str, tuple[int, int, int, int, float]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        self.consumer.subscribe([self.topic])
        try:
            while not self.stopping.is_set():
                for m in self.consumer.consume(1000, 0.1):
                    if m.error() is not None:
                        continue
                    link = json.loads(m.value())
                    received = time.time()
                    with self.lock:
                        self.seen.setdefault(link["id"], (link["raw_ts_ms"], link["embedded_ts_ms"],
                                                          link["linked_ts_ms"], m.timestamp()[1], received))
        finally:
            self.consumer.close()

    def count(self, ids: set[str]) -> int:
        with self.lock:
            return sum(1 for i in ids if i in self.seen)

    def wait_for(self, ids: set[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count(ids) == len(ids):
                return True
            time.sleep(0.1)
        return False


class Feed:
    """Pre-serialised raw events (the JSON `clippings replay` sends), fresh ids per phase."""

    def __init__(self, records):
        from clippings.services.local.replay import raw_event

        self.events = [raw_event(r, "bench", "default", "", "inline", 700_000) for r in records]

    def phase(self, name: str, n: int) -> list[tuple[str, bytes]]:
        out = []
        for i in range(n):
            ev = self.events[i % len(self.events)]
            cid = f"{name}-{i}-{ev.id}"
            out.append((cid, ev.model_copy(update={"id": cid}).to_bytes()))
        return out


def publish(producer, topic: str, events: list[tuple[str, bytes]], rate: float | None,
            on_tick=None) -> float:
    """Send at `rate` events/s (None: as fast as possible); -> seconds taken. on_tick(sent) about every second."""
    start = time.monotonic()
    next_tick = start + 1.0
    for i, (cid, value) in enumerate(events):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=value, key=cid)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if on_tick and time.monotonic() >= next_tick:
            on_tick(i + 1)
            next_tick += 1.0
    producer.flush(30)
    return time.monotonic() - start


class CpuMeter:
    """CPU seconds of the stack's processes and of Redis between two reads."""

    def __init__(self, stack, redis_client):
        import psutil

        self.procs = {s.name: psutil.Process(s.proc.pid) for s in stack.services}
        if stack.broker is not None:
            self.procs["broker"] = psutil.Process(stack.broker.proc.pid)
        self.redis = redis_client

    def read(self) -> dict[str, float]:
        out = {}
        for name, p in self.procs.items():
            t = p.cpu_times()
            out[name] = t.user + t.system + t.children_user + t.children_system
        info = self.redis.info("cpu")
        out["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return out

    @staticmethod
    def per_clipping(before: dict, after: dict, n: int) -> dict[str, float]:
        return {f"cpu_ms_per_clipping_{k}": (after[k] - before[k]) * 1e3 / max(n, 1) for k in before}


def capacity_phase(args, producer, topic: str, reader: LinkReader, feed: Feed, meter: CpuMeter) -> dict:
    events = feed.phase("burst", args.burst)
    ids = {cid for cid, _ in events}
    cpu0 = meter.read()
    t0 = time.time()
    publish(producer, topic, events, None)
    published_s = time.time() - t0
    if not reader.wait_for(ids, args.drain_timeout):
        raise SystemExit(f"capacity phase: only {reader.count(ids)} of {len(ids)} linked within {args.drain_timeout}s")
    cpu1 = meter.read()
    with reader.lock:
        received = np.sort([reader.seen[i][4] for i in ids])
    # Conservative: every event from the first publish to the last link, pipeline latency included.
    rate = len(ids) / (received[-1] - t0)
    lo, hi = int(0.1 * len(received)), int(0.9 * len(received)) - 1  # the steady middle of the drain
    row = {"phase": "capacity", "events": len(ids), "publish_s": published_s, "drain_s": received[-1] - t0,
           "linked_per_s": rate, "linked_per_s_middle": (hi - lo) / max(received[hi] - received[lo], 1e-9)}
    return row | meter.per_clipping(cpu0, cpu1, len(ids))


def paced_phase(args, producer, topic: str, reader: LinkReader, feed: Feed, meter: CpuMeter,
                name: str, rate: float, window: float) -> dict:
    events = feed.phase(name, max(1, int(rate * window)))
    ids = [cid for cid, _ in events]
    idset = set(ids)
    backlog: list[tuple[float, int]] = []
    t0 = time.monotonic()
    cpu0 = meter.read()
    publish(producer, topic, events, rate,
            on_tick=lambda sent: backlog.append((time.monotonic() - t0, sent - reader.count(idset))))
    publish_end = time.monotonic()
    held = reader.wait_for(idset, args.drain_timeout)
    drain_after_s = time.monotonic() - publish_end  # about the latency when the path keeps up
    cpu1 = meter.read()
    with reader.lock:
        got = [reader.seen[i] for i in ids if i in reader.seen]
    warm = int(0.1 * len(got))  # the first tenth settles the batching; left out of the latency
    ts = np.array([g[:4] for g in got[warm:]], dtype=np.float64).reshape(-1, 4) / 1e3  # (n, 4) seconds
    lat_link = ts[:, 3] - ts[:, 0]  # publish -> link record produced
    lat_seen = np.array([g[4] for g in got[warm:]]) - ts[:, 0]  # publish -> read here
    hops = {"embed": ts[:, 1] - ts[:, 0], "link": ts[:, 2] - ts[:, 1], "produce": ts[:, 3] - ts[:, 2]}
    half = [(t, b) for t, b in backlog if t >= window / 2]
    slope = float(np.polyfit([t for t, _ in half], [b for _, b in half], 1)[0]) if len(half) >= 3 else float("nan")
    return {
        "phase": name, "rate_target": rate, "events": len(ids), "linked": len(got), "all_linked": held,
        "latency_p50_s": pct(lat_link, 50), "latency_p90_s": pct(lat_link, 90), "latency_p99_s": pct(lat_link, 99),
        "latency_max_s": float(lat_link.max()) if len(lat_link) else float("nan"),
        "received_p50_s": pct(lat_seen, 50), "received_p99_s": pct(lat_seen, 99),
        # where the latency goes: raw -> embedded (consume, embed), embedded -> decided (produce,
        # consume, Redis, decide), decided -> link record produced (Redis write, produce)
        **{f"hop_{k}_p50_s": pct(v, 50) for k, v in hops.items()},
        **{f"hop_{k}_p99_s": pct(v, 99) for k, v in hops.items()},
        "backlog_max": max((b for _, b in backlog), default=0), "backlog_slope_per_s": slope,
        "drain_after_publish_s": drain_after_s,
        # The lag grows when the backlog climbs through the second half of the window, or when
        # the events still queued at the end of it take long to drain.
        "lag_grows": bool(slope > 0.05 * rate or drain_after_s > max(2.0, 0.1 * window) or not held),
    } | meter.per_clipping(cpu0, cpu1, len(ids))


def sustained_rate(args, producer, topic: str, reader: LinkReader, feed: Feed, meter: CpuMeter,
                   burst_rate: float, rows: list[dict]) -> float:
    """The highest paced rate at which the lag does not grow: bisection between a quarter of
    the burst rate (assumed to hold) and the burst rate, with short paced probes. A burst
    runs full batches, the most efficient case, so a paced feed saturates below it."""
    lo, hi = 0.25 * burst_rate, burst_rate
    for k in range(args.probes):
        mid = (lo + hi) / 2
        row = paced_phase(args, producer, topic, reader, feed, meter, f"probe{k}-{mid:.0f}", mid, args.probe_window)
        rows.append(row)
        print(f"probe {mid:.1f}/s: p99 {row['latency_p99_s']:.3f}s lag grows: {row['lag_grows']}", file=sys.stderr)
        lo, hi = (lo, mid) if row["lag_grows"] else (mid, hi)
    return lo


def run_phases(args, stack, feed: Feed, client, rows: list[dict]) -> float | None:
    """Start the stack, warm it up, measure its capacity, then the paced phases -> the sustained rate."""
    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.kafka.clients import make_producer

    t = time.monotonic()
    stack.start()
    print(f"stack ready in {time.monotonic() - t:.1f}s", file=sys.stderr)
    s = load_settings(ClientSettings, kafka_bootstrap_servers=stack.bootstrap)
    producer = make_producer(s)
    reader = LinkReader(stack.bootstrap, s.topic_links, s.kafka_fetch_wait_max_ms)
    reader.start()
    meter = CpuMeter(stack, client)
    warm = feed.phase("warmup", args.warmup)
    publish(producer, s.topic_raw, warm, 50.0)
    if not reader.wait_for({c for c, _ in warm}, args.drain_timeout):
        raise SystemExit(f"warm-up not linked within {args.drain_timeout}s; logs:\n{stack.services[0].log_tail()}")
    cap = capacity_phase(args, producer, s.topic_raw, reader, feed, meter)
    rows.append(cap)
    print(f"capacity: {cap['linked_per_s']:.1f} clippings/s", file=sys.stderr)
    if args.rates:
        sustained, rates, names = None, args.rates, [f"paced-{r:.0f}" for r in args.rates]
    else:
        sustained = sustained_rate(args, producer, s.topic_raw, reader, feed, meter, cap["linked_per_s"], rows)
        print(f"sustained: {sustained:.1f} clippings/s", file=sys.stderr)
        rates, names = [f * sustained for f in args.fractions], [f"paced-{f:.0%}" for f in args.fractions]
    for name, rate in zip(names, rates):
        row = paced_phase(args, producer, s.topic_raw, reader, feed, meter, name, rate, args.window)
        rows.append(row)
        print(f"{name}: {rate:.1f}/s p50 {row['latency_p50_s']:.3f}s p99 {row['latency_p99_s']:.3f}s "
              f"lag grows: {row['lag_grows']}", file=sys.stderr)
    reader.stopping.set()
    reader.join(10)
    return sustained


def summarise(args, rows: list[dict], sustained: float | None) -> dict:
    """Print the phases' table -> the summary of the run."""
    print("\nend to end (latency: publish -> link event produced)")
    print(table(rows, [
        ("phase", "phase", "s"), ("rate_target", "target/s", ".1f"), ("linked_per_s", "linked/s", ".1f"),
        ("events", "events", "d"), ("latency_p50_s", "p50 s", ".3f"), ("latency_p99_s", "p99 s", ".3f"),
        ("hop_embed_p50_s", "embed p50", ".3f"), ("hop_link_p50_s", "link p50", ".3f"),
        ("hop_produce_p50_s", "produce p50", ".3f"), ("received_p99_s", "recv p99 s", ".3f"),
        ("backlog_max", "backlog max", "d"), ("lag_grows", "lag grows", "")]
        + [(f"cpu_ms_per_clipping_{k}", f"cpu ms {k}", ".2f") for k in ("embedder-0", "linker-0", "broker", "redis")]))
    paced = [r for r in rows if r["phase"].startswith("paced")]
    summary = {
        "model": args.model, "burst_per_s": float(rows[0]["linked_per_s"]),
        "sustained_per_s": None if sustained is None else float(sustained),
        "paced": {r["phase"]: {k: (float(r[k]) if k != "lag_grows" else r[k])
                               for k in ("rate_target", "latency_p50_s", "latency_p99_s", "lag_grows")}
                  for r in paced},
        "target": "200 clippings/s with p99 < 1 s",
        "meets_target": bool(any(r["rate_target"] >= 200 and r["latency_p99_s"] < 1.0 and not r["lag_grows"]
                                 for r in paced)),
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    args = parse_args(argv)
    from clippings.services.local.stack import LocalStack
    from clippings.services.linker.store import RedisState, redis_client

    machine_info = machine()
    env = dict(kv.split("=", 1) for kv in args.env)
    client = redis_client(args.redis)
    client.ping()  # no Redis: fail here, loudly
    prefix = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    feed = Feed(load_records(args.model, args.records))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        stack = LocalStack(workdir=Path(tmp), model=args.model, redis_url=args.redis, redis_prefix=prefix,
                           partitions=args.partitions, embedders=args.embedders, linkers=args.linkers,
                           service_env=env)
        try:
            sustained = run_phases(args, stack, feed, client, rows)
        except BaseException:
            for svc in stack.services:
                print(f"--- {svc.name} log tail:\n{svc.log_tail(15)}", file=sys.stderr)
            raise
        finally:
            stack.stop()
            RedisState(client, prefix).delete_all()

    summary = summarise(args, rows, sustained)
    print("\nsummary:", summary)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_json(args.out, "e2e", config, rows, summary, machine_info, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
