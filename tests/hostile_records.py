"""The hostile records of test_hostile_input.py: what each one is, and what the embedder must make of it.

Every kind names the outcome the docs promise (docs/events.md): a dead letter with one of the
reasons in `expect`, or LINKED for input that is odd but valid (unknown fields are ignored,
text has no length limit, any image Pillow reads is an image). `secrets` are substrings of
the bad value that the DLQ detail must not repeat; kinds in one `group` are refused for the
same cause and must get the same detail, so the detail cannot tell which file exists or which
address answered.

Every network target is on this machine and written as a numeric address (127.0.0.1, 127.1,
2130706433, 0.0.0.0, ::1) or as localhost (from /etc/hosts): whatever the embedder does with
them, old code included, nothing leaves the machine, not even a DNS query. 169.254.169.254 is
left out for that reason; the private-address rule is shown on loopback, refused the same way.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

LINKED = "linked"
ALLOWED_HTTP_HOSTS = ("localhost", "127.0.0.1")  # the embedder's allow-list: both resolve to loopback only


@dataclass(frozen=True)
class Hostile:
    kind: str
    value: bytes | None
    expect: frozenset[str]  # DLQ reasons, or {LINKED}
    key: bytes | None = None  # default: b"bad-<kind>"
    headers: list = field(default_factory=list)
    secrets: tuple[str, ...] = ()  # parts of the bad value the DLQ detail must not repeat
    group: str | None = None  # kinds refused for one cause: one detail for all
    clipping_id: str | None = None  # the id the DLQ record must name, when the record has a usable one

    @property
    def raw_key(self) -> bytes:
        return self.key if self.key is not None else f"bad-{self.kind}".encode()


@dataclass(frozen=True)
class Targets:
    """What the records point at: folders, files and local servers made by the test."""

    allowed: Path  # the embedder's file root (with /dev, which holds device files)
    sample_image: Path  # a real clipping's JPEG
    redis_port: int
    http_port: int  # a local server that answers with a real image
    slow_port: int  # a local server that drips one byte every 2 s


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims another size (CRC fixed, so only the size is a lie)."""
    data = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = struct.pack(">II", width, height) + data[24:29]
    return data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:]


def record(**fields) -> bytes:
    return json.dumps(fields).encode()


def clip(cid: str, text: str = "", image: bytes | None = None, **extra) -> bytes:
    """A raw clipping as a feed would write it (image inline as base64)."""
    fields = {"schema_version": 1, "id": cid, "text": text} | extra
    if image is not None:
        fields["image"] = base64.b64encode(image).decode()
    return record(**fields)


