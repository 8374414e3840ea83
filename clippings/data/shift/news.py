"""Build the news shift set: a DEDUP data set (val + test) of press photos and captions.

Every part differs from the training generator (clippings/data/synth/): stories and
captions from this package's grammar (news_text.py, news_topics.py, news_words.py), the
copy desk's edits (news_edit.py), other typefaces and a column typesetter (news_type.py),
its own print and scan damage of the caption (news_scan.py), a real OCR engine's reading of
the caption scan as the record's text (tesseract, ocr.read_block; or PP-OCR, ppocr.read_block),
and its own photos and photo printing (news_photos.py, news_subjects.py, news_print.py).

Layout: clusters of 1..M reprints of one story (45% singletons, then sizes falling as
1/size); whole events (and so whole entities, and every hard negative of an event) in val
or in test, about half the entities each. About 3% of reprints carry no photo; every one
carries a caption (NO_CAPTION_SHARE says why).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from clippings.data.dataset import prepare_output_dir
from clippings.data.shift import ocr, ppocr
from clippings.data.shift.jobs import run_jobs, write_set
from clippings.data.shift.news_edit import Printed, reprint
from clippings.data.shift.news_photos import PhotoSpec
from clippings.data.shift.news_print import encode, print_photo
from clippings.data.shift.news_scan import encode_jpeg, scan
from clippings.data.shift.news_subjects import draw_photo
from clippings.data.shift.news_text import Story, draw_stories
from clippings.data.shift.news_topics import TOPICS
from clippings.data.shift.news_type import Setting, available_families, random_setting, typeset
from clippings.errors import ConfigError

DEFAULT_INSTANCES = 6
SINGLETON_SHARE = 0.45
# Every reprint carries a caption, as in the independent set this one stands in for (OCR text
# on every record).
NO_CAPTION_SHARE = 0.0
NO_PHOTO_SHARE = 0.03
OUTPUTS = ("records.jsonl", "meta.jsonl", "shift.json", "images", "captions", "records.jsonl.tmp")
# The engines that can read the caption scans; the same seed gives the same scans with either.
OCR_ENGINES = ("tesseract", "ppocr")


@dataclass(frozen=True)
class NewsPlan:
    id: str
    entity: str
    split: str  # val | test
    story: Story
    photo: PhotoSpec | None  # None: the reprint runs without its photo
    printed: Printed | None  # None: without a caption
    setting: Setting
    caption_severity: float
    photo_severity: float
    seed: tuple[int, ...]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([1729, *key])  # 1729: the news kind's own streams


def cluster_sizes(rng: np.random.Generator, n: int, max_size: int) -> list[int]:
    """Reprints per story: SINGLETON_SHARE of 1, then 2..max_size with weights 1/size."""
    if max_size == 1:
        return [1] * n
    sizes = np.arange(2, max_size + 1)
    p = np.concatenate([[SINGLETON_SHARE], (1 - SINGLETON_SHARE) * (1 / sizes) / (1 / sizes).sum()])
    return [int(s) for s in rng.choice(np.arange(1, max_size + 1), size=n, p=p)]


def assign_splits(stories: list[Story], rng: np.random.Generator) -> dict[int, str]:
    """Whole events to val or test, balancing the number of entities; -> split per story."""
    events: dict[int, list[int]] = {}
    for s in stories:
        events.setdefault(s.event, []).append(s.index)
    count = {"val": 0, "test": 0}
    split_of: dict[int, str] = {}
    for ev in rng.permutation(sorted(events)):
        split = "val" if count["val"] <= count["test"] else "test"
        for i in events[int(ev)]:
            split_of[i] = split
        count[split] += len(events[int(ev)])
    return split_of


def photo_spec(story: Story) -> PhotoSpec:
    topic = TOPICS[story.topic]
    sitter = story.official.face if story.topic == "portrait" else None
    return PhotoSpec(topic.scene, story.location, story.shot, topic.subjects, sitter)


def plan(entities: int, seed: int, instances: int = DEFAULT_INSTANCES) -> list[NewsPlan]:
    """Every record of the data set, in writing order (deterministic for `seed`)."""
    if entities < 4:
        raise ConfigError("--entities must be at least 4 (whole stories go to val or test)")
    if not 1 <= instances <= 50:
        raise ConfigError("--instances must be between 1 and 50")
    families = available_families()
    stories = draw_stories(_rng(seed, 0), entities)
    sizes = cluster_sizes(_rng(seed, 1), entities, instances)
    split_of = assign_splits(stories, _rng(seed, 2))
    plans = []
    for story, size in zip(stories, sizes):
        ent = f"news-shift{seed}-{story.index:06d}"
        for k in range(size):
            rng = _rng(seed, 3, story.index, k)
            r = rng.random()
            printed = reprint(story, rng)
            plans.append(NewsPlan(
                id=f"{ent}-r{k}", entity=ent, split=split_of[story.index], story=story,
                photo=None if NO_CAPTION_SHARE <= r < NO_CAPTION_SHARE + NO_PHOTO_SHARE else photo_spec(story),
                printed=None if r < NO_CAPTION_SHARE else printed, setting=random_setting(rng, families),
                caption_severity=round(float(rng.beta(1.5, 2.6)), 4), photo_severity=round(float(rng.random()), 4),
                seed=(seed, 4, story.index, k)))
    return plans


@functools.lru_cache(maxsize=32)
def _photo(spec: PhotoSpec):
    return draw_photo(spec)


def _print_photo(p: NewsPlan, out: Path, rng: np.random.Generator) -> tuple[str, dict]:
    img, info = print_photo(_photo(p.photo), rng, p.photo_severity)
    rel = f"images/{p.id}.jpg"
    (out / rel).write_bytes(encode(img, info["jpeg_quality"]))
    return rel, dict(info, width=img.width, height=img.height)


def ocr_call(engine: str) -> str:
    return f"tesseract eng --psm {ocr.BLOCK_PSM}" if engine == "tesseract" else ppocr.ENGINE


def read_scan(path: Path, scale: float, engine: str) -> str:
    """`engine`'s text for the caption scan at `path`, made at `scale` of the typeset size."""
    return ocr.read_block(path, scale) if engine == "tesseract" else ppocr.read_block(path)


