"""Images into model input: inline, file:// and http:// fetches, and every way to be rejected."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clippings.preprocess import PreprocessConfig
from clippings.services.errors import RejectedEvent
from clippings.services.images import ImageLimits, ImagePreparer, decode_image, image_bytes
from clippings.services.schemas import RawClipping

CFG = PreprocessConfig(image_height=32, image_width=48, channels=3, reflow_tall=False)


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
                file_roots=(tmp_path.resolve(),) if tmp_path else (), http_allowed=True)
    return ImageLimits(**(base | kw))


def reason_of(raw: RawClipping, lim: ImageLimits) -> str:
    out = ImagePreparer(lim, CFG, workers=1).prepare([raw])[0]
    assert isinstance(out, RejectedEvent), out
    return out.reason


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    (root / "ok.png").write_bytes(png_bytes())
    (root / "big.bin").write_bytes(b"\0" * 300_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


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


def test_http_reference(http_root):
    assert image_bytes(RawClipping(id="a", image_uri=f"{http_root}/ok.png"), limits()) == png_bytes()
    assert reason_of(RawClipping(id="b", image_uri=f"{http_root}/missing.png"), limits()) == "image_fetch_failed"
    assert reason_of(RawClipping(id="c", image_uri=f"{http_root}/big.bin"), limits()) == "image_too_large"
    assert reason_of(RawClipping(id="d", image_uri=f"{http_root}/ok.png"), limits(http_allowed=False)) == "image_fetch_failed"


def test_checksum_mismatch_is_a_failed_fetch(tmp_path):
    (tmp_path / "x.png").write_bytes(png_bytes())
    raw = RawClipping(id="a", image_uri=(tmp_path / "x.png").as_uri(), image_sha256="0" * 64)
    assert reason_of(raw, limits(tmp_path)) == "image_fetch_failed"


def test_inline_over_the_limit():
    assert reason_of(RawClipping(id="a", image=png_bytes()), limits(inline_max_bytes=50)) == "image_too_large"


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