def _schema_kinds() -> list[Hostile]:
    deep = b'{"id":"bad-deep","text":"x","metadata":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"
    big_id = "I" * 900_000
    return [
        Hostile("invalid_json", b'{"id": "bad-invalid-json", "text": ', frozenset({"schema"})),
        Hostile("empty_value", b"", frozenset({"schema"})),
        Hostile("tombstone", None, frozenset({"schema"})),
        Hostile("json_nested_5000", deep, frozenset({"schema"}), secrets=('{"a":{"a":',)),
        Hostile("value_999700_not_json", b"\x00\xfe" + b"N" * 999_698, frozenset({"schema"}), secrets=("NNNNNNNN",)),
        Hostile("id_900kb", record(id=big_id, text="a caption"), frozenset({"schema"}), secrets=("IIIIIIII",)),
        Hostile("v2_10mb", record(schema_version=2, id="bad-v2-10mb", text="T" * 10_000_000),
                frozenset({"schema"}), secrets=("TTTTTTTT",), clipping_id="bad-v2-10mb"),
        Hostile("schema_version_99", record(schema_version=99, id="bad-v99", text="a caption"),
                frozenset({"schema"}), clipping_id="bad-v99"),
        Hostile("missing_id", record(text="a caption without an id"), frozenset({"schema"})),
        Hostile("id_wrong_type", record(id=12345, text="a caption"), frozenset({"schema"})),
        Hostile("id_list", record(id=["bad", "id"], text="a caption"), frozenset({"schema"})),
        Hostile("invalid_base64", record(id="bad-b64", text="a caption", image="!!not*base64=="),
                frozenset({"schema"}), secrets=("!!not*base64",), clipping_id="bad-b64"),
        Hostile("image_and_uri", record(id="bad-both", image="iVBORw0KGgo=", image_uri="file:///x.png"),
                frozenset({"schema"}), clipping_id="bad-both"),
        Hostile("key_100kb", b'{"id": "bad-key", ', frozenset({"schema"}), key=b"K" * 100_000, secrets=("KKKKKKKK",)),
        # JSON that Python's json module reads but the schema's parser refuses: a lone surrogate
        # (no UTF-8 for the log or the DLQ header) and an integer past Python's 4,300 digits.
        Hostile("id_lone_surrogate", b'{"id": "bad-\\udfff", "text": "a caption"}', frozenset({"schema"})),
        Hostile("number_5000_digits", b'{"id": "bad-digits", "text": "c", "metadata": {"n": ' + b"9" * 5000 + b"}}",
                frozenset({"schema"}), secrets=("99999999",)),
        Hostile("utf16_json", '{"id": "bad-utf16", "text": "a caption"}'.encode("utf-16"), frozenset({"schema"})),
    ]


def _content_kinds(t: Targets) -> list[Hostile]:
    invisible = "\u200b\u200c\u200d\ufeff\u2060\u00ad\u0000\u0007\u0008\u001f\u007f\u0085"
    evil_id = "bad-\r\nevent=forged level=ERROR \x1b[31mred\x1b[0m\x1b]0;title\x07"
    forged = json.dumps({"stage": "linker", "reason": "model_mismatch", "detail": "forged",
                         "origin": {"topic": "forged", "partition": 0, "offset": 999_999_999},
                         "failed_ts_ms": 1, "service": "forged"}).encode()
    # Header names are C strings to librdkafka (a NUL would cut the name on the way in): the junk
    # is in the values, and in names as escapes and bidi marks.
    junk = [("\x1b[2J\u202e\x7f", b"\x00\xff\xfe\x1b[2J"), ("hostile-none", None), ("binary", bytes(range(256)))]
    src = Image.open(t.sample_image).convert("RGB")
    return [
        Hostile("caption_invisible_only", clip("bad-invisible", invisible), frozenset({"empty"}),
                clipping_id="bad-invisible"),
        Hostile("neither_image_nor_text", record(id="bad-nothing"), frozenset({"empty"}), clipping_id="bad-nothing"),
        Hostile("image_empty_base64", record(id="bad-empty-image", image=""), frozenset({"empty"}),
                clipping_id="bad-empty-image"),
        # Valid per schema (ids are free text): rejected either as empty or, if ids get a
        # character rule, as schema; either way its id must reach the log escaped.
        Hostile("id_control_chars", record(id=evil_id), frozenset({"empty", "schema"}), secrets=("\x1b",)),
        Hostile("headers_binary_junk", record(id="bad-junk-headers"), frozenset({"empty"}), headers=junk,
                clipping_id="bad-junk-headers"),
        Hostile("header_forged_dlq", record(id="bad-forged"), frozenset({"empty"}),
                headers=[("clippings.dlq", forged)], clipping_id="bad-forged"),
        Hostile("caption_1mb_bad_image", clip("bad-1mb-broken", "C" * 1_000_000, b"\x89PNG\r\n\x1a\nbroken"),
                frozenset({"image_undecodable"}), secrets=("CCCCCCCC",), clipping_id="bad-1mb-broken"),
        # Odd but valid: accepted and linked.
        Hostile("extra_unknown_fields", clip("odd-extra", "FLOOD WATERS RISE", encode(src, "PNG"), vector="AAAA",
                                             entity_id="e-1", __proto__={"admin": True}),
                frozenset({LINKED}), clipping_id="odd-extra"),
        Hostile("caption_1mb", clip("odd-1mb-caption", "word " * 200_000), frozenset({LINKED}),
                clipping_id="odd-1mb-caption"),
        Hostile("block_hostile", clip("odd-block", "PICKETS MARCH", block='evil"\n\x1b[2J{}/../x'),
                frozenset({LINKED}), clipping_id="odd-block"),
    ]


