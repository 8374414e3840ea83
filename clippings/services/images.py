"""Getting a clipping's image into model input: fetch, guard, decode, preprocess.

Runs in a thread pool beside the inference thread (Pillow and urllib release the GIL while
they work). Every way an image can be bad ends in RejectedEvent with a DLQ reason; nothing
here stops the stream.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

from clippings.preprocess import PreprocessConfig, prepare_image
from clippings.services.config import EmbedderSettings
from clippings.services.errors import RejectedEvent
from clippings.services.schemas import RawClipping


@dataclass(frozen=True)
class ImageLimits:
    inline_max_bytes: int
    max_bytes: int
    max_pixels: int
    fetch_timeout_s: float
    file_roots: tuple[Path, ...]  # resolved; empty: file:// refused
    http_allowed: bool

    @classmethod
    def from_settings(cls, s: EmbedderSettings) -> "ImageLimits":
        return cls(
            inline_max_bytes=s.image_inline_max_bytes,
            max_bytes=s.image_max_bytes,
            max_pixels=s.image_max_pixels,
            fetch_timeout_s=s.image_fetch_timeout_s,
            file_roots=tuple(Path(r).resolve() for r in s.image_file_roots),
            http_allowed=s.image_http_allowed,
        )


def _too_large(n: int, limit: int, where: str) -> RejectedEvent:
    return RejectedEvent("image_too_large", f"{where} image of {n} bytes over the limit of {limit}")


def _fetch_file(uri: str, limits: ImageLimits) -> bytes:
    path = Path(unquote(urlsplit(uri).path)).resolve()
    if not any(path.is_relative_to(root) for root in limits.file_roots):
        raise RejectedEvent("image_fetch_failed", f"{uri}: file:// outside the allowed roots (image_file_roots)")
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise _too_large(size, limits.max_bytes, "referenced")
        return path.read_bytes()
    except OSError as exc:
        raise RejectedEvent("image_fetch_failed", f"{uri}: {exc.strerror or exc}") from None


def _fetch_http(uri: str, limits: ImageLimits) -> bytes:
    if not limits.http_allowed:
        raise RejectedEvent("image_fetch_failed", f"{uri}: http(s) references are disabled (image_http_allowed)")
    try:
        with urllib.request.urlopen(uri, timeout=limits.fetch_timeout_s) as resp:
            data = resp.read(limits.max_bytes + 1)  # one byte more tells "too large" without reading it all
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RejectedEvent("image_fetch_failed", f"{uri}: {exc}") from None
    if len(data) > limits.max_bytes:
        raise _too_large(len(data), limits.max_bytes, "referenced")
    return data


def image_bytes(raw: RawClipping, limits: ImageLimits) -> bytes | None:
    """The clipping's image bytes, inline or fetched; None when it has no image."""
    if raw.image is not None:
        if len(raw.image) > limits.inline_max_bytes:
            raise _too_large(len(raw.image), limits.inline_max_bytes, "inline")
        data = raw.image
    elif raw.image_uri is not None:
        scheme = urlsplit(raw.image_uri).scheme
        if scheme == "file":
            data = _fetch_file(raw.image_uri, limits)
        elif scheme in ("http", "https"):
            data = _fetch_http(raw.image_uri, limits)
        else:
            raise RejectedEvent("image_fetch_failed", f"{raw.image_uri}: this embedder fetches file:// and "
                                "http(s):// only; give S3 objects as presigned https:// URLs")
        if raw.image_sha256 and hashlib.sha256(data).hexdigest() != raw.image_sha256:
            raise RejectedEvent("image_fetch_failed", f"{raw.image_uri}: content does not match image_sha256")
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


class ImagePreparer:
    """Fetch + decode + preprocess a batch of clippings in a thread pool."""

    def __init__(self, limits: ImageLimits, preprocess: PreprocessConfig, workers: int):
        self._limits = limits
        self._preprocess = preprocess
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image")

    def _one(self, raw: RawClipping) -> PreparedImage:
        try:
            data = image_bytes(raw, self._limits)
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
        return list(self._pool.map(self._one, raws))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
