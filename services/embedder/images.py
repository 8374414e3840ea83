"""Getting a clipping's image into model input: fetch, guard, decode, preprocess.

Runs in a thread pool beside the inference thread (Pillow and sockets release the GIL while
they work). Every way an image can be bad ends in RejectedEvent with a DLQ reason; nothing
here stops the stream.

References come from the feed, so they are hostile until proven otherwise: file:// only
under the configured roots and only regular files; http(s) only when switched on, only to
allow-listed hosts, only to public addresses (checked after DNS, and the connection goes to
the checked address); every read is capped at the size limit, every fetch has a total
deadline and the batch has one too. What a fetch hit (a missing file, a refused port, a 404)
never reaches the DLQ detail: a reference that fails after the policy let it through always
reads FETCH_FAILED, whatever the cause.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import socket
import ssl
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

from clippings.runtime.preprocess import PreprocessConfig, prepare_image
from clippings.services.config import EmbedderSettings
from clippings.services.errors import RejectedEvent
from clippings.services.schemas import RawClipping

FETCH_FAILED = "image reference could not be fetched"
_CHUNK = 1 << 16

Resolver = Callable[[str, int], list[tuple]]  # (host, port) -> getaddrinfo() tuples


def _getaddrinfo(host: str, port: int) -> list[tuple]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


@dataclass(frozen=True)
class ImageLimits:
    inline_max_bytes: int
    max_bytes: int
    max_pixels: int
    fetch_timeout_s: float  # total per fetch: DNS aside, connect + TLS + headers + body
    file_roots: tuple[Path, ...]  # resolved; empty: file:// refused
    http_allowed: bool
    batch_timeout_s: float = 15.0  # total for one prepare() call
    http_hosts: tuple[str, ...] = ()  # lower case; "*.example.com" subdomains, "*" any host
    http_private_allowed: bool = False  # also private and loopback addresses
    resolve: Resolver = _getaddrinfo  # DNS; tests give names without a DNS server
    tls: ssl.SSLContext = field(default_factory=ssl.create_default_context)

    @classmethod
    def from_settings(cls, s: EmbedderSettings) -> "ImageLimits":
        return cls(
            inline_max_bytes=s.image_inline_max_bytes,
            max_bytes=s.image_max_bytes,
            max_pixels=s.image_max_pixels,
            fetch_timeout_s=s.image_fetch_timeout_s,
            file_roots=tuple(Path(r).resolve() for r in s.image_file_roots),
            http_allowed=s.image_http_allowed,
            batch_timeout_s=s.image_batch_timeout_s,
            http_hosts=tuple(h.strip().lower().rstrip(".") for h in s.image_http_hosts),
            http_private_allowed=s.image_http_private_allowed,
        )


def _too_large(n: int, limit: int) -> RejectedEvent:
    return RejectedEvent("image_too_large", f"inline image of {n} bytes over the limit of {limit}")


def _reference_too_large(limit: int) -> RejectedEvent:
    # The size is not told: only that the cap was passed (the read stops one byte after it).
    return RejectedEvent("image_too_large", f"referenced image over the limit of {limit} bytes")


def _refused(policy: str) -> RejectedEvent:
    """Refused from the reference's text and the settings alone: nothing about the target was learnt."""
    return RejectedEvent("image_fetch_failed", policy)


def _failed() -> RejectedEvent:
    return RejectedEvent("image_fetch_failed", FETCH_FAILED)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("image fetch deadline passed")
    return left


# -- file:// ---------------------------------------------------------------------------------

def _fetch_file(uri: str, limits: ImageLimits, deadline: float) -> bytes:
    if not limits.file_roots:
        raise _refused("file:// references are off (image_file_roots is empty)")
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise _refused("file:// references name no host")
    try:
        path = Path(unquote(parts.path)).resolve()
        if not any(path.is_relative_to(root) for root in limits.file_roots):
            raise _failed()  # same text as a missing file: which paths exist outside the roots stays unknown
        return _read_regular_file(path, limits.max_bytes, deadline)
    except RejectedEvent:
        raise
    except Exception:  # noqa: BLE001 (OSError, NUL in the path, a symlink loop: all the same to the feed)
        raise _failed() from None


