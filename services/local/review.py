"""The review page in the local stack: `clippings review` as a child process.

It needs PostgreSQL. The stack uses the server at the given URL (the machine's own on
127.0.0.1:5432 by default) and, with the embedded broker, a scratch database created for the
run and dropped after it: the broker forgets its topics when it stops, and a database kept
from an earlier run would show decisions about clippings of the same ids that no longer exist.
A server that does not answer leaves the stack without a review page, and says why.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from clippings.services.errors import StackError
from clippings.services.ops.deadline import wait_until
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_problem(url: str) -> str | None:
    """Why the server at `url` cannot be used, or None when it answers."""
    try:
        from sqlalchemy import create_engine, text
    except ImportError:
        return "the review extra is not installed (pip install 'clippings[review]')"
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means: no review page, and why
        return f"PostgreSQL at {engine.url.render_as_string(hide_password=True)} does not answer ({type(exc).__name__})"
    finally:
        engine.dispose()


def _admin(url: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def create_scratch_database(url: str) -> tuple[str, str]:
    """-> (the URL of a new empty database on the same server, its name)."""
    from sqlalchemy.engine import make_url

    name = f"clippings_review_{uuid.uuid4().hex[:10]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


def drop_database(url: str, name: str) -> None:
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ReviewProcess:
    proc: subprocess.Popen
    url: str
    log_path: Path
    scratch: str | None = None  # the database created for this run, dropped at stop

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_review(env: dict[str, str], port: int, log_path: Path, timeout_s: float = 60.0) -> ReviewProcess:
    """Run `clippings review` with CLIPPINGS_* settings in `env`; ready when its login page answers."""
    import os

    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "clippings.cli", "review", "--port", str(port)],
                            env=os.environ | env | {"PYTHONUNBUFFERED": "1"}, stdout=open(log_path, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    review = ReviewProcess(proc, f"http://127.0.0.1:{port}/", log_path)

    def answers() -> bool:
        if proc.poll() is not None:
            raise StackError(f"the review page exited with status {proc.returncode}:\n{review.log_tail()}")
        try:
            with urllib.request.urlopen(review.url + "login", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    if not wait_until(answers, timeout_s, 0.2):
        proc.kill()
        raise StackError(f"the review page did not answer within {timeout_s:.0f}s:\n{review.log_tail()}")
    log.info(kv("review_ready", url=review.url))
    return review
