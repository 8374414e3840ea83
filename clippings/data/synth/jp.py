"""kind jp-firms: Japanese firm names printed as directory crops, with OCR text.

Planning (which name, font, orientation, how bad a print) runs in the parent process and is
cheap; rendering a plan is a pure function of it, so workers can render in any order and
the output stays the same for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clippings.data.synth.degrade import degrade
from clippings.data.synth.fonts import FontFace, check_fonts, font_set
from clippings.data.synth.names import FirmName, firm_names, surface_form
from clippings.data.synth.ocr import ocr_text
from clippings.data.synth.render import Layout, render_text
from clippings.data.synth.tasks import Slot

VERTICAL_SHARE_JA = 0.45  # of Japanese names; with 15% romanised names always horizontal, ~38% overall
EMPTY_TEXT_SHARE = 0.03  # OCR returned nothing: image only
# Saved with 16 grey levels, as a 4-bit archival scan: scan noise on 256 levels does not
# compress, and 16 levels keep every stroke while making the PNGs 2.3x smaller.
GRAY_LEVELS = 16


@dataclass(frozen=True)
class Role:
    """How one kind of instance is printed: bounds of severity and surface-form strength."""

    severity: tuple[float, float]
    strength: tuple[float, float]


ROLES = {
    "corpus": Role(severity=(0.0, 0.35), strength=(0.0, 0.2)),  # a clean directory listing
    "query": Role(severity=(0.35, 1.0), strength=(0.6, 1.0)),  # another document, a worse scan
    "train": Role(severity=(0.0, 1.0), strength=(0.0, 1.0)),
    "dup": Role(severity=(0.1, 0.85), strength=(0.0, 0.8)),
}


@dataclass(frozen=True)
class CropPlan:
    record_id: str
    entity_id: str
    split: str
    truth: str  # the name as printed on this crop
    layout: Layout
    severity: float
    ocr_level: float
    empty_text: bool
    degradations: str
    clutter_text: str  # the neighbouring entry a crop may clip at an edge
    seed: tuple[int, ...]
    ocr: str = "simulated"  # or "tesseract": the text is a real engine's reading of the saved crop


class JpFirms:
    name = "jp-firms"
    default_instances = {"train": 4, "link": 2, "dedup": 5}

    def __init__(self, fonts: str, degradations: str, ocr: str = "simulated"):
        self.faces = font_set(fonts)
        check_fonts(self.faces)
        self.ja_faces = tuple(f for f in self.faces if f.script == "ja")
        self.degradations = degradations
        self.ocr = ocr
        if ocr == "tesseract":
            from clippings.data.shift.ocr import tesseract

            tesseract()  # fails now, with the packages to install, not after the first crop

    def entities(self, rng: np.random.Generator, n: int) -> list[FirmName]:
        return firm_names(rng, n)

    @staticmethod
    def render(plan: "CropPlan", out_dir: Path) -> tuple[dict, dict]:
        return render_crop(plan, out_dir)

    def plan(self, entity_id: str, firm: FirmName, slots: list[Slot], rng: np.random.Generator,
             neighbours: list[FirmName], seed: tuple[int, ...]) -> list[CropPlan]:
        plans: list[CropPlan] = []
        corpus: Layout | None = None
        for slot in slots:
            role = ROLES[slot.role]
            face = self._face(rng, firm, avoid=corpus.face if corpus and slot.role == "query" else None)
            vertical = self._vertical(rng, firm, face, corpus if slot.role == "query" else None)
            layout = _layout(rng, face, vertical, firm.script)
            if slot.role == "corpus":
                corpus = layout
            severity = float(rng.uniform(*role.severity))
            strength = float(rng.uniform(*role.strength))
            plans.append(CropPlan(
                record_id=f"{entity_id}-{slot.role[0]}{slot.k}",
                entity_id=entity_id,
                split=slot.split,
                truth=surface_form(firm, rng, strength),
                layout=layout,
                severity=severity,
                ocr_level=float(np.clip(0.08 + 0.8 * severity + rng.normal(0, 0.08), 0.0, 1.2)),
                empty_text=bool(rng.random() < EMPTY_TEXT_SHARE),
                degradations=self.degradations,
                clutter_text=neighbours[int(rng.integers(len(neighbours)))].text if neighbours else "",
                seed=seed + (len(plans),),
                ocr=self.ocr,
            ))
        return plans

    def _face(self, rng: np.random.Generator, firm: FirmName, avoid: FontFace | None) -> FontFace:
        pool = self.ja_faces if firm.script == "ja" else self.faces
        if avoid is not None and len(pool) > 1:
            pool = tuple(f for f in pool if f != avoid)
        return pool[int(rng.integers(len(pool)))]

    @staticmethod
    def _vertical(rng: np.random.Generator, firm: FirmName, face: FontFace, corpus: Layout | None) -> bool:
        if firm.script != "ja":
            return False
        if corpus is not None:  # a query comes from another document: often the other orientation
            return (not corpus.vertical) if rng.random() < 0.5 else corpus.vertical
        return bool(rng.random() < VERTICAL_SHARE_JA)


def _layout(rng: np.random.Generator, face: FontFace, vertical: bool, script: str) -> Layout:
    if script != "ja":
        tracking = 0.0
    elif vertical:
        tracking = float(rng.uniform(-0.05, 0.3))
    else:
        tracking = 0.0 if rng.random() < 0.6 else float(rng.uniform(0.05, 0.6))
    u = rng.random()
    clutter = "" if u < 0.75 else ("rule" if u < 0.87 else "neighbour")
    return Layout(
        face=face,
        char_px=int(rng.integers(24, 41)),
        vertical=vertical,
        tracking=tracking,
        condense=1.0 if vertical or rng.random() < 0.6 else float(rng.uniform(0.75, 1.0)),
        margins=tuple(int(m) for m in rng.integers(1, 9, size=4)),
        edge_clutter=clutter,
    )


def render_crop(plan: CropPlan, out_dir: Path) -> tuple[dict, dict]:
    """Render, degrade and save one crop; -> (record, meta) for records.jsonl and meta.jsonl."""
    rng = np.random.default_rng(plan.seed)
    img = render_text(plan.truth, plan.layout, rng, plan.clutter_text)
    img = degrade(img, rng, plan.degradations, plan.severity)
    rel = f"images/{plan.record_id}.png"
    _gray_levels(img, GRAY_LEVELS).save(out_dir / rel, format="PNG", compress_level=9)
    text = "" if plan.empty_text else ocr_text(plan.truth, rng, plan.ocr_level, plan.layout.vertical)
    if plan.ocr == "tesseract" and not plan.empty_text:
        # The shift sets' reader (clippings.data.shift.ocr): what a real feed's OCR gives.
        from clippings.data.shift.ocr import read

        text = read(out_dir / rel, plan.layout.vertical)
    record = {"id": plan.record_id, "image": rel, "text": text, "entity": plan.entity_id, "split": plan.split}
    meta = {
        "id": plan.record_id, "truth": plan.truth, "font": plan.layout.face.name,
        "vertical": plan.layout.vertical, "char_px": plan.layout.char_px,
        "severity": round(plan.severity, 3), "ocr_level": round(plan.ocr_level, 3),
        "degradations": plan.degradations, "ocr": plan.ocr,
    }
    return record, meta


def _gray_levels(img: Image.Image, levels: int) -> Image.Image:
    step = 255.0 / (levels - 1)
    arr = np.rint(np.rint(np.asarray(img, np.float32) / step) * step)
    return Image.fromarray(arr.astype(np.uint8), "L")
