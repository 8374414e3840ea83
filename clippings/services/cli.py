"""The streaming commands: up, replay, tail, embedder, linker, topics.

Services take their settings from CLIPPINGS_* environment variables (docs/configuration.md);
the few flags here override them. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from clippings.errors import ConfigError

SAMPLE_FEED = Path(__file__).resolve().parent.parent / "assets" / "sample_feed"
log = logging.getLogger(__name__)


def _kafka_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (env CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS)")


def register(sub) -> None:
    p = sub.add_parser("up", help="start a local stack: broker, Redis, topics, embedder, linker")
    p.add_argument("--bootstrap", help="use this Kafka instead of starting a Tansu broker")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0",
                   help="Redis URL; when none answers there, a redis-server is started (default: %(default)s)")
    p.add_argument("--model", default="news", help="shipped model name or exported model folder (default: %(default)s)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default: %(default)s)")
    p.add_argument("--embedders", type=int, default=1)
    p.add_argument("--linkers", type=int, default=1)
    p.add_argument("--threshold", type=float, help="linking cosine threshold (default: the model's dedup threshold)")
    p.add_argument("--redis-prefix", help="Redis key prefix (default: 'clippings' with --bootstrap, else a fresh one: "
                                          "the embedded broker forgets its log when it stops)")
    p.add_argument("--workdir", type=Path, help="logs and snapshots (default: a temporary folder)")
    p.add_argument("--demo", nargs="?", const=str(SAMPLE_FEED), metavar="DATASET",
                   help="replay a dataset (default: the shipped sample feed), print the links and a summary, stop")
    p.add_argument("--rate", type=float, help="demo replay rate in events/s (default: as fast as possible)")
    p.add_argument("--repeat", type=int, default=1, help="demo: send the dataset this many times (a longer feed)")
    p.add_argument("--quiet", action="store_true", help="demo: print only the summary")
    p.add_argument("--timeout", type=float, default=300.0, help="demo: give up after this many seconds")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("replay", help="publish a dataset folder to clippings.raw as a feed")
    p.add_argument("dataset", type=Path)
    _kafka_args(p)
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--split", action="append", help="only these splits (repeatable; default: all)")
    p.add_argument("--limit", type=int)
    p.add_argument("--block", default="default", help="blocking key of every event (default: %(default)s)")
    p.add_argument("--id-prefix", default="", help="prefix for the clipping ids (replay one dataset twice)")
    p.add_argument("--images", choices=("inline", "uri"), default="inline",
                   help="inline base64 (large ones by reference) or always by file:// reference")
    p.add_argument("--repeat", type=int, default=1, help="send the dataset this many times, ids prefixed r<k>-")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("tail", help="print link events as they arrive, duplicates highlighted")
    _kafka_args(p)
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest link event")
    p.add_argument("--max-events", type=int, help="stop after this many clippings")
    p.add_argument("--idle-timeout", type=float, help="stop after this many seconds without an event")
    p.add_argument("--labels", type=Path, metavar="DATASET", help="check the flags against this dataset's entities")
    p.add_argument("--id-prefix", default="", help="the prefix the replay gave the ids")
    p.set_defaults(func=cmd_tail)

    for kind, help_text in (("embedder", "run the embedder service (clippings.raw -> clippings.embedded)"),
                            ("linker", "run the linker service (clippings.embedded -> clippings.links)")):
        p = sub.add_parser(kind, help=help_text)
        _kafka_args(p)
        p.add_argument("--model", help="env CLIPPINGS_MODEL")
        p.add_argument("--group", help="consumer group (env CLIPPINGS_GROUP_ID)")
        p.add_argument("--metrics-port", type=int, help="env CLIPPINGS_METRICS_PORT")
        if kind == "linker":
            p.add_argument("--redis", help="env CLIPPINGS_REDIS_URL")
            p.add_argument("--snapshot-dir", type=Path, help="env CLIPPINGS_SNAPSHOT_DIR")
            p.add_argument("--threshold", type=float, help="env CLIPPINGS_THRESHOLD")
        p.set_defaults(func=cmd_service, kind=kind)

    p = sub.add_parser("topics", help="create the four topics when missing")
    _kafka_args(p)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--replication-factor", type=int, default=1)
    p.set_defaults(func=cmd_topics)


def cmd_service(args) -> int:
    from clippings.services.config import EmbedderSettings, LinkerSettings, load_settings

    overrides = dict(kafka_bootstrap_servers=args.bootstrap, model=args.model, group_id=args.group,
                     metrics_port=args.metrics_port)
    if args.kind == "embedder":
        from clippings.services.embedder import EmbedderService

        service = EmbedderService(load_settings(EmbedderSettings, **overrides))
    else:
        from clippings.services.linker import LinkerService

        overrides |= dict(redis_url=args.redis, snapshot_dir=args.snapshot_dir, threshold=args.threshold)
        service = LinkerService(load_settings(LinkerSettings, **overrides))
    service.stop.install()
    service.run()
    return 0


def cmd_topics(args) -> int:
    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.kafka import ensure_topics, topic_partitions

    s = load_settings(ClientSettings, kafka_bootstrap_servers=args.bootstrap)
    counts = {t: (1 if t == s.topic_dlq else args.partitions) for t in topic_partitions(s)}
    created = ensure_topics(s, counts, args.replication_factor)
    for topic in counts:
        print(f"{topic}: {'created' if topic in created else 'exists'}")
    return 0


def _labels(dataset: Path, id_prefix: str) -> dict[str, str]:
    from clippings.data.dataset import load_dataset

    return {f"{id_prefix}{r.id}": r.entity for r in load_dataset(dataset).records if r.entity is not None}


def cmd_replay(args) -> int:
    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.replay import replay, select_records

    if args.rate is not None and args.rate <= 0:
        raise ConfigError("--rate must be positive")
    if args.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    s = load_settings(ClientSettings, kafka_bootstrap_servers=args.bootstrap)
    records = select_records(args.dataset, args.split, args.limit)
    report = replay(s, records, source=args.dataset.name, rate=args.rate, block=args.block,
                    id_prefix=args.id_prefix, images=args.images, repeat=args.repeat)
    print(f"published {report.events} events to {s.topic_raw} in {report.seconds:.2f}s ({report.rate:.1f}/s)")
    return 0


def cmd_tail(args) -> int:
    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.tail import tail

    s = load_settings(ClientSettings, kafka_bootstrap_servers=args.bootstrap)
    labels = _labels(args.labels, args.id_prefix) if args.labels else None
    try:
        tally = tail(s, from_beginning=args.from_beginning, max_events=args.max_events,
                     idle_timeout_s=args.idle_timeout, labels=labels)
    except KeyboardInterrupt:
        return 130
    print(tally.summary())
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_up(args) -> int:
    from clippings.services.stack import LocalStack

    # SIGTERM (and SIGINT, even when inherited as ignored) unwind through the stack's
    # context manager, so the broker and the services it started are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clippings-up-"))
    if args.redis_prefix:
        prefix = args.redis_prefix
    elif args.bootstrap and not args.demo:
        prefix = "clippings"
    else:
        prefix = f"clippings-{'demo' if args.demo else 'local'}-{uuid.uuid4().hex[:8]}"
    env = {"CLIPPINGS_THRESHOLD": str(args.threshold)} if args.threshold is not None else {}
    stack = LocalStack(workdir=workdir, model=args.model, bootstrap=args.bootstrap, redis_url=args.redis,
                       redis_prefix=prefix, partitions=args.partitions, embedders=args.embedders,
                       linkers=args.linkers, service_env=env)
    print(f"starting the stack in {workdir} ...", file=sys.stderr)
    rc = _run_stack(stack, args)
    if args.workdir is None and rc == 0:
        shutil.rmtree(workdir, ignore_errors=True)  # a failed run keeps its logs
    return rc


def _run_stack(stack, args) -> int:
    with stack:
        print(f"broker {stack.bootstrap}  redis {stack.redis_url} prefix {stack.redis_prefix}  "
              + "  ".join(f"{s.name} http://127.0.0.1:{s.metrics_port}/metrics" for s in stack.services),
              file=sys.stderr)
        if args.demo:
            return _demo(stack, Path(args.demo), args.rate, args.repeat, args.quiet, args.timeout)
        print("ready; Ctrl-C stops everything", file=sys.stderr)
        try:
            while all(s.proc.poll() is None for s in stack.services):
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        dead = [s for s in stack.services if s.proc.poll() is not None]
        print(f"{dead[0].name} exited ({dead[0].proc.returncode}):\n{dead[0].log_tail()}", file=sys.stderr)
        return 1


def _demo(stack, dataset: Path, rate: float | None, repeat: int, quiet: bool, timeout_s: float) -> int:
    import threading

    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.replay import repeat_prefix, replay, select_records
    from clippings.services.state import RedisState, redis_client
    from clippings.services.tail import tail

    if repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    s = load_settings(ClientSettings, kafka_bootstrap_servers=stack.bootstrap)
    records = select_records(dataset, None, None)
    labels = {f"{repeat_prefix(k, repeat)}{r.id}": r.entity
              for k in range(repeat) for r in records if r.entity is not None} or None
    total = len(records) * repeat
    publisher = threading.Thread(target=replay, args=(s, records, dataset.name),
                                 kwargs=dict(rate=rate, progress=False, repeat=repeat), daemon=True)
    publisher.start()
    deadline = time.monotonic() + timeout_s
    tally = tail(s, max_events=total, labels=labels, out=None if quiet else sys.stdout,
                 stop=lambda: time.monotonic() > deadline or any(p.proc.poll() is not None for p in stack.services))
    publisher.join(10)
    state = RedisState(redis_client(stack.redis_url), stack.redis_prefix)
    try:
        print(tally.summary() + f" redis_entities={state.entity_count()}")
    finally:
        state.delete_all()
    if len(tally.events) < total:
        print(f"only {len(tally.events)} of {total} clippings were linked (logs in {stack.workdir}/logs)",
              file=sys.stderr)
        return 1
    return 0  # every clipping linked; how many flags the labels agree with is in the summary