def _read_caption(p: NewsPlan, out: Path, rng: np.random.Generator, engine: str) -> tuple[str, dict]:
    img, effects, scale, quality = scan(typeset(p.printed, p.setting), p.setting.size, p.caption_severity, rng)
    rel = f"captions/{p.id}.jpg"
    (out / rel).write_bytes(encode_jpeg(img, quality))
    text = read_scan(out / rel, scale, engine)
    truth = p.printed.text
    return text, {"caption_scan": rel, "effects": effects, "scan_scale": round(scale, 3), "caption_jpeg": quality,
                  "cer": round(Levenshtein.distance(text, truth) / max(1, len(truth)), 4)}


def make(args: tuple[NewsPlan, str, str]) -> tuple[dict, dict]:
    """Print, scan and read one reprint; -> (record, meta)."""
    p, out_s, engine = args
    out = Path(out_s)
    rng = _rng(*p.seed)
    image, text = None, ""
    meta: dict = {"id": p.id, "event": p.story.event, "topic": p.story.topic, "official": p.story.official.id,
                  "location_seed": p.story.location, "truth": p.printed.text if p.printed else "",
                  "ops": list(p.printed.ops) if p.printed else [], "font": p.setting.family, "size": p.setting.size,
                  "caption_severity": p.caption_severity, "photo_severity": p.photo_severity,
                  "ocr": ocr_call(engine)}
    photo_seed, caption_seed = (int(v) for v in rng.integers(2**63, size=2))
    photo_rng, caption_rng = np.random.default_rng(photo_seed), np.random.default_rng(caption_seed)
    if p.photo is not None:
        image, meta["photo"] = _print_photo(p, out, photo_rng)
    if p.printed is not None:
        text, caption_meta = _read_caption(p, out, caption_rng, engine)
        meta.update(caption_meta)
    if not text and image is None:  # the engine read nothing: the reprint keeps its photo after all
        image, meta["photo"] = _print_photo(replace(p, photo=photo_spec(p.story)), out, photo_rng)
        meta["photo_fallback"] = True
    record = {"id": p.id, "image": image, "text": text, "entity": p.entity, "split": p.split}
    return record, meta


