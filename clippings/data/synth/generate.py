"""Realistic synthetic data sets in the dataset format.

    clippings synth {jp-firms,news} OUT_DIR --task {train,link,dedup} --entities N
        [--instances M] [--seed S] [--fonts {train,heldout,all}]
        [--degradations {train,heldout}] [--workers K] [--overwrite]

The same call from Python: `generate("jp-firms", out_dir, task="link", entities=400)`.
The parent process draws the entities and plans every record (cheap, sequential, seeded);
workers render the plans, which are pure functions of their own seeds. So one seed gives
byte-identical output whatever the number of workers.

Besides records.jsonl and images/, a data set holds synth.json (how it was made) and
meta.jsonl (per record: the true printed name or caption, font, orientation, severity) for
analysis; the dataset reader ignores both.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from pathlib import Path

from clippings.data.synth.options import (
    CAPTION_STYLES, DEGRADATION_SETS, FONT_SETS, KINDS, OCR_ENGINES, SIBLING_PHOTOS, TASKS,
)
from clippings.data.dataset import prepare_output_dir
from clippings.errors import ConfigError

# Seeds of the random streams: (seed, kind, task, stream, ...), so kinds and tasks made
# with one seed still draw different entities.
_KIND_CODES = {"jp-firms": 1, "news": 2}
_TASK_CODES = {"train": 1, "link": 2, "dedup": 3}
_OUTPUTS = ("records.jsonl", "meta.jsonl", "synth.json", "images", "captions", "records.jsonl.tmp", "meta.jsonl.tmp")

log = logging.getLogger(__name__)


def generate(
    kind: str,
    out_dir: str | Path,
    *,
    task: str = "train",
    entities: int = 100,
    instances: int | None = None,
    seed: int = 0,
    fonts: str | None = None,
    degradations: str = "train",
    ocr: str = "simulated",
    captions: str = "short",
    sibling_photos: str = "other",
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a synthetic data set to `out_dir` and return its path.

    instances: train: instances per entity (default 4); link: the most queries per entity
    (default 2); dedup: the largest cluster (default 5 for jp-firms, 6 for news).
    fonts: jp-firms only (default "train"). ocr: "simulated" or "tesseract" (jp-firms: the crop
    read back; news: the caption printed in a column, scanned and read back).
    captions: news only, "short" (one description) or "long" (a paragraph: story.py).
    sibling_photos: news only, "other" (another story of an event shows another scene) or
    "same-place" (another shot of the same place: scene.another_shot).
    """
    generator = _make_generator(kind, task, fonts, degradations, ocr, captions, sibling_photos)
    if instances is None:
        instances = generator.default_instances[task]
    _check_counts(entities=entities, instances=instances, workers=workers, seed=seed)
    out = prepare_output_dir(Path(out_dir), _OUTPUTS, overwrite)

    n_entities, plans = _plan_all(generator, kind, task, entities, instances, seed)
    render = functools.partial(generator.render, out_dir=out)
    counts: Counter[str] = Counter()
    tmp_records, tmp_meta = out / "records.jsonl.tmp", out / "meta.jsonl.tmp"
    with tmp_records.open("w", encoding="utf-8") as rec_fh, tmp_meta.open("w", encoding="utf-8") as meta_fh:
        for record, meta in _render_all(render, plans, workers, progress, f"synth {kind} {task}"):
            rec_fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            meta_fh.write(json.dumps(meta, ensure_ascii=False) + "\n")
            counts[record["split"]] += 1
    summary = {
        "kind": kind, "task": task, "entities": entities, "entities_drawn": n_entities,
        "instances": instances, "seed": seed, "fonts": fonts if kind == "jp-firms" else None,
        "degradations": degradations, "ocr": ocr,
        "captions": captions if kind == "news" else None,
        "sibling_photos": sibling_photos if kind == "news" else None,
        "records": sum(counts.values()), "splits": dict(sorted(counts.items())),
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp_meta.replace(out / "meta.jsonl")
    tmp_records.replace(out / "records.jsonl")  # last: a half-written data set never loads
    log.info("wrote %s records=%d splits=%s", out, summary["records"], summary["splits"])
    return out


def _plan_all(generator, kind: str, task: str, entities: int, instances: int, seed: int) -> tuple[int, list]:
    """Draw the entities and plan every record (sequential, seeded) -> (entities drawn, plans)."""
    import numpy as np

    from clippings.data.synth.tasks import task_layout

    base = (seed, _KIND_CODES[kind], _TASK_CODES[task])
    n_entities, slots = task_layout(task, entities, instances, np.random.default_rng(base + (1,)))
    drawn = generator.entities(np.random.default_rng(base + (0,)), n_entities)
    by_entity: dict[int, list] = {}
    for slot in slots:
        by_entity.setdefault(slot.entity, []).append(slot)
    prefix = "jp" if kind == "jp-firms" else "news"
    plans = []
    for e, entity_slots in by_entity.items():
        plans += generator.plan(
            f"{prefix}{seed}-{e:06d}", drawn[e], entity_slots,
            np.random.default_rng(base + (2, e)), drawn, base + (3, e),
        )
    return n_entities, plans


def _make_generator(kind: str, task: str, fonts: str | None, degradations: str, ocr: str = "simulated",
                    captions: str = "short", sibling_photos: str = "other"):
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if ocr not in OCR_ENGINES:
        raise ConfigError(f"unknown OCR {ocr!r} (expected one of {', '.join(OCR_ENGINES)})")
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    if degradations not in DEGRADATION_SETS:
        raise ConfigError(f"unknown degradations {degradations!r} (expected one of {', '.join(DEGRADATION_SETS)})")
    if kind == "jp-firms":
        from clippings.data.synth.jp import JpFirms

        fonts = fonts or "train"
        if fonts not in FONT_SETS:
            raise ConfigError(f"unknown font set {fonts!r} (expected one of {', '.join(FONT_SETS)})")
        if captions != "short":
            raise ConfigError("--captions applies to news only: a firm name is one line")
        if sibling_photos != "other":
            raise ConfigError("--sibling-photos applies to news only: a firm name has no photo")
        return JpFirms(fonts, degradations, ocr)
    if fonts is not None:
        raise ConfigError("--fonts applies to jp-firms only: news photos carry no printed text")
    if captions not in CAPTION_STYLES:
        raise ConfigError(f"unknown captions {captions!r} (expected one of {', '.join(CAPTION_STYLES)})")
    from clippings.data.synth.news import News

    if sibling_photos not in SIBLING_PHOTOS:
        raise ConfigError(f"unknown sibling photos {sibling_photos!r} (expected one of {', '.join(SIBLING_PHOTOS)})")
    return News(degradations, captions, ocr, sibling_photos)


def _check_counts(*, entities: int, instances: int, workers: int, seed: int) -> None:
    for name, value in (("entities", entities), ("instances", instances), ("workers", workers)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed!r}")


def _render_all(render, plans: list, workers: int, progress: bool, desc: str):
    """Yield render(plan) for every plan, in plan order."""
    from tqdm import tqdm

    bar = tqdm(total=len(plans), desc=desc, unit="img", disable=not progress, smoothing=0.05)
    try:
        if workers == 1:
            for plan in plans:
                yield render(plan)
                bar.update()
            return
        import multiprocessing as mp

        # spawn: workers start clean, nothing of the parent's threads or caches is inherited
        with mp.get_context("spawn").Pool(workers) as pool:
            for result in pool.imap(render, plans, chunksize=32):
                yield result
                bar.update()
    finally:
        bar.close()