def _read_regular_file(path: Path, max_bytes: int, deadline: float) -> bytes:
    # Devices are not even opened (opening some has effects). O_NONBLOCK: should a FIFO be
    # swapped in after the check, opening it does not wait for a writer; fstat then refuses it.
    # st_size is not trusted (0 for /proc): the read itself stops one byte past the cap.
    if not stat.S_ISREG(path.stat().st_mode):
        raise _failed()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _failed()  # devices (/dev/zero), FIFOs, sockets, directories
        chunks, total = [], 0
        while total <= max_bytes:
            _left(deadline)
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > max_bytes:
        raise _reference_too_large(max_bytes)
    return b"".join(chunks)


# -- http(s):// ------------------------------------------------------------------------------

def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Exact names (IP literals too), "*.example.com" for any subdomain of it, "*" for any host."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        if entry == "*" or entry == host:
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
    return False


def address_refused(ip: str, private_allowed: bool) -> bool:
    """True for what a feed must never reach: anything not public, unless private ones are opted in.

    Link-local (cloud metadata at 169.254.169.254), multicast and unspecified addresses stay
    refused even then; IPv4 written as IPv4-mapped IPv6 is judged as the IPv4 it is.
    """
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_multicast or addr.is_link_local or addr.is_unspecified:
        return True
    if addr.is_global:
        return False
    return not (private_allowed and (addr.is_private or addr.is_loopback))


class _DeadlineSocket:
    """The two things http.client asks of a socket, each wait cut to what is left of the deadline.

    A socket timeout bounds one read; a server sending a byte every few seconds passes any of
    them. Here every read gets only the time left, so the whole fetch ends at the deadline.
    """

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(_left(self.deadline))
        self.sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        pass  # http.client closes its connection before the body is read; _get owns the socket


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket):
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        self._owner.sock.settimeout(_left(self._owner.deadline))
        return self._owner.sock.recv_into(buf)


def _checked_addresses(host: str, port: int, limits: ImageLimits) -> list[tuple]:
    """Resolve once, check every address: one refused address refuses the name (DNS rebinding)."""
    infos = limits.resolve(host, port)
    if not infos or any(address_refused(info[4][0], limits.http_private_allowed) for info in infos):
        raise _failed()
    return infos


def _connect(infos: list[tuple], host: str, tls: ssl.SSLContext | None, deadline: float) -> socket.socket:
    """A socket to one of the checked addresses (never a fresh lookup), TLS verified against `host`."""
    last: Exception = OSError("no address")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(sockaddr)
            return tls.wrap_socket(sock, server_hostname=host) if tls else sock  # SNI + certificate name
        except OSError as exc:
            sock.close()
            last = exc
    raise last


def _fetch_http(uri: str, limits: ImageLimits, deadline: float) -> bytes:
    if not limits.http_allowed:
        raise _refused("http(s) references are off (image_http_allowed)")
    parts = urlsplit(uri)
    host = parts.hostname
    if not host or not host_allowed(host, limits.http_hosts):
        raise _refused("host not in image_http_hosts")
    try:
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        infos = _checked_addresses(host, port, limits)
        sock = _connect(infos, host, limits.tls if https else None, deadline)
        return _get(sock, host, port, https, parts.path or "/", parts.query, limits.max_bytes, deadline)
    except RejectedEvent:
        raise
    except Exception:  # noqa: BLE001 (DNS, refused, reset, timeout, TLS, bad HTTP: all the same to the feed)
        raise _failed() from None


def _get(sock: socket.socket, host: str, port: int, https: bool, path: str, query: str,
         max_bytes: int, deadline: float) -> bytes:
    conn = HTTPConnection(host, port)  # Host header from the name; the socket is already connected
    conn.default_port = 443 if https else 80  # no ":443" in Host (presigned URLs sign it)
    conn.sock = _DeadlineSocket(sock, deadline)
    try:
        conn.request("GET", path + (f"?{query}" if query else ""), headers={"User-Agent": "clippings-embedder"})
        resp = conn.getresponse()
        if resp.status != 200:  # redirects are not followed: the next hop would need checking again
            raise _failed()
        if int(resp.getheader("Content-Length") or 0) > max_bytes:
            raise _reference_too_large(max_bytes)
        data = resp.read(max_bytes + 1)  # one byte more tells "too large" without reading it all
    finally:
        conn.close()
        sock.close()
    if len(data) > max_bytes:
        raise _reference_too_large(max_bytes)
    return data


# -- one clipping ----------------------------------------------------------------------------

