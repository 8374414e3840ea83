"""A second OCR engine for the news shift set: PaddleOCR's PP-OCRv6 small text detector and
recogniser, the ONNX graphs that the `rapidocr` wheel ships (Apache-2.0), run through ONNX
Runtime without importing the package (its imports pull in OpenCV).

A reading pipeline of another kind than tesseract's: a neural detector finds the text lines
of the caption scan, a CTC recogniser reads each line, and the lines are joined in reading
order. Its errors differ too: it drops or merges words where the detector misses part of a
line, and with a dictionary of kanji, kana and Latin it reads a blot or a rule as a CJK
character, where tesseract reads it as Latin junk. A shift set read this way tells whether a
model learned the news, or tesseract's habits.

The detector's post-processing is the DB recipe's, simplified to upright boxes (the scans are
columns of horizontal lines with at most a small skew): the probability map thresholded,
connected regions kept where their mean probability is high, each grown by area x ratio /
perimeter as DB's unclip does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
from PIL import Image

from clippings.data.shift.ocr import clean_latin
from clippings.models.trunk import TrunkRunner, package_file, trunk_path

TRUNK = "ppocrv6-small"  # the recogniser, as the jp-firms reader's trunk finds it
DETECTOR_FILE = "models/PP-OCRv6_det_small.onnx"
ENGINE = "PP-OCRv6 small det + rec (rapidocr wheel, ONNX Runtime)"  # the call, as tesseract's command line

# DB post-processing as PaddleOCR sets it for its detector: pixel threshold, region score, unclip.
PIXEL_THRESHOLD = 0.3
BOX_THRESHOLD = 0.6
UNCLIP_RATIO = 1.5
LIMIT_SIDE = 960  # the longest side the detector sees; PaddleOCR's default for its det models
LINE_HEIGHT = 48  # the recogniser's input height
DET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def middle(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0


class CaptionReader:
    """A caption scan -> its text: the detector's lines, each read by the recogniser, joined in
    reading order. One thread per session: the shift builder runs one reader per worker."""

    def __init__(self, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        path = package_file("rapidocr", DETECTOR_FILE, "the PP-OCR text detector")
        self.detector = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.detector_input = self.detector.get_inputs()[0].name
        self.recogniser = TrunkRunner(TRUNK, threads=threads)

    def boxes(self, img: Image.Image) -> list[Box]:
        """The detector's text regions, in the image's pixels."""
        w, h = img.size
        r = min(1.0, LIMIT_SIDE / max(w, h))
        W, H = max(32, round(w * r / 32) * 32), max(32, round(h * r / 32) * 32)
        x = (np.asarray(img.resize((W, H), Image.Resampling.BILINEAR), np.float32) / 255 - DET_MEAN) / DET_STD
        prob = self.detector.run(None, {self.detector_input: x.transpose(2, 0, 1)[None]})[0][0, 0]
        return regions(prob, w / W, h / H, w, h)

    def read(self, path: Path) -> str:
        img = Image.open(path).convert("RGB")
        texts = []
        for box in reading_order(self.boxes(img)):
            line = img.crop((round(box.x0), round(box.y0), round(box.x1), round(box.y1)))
            width = max(8, round(line.width * LINE_HEIGHT / max(1, line.height)))
            x = np.asarray(line.resize((width, LINE_HEIGHT), Image.Resampling.BILINEAR), np.float32) / 127.5 - 1
            texts.append(self.recogniser.read(x.transpose(2, 0, 1)[None])[0])
        return clean_latin(" ".join(texts))


def regions(prob: np.ndarray, sx: float, sy: float, w: int, h: int) -> list[Box]:
    """DB post-processing over upright boxes: regions of the map above PIXEL_THRESHOLD whose
    mean probability reaches BOX_THRESHOLD, grown by UNCLIP_RATIO, scaled by (sx, sy) to the
    image and clipped to its (w, h)."""
    from scipy import ndimage

    labels, _ = ndimage.label(prob > PIXEL_THRESHOLD)
    boxes = []
    for k, (ys, xs) in enumerate(ndimage.find_objects(labels), 1):
        bh, bw = ys.stop - ys.start, xs.stop - xs.start
        if min(bh, bw) < 3 or prob[ys, xs][labels[ys, xs] == k].mean() < BOX_THRESHOLD:
            continue
        grow = bh * bw * UNCLIP_RATIO / (2 * (bh + bw))
        boxes.append(Box(max(0.0, (xs.start - grow) * sx), max(0.0, (ys.start - grow) * sy),
                         min(float(w), (xs.stop + grow) * sx), min(float(h), (ys.stop + grow) * sy)))
    return boxes


def reading_order(boxes: list[Box]) -> list[Box]:
    """Top to bottom, and left to right within a line: a box whose middle lies within half its
    height of the current line's joins it (the detector may cut a line into pieces)."""
    lines: list[tuple[float, list[Box]]] = []
    for box in sorted(boxes, key=lambda b: b.middle):
        if lines and abs(box.middle - lines[-1][0]) < 0.5 * box.height:
            lines[-1][1].append(box)
        else:
            lines.append((box.middle, [box]))
    return [b for _, line in lines for b in sorted(line, key=lambda b: b.x0)]


@lru_cache(maxsize=1)
def _reader() -> CaptionReader:
    return CaptionReader()  # one per process: the builder's workers each load their own


def read_block(path: Path) -> str:
    """PP-OCR's text for the caption scan at `path`; only whitespace is normalised."""
    return _reader().read(path)


def version() -> str:
    """The engine and the installed wheel's version, as shift.json records tesseract's."""
    return f"PP-OCRv6 small det + rec (rapidocr {package_version('rapidocr')}, ONNX Runtime)"


def check() -> None:
    """Fail early, with the install hint, when the wheel's graphs are missing."""
    package_file("rapidocr", DETECTOR_FILE, "the PP-OCR text detector")
    trunk_path(TRUNK)
