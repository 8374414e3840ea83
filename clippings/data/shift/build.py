"""Build a shift LINK data set (corpus + query) for Japanese firm names.

Every part differs from the training generator (clippings/data/synth/): names from
mecab-ipadic's organisation names (`names.py`), fonts from other Debian packages
(`fonts.py`), a Pillow renderer and a damage model written for this package
(`render.py`, `damage.py`), and the record text read from the image by tesseract (`ocr.py`).

Layout: every listed entity has one corpus record (a clean directory listing: canonical
name, light damage, mostly horizontal) and 1..Q query records (other documents: legal form
moved, abbreviated or dropped, old character forms, another font, vertical 45% of the time,
heavy damage). About 10% of query entities have no corpus record (written, not scored).
A share of entities are drawn in groups of near-identical real names (hard negatives).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clippings.data.shift import damage as dmg
from clippings.data.shift import fonts as fnt
from clippings.data.shift import names as nm
from clippings.data.shift import ocr
from clippings.data.shift.jobs import run_jobs, write_set
from clippings.data.shift.render import render
from clippings.data.dataset import prepare_output_dir
from clippings.errors import ConfigError

KINDS = ("jp-firms", "news")
UNLISTED_SHARE = 0.10
_OUTPUTS = ("records.jsonl", "meta.jsonl", "shift.json", "images", "records.jsonl.tmp")


@dataclass(frozen=True)
class Plan:
    id: str
    entity: str
    split: str  # corpus | query
    truth: str  # the name as printed
    canonical: str
    group: int
    face: str
    size: int
    vertical: bool
    severity: float
    seed: tuple[int, ...]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def plan(entities: int, seed: int, queries: int = 2) -> list[Plan]:
    """Every record of the data set, in writing order (deterministic for `seed`)."""
    if entities < 2:
        raise ConfigError("--entities must be at least 2")
    if queries < 1:
        raise ConfigError("--queries must be at least 1")
    unlisted = int(round(entities * UNLISTED_SHARE / (1 - UNLISTED_SHARE)))
    firms = nm.draw_firms(_rng(seed, 0), entities + unlisted)
    order = _rng(seed, 1).permutation(len(firms))
    unlisted_ids = set(order[:unlisted].tolist())
    plans: list[Plan] = []
    for e, firm in enumerate(firms):
        rng = _rng(seed, 2, e)
        ent = f"shift{seed}-{e:06d}"
        roles = ([("corpus", 0)] if e not in unlisted_ids else [])
        roles += [("query", k) for k in range(int(rng.integers(1, queries + 1)))]
        corpus_face = None
        for role, k in roles:
            corpus = role == "corpus"
            text = nm.surface(firm, rng, 0.15 if corpus else 1.0)
            faces = fnt.faces_for(text)
            if not faces:
                text = firm.text
                faces = fnt.faces_for(text) or fnt.available_faces()
            if not corpus and corpus_face is not None and len(faces) > 1:
                faces = tuple(f for f in faces if f.name != corpus_face) or faces
            face = faces[int(rng.integers(len(faces)))]
            if corpus:
                corpus_face = face.name
            vertical = bool(rng.random() < (0.2 if corpus else 0.45))
            size = int(rng.integers(26, 41) if corpus else rng.integers(20, 37))
            severity = float(rng.uniform(0.0, 0.3) if corpus else rng.uniform(0.2, 0.85))
            rid = f"{ent}-c0" if corpus else f"{ent}-q{k}"
            plans.append(Plan(rid, ent, role, text, firm.text, firm.group, face.name, size, vertical,
                              round(severity, 4), (seed, 3, e, 0 if corpus else 1, k)))
    return plans


def _make(args: tuple[Plan, str]) -> tuple[dict, dict]:
    p, out = args
    rng = _rng(*p.seed)
    face = next(f for f in fnt.FACES if f.name == p.face)
    img = render(p.truth, face, p.size, p.vertical, rng)
    img, effects, quality = dmg.damage(img, p.severity, p.vertical, rng)
    data, ext = dmg.encode(img, quality)
    rel = f"images/{p.id}.{ext}"
    path = Path(out) / rel
    path.write_bytes(data)
    text = ocr.read(path, p.vertical)
    record = {"id": p.id, "image": rel, "text": text, "entity": p.entity, "split": p.split}
    meta = {"id": p.id, "truth": p.truth, "canonical": p.canonical, "group": p.group, "font": p.face,
            "package": face.package, "orientation": "vertical" if p.vertical else "horizontal",
            "size": p.size, "severity": p.severity, "effects": effects, "jpeg_quality": quality,
            "ocr": "tesseract " + ("jpn_vert --psm 5" if p.vertical else "jpn --psm 7"),
            "width": img.width, "height": img.height}
    return record, meta


def build(kind: str, out: str | Path, entities: int, seed: int = 0, queries: int | None = None,
          workers: int = 1, overwrite: bool = False, progress: bool = True, instances: int | None = None,
          ocr_engine: str | None = None) -> Path:
    """jp-firms: a link set (`queries` per entity, default 2); news: a dedup set (clusters of
    1..`instances` reprints, default 6; clippings/data/shift/news.py), its captions read by
    `ocr_engine` (tesseract by default, or ppocr)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if kind == "news":
        if queries is not None:
            raise ConfigError("--queries is for jp-firms (a link set); news is a dedup set: use --instances")
        from clippings.data.shift.news import DEFAULT_INSTANCES, build_news

        return build_news(out, entities, seed, DEFAULT_INSTANCES if instances is None else instances,
                          workers=workers, overwrite=overwrite, progress=progress, engine=ocr_engine or "tesseract")
    if instances is not None:
        raise ConfigError("--instances is for news (a dedup set); jp-firms is a link set: use --queries")
    if ocr_engine not in (None, "tesseract"):
        # The jp-firms model reads its crops with PP-OCR's recogniser itself: a set whose text is
        # that engine's reading would test the model against its own eyes.
        raise ConfigError("--ocr ppocr is for news; jp-firms shift sets are read by tesseract")
    queries = 2 if queries is None else queries
    ocr.tesseract()
    fnt.available_faces()
    plans = plan(entities, seed, queries)
    out = prepare_output_dir(Path(out), _OUTPUTS, overwrite)
    results = run_jobs(_make, [(p, str(out)) for p in plans], workers, progress, f"shift {kind}", "crop")
    counts = {s: sum(1 for p in plans if p.split == s) for s in ("corpus", "query")}
    info = {"kind": kind, "task": "link", "entities": entities, "seed": seed, "queries": queries,
            "counts": counts, "names": str(nm.ipadic_org_path()), "fonts": sorted({p.face for p in plans}),
            "ocr": ocr.version(), "pipeline": "clippings.data.shift"}
    return write_set(out, results, info)


__all__ = ["KINDS", "Plan", "build", "plan"]
