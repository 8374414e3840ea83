"""`clippings labels export`: the reviewed clippings as a dataset (docs/data.md), for training.

Which clippings: every clipping a correction names (clipping_id, target_id) and every member of
the entities involved (the one each left, the one each is in now). `entity` is the entity as
corrected: membership as the link events say, with the corrections the linker has not applied
yet (no correction link event) applied on top in the order they were made: a reject without a
target gets an entity of its own (r-<correction id>), a reject with one joins the target's, a
merge gives both one. `split` is a stable hash of that entity: about 70% train, 15% val, 15%
test, so an entity's clippings never straddle two splits.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, select

from clippings.data.dataset import prepare_output_dir
from clippings.errors import ClippingsError
from clippings.review.images import extension, image_bytes
from clippings.review.tables import clippings, correction_events, corrections, membership

OUTPUTS = ("records.jsonl", "images", "labels.json")
SPLIT_RULE = "sha256(entity) mod 100: 0-69 train, 70-84 val, 85-99 test"


class NoReviewedClippings(ClippingsError):
    """There is nothing to export: no correction names a clipping the database knows."""


def split_bucket(entity: str) -> int:
    return int.from_bytes(hashlib.sha256(entity.encode("utf-8")).digest()[:8], "big") % 100


def split_of(entity: str) -> str:
    bucket = split_bucket(entity)
    return "train" if bucket < 70 else "val" if bucket < 85 else "test"


def corrected_entities(conn: Connection) -> tuple[dict[str, str], int]:
    """-> (clipping id -> entity as corrected, corrections read)."""
    rows = conn.execute(select(corrections).order_by(corrections.c.at, corrections.c.id)).all()
    if not rows:
        raise NoReviewedClippings("no corrections in the review database: review some decisions first")
    touched = {r.clipping_id for r in rows} | {r.target_id for r in rows if r.target_id}
    now = dict(conn.execute(select(membership.c.clipping_id, membership.c.entity_id)
                            .where(membership.c.clipping_id.in_(touched))).all())
    involved = set(now.values()) | {r.entity_id for r in rows}
    label = dict(conn.execute(select(membership.c.clipping_id, membership.c.entity_id)
                              .where(membership.c.entity_id.in_(involved))).all())
    applied = set(conn.execute(select(correction_events.c.correction_id).distinct()).scalars())
    for r in rows:
        if str(r.id) not in applied and r.clipping_id in label:
            _apply(label, r)
    return label, len(rows)


def _apply(label: dict[str, str], r) -> None:
    if r.action == "reject" and r.target_id is None:
        label[r.clipping_id] = f"r-{r.id}"
    elif r.action == "reject" and r.target_id in label:
        label[r.clipping_id] = label[r.target_id]
    elif r.action == "merge" and r.target_id in label:
        into, absorbed = label[r.clipping_id], label[r.target_id]
        for cid, entity in label.items():
            if entity == absorbed:
                label[cid] = into


def _image_name(cid: str, ext: str) -> str:
    # Clipping ids may hold any character; the file name is a hash of the id.
    return f"images/{hashlib.sha256(cid.encode('utf-8')).hexdigest()[:24]}{ext}"


def _records(conn: Connection, out: Path, label: dict[str, str], roots: list[Path]) -> tuple[list[dict], int]:
    found = conn.execute(select(clippings.c.id, clippings.c.text, clippings.c.image, clippings.c.image_uri)
                         .where(clippings.c.id.in_(list(label))).order_by(clippings.c.id)).all()
    records, skipped = [], len(label) - len(found)
    for row in found:
        data = image_bytes(row.image, row.image_uri, roots)
        ext = extension(data) if data else None
        image = _image_name(row.id, ext) if ext else None
        if image is None and not row.text:
            skipped += 1  # neither an image we can read nor text: not a valid record
            continue
        if image is not None:
            (out / image).write_bytes(data)
        entity = label[row.id]
        records.append({"id": row.id, "image": image, "text": row.text, "entity": entity, "split": split_of(entity)})
    return records, skipped


def export_labels(database_url: str, out: Path, image_roots: list[Path] | None = None,
                  overwrite: bool = False) -> dict:
    """Write the dataset -> the summary also written to labels.json."""
    from sqlalchemy.exc import OperationalError

    from clippings.review.db import DatabaseError, current_revision, make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if current_revision(engine) is None:
                raise NoReviewedClippings(f"no review tables in the database {engine.url.database!r}: the review "
                                          "page (`clippings review`) makes them; nothing has been reviewed there")
            label, n_corrections = corrected_entities(conn)
            prepare_output_dir(out, OUTPUTS, overwrite)
            records, skipped = _records(conn, out, label, image_roots or [])
    except OperationalError as exc:  # the message names host and database, never the password
        raise DatabaseError(f"cannot reach the review database: {exc.orig}") from None
    finally:
        engine.dispose()
    if not records:
        raise NoReviewedClippings(f"the {n_corrections} correction(s) name no clipping whose text or image "
                                  "the review database holds")
    tmp = out / "records.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "records.jsonl")  # written last: an interrupted export never loads
    summary = {"records": len(records), "entities": len({r["entity"] for r in records}),
               "splits": dict(sorted(Counter(r["split"] for r in records).items())), "split_rule": SPLIT_RULE,
               "corrections": n_corrections, "skipped_without_content": skipped,
               "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (out / "labels.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
