"""A clipping's image for the page: its inline bytes, or a file:// reference under an allowed
root. Anything else (http, s3, a path outside the roots, not an image) is "no image": the page
never fetches what a feed names, and never serves a file it cannot show as an image."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlsplit

MAX_BYTES = 20_000_000
# Formats a browser shows; the content type comes from the bytes, never from the feed.
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp",
                 "BMP": "image/bmp"}


def allowed_file(uri: str, roots: list[Path]) -> Path | None:
    """The regular file a file:// URI names when it lies under one of the roots, else None."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not roots:
        return None
    try:
        path = Path(unquote(parts.path)).resolve(strict=True)  # symlinks resolved before the check
    except (OSError, RuntimeError):
        return None
    if not path.is_file():
        return None
    for root in roots:
        try:
            if path.is_relative_to(root.resolve()):
                return path
        except OSError:
            continue
    return None


def image_bytes(inline: bytes | None, uri: str | None, roots: list[Path]) -> bytes | None:
    if inline:
        return inline
    path = allowed_file(uri, roots) if uri else None
    if path is None or path.stat().st_size > MAX_BYTES:
        return None
    return path.read_bytes()


def file_shows(uri: str, roots: list[Path]) -> bool:
    """Does the page show this reference: an allowed file whose header is an image a browser shows?"""
    path = allowed_file(uri, roots)
    return path is not None and path.stat().st_size <= MAX_BYTES and content_type(path) is not None


def content_type(data: bytes | Path) -> str | None:
    """The image type Pillow reads from the header, None when it is no image a browser shows."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as im:
            return CONTENT_TYPES.get(im.format or "")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def extension(data: bytes) -> str | None:
    kind = content_type(data)
    return None if kind is None else "." + kind.split("/")[1].replace("jpeg", "jpg")