def image_bytes(raw: RawClipping, limits: ImageLimits, deadline: float | None = None) -> bytes | None:
    """The clipping's image bytes, inline or fetched by `deadline` (monotonic); None when it has none."""
    if raw.image is not None:
        if len(raw.image) > limits.inline_max_bytes:
            raise _too_large(len(raw.image), limits.inline_max_bytes)
        data = raw.image
    elif raw.image_uri is not None:
        deadline = min(deadline or float("inf"), time.monotonic() + limits.fetch_timeout_s)
        scheme = urlsplit(raw.image_uri).scheme
        if scheme == "file":
            data = _fetch_file(raw.image_uri, limits, deadline)
        elif scheme in ("http", "https"):
            data = _fetch_http(raw.image_uri, limits, deadline)
        else:
            raise _refused("this embedder fetches file:// and http(s):// only; "
                           "give S3 objects as presigned https:// URLs")
        if raw.image_sha256 and hashlib.sha256(data).hexdigest() != raw.image_sha256:
            raise RejectedEvent("image_fetch_failed", "content does not match image_sha256")
    else:
        return None
    return data or None


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes -> loaded PIL image; the size is checked from the header before any pixel is decoded."""
    # Malformed files make Pillow's decoders raise far more than OSError (struct.error,
    # IndexError, ... turn up under fuzzing): any exception while decoding untrusted bytes
    # rejects this one image, never the batch.
    try:
        img = Image.open(io.BytesIO(data))  # lazy: parses the header only
    except Image.DecompressionBombError as exc:
        raise RejectedEvent("decompression_bomb", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 (see above)
        raise RejectedEvent("image_undecodable", f"{type(exc).__name__}: {exc}") from None
    width, height = img.size
    if width * height > max_pixels:
        raise RejectedEvent(
            "decompression_bomb", f"{width}x{height} = {width * height} pixels over the limit of {max_pixels}"
        )
    if width == 0 or height == 0:
        raise RejectedEvent("image_undecodable", f"image of size {width}x{height}")
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise RejectedEvent("decompression_bomb", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 (see above)
        raise RejectedEvent("image_undecodable", f"{type(exc).__name__}: {exc}") from None
    return img


PreparedImage = np.ndarray | None | RejectedEvent  # (C, H, W) float32, no image, or why not


def _late(raw: RawClipping) -> RejectedEvent:
    """Still outstanding at the batch deadline: rejected, not waited for."""
    if raw.image_uri is not None:
        return _failed()  # the same text as any failed fetch: a slow target is not told apart
    return RejectedEvent("image_undecodable", "image not decoded by the batch deadline (image_batch_timeout_s)")


class ImagePreparer:
    """Fetch + decode + preprocess a batch of clippings in a thread pool, by a batch deadline."""

    def __init__(self, limits: ImageLimits, preprocess: PreprocessConfig, workers: int):
        self._limits = limits
        self._preprocess = preprocess
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image")

    def _one(self, raw: RawClipping, deadline: float) -> PreparedImage:
        try:
            data = image_bytes(raw, self._limits, deadline)
            if data is None:
                return None
            img = decode_image(data, self._limits.max_pixels)
            try:
                return prepare_image(img, self._preprocess)
            except Exception as exc:  # noqa: BLE001 (a mode or palette Pillow cannot convert)
                raise RejectedEvent("image_undecodable", f"preprocess: {type(exc).__name__}: {exc}") from None
        except RejectedEvent as exc:
            return exc

    def prepare(self, raws: Sequence[RawClipping]) -> list[PreparedImage]:
        """One result per clipping, in order, within batch_timeout_s; what is not done by then is rejected."""
        deadline = time.monotonic() + self._limits.batch_timeout_s
        # Work without a fetch is queued first: slow references must not starve inline images.
        order = sorted(range(len(raws)), key=lambda i: raws[i].image_uri is not None)
        futures = {i: self._pool.submit(self._one, raws[i], deadline) for i in order}
        # Fetches stop themselves at the deadline; the margin lets them report as failed fetches.
        wait_futures(futures.values(), timeout=deadline - time.monotonic() + 0.1)
        out: list[PreparedImage] = []
        for i, raw in enumerate(raws):
            future = futures[i]
            if future.done() and not future.cancelled():
                out.append(future.result())
            else:
                future.cancel()  # not started: never runs; running (a decode): its result is dropped
                out.append(_late(raw))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