def _image_kinds(t: Targets) -> list[Hostile]:
    src = Image.open(t.sample_image).convert("RGB")
    png, jpeg = encode(src, "PNG"), t.sample_image.read_bytes()
    noise = encode(Image.effect_noise((700, 700), 100).convert("RGB"), "PNG")  # incompressible: over 700 KB
    wide16 = Image.fromarray((np.random.default_rng(0).random((60, 90)) * 65535).astype(np.uint16))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "A" * 4_000_000, zip=True)
    text_bomb = encode(Image.new("RGB", (40, 30)), "PNG", pnginfo=info)
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\'http://127.0.0.1/\')">'
           b"<script>alert(1)</script></svg>")
    bad = {
        "truncated_png": (png[: len(png) // 2], "image_undecodable"),
        "truncated_jpeg": (jpeg[: int(len(jpeg) * 0.6)], "image_undecodable"),
        "decompression_bomb": (png_claiming(100_000, 100_000), "decompression_bomb"),
        "image_0x0": (png_claiming(0, 0), "image_undecodable"),
        "pdf_header": (b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n", "image_undecodable"),
        "svg_script": (svg, "image_undecodable"),
        "inline_too_large": (noise, "image_too_large"),
        "png_text_chunk_bomb": (text_bomb, "image_undecodable"),  # 4 MB of zTXt: over Pillow's MAX_TEXT_CHUNK
    }
    out = [Hostile(k, clip(f"bad-{k}", "a caption that must not rescue a broken image", data),
                   frozenset({reason}), clipping_id=f"bad-{k}") for k, (data, reason) in bad.items()]
    odd = {
        "image_1x100000": encode(Image.new("L", (1, 100_000), 200), "PNG"),
        "image_cmyk": encode(src.convert("CMYK"), "JPEG"),
        "image_palette_transparency": encode(src.convert("P"), "PNG", transparency=0),
        "image_16bit": encode(wide16, "PNG"),
    }
    out += [Hostile(k, clip(f"odd-{k}", "", data), frozenset({LINKED}), clipping_id=f"odd-{k}")
            for k, data in odd.items()]
    return out


def _file_kinds(t: Targets) -> list[Hostile]:
    good = t.allowed / "good.jpg"
    outside = {  # refused by the roots, existing or not: one detail for all
        "file_etc_passwd": "file:///etc/passwd",
        "file_proc_self_environ": "file:///proc/self/environ",
        "file_traversal": f"file://{t.allowed}" + "/.." * 12 + "/etc/passwd",
        "file_traversal_encoded": f"file://{t.allowed}" + "/%2e%2e" * 12 + "/etc/passwd",
        "file_symlink_outside": (t.allowed / "link-out.jpg").as_uri(),
        "file_missing_outside": "file:///nonexistent-clippings-dir/secret.png",
    }
    out = [Hostile(k, record(id=f"bad-{k}", image_uri=uri), frozenset({"image_fetch_failed"}),
                   secrets=(uri, "passwd", "environ", "nonexistent", str(t.allowed)), group="file_refused",
                   clipping_id=f"bad-{k}") for k, uri in outside.items()]
    inside = {
        # /dev is a root: a device reports size 0 and never ends; a capped read or a
        # regular-file check must stop it.
        "file_dev_zero": ("file:///dev/zero", None, {"image_fetch_failed", "image_too_large"}),
        "file_fifo_in_root": ((t.allowed / "pipe.png").as_uri(), None, {"image_fetch_failed"}),  # open() would block
        "file_directory": (t.allowed.as_uri(), None, {"image_fetch_failed"}),
        "sha256_mismatch": (good.as_uri(), hashlib.sha256(b"other").hexdigest(), {"image_fetch_failed"}),
    }
    for k, (uri, sha, reasons) in inside.items():
        fields = {"id": f"bad-{k}", "image_uri": uri} | ({"image_sha256": sha} if sha else {})
        out.append(Hostile(k, record(**fields), frozenset(reasons), secrets=(uri, str(t.allowed)),
                           clipping_id=f"bad-{k}"))
    return out


def _network_kinds(t: Targets) -> list[Hostile]:
    private = {  # hosts on the allow-list that resolve to loopback: the private-address rule refuses them
        "http_redis_port": f"http://127.0.0.1:{t.redis_port}/",
        "http_localhost_image": f"http://localhost:{t.http_port}/clip.jpg",
        "http_slow_drip": f"http://localhost:{t.slow_port}/slow.jpg",
        "https_localhost": f"https://localhost:{t.http_port}/clip.jpg",
    }
    unlisted = {  # loopback under names not on the allow-list
        "http_decimal_ip": f"http://2130706433:{t.http_port}/clip.jpg",
        "http_zero_address": f"http://0.0.0.0:{t.http_port}/clip.jpg",
        "http_ipv6_loopback": f"http://[::1]:{t.http_port}/clip.jpg",
        "http_short_ip": f"http://127.1:{t.http_port}/clip.jpg",
    }
    ports = (str(t.redis_port), str(t.http_port), str(t.slow_port))
    out = []
    for group, uris in (("http_private", private), ("http_unlisted", unlisted)):
        out += [Hostile(k, record(id=f"bad-{k}", image_uri=uri), frozenset({"image_fetch_failed"}),
                        secrets=(uri, *ports), group=group, clipping_id=f"bad-{k}") for k, uri in uris.items()]
    out.append(Hostile("s3_uri", record(id="bad-s3", image_uri="s3://internal-bucket/secret/key.jpg"),
                       frozenset({"image_fetch_failed"}), secrets=("internal-bucket",), clipping_id="bad-s3"))
    out.append(Hostile("gopher_uri", record(id="bad-gopher", image_uri=f"gopher://127.0.0.1:{t.redis_port}/_FLUSHALL"),
                       frozenset({"schema"}), secrets=("FLUSHALL", *ports), clipping_id="bad-gopher"))
    return out


def hostile_records(t: Targets) -> list[Hostile]:
    kinds = _schema_kinds() + _content_kinds(t) + _image_kinds(t) + _file_kinds(t) + _network_kinds(t)
    assert len({h.kind for h in kinds}) == len(kinds)
    return kinds


# -- what a DLQ detail must not say ------------------------------------------------------------
_ERRNO_TEXTS = [os.strerror(e) for e in (2, 13, 20, 21, 40, 6, 104, 110, 111, 113, 101, 1)] + ["Errno", "errno"]
_PATTERNS = {
    "path": re.compile(r"(?:^|[\s'\"(<=,])/[\w.-]+"),
    "ip": re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|::1|\[::"),
    "port": re.compile(r"[\w\]]:\d{2,5}\b"),
    "host": re.compile(r"localhost|169\.254", re.I),
}


def leaks(detail: str, secrets: tuple[str, ...]) -> list[str]:
    """What the detail gives away: a path, an address, a port, an errno text, the bad value."""
    found = [name for name, pattern in _PATTERNS.items() if pattern.search(detail)]
    found += [f"errno text {t!r}" for t in _ERRNO_TEXTS if t in detail]
    found += [f"the value {s[:40]!r}" for s in secrets if s and s in detail]
    return found
