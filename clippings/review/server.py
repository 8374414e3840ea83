"""The running review application: migrations, republish, the reader thread, waitress.

    server = ReviewServer(load_review_settings()).start()   # migrates, republishes, serves
    print(server.url)
    server.stop()

`clippings review` runs this until Ctrl-C or SIGTERM; the local stack and the tests start it
in-process the same way.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

from clippings.review.settings import ReviewSettings, require_password
from clippings.services.config import redact_url
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)


def _redis_state(s: ReviewSettings):
    if s.redis_url is None:
        return None
    from clippings.services.linker.store import RedisState, redis_client

    # Short timeouts: a page waits for Redis at most about a second, then goes on without it.
    password = s.redis_password.get_secret_value() if s.redis_password else None
    return RedisState(redis_client(s.redis_url.get_secret_value(), socket_timeout_s=1.0, username=s.redis_username,
                                   password=password), s.redis_prefix, timeout_s=1.0)


class ReviewServer:
    def __init__(self, settings: ReviewSettings, read_events: bool = True):
        self.settings = settings
        self.read_events = read_events
        self.reader = None
        self.publisher = None
        self.engine = None
        self.app = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._resources = ExitStack()

    @property
    def url(self) -> str:
        host, port = self._server.effective_host, self._server.effective_port
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def start(self) -> "ReviewServer":
        from waitress.server import create_server

        from clippings.review.app import create_app
        from clippings.review.consumer import EventReader
        from clippings.review.db import make_engine, migrate
        from clippings.review.publish import CorrectionPublisher

        s = self.settings
        require_password(s)  # before anything is touched
        url = s.review_database_url.get_secret_value()
        migrate(url)
        self.engine = make_engine(url)
        self._resources.callback(self.engine.dispose)
        self.publisher = CorrectionPublisher(s, self.engine)
        self._resources.callback(self.publisher.close)
        published = self.publisher.publish_pending()  # rows a crash left between insert and ack
        if self.read_events:
            self.reader = EventReader(s, self.engine, on_idle=self.publisher.retry_due).start()
            self._resources.callback(self.reader.stop)
        self.app = create_app(s, self.engine, self.publisher, _redis_state(s))
        self._server = create_server(self.app, host=s.review_host, port=s.review_port, threads=s.review_threads,
                                     ident="clippings-review")
        self._thread = threading.Thread(target=self._server.run, name="review-http", daemon=True)
        self._thread.start()
        log.info(kv("review_started", url=self.url, database=redact_url(url), republished=published))
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.task_dispatcher.shutdown(timeout=5)
            for channel in list(self._server._map.values()):
                channel.close()  # the listening socket, its trigger and open connections: the loop ends
            self._thread.join(10)
            self._server = None
        self._resources.close()
        log.info(kv("stopped", service="review"))

    def __enter__(self) -> "ReviewServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
