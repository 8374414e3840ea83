"""Images into model input: inline, file:// and http(s):// fetches, and every way to be rejected.

The fetch tests talk only to servers of their own on 127.0.0.1. Loopback stands for every
private address: refused by default, let through by image_http_private_allowed.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import ssl
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clippings.runtime.preprocess import PreprocessConfig
from clippings.services.config import EmbedderSettings
from clippings.services.errors import RejectedEvent
from clippings.services.embedder.images import (
    FETCH_FAILED, ImageLimits, ImagePreparer, address_refused, decode_image, host_allowed, image_bytes,
)
from clippings.services.schemas import RawClipping

CFG = PreprocessConfig(image_height=32, image_width=48, channels=3, reflow_tall=False)
TLS_DIR = Path(__file__).parent / "tls"  # self-signed for images.test, valid to 2126 (openssl req -x509)


def png_bytes(size=(40, 30), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def limits(tmp_path: Path | None = None, **kw) -> ImageLimits:
    base = dict(inline_max_bytes=100_000, max_bytes=200_000, max_pixels=1_000_000, fetch_timeout_s=5.0,
                file_roots=(tmp_path.resolve(),) if tmp_path else (), http_allowed=False)
    return ImageLimits(**(base | kw))


# http on, 127.0.0.1 allow-listed, and private addresses opted in: the local test server is reachable.
LOCAL = dict(http_allowed=True, http_hosts=("127.0.0.1",), http_private_allowed=True)


def rejection(raw: RawClipping, lim: ImageLimits) -> RejectedEvent:
    out = ImagePreparer(lim, CFG, workers=1).prepare([raw])[0]
    assert isinstance(out, RejectedEvent), out
    return out


def reason_of(raw: RawClipping, lim: ImageLimits) -> str:
    return rejection(raw, lim).reason


def prepare_within(lim: ImageLimits, raws: list[RawClipping], workers: int = 1, wait_s: float = 60.0) -> list:
    """prepare() in a thread; a bounded wait, so a fetch that never ends fails the test instead of hanging it."""
    result: list = []
    preparer = ImagePreparer(lim, CFG, workers=workers)
    thread = threading.Thread(target=lambda: result.extend(preparer.prepare(raws)), daemon=True)
    thread.start()
    thread.join(wait_s)
    assert not thread.is_alive(), f"prepare() still running after {wait_s}s"
    return result


class ImageHandler(http.server.BaseHTTPRequestHandler):
    """/ok.png, /big.bin, /unsized.bin (no Content-Length), /missing (404), /error (500), /redirect (302
    to /ok.png), /slow (a byte a second)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host")))
        if self.path == "/slow":
            return self._trickle()
        bodies = {"/ok.png": png_bytes(), "/big.bin": b"\0" * 300_000}
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path in bodies:
            self.send_response(200)
            self.send_header("Content-Length", str(len(bodies[self.path])))
            self.end_headers()
            self.wfile.write(bodies[self.path])
        elif self.path == "/unsized.bin":  # no Content-Length: the body ends when the connection does
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"\0" * 300_000)
        else:
            self.send_error(500 if self.path == "/error" else 404)

    def _trickle(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            while not self.server.stopping.wait(1.0):
                self.wfile.write(b"\0")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up


def serve(tls: ssl.SSLContext | None = None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    server.daemon_threads = True
    server.seen, server.stopping = [], threading.Event()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def server():
    srv = serve()
    yield srv
    srv.stopping.set()
    srv.shutdown()


@pytest.fixture
def http_root(server):
    server.seen.clear()
    return f"http://127.0.0.1:{server.server_address[1]}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once this socket is closed


def resolver(table: dict[str, list[str]]):
    """DNS without a DNS server: name -> addresses, as getaddrinfo() gives them."""
    def resolve(host: str, port: int) -> list[tuple]:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (a, port)) for a in table[host]]
    return resolve


def test_inline_image_is_prepared_to_model_shape():
    out = ImagePreparer(limits(), CFG, workers=2).prepare([RawClipping(id="a", image=png_bytes()),
                                                           RawClipping(id="b", text="only text")])
    assert out[0].shape == (3, 32, 48) and out[0].dtype == np.float32
    assert out[1] is None


def test_file_reference_inside_the_roots(tmp_path):
    data = png_bytes()
    (tmp_path / "x.png").write_bytes(data)
    raw = RawClipping(id="a", image_uri=(tmp_path / "x.png").as_uri(), image_sha256=hashlib.sha256(data).hexdigest())
    assert image_bytes(raw, limits(tmp_path)) == data


