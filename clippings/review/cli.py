"""`clippings review` (serve; `review migrate`) and `clippings labels export`.

Settings come from CLIPPINGS_* variables (clippings/review/settings.py); flags override them.
Flask, SQLAlchemy, Alembic and waitress are imported when a command runs.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("review", help="the review web application (needs PostgreSQL and CLIPPINGS_REVIEW_PASSWORD)")
    _common(p)
    p.add_argument("--host", help="address to listen on (env CLIPPINGS_REVIEW_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (env CLIPPINGS_REVIEW_PORT, default 8400)")
    p.set_defaults(func=cmd_serve)
    rsub = p.add_subparsers(dest="review_command", metavar="SUBCOMMAND")
    m = rsub.add_parser("migrate", help="bring the review database schema up to date, then exit")
    _common(m, argparse.SUPPRESS)  # given after `migrate` or before it: neither erases the other
    m.set_defaults(func=cmd_migrate)

    p = sub.add_parser("labels", help="reviewers' labels as a dataset")
    lsub = p.add_subparsers(dest="labels_command", metavar="SUBCOMMAND", required=True)
    e = lsub.add_parser("export", help="write the reviewed clippings as a dataset (docs/review.md)")
    e.add_argument("--out", required=True, type=Path, metavar="DATASET", help="an empty or new folder")
    e.add_argument("--database-url", help="env CLIPPINGS_REVIEW_DATABASE_URL")
    e.add_argument("--overwrite", action="store_true", help="replace a dataset already in DATASET")
    e.set_defaults(func=cmd_labels_export)


def _common(p: argparse.ArgumentParser, default=None) -> None:
    p.add_argument("--database-url", default=default,
                   help="env CLIPPINGS_REVIEW_DATABASE_URL (SQLAlchemy URL, postgresql+psycopg://...)")
    p.add_argument("--bootstrap", default=default, help="Kafka bootstrap servers (env CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS)")


def _settings(args):
    from clippings.review.settings import load_review_settings

    return load_review_settings(review_database_url=getattr(args, "database_url", None),
                                kafka_bootstrap_servers=getattr(args, "bootstrap", None),
                                review_host=getattr(args, "host", None), review_port=getattr(args, "port", None))


def cmd_serve(args) -> int:
    from clippings.review.server import ReviewServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = ReviewServer(_settings(args)).start()
    print(f"review: {server.url}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_migrate(args) -> int:
    from clippings.review.db import current_revision, make_engine, migrate

    url = _settings(args).review_database_url.get_secret_value()
    migrate(url)
    engine = make_engine(url)
    print(f"review database at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def cmd_labels_export(args) -> int:
    from clippings.review.labels import export_labels

    s = _settings(args)
    summary = export_labels(s.review_database_url.get_secret_value(), args.out, s.review_image_roots,
                            overwrite=args.overwrite)
    print(f"labels: {summary['records']} records, {summary['entities']} entities "
          f"({', '.join(f'{k} {v}' for k, v in summary['splits'].items())}) -> {args.out}")
    return 0
