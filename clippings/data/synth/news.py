"""kind news: newspaper photos with captions, reprinted by many papers.

An entity is a story: one photo (a procedural scene) and its facts. Its instances are
reprints: another crop and print of the same photo, under the wire caption with OCR noise,
cut short, lightly edited, or another paper's rewrite. A quarter of the stories are other
photos of an earlier story's event, under a near-identical caption: not duplicates, and
only the image tells (another scene of the same kind, or with `sibling_photos="same-place"`
another shot of the same place: scene.another_shot). A fifth are portraits, alike to the
eye: only the caption tells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clippings.data.synth.captions import (
    EVENTS,
    Facts,
    event_sibling,
    light_edit,
    random_facts,
    rewrite_caption,
    sibling_edit,
    truncate,
    wire_caption,
)
from clippings.data.synth.halftone import print_photo
from clippings.data.synth.ocr import char_error_rate, ocr_text
from clippings.data.synth.scene import SceneSpec, another_shot, draw_scene, random_scene
from clippings.data.synth.story import draw_body, reprint_body, restyle, sibling_body, with_body
from clippings.data.synth.tasks import Slot

EVENT_SIBLING_SHARE = 0.25  # stories that are another photo of an earlier story's event
JPEG_QUALITY = 85

# How a reprint treats the caption: (variant, probability) by role. The corpus of a link
# task is the agency's own print: the wire caption, lightly noised.
CAPTION_VARIANTS = {
    "default": (("wire", 0.56), ("edit", 0.15), ("truncated", 0.12), ("rewrite", 0.12), ("none", 0.05)),
    "corpus": (("wire", 0.8), ("edit", 0.15), ("none", 0.05)),
}


@dataclass(frozen=True)
class Story:
    facts: Facts
    scene: SceneSpec
    caption: str  # the wire caption
    rewrite: str  # another paper's caption of the same photo
    sibling_of: int | None  # index of the story whose event this photo also shows
    body: tuple[str, ...] = ()  # the sentences a long caption adds (story.py); () for short captions


@dataclass(frozen=True)
class PhotoPlan:
    record_id: str
    entity_id: str
    split: str
    scene: SceneSpec
    caption: str  # the caption as printed on this clipping ("" for none)
    variant: str
    severity: float
    ocr_level: float
    degradations: str
    seed: tuple[int, ...]
    ocr: str = "simulated"  # or "tesseract": the caption is printed, scanned and read back (caption_scan.py)


class News:
    name = "news"
    default_instances = {"train": 4, "link": 2, "dedup": 6}

    def __init__(self, degradations: str, captions: str = "short", ocr: str = "simulated",
                 sibling_photos: str = "other"):
        self.degradations = degradations
        self.long = captions == "long"
        self.ocr = ocr
        self.same_place = sibling_photos == "same-place"
        if ocr == "tesseract":
            from clippings.data.shift.ocr import tesseract_english

            tesseract_english()  # fails now, with the packages to install, not after the first caption

    def entities(self, rng: np.random.Generator, n: int) -> list[Story]:
        stories: list[Story] = []
        while len(stories) < n:
            base_idx = int(rng.integers(len(stories))) if stories else -1
            if base_idx >= 0 and rng.random() < EVENT_SIBLING_SHARE and stories[base_idx].facts.event != "portrait":
                base = stories[base_idx]
                facts = event_sibling(rng, base.facts)
                body = sibling_body(rng, facts, base.body) if self.long else ()
                scene = another_shot(rng, base.scene) if self.same_place else random_scene(rng, base.scene.kind)
                stories.append(Story(facts, scene, sibling_edit(rng, base.caption),
                                     sibling_edit(rng, base.rewrite), base_idx, body))
            else:
                facts = random_facts(rng)
                body = draw_body(rng, facts) if self.long else ()
                stories.append(Story(facts, random_scene(rng, EVENTS[facts.event][0]), wire_caption(facts),
                                     rewrite_caption(facts), None, body))
        return stories

    def plan(self, entity_id: str, story: Story, slots: list[Slot], rng: np.random.Generator,
             neighbours: list[Story], seed: tuple[int, ...]) -> list[PhotoPlan]:
        plans = []
        for slot in slots:
            options = CAPTION_VARIANTS["corpus" if slot.role == "corpus" else "default"]
            weights = np.array([p for _, p in options])
            variant = options[int(rng.choice(len(options), p=weights / weights.sum()))][0]
            severity = float(rng.uniform(0.0, 0.4) if slot.role == "corpus" else rng.uniform(0.0, 1.0))
            plans.append(PhotoPlan(
                record_id=f"{entity_id}-{slot.role[0]}{slot.k}",
                entity_id=entity_id,
                split=slot.split,
                scene=story.scene,
                caption=_caption(story, variant, rng),
                variant=variant,
                severity=severity,
                ocr_level=float(np.clip(0.03 + 0.3 * severity + rng.normal(0, 0.03), 0.0, 0.5)),
                degradations=self.degradations,
                seed=seed + (len(plans),),
                ocr=self.ocr,
            ))
        return plans

    @staticmethod
    def render(plan: PhotoPlan, out_dir: Path) -> tuple[dict, dict]:
        return render_clipping(plan, out_dir)


def _caption(story: Story, variant: str, rng: np.random.Generator) -> str:
    if variant == "none":
        return ""
    text = _printed(story, variant, rng)
    if not story.body:  # short captions: as the agency's
        return text
    return restyle(rng, text, "" if variant == "rewrite" else story.rewrite.split(" -- ", 1)[0])


def _printed(story: Story, variant: str, rng: np.random.Generator) -> str:
    body = reprint_body(rng, story.body, variant)
    if variant == "rewrite":
        return with_body(story.rewrite, body)
    if variant == "edit":
        return light_edit(rng, with_body(story.caption, body))
    if variant == "truncated":
        return truncate(rng, with_body(story.caption, body))
    return with_body(story.caption, body)


def render_clipping(plan: PhotoPlan, out_dir: Path) -> tuple[dict, dict]:
    """Draw, print and save one clipping; -> (record, meta)."""
    rng = np.random.default_rng(plan.seed)
    img = print_photo(draw_scene(plan.scene), rng, plan.degradations, plan.severity)
    rel = f"images/{plan.record_id}.jpg"
    img.save(out_dir / rel, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    text = ocr_text(plan.caption, rng, plan.ocr_level) if plan.caption else ""
    meta = {
        "id": plan.record_id, "caption": plan.caption, "variant": plan.variant, "scene": plan.scene.kind,
        "scene_seed": plan.scene.seed, "shot": plan.scene.shot, "severity": round(plan.severity, 3),
        "ocr_level": round(plan.ocr_level, 3),
        "degradations": plan.degradations, "ocr": plan.ocr,
    }
    if plan.ocr == "tesseract" and plan.caption:
        text, meta["caption_scan"], meta["scan_scale"], meta["cer"] = _read_caption(plan, rng, out_dir)
    record = {"id": plan.record_id, "image": rel, "text": text, "entity": plan.entity_id, "split": plan.split}
    return record, meta


def _read_caption(plan: PhotoPlan, rng: np.random.Generator, out_dir: Path) -> tuple[str, str, float, float]:
    """Print and scan the caption, and read it with tesseract -> (text, scan path, scan scale, CER)."""
    from clippings.data.shift.ocr import read_block
    from clippings.data.synth.caption_scan import print_caption

    scan, scale = print_caption(plan.caption, rng, plan.degradations, plan.severity)
    rel = f"captions/{plan.record_id}.png"
    (out_dir / "captions").mkdir(exist_ok=True)
    scan.save(out_dir / rel, format="PNG", compress_level=9)
    text = read_block(out_dir / rel, scale)
    return text, rel, scale, round(char_error_rate(plan.caption, text), 4)