def test_file_reference_outside_the_roots_is_refused(tmp_path):
    (tmp_path / "x.png").write_bytes(png_bytes())
    raw = RawClipping(id="a", image_uri=(tmp_path / "x.png").as_uri())
    assert reason_of(raw, limits(tmp_path / "elsewhere")) == "image_fetch_failed"
    assert reason_of(raw, limits(None)) == "image_fetch_failed"  # no roots: file:// off
    escape = RawClipping(id="b", image_uri=(tmp_path / "sub" / ".." / ".." / "x.png").as_uri())
    assert reason_of(escape, limits(tmp_path / "sub")) == "image_fetch_failed"
    # file://host/path names another machine's file (a share): not read from this one's disk.
    remote = rejection(RawClipping(id="c", image_uri=f"file://scans.example{tmp_path / 'x.png'}"), limits(tmp_path))
    assert (remote.reason, remote.detail) == ("image_fetch_failed", "file:// references name no host")
    local = RawClipping(id="d", image_uri=f"file://localhost{tmp_path / 'x.png'}")
    assert image_bytes(local, limits(tmp_path)) == png_bytes()


def test_http_reference(http_root):
    assert image_bytes(RawClipping(id="a", image_uri=f"{http_root}/ok.png"), limits(**LOCAL)) == png_bytes()
    assert reason_of(RawClipping(id="b", image_uri=f"{http_root}/missing.png"), limits(**LOCAL)) == "image_fetch_failed"
    assert reason_of(RawClipping(id="c", image_uri=f"{http_root}/big.bin"), limits(**LOCAL)) == "image_too_large"
    # A server that does not say the size: the read itself stops one byte past the cap.
    assert reason_of(RawClipping(id="e", image_uri=f"{http_root}/unsized.bin"), limits(**LOCAL)) == "image_too_large"
    off = limits(**(LOCAL | dict(http_allowed=False)))
    assert reason_of(RawClipping(id="d", image_uri=f"{http_root}/ok.png"), off) == "image_fetch_failed"


def test_checksum_mismatch_is_a_failed_fetch(tmp_path):
    (tmp_path / "x.png").write_bytes(png_bytes())
    raw = RawClipping(id="a", image_uri=(tmp_path / "x.png").as_uri(), image_sha256="0" * 64)
    assert reason_of(raw, limits(tmp_path)) == "image_fetch_failed"


def test_inline_over_the_limit():
    assert reason_of(RawClipping(id="a", image=png_bytes()), limits(inline_max_bytes=50)) == "image_too_large"
    n = len(png_bytes())
    assert image_bytes(RawClipping(id="b", image=png_bytes()), limits(inline_max_bytes=n)) == png_bytes()
    assert reason_of(RawClipping(id="c", image=png_bytes()), limits(inline_max_bytes=n - 1)) == "image_too_large"


def test_undecodable_and_truncated_images():
    assert reason_of(RawClipping(id="a", image=b"definitely not an image"), limits()) == "image_undecodable"
    jpeg = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(jpeg, format="JPEG")
    assert reason_of(RawClipping(id="b", image=jpeg.getvalue()[:300]), limits()) == "image_undecodable"


def test_decompression_bomb_is_caught_from_the_header():
    bomb = png_claiming_size(100_000, 100_000)  # 10^10 pixels announced in a few dozen bytes
    assert len(bomb) < 200
    with pytest.raises(RejectedEvent) as info:
        decode_image(bomb, max_pixels=40_000_000)
    assert info.value.reason == "decompression_bomb"
    assert reason_of(RawClipping(id="a", image=png_bytes((2000, 1000))), limits(max_pixels=1_000_000)) == "decompression_bomb"


def test_empty_inline_image_counts_as_no_image():
    assert image_bytes(RawClipping(id="a", image=b"", text="caption"), limits()) is None


def test_s3_reference_is_valid_but_not_fetched_here():
    raw = RawClipping(id="a", image_uri="s3://bucket/key.jpg")
    out = ImagePreparer(limits(), CFG, workers=1).prepare([raw])[0]
    assert out.reason == "image_fetch_failed" and "presigned" in out.detail


# -- hostile references (issue 10) -----------------------------------------------------------

def test_by_default_no_reference_is_fetched(http_root, server, tmp_path):
    (tmp_path / "x.png").write_bytes(png_bytes())
    lim = ImageLimits.from_settings(EmbedderSettings())
    assert reason_of(RawClipping(id="a", image_uri=f"{http_root}/ok.png"), lim) == "image_fetch_failed"
    assert reason_of(RawClipping(id="b", image_uri=(tmp_path / "x.png").as_uri()), lim) == "image_fetch_failed"
    assert server.seen == []


