"""The local stack's commands: up (and its demo), replay, tail, dlq.

They find a running `clippings up` through services/local/discover.py, or take --bootstrap;
heavy imports happen inside the commands. The pods' commands are in services/cli.py.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from importlib.resources import files
from pathlib import Path

from clippings.errors import ConfigError
from clippings.services.cli import kafka_args
from clippings.services.local.review import DEFAULT_DATABASE

SAMPLE_FEED = Path(str(files("clippings").joinpath("assets", "sample_feed")))  # package data, wheel or editable
NEWEST_DEFAULT = 20  # dead letters `clippings dlq` shows without --max or --from-beginning
log = logging.getLogger(__name__)


def register(sub) -> None:
    _register_up(sub)
    _register_tools(sub)


def _register_up(sub) -> None:
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
    p.add_argument("--image-root", type=Path, action="append", default=[],
                   help="a folder the embedder may read file:// images from, for `replay` of a dataset there "
                        "(repeatable; the --demo dataset, or else the sample feed, is always one)")
    p.add_argument("--rate", type=float, help="demo replay rate in events/s (default: as fast as possible)")
    p.add_argument("--repeat", type=int, default=1, help="demo: send the dataset this many times (a longer feed)")
    p.add_argument("--quiet", action="store_true", help="log warnings and errors only; demo: print only the summary")
    p.add_argument("--timeout", type=float, default=300.0, help="demo: give up after this many seconds")
    p.add_argument("--review-database", default=os.environ.get("CLIPPINGS_REVIEW_DATABASE_URL", DEFAULT_DATABASE),
                   metavar="URL", help="PostgreSQL of the review page (default: CLIPPINGS_REVIEW_DATABASE_URL or "
                                       "%(default)s); with the embedded broker a scratch database on it, dropped at exit")
    p.add_argument("--review-port", type=int, default=8400, help="port of the review page (default: %(default)s; 0: any)")
    p.add_argument("--no-review", action="store_true", help="no review page")
    p.add_argument("--stay", action="store_true",
                   help="demo: keep the stack and the review page up after the summary, until Ctrl-C")
    p.add_argument("--keep-redis", action="store_true",
                   help="keep the Redis keys of its prefix at exit (default: deleted, unless --bootstrap: "
                        "the embedded broker's log is gone then, so the keys would describe nothing)")
    p.set_defaults(func=cmd_up)


def _register_tools(sub) -> None:
    p = sub.add_parser("replay", help="publish a dataset folder or a feed (.jsonl) to clippings.raw")
    p.add_argument("dataset", type=Path, metavar="FEED",
                   help="a dataset folder, or a feed: records.jsonl or its folder (docs/events.md)")
    kafka_args(p)
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--split", action="append", help="only records of these splits (repeatable; default: all)")
    p.add_argument("--limit", type=int)
    p.add_argument("--block", default="default", help="blocking key of records that give none (default: %(default)s)")
    p.add_argument("--id-prefix", default="", help="prefix for the clipping ids (replay one dataset twice)")
    p.add_argument("--images", choices=("inline", "uri"), default="inline",
                   help="inline base64 (large ones by reference) or always by file:// reference")
    p.add_argument("--repeat", type=int, default=1, help="send the dataset this many times, ids prefixed r<k>-")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("tail", help="print link events as they arrive, duplicates highlighted")
    kafka_args(p)
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest link event")
    p.add_argument("--max-events", type=int, help="stop after this many clippings")
    p.add_argument("--idle-timeout", type=float, help="stop after this many seconds without an event")
    p.add_argument("--labels", type=Path, metavar="DATASET", help="check the flags against this dataset's entities")
    p.add_argument("--id-prefix", default="", help="only clippings whose id starts with this (the replay's prefix)")
    p.add_argument("--until-complete", action="store_true",
                   help="with --labels: stop once every clipping of the dataset has its link event")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("dlq", help="print dead letters (clippings.dlq) with their reasons")
    kafka_args(p)
    p.add_argument("--from-beginning", action="store_true", help="oldest first (default: only the newest --max)")
    p.add_argument("--max", type=int, metavar="N", help="stop after N dead letters (default: the newest "
                                                        f"{NEWEST_DEFAULT}, or all with --from-beginning)")
    p.add_argument("--follow", action="store_true", help="then wait for new ones (Ctrl-C stops)")
    p.add_argument("--reason", action="append", help="only this reason (repeatable; docs/events.md lists them)")
    p.add_argument("--json", action="store_true", help="one JSON object a line: header, position, the original's head")
    p.set_defaults(func=cmd_dlq)


def _labels(dataset: Path, id_prefix: str) -> dict[str, str]:
    from clippings.services.local.feed import load_feed

    return {f"{id_prefix}{r.id}": r.entity for r in load_feed(dataset) if r.entity is not None}


def cmd_replay(args) -> int:
    from clippings.services.local.discover import client_settings
    from clippings.services.local.replay import replay, select_records

    if args.rate is not None and args.rate <= 0:
        raise ConfigError("--rate must be positive")
    if args.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    records = select_records(args.dataset, args.split, args.limit)
    if not records:
        raise ConfigError(f"no records of split {', '.join(args.split)} in {args.dataset}")
    s = client_settings(args.bootstrap)
    source = args.dataset.stem if args.dataset.is_file() else args.dataset.name
    report = replay(s, records, source=source, rate=args.rate, block=args.block,
                    id_prefix=args.id_prefix, images=args.images, repeat=args.repeat)
    print(f"published {report.events} events to {s.topic_raw} in {report.seconds:.2f}s ({report.rate:.1f}/s)")
    return 0


def cmd_tail(args) -> int:
    from clippings.services.local.discover import client_settings
    from clippings.services.local.tail import tail

    if args.until_complete and not args.labels:
        raise ConfigError("--until-complete needs --labels")
    labels = _labels(args.labels, args.id_prefix) if args.labels else None
    s = client_settings(args.bootstrap)
    try:
        tally = tail(s, from_beginning=args.from_beginning, max_events=args.max_events,
                     idle_timeout_s=args.idle_timeout, labels=labels, id_prefix=args.id_prefix,
                     until_complete=args.until_complete)
    except KeyboardInterrupt:
        return 130
    print(tally.summary())
    if args.until_complete and not tally.complete:
        print(f"only {len(tally.events) - tally.unlabelled} of the {len(labels)} labelled clippings were linked",
              file=sys.stderr)
        return 1
    return 0


def cmd_dlq(args) -> int:
    from clippings.services.local.discover import client_settings
    from clippings.services.local.dlq_reader import read_dead_letters, tally, to_json
    from clippings.services.schemas import DLQ_REASONS

    unknown = sorted(set(args.reason or ()) - set(DLQ_REASONS))
    if unknown:
        raise ConfigError(f"unknown --reason {', '.join(unknown)} (one of {', '.join(DLQ_REASONS)})")
    if args.max is not None and args.max < 1:
        raise ConfigError("--max must be at least 1")
    s = client_settings(args.bootstrap)
    shown = []
    limit = args.max or (None if args.from_beginning else NEWEST_DEFAULT)
    letters = read_dead_letters(s, from_beginning=args.from_beginning, max_records=limit, follow=args.follow,
                                reasons=set(args.reason) if args.reason else None)
    rc = 0
    try:
        for letter in letters:
            print(to_json(letter) if args.json else letter.line(), flush=True)
            shown.append(letter)
    except KeyboardInterrupt:
        rc = 130
    print(f"{tally(shown)} in {s.topic_dlq}", file=sys.stderr)
    return rc


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_up(args) -> int:
    from clippings.services.local.stack import LocalStack

    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
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
    # The embedded broker's log dies with the stack, and Redis' decisions name its offsets.
    drop_keys = not args.keep_redis and (args.bootstrap is None or bool(args.demo))
    stack = LocalStack(workdir=workdir, model=args.model, bootstrap=args.bootstrap, redis_url=args.redis,
                       redis_prefix=prefix, partitions=args.partitions, embedders=args.embedders,
                       linkers=args.linkers, service_env=env, delete_redis_keys=drop_keys,
                       image_roots=[Path(args.demo or SAMPLE_FEED), *args.image_root],
                       review_database=None if args.no_review else args.review_database,
                       review_scratch=args.bootstrap is None, review_port=_free_or(args.review_port),
                       review_password=os.environ.get("CLIPPINGS_REVIEW_PASSWORD") or secrets.token_urlsafe(9))
    _status(args, f"starting the stack in {workdir} ...")
    rc = _run_stack(stack, args)
    if stack.deleted_keys is not None:
        _status(args, f"deleted the {stack.deleted_keys} Redis keys of prefix {prefix}")
    if args.workdir is None and rc == 0:
        shutil.rmtree(workdir, ignore_errors=True)  # a failed run keeps its logs
    return rc


def _free_or(port: int) -> int:
    """The port asked for, or any free one when it is 0 or taken (a second stack on the machine)."""
    import socket

    from clippings.services.local.stack import free_port

    if port:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no owner
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                log.warning("port %d is taken: the review page takes a free one", port)
    return free_port()


def _review_line(stack) -> str:
    if stack.review is not None:
        given = "CLIPPINGS_REVIEW_PASSWORD" if os.environ.get("CLIPPINGS_REVIEW_PASSWORD") else None
        return (f"review page: {stack.review.url}  (any reviewer name; password: "
                f"{'$' + given if given else stack.review_password})")
    return f"review page: not started ({stack.review_problem or 'disabled with --no-review'})"


def _status(args, message: str) -> None:
    if not (args.quiet and args.demo):  # a quiet demo prints its summary only
        print(message, file=sys.stderr)


def _run_stack(stack, args) -> int:
    with stack:
        _status(args, f"broker {stack.bootstrap}  redis {stack.redis_url} prefix {stack.redis_prefix}  "
                + "  ".join(f"{s.name} http://127.0.0.1:{s.metrics_port}/metrics" for s in stack.services))
        _status(args, _review_line(stack))
        if args.demo:
            rc = _demo(stack, Path(args.demo), args.rate, args.repeat, args.quiet, args.timeout)
            if args.stay and rc == 0:
                return _serve(stack)
            return rc
        return _serve(stack)


def _serve(stack) -> int:
    """Publish the stack for the other commands, wait for Ctrl-C or a dead service."""
    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.local.discover import StackInfo, publish_stack, withdraw_stack

    client = load_settings(ClientSettings, kafka_bootstrap_servers=stack.bootstrap)
    topics = {k: getattr(client, k) for k in ("topic_raw", "topic_embedded", "topic_links", "topic_dlq", "topic_corrections")}
    path = publish_stack(StackInfo(bootstrap=stack.bootstrap, redis_url=stack.redis_url, pid=os.getpid(),
                                   redis_prefix=stack.redis_prefix, workdir=str(stack.workdir), topics=topics))
    try:
        print(_commands(stack, path), file=sys.stderr, flush=True)
        try:
            while all(s.proc.poll() is None for s in stack.services):
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        dead = [s for s in stack.services if s.proc.poll() is not None]
        print(f"{dead[0].name} exited ({dead[0].proc.returncode}):\n{dead[0].log_tail()}", file=sys.stderr)
        return 1
    finally:
        withdraw_stack(os.getpid())


def _commands(stack, path: Path) -> str:
    keys = ("its Redis keys are deleted then (--keep-redis keeps them)" if stack.delete_redis_keys
            else "its Redis keys stay")
    return "\n".join([
        f"ready; Ctrl-C stops everything, and {keys}",
        f"in another terminal (they find this stack through {path}):",
        f"  clippings replay {SAMPLE_FEED} --rate 20",
        f"  clippings tail --from-beginning --labels {SAMPLE_FEED}",
        "  clippings dlq --follow",
        f"from elsewhere, name the broker: --bootstrap {stack.bootstrap}",
        _review_line(stack),
    ])


def _demo(stack, dataset: Path, rate: float | None, repeat: int, quiet: bool, timeout_s: float) -> int:
    import threading

    from clippings.services.config import ClientSettings, load_settings
    from clippings.services.local.replay import repeat_prefix, replay, select_records
    from clippings.services.linker.store import RedisState, redis_client
    from clippings.services.local.tail import tail
    from clippings.services.ops.deadline import Deadline

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
    deadline = Deadline(timeout_s)
    tally = tail(s, max_events=total, labels=labels, out=None if quiet else sys.stdout,
                 stop=lambda: deadline.expired() or any(p.proc.poll() is not None for p in stack.services))
    publisher.join(10)
    state = RedisState(redis_client(stack.redis_url), stack.redis_prefix)
    print(tally.summary() + f" redis_entities={state.entity_count()}")
    if len(tally.events) < total:
        print(f"only {len(tally.events)} of {total} clippings were linked (logs in {stack.workdir}/logs)",
              file=sys.stderr)
        return 1
    return 0  # every clipping linked; how many flags the labels agree with is in the summary
