"""The commands of the pods: embedder, linker, topics.

Services take their settings from CLIPPINGS_* environment variables (docs/configuration.md);
the few flags here override them. Heavy imports happen inside the commands. The local
stack's commands (up, replay, tail, dlq) are in services/local/cli.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def kafka_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (env CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS)")


def register(sub) -> None:
    _register_topics(sub)
    _register_services(sub)


def _register_topics(sub) -> None:
    p = sub.add_parser("topics", help="create the four topics when missing; say which differ")
    kafka_args(p)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--replication-factor", type=int, default=1)
    p.add_argument("--grow", action="store_true",
                   help="add partitions to existing topics that have fewer (Kafka never removes any; "
                        "keys move: read the warning it prints)")
    p.set_defaults(func=cmd_topics)


def _register_services(sub) -> None:
    for kind, help_text in (("embedder", "run the embedder service (clippings.raw -> clippings.embedded)"),
                            ("linker", "run the linker service (clippings.embedded -> clippings.links)")):
        p = sub.add_parser(kind, help=help_text)
        kafka_args(p)
        p.add_argument("--model", help="env CLIPPINGS_MODEL")
        p.add_argument("--group", help="consumer group (env CLIPPINGS_GROUP_ID)")
        p.add_argument("--metrics-port", type=int, help="env CLIPPINGS_METRICS_PORT")
        if kind == "linker":
            p.add_argument("--redis", help="env CLIPPINGS_REDIS_URL")
            p.add_argument("--snapshot-dir", type=Path, help="env CLIPPINGS_SNAPSHOT_DIR")
            p.add_argument("--threshold", type=float, help="env CLIPPINGS_THRESHOLD")
        p.set_defaults(func=cmd_service, kind=kind)


def cmd_service(args) -> int:
    from clippings.services.config import EmbedderSettings, LinkerSettings, load_settings
    from clippings.services.ops.threads import numpy_blas_in_caller

    overrides = dict(kafka_bootstrap_servers=args.bootstrap, model=args.model, group_id=args.group,
                     metrics_port=args.metrics_port)
    if args.kind == "embedder":
        from clippings.services.embedder.service import EmbedderService

        service = EmbedderService(load_settings(EmbedderSettings, **overrides))
    else:
        from clippings.services.linker.service import LinkerService

        overrides |= dict(redis_url=args.redis, snapshot_dir=args.snapshot_dir, threshold=args.threshold)
        service = LinkerService(load_settings(LinkerSettings, **overrides))
    service.stop.install()
    # Here, in the main thread: OpenBLAS takes its thread count from the main thread's call.
    numpy_blas_in_caller()
    service.run()
    return 0


def cmd_topics(args) -> int:
    from clippings.services.local.discover import client_settings, probe_broker
    from clippings.services.kafka.clients import ensure_topics, grow_partitions, partition_counts, topic_partitions

    s = client_settings(args.bootstrap)
    probe_broker(s)
    wanted = {t: (1 if t == s.topic_dlq else args.partitions) for t in topic_partitions(s)}
    created = ensure_topics(s, wanted, args.replication_factor)
    have = partition_counts(s, list(wanted))
    short = {t: n for t, n in wanted.items() if t not in created and have.get(t, n) < n}
    if short and args.grow:
        for topic in short:
            print(f"{topic}: {_GROW_EFFECT.get(_topic_role(s, topic), '')}", file=sys.stderr)
        grow_partitions(s, short)
    for topic, n in wanted.items():
        print(f"{topic}: {_topic_state(topic in created, have.get(topic, n), n, args.grow)}")
    if short and not args.grow:
        print("a topic has fewer partitions than asked: --grow adds them (Kafka cannot remove partitions "
              "again, and keyed records of one key can then land on another partition)", file=sys.stderr)
        return 1
    return 0


_GROW_EFFECT = {
    "raw": "growing: safe, the services depend on no key order in it",
    "embedded": "growing: WARNING a block can move to another partition, and its new clippings are then "
                "not compared with those linked before; grow it only while it is empty, or re-link into fresh topics",
    "links": "growing: a block's later decisions can land on another partition: consumers lose the "
             "per-block order across the change",
    "dlq": "growing: safe",
    "corrections": "growing: grow it together with the embedded topic (the same count: partition p of both "
                   "goes to one linker)",
}


def _topic_role(s, topic: str) -> str:
    return {s.topic_raw: "raw", s.topic_embedded: "embedded", s.topic_links: "links", s.topic_dlq: "dlq",
            s.topic_corrections: "corrections"}[topic]


def _topic_state(created: bool, have: int, want: int, grow: bool) -> str:
    if created:
        return f"created ({want} partition{'s' * (want != 1)})"
    if have == want:
        return f"exists ({have} partition{'s' * (have != 1)})"
    if have > want:
        return f"exists with {have} partitions, more than the {want} asked (Kafka cannot remove partitions)"
    if grow:
        return f"grown from {have} to {want} partitions"
    return f"exists with {have} partitions, fewer than the {want} asked (--grow adds {want - have})"