def test_http_only_to_allow_listed_hosts(http_root, server):
    others = limits(**(LOCAL | dict(http_hosts=("images.example.com", "*.cdn.example.com"))))
    out = rejection(RawClipping(id="a", image_uri=f"{http_root}/ok.png"), others)
    assert out.reason == "image_fetch_failed" and "image_http_hosts" in out.detail
    nobody = limits(**(LOCAL | dict(http_hosts=())))  # empty: no host at all
    assert reason_of(RawClipping(id="b", image_uri=f"{http_root}/ok.png"), nobody) == "image_fetch_failed"
    assert server.seen == []  # refused before any connection
    cdn = ["*.cdn.example.com"]
    assert host_allowed("a.cdn.example.com", cdn) and host_allowed("x.b.cdn.example.com", cdn)
    assert not host_allowed("cdn.example.com", cdn) and not host_allowed("evilcdn.example.com", cdn)
    assert host_allowed("Images.Example.com.", ["images.example.com"]) and host_allowed("anything.org", ["*"])


def test_loopback_is_refused_after_dns_unless_private_addresses_are_opted_in(http_root, server):
    port = server.server_address[1]
    public_only = limits(http_allowed=True, http_hosts=("localhost", "127.0.0.1", "::ffff:127.0.0.1"))
    for uri in (f"http://localhost:{port}/ok.png", f"{http_root}/ok.png", f"http://[::ffff:127.0.0.1]:{port}/ok.png"):
        out = rejection(RawClipping(id="a", image_uri=uri), public_only)
        assert (out.reason, out.detail) == ("image_fetch_failed", FETCH_FAILED), uri
    assert server.seen == []
    opted_in = limits(http_allowed=True, http_hosts=("localhost",), http_private_allowed=True)
    assert image_bytes(RawClipping(id="b", image_uri=f"http://localhost:{port}/ok.png"), opted_in) == png_bytes()
    assert server.seen == [("/ok.png", f"localhost:{port}")]  # the name in Host, the checked address dialled


@pytest.mark.parametrize("ip,refused,refused_opted_in", [
    ("93.184.216.34", False, False), ("2606:2800:220:1::1", False, False),  # public (only classified here)
    ("127.0.0.1", True, False), ("::1", True, False), ("10.1.2.3", True, False), ("172.16.0.9", True, False),
    ("192.168.1.1", True, False), ("fd00::1", True, False), ("100.64.0.1", True, True),  # carrier NAT
    ("::ffff:127.0.0.1", True, False), ("::ffff:10.0.0.1", True, False),  # IPv4 in IPv6 clothing
    ("::ffff:169.254.169.254", True, True), ("::ffff:93.184.216.34", False, False),
    ("169.254.169.254", True, True), ("fe80::1", True, True),  # link-local: cloud metadata, never
    ("224.0.0.1", True, True), ("ff02::1", True, True), ("0.0.0.0", True, True), ("::", True, True),
])
def test_address_classes(ip, refused, refused_opted_in):
    assert address_refused(ip, private_allowed=False) is refused
    assert address_refused(ip, private_allowed=True) is refused_opted_in


def test_every_address_of_a_name_is_checked_and_the_checked_one_is_dialled(server):
    port = server.server_address[1]
    server.seen.clear()
    names = resolver({"images.test": ["127.0.0.1"], "rebound.test": ["127.0.0.1", "169.254.169.254"]})
    lim = limits(http_allowed=True, http_hosts=("*.test",), http_private_allowed=True, resolve=names)
    out = rejection(RawClipping(id="a", image_uri=f"http://rebound.test:{port}/ok.png"), lim)
    assert (out.reason, out.detail) == ("image_fetch_failed", FETCH_FAILED)
    assert server.seen == []  # one bad address refuses the name, even with a good one first
    # images.test exists only in this resolver: the fetch works only by dialling the address it checked.
    assert image_bytes(RawClipping(id="b", image_uri=f"http://images.test:{port}/ok.png"), lim) == png_bytes()
    assert server.seen == [("/ok.png", f"images.test:{port}")]