def hard_negative_counts(plans: list[NewsPlan]) -> dict:
    """How many entities have a non-duplicate that shares an event, a sentence or a sitter."""
    stories = {p.story.index: p.story for p in plans}
    by_event: dict[int, int] = {}
    by_sentence: dict[str, set[int]] = {}
    for s in stories.values():
        by_event[s.event] = by_event.get(s.event, 0) + 1
        for sent in s.sentences:
            by_sentence.setdefault(sent, set()).add(s.index)
    shared = {i for group in by_sentence.values() if len(group) > 1 for i in group}
    sitters: dict[int, int] = {}
    for s in stories.values():
        if s.topic == "portrait":
            sitters[s.official.id] = sitters.get(s.official.id, 0) + 1
    return {"entities_in_multi_story_events": sum(1 for s in stories.values() if by_event[s.event] > 1),
            "entities_sharing_a_sentence": len(shared), "portraits": sum(sitters.values()),
            "portraits_of_a_recurring_sitter": sum(n for n in sitters.values() if n > 1)}


def _info(plans: list[NewsPlan], results: list[tuple[dict, dict]], entities: int, seed: int, instances: int,
          engine: str) -> dict:
    cers = [m["cer"] for _, m in results if "cer" in m]
    records = [r for r, _ in results]
    return {
        "kind": "news", "task": "dedup", "entities": entities, "seed": seed, "instances": instances,
        "counts": {s: sum(1 for r in records if r["split"] == s) for s in ("val", "test")},
        "entities_per_split": {s: len({r["entity"] for r in records if r["split"] == s}) for s in ("val", "test")},
        "records": {"photo_and_caption": sum(1 for r in records if r["image"] and r["text"]),
                    "photo_only": sum(1 for r in records if r["image"] and not r["text"]),
                    "caption_only": sum(1 for r in records if not r["image"])},
        "events": len({p.story.event for p in plans}), "hard_negatives": hard_negative_counts(plans),
        "caption_chars_mean": round(float(np.mean([len(m["truth"]) for _, m in results if m["truth"]])), 1),
        "ocr_cer": {"mean": round(float(np.mean(cers)), 4), "median": round(float(np.median(cers)), 4)} if cers else {},
        "fonts": sorted({p.setting.family for p in plans}),
        "ocr": ocr.version_english() if engine == "tesseract" else ppocr.version(),
        "ocr_call": ocr_call(engine), "pipeline": "clippings.data.shift (news)",
    }


def build_news(out: str | Path, entities: int, seed: int = 0, instances: int = DEFAULT_INSTANCES,
               workers: int = 1, overwrite: bool = False, progress: bool = True, engine: str = "tesseract") -> Path:
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if engine not in OCR_ENGINES:
        raise ConfigError(f"unknown OCR engine {engine!r} (expected one of {', '.join(OCR_ENGINES)})")
    if engine == "tesseract":
        ocr.tesseract_english()
    else:
        ppocr.check()
    plans = plan(entities, seed, instances)
    out = prepare_output_dir(Path(out), OUTPUTS, overwrite)
    (out / "captions").mkdir(exist_ok=True)
    results = run_jobs(make, [(p, str(out), engine) for p in plans], workers, progress, "shift news", "clipping")
    return write_set(out, results, _info(plans, results, entities, seed, instances, engine))


__all__ = ["DEFAULT_INSTANCES", "NewsPlan", "build_news", "cluster_sizes", "make", "plan"]
