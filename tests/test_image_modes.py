"""Images in the modes archives and cameras write reach the shipped models as their 8-bit,
upright, white-paper originals do: a 16-bit grey scan (PNG, TIFF), a float or 32-bit int grey
TIFF, a cut-out crop whose paper is transparent, and a picture stored on its side with an EXIF
orientation. Checked through both paths that prepare pixels: the embedder service's (bytes of a
clipping) and the offline one (a file, as training, export and `clippings eval` read it)."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clippings.data.dataset import load_dataset
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.runtime.preprocess import load_image, prepare_image
from clippings.services.config import EmbedderSettings, load_settings
from clippings.services.embedder.images import ImageLimits, ImagePreparer
from clippings.services.schemas import RawClipping

GOLDEN = Path(__file__).parent / "golden"
EXIF_ORIENTATION = 0x0112


def originals(name: str) -> list[Image.Image]:
    """Real clippings' images in 8-bit grey: the sample feed's first photos (news) or the kept
    jp-firms crops, one of them vertical."""
    if name == "news":
        from clippings.services.local.cli import SAMPLE_FEED

        records = [r for r in load_dataset(SAMPLE_FEED).records if r.image is not None][:4]
    else:
        records = load_dataset(GOLDEN / "jp-crops").records
    return [load_image(r.image).convert("L") for r in records]


def encoded(img: Image.Image, form: str) -> bytes:
    """`img` (8-bit grey) written the way `form` says, so that it shows the same picture."""
    grey = np.asarray(img, dtype=np.uint16)
    out = io.BytesIO()
    if form == "png-8":
        img.save(out, format="PNG")
    elif form in ("png-16", "tiff-16"):
        Image.fromarray(grey * 257).save(out, format=form.split("-")[0].upper())  # mode I;16, full 16-bit range
    elif form == "tiff-float":
        Image.fromarray((grey / 255.0).astype(np.float32)).save(out, format="TIFF")
    elif form == "tiff-int32":
        Image.fromarray((grey * 257).astype(np.int32)).save(out, format="TIFF")
    elif form == "png-cut-out":  # black ink whose opacity is the darkness; the paper transparent
        black = np.zeros(grey.shape + (3,), np.uint8)
        Image.fromarray(np.dstack([black, (255 - grey).astype(np.uint8)]), "RGBA").save(out, format="PNG")
    elif form == "png-exif-rotated":  # stored turned a quarter, the tag tells a viewer to turn it back
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 6
        img.transpose(Image.Transpose.ROTATE_90).save(out, format="PNG", exif=exif.tobytes())
    else:
        raise AssertionError(form)
    return out.getvalue()


def served(emb: OnnxEmbedder, blobs: list[bytes]) -> np.ndarray:
    preparer = ImagePreparer(ImageLimits.from_settings(load_settings(EmbedderSettings)), emb.preprocess, 1)
    try:
        prepared = preparer.prepare([RawClipping(id=f"c{i}", image=b) for i, b in enumerate(blobs)])
    finally:
        preparer.close()
    assert all(isinstance(p, np.ndarray) for p in prepared), prepared
    return np.stack(prepared)


FORMS = ["png-16", "tiff-16", "tiff-float", "tiff-int32", "png-cut-out", "png-exif-rotated"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ["news", "jp-firms"])
def test_a_picture_in_another_mode_is_read_as_its_8_bit_original(name, form, tmp_path):
    emb = OnnxEmbedder(name, providers=["CPUExecutionProvider"])
    images = originals(name)
    expected = served(emb, [encoded(img, "png-8") for img in images])
    blobs = [encoded(img, form) for img in images]
    # A step of the normalised scale is 1/255/std: compositing on white may round by one level.
    step = 1.0 / 255 / float(np.max(emb.preprocess.std))
    tolerance = 1.01 * step if form == "png-cut-out" else 1e-6
    online = served(emb, blobs)
    assert np.abs(online - expected).max() <= tolerance, form
    files = []
    for i, blob in enumerate(blobs):
        files.append(tmp_path / f"{i}.img")
        files[-1].write_bytes(blob)
    offline = np.stack([prepare_image(load_image(f), emb.preprocess) for f in files])
    assert np.array_equal(offline, online)
    # And the model's vectors are its original's, through the real graph.
    ids, _ = emb.tokenizer([""] * len(images))
    got, want = emb.run(online, ids)[0], emb.run(expected, ids)[0]
    cosine = np.sum(got * want, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() > 0.999, (form, cosine.min())


def test_junk_in_the_exif_block_leaves_the_picture_as_stored():
    """Pillow raises on some broken EXIF blocks; the picture itself is fine and is read."""
    emb = OnnxEmbedder("jp-firms", providers=["CPUExecutionProvider"])
    img = originals("jp-firms")[0]
    junk = io.BytesIO()
    img.save(junk, format="PNG", exif=b"not a TIFF header")
    assert np.array_equal(served(emb, [junk.getvalue()]), served(emb, [encoded(img, "png-8")]))
