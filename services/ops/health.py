"""HTTP on the metrics port: /metrics, /healthz (liveness), /readyz (readiness).

Served from a daemon thread; the service loop only updates the Health object, the HTTP
thread only reads it.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clippings.services.ops.metrics import ServiceMetrics


class Health:
    """What the probes answer: the loop's last turn, and the readiness conditions by name."""

    def __init__(self, metrics: ServiceMetrics, liveness_timeout_s: float):
        self._metrics = metrics
        self._liveness_timeout_s = liveness_timeout_s
        self._last_tick = time.monotonic()
        self._conditions: dict[str, bool] = {}
        self._lock = threading.Lock()

    def tick(self) -> None:
        self._last_tick = time.monotonic()

    def set(self, condition: str, ok: bool) -> None:
        with self._lock:
            self._conditions[condition] = ok
            ready = all(self._conditions.values())
        self._metrics.set_ready(ready)

    def alive(self) -> tuple[bool, str]:
        idle = time.monotonic() - self._last_tick
        if idle > self._liveness_timeout_s:
            return False, f"loop idle {idle:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            failing = [name for name, ok in self._conditions.items() if not ok]
        if failing:
            return False, "not ready: " + ", ".join(sorted(failing))
        return True, "ready"


class HealthServer:
    def __init__(self, health: Health, metrics: ServiceMetrics, host: str, port: int):
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)),
            "/healthz": lambda: _probe(health.alive),
            "/readyz": lambda: _probe(health.ready),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                route = routes.get(self.path.split("?", 1)[0])
                status, ctype, body = route() if route else (404, "text/plain", b"not found\n")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # probes every few seconds would flood the log
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True)

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "HealthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _probe(check: Callable[[], tuple[bool, str]]) -> tuple[int, str, bytes]:
    ok, text = check()
    return (200 if ok else 503), "text/plain; charset=utf-8", (text + "\n").encode()