def test_https_dials_the_checked_address_and_verifies_the_name():
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(TLS_DIR / "images.test.pem", TLS_DIR / "images.test.key")
    srv = serve(server_tls)
    try:
        port = srv.server_address[1]
        names = resolver({"images.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        lim = limits(http_allowed=True, http_hosts=("*.test",), http_private_allowed=True, resolve=names,
                     tls=ssl.create_default_context(cafile=str(TLS_DIR / "images.test.pem")))
        assert image_bytes(RawClipping(id="a", image_uri=f"https://images.test:{port}/ok.png"), lim) == png_bytes()
        assert srv.seen == [("/ok.png", f"images.test:{port}")]
        out = rejection(RawClipping(id="b", image_uri=f"https://other.test:{port}/ok.png"), lim)  # wrong certificate
        assert (out.reason, out.detail) == ("image_fetch_failed", FETCH_FAILED)
        assert len(srv.seen) == 1  # the handshake failed: no request was sent
    finally:
        srv.shutdown()


def test_redirects_are_not_followed(http_root, server):
    out = rejection(RawClipping(id="a", image_uri=f"{http_root}/redirect"), limits(**LOCAL))
    assert (out.reason, out.detail) == ("image_fetch_failed", FETCH_FAILED)
    assert [path for path, _ in server.seen] == ["/redirect"]


def test_a_fetch_failure_tells_nothing_about_the_target(http_root, tmp_path):
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "escape").symlink_to("/etc/passwd")
    lim = limits(root, **(LOCAL | dict(fetch_timeout_s=1.5)))
    refs = [f"{http_root}/missing.png", f"{http_root}/error", f"{http_root}/redirect", f"{http_root}/slow",
            f"http://127.0.0.1:{closed_port()}/x.png",
            (root / "missing.png").as_uri(), (root / "dir").as_uri(), (root / "escape").as_uri(),
            "file:///etc/passwd", "file:///etc/no-such-file", "file:///proc/self/environ", "file:///dev/zero"]
    outs = prepare_within(lim, [RawClipping(id=f"r{i}", image_uri=uri) for i, uri in enumerate(refs)], workers=4)
    for uri, out in zip(refs, outs):
        assert isinstance(out, RejectedEvent), uri
        assert (out.reason, out.detail) == ("image_fetch_failed", FETCH_FAILED), (uri, out.detail)
    no_roots = rejection(RawClipping(id="a", image_uri="file:///etc/passwd"), limits(None))
    assert "/etc" not in no_roots.detail and "image_file_roots" in no_roots.detail  # a setting, not a file


def test_non_regular_files_are_refused_without_reading(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # no writer: opening it to read would wait forever
    lim = limits(tmp_path, file_roots=(tmp_path.resolve(), Path("/dev")))
    outs = prepare_within(lim, [RawClipping(id="a", image_uri=(tmp_path / "fifo").as_uri()),
                                RawClipping(id="b", image_uri="file:///dev/zero")])
    assert [(o.reason, o.detail) for o in outs] == [("image_fetch_failed", FETCH_FAILED)] * 2


def test_the_size_cap_holds_while_reading_a_file_that_reports_size_zero():
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0 and len(status.read_bytes()) > 100
    lim = limits(file_roots=(Path("/proc"),), max_bytes=100)
    out = rejection(RawClipping(id="a", image_uri="file:///proc/self/status"), lim)
    assert (out.reason, out.detail) == ("image_too_large", "referenced image over the limit of 100 bytes")


def test_a_slow_server_is_cut_off_at_the_fetch_deadline(http_root):
    lim = limits(**(LOCAL | dict(fetch_timeout_s=2.0, batch_timeout_s=600.0)))
    out = prepare_within(lim, [RawClipping(id="a", image_uri=f"{http_root}/slow")], wait_s=60)[0]
    assert (out.reason, out.detail) == ("image_fetch_failed", FETCH_FAILED)


def test_the_batch_deadline_rejects_what_is_still_outstanding(http_root):
    lim = limits(**(LOCAL | dict(fetch_timeout_s=600.0, batch_timeout_s=2.0)))
    raws = [RawClipping(id="slow", image_uri=f"{http_root}/slow"),
            RawClipping(id="queued", image_uri=f"{http_root}/ok.png"),  # behind the slow one (one worker)
            RawClipping(id="inline", image=png_bytes())]
    slow, queued, inline = prepare_within(lim, raws, workers=1, wait_s=60)
    assert (slow.reason, slow.detail) == (queued.reason, queued.detail) == ("image_fetch_failed", FETCH_FAILED)
    assert inline.shape == (3, 32, 48)  # queued ahead of the fetches: never starved by them
    assert prepare_within(lim, [RawClipping(id="next", image_uri=f"{http_root}/ok.png")])[0].shape == (3, 32, 48)


def test_inline_images_go_ahead_of_a_slow_fetch_listed_before_them(http_root):
    """Large inline images take longer to decode than the batch deadline leaves after a slow
    fetch: queued behind it they would be rejected as late."""
    big = io.BytesIO()
    Image.effect_noise((2500, 2500), 60).convert("RGB").save(big, format="PNG")
    lim = limits(**(LOCAL | dict(fetch_timeout_s=600.0, batch_timeout_s=3.0, max_pixels=10_000_000,
                                 inline_max_bytes=20_000_000)))
    raws = [RawClipping(id="slow", image_uri=f"{http_root}/slow")] + [
        RawClipping(id=f"inline-{i}", image=big.getvalue()) for i in range(4)]
    slow, *inline = prepare_within(lim, raws, workers=1, wait_s=60)
    assert slow.reason == "image_fetch_failed"
    assert [getattr(x, "shape", x) for x in inline] == [(3, 32, 48)] * 4
