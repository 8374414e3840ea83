"""The pages: decision lists (with filters and the needs-review queue), one decision, one
entity with its history, and the images."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, render_template, request
from sqlalchemy import select

from clippings.review import queries
from clippings.review.auth import login_required
from clippings.review.images import content_type, file_shows, image_bytes
from clippings.review.tables import corrections
from clippings.review.textdiff import segments
from clippings.services.ops.logfmt import kv

bp = Blueprint("views", __name__)
log = logging.getLogger(__name__)


def _ctx():
    return current_app.extensions["review"]


def _float_arg(name: str) -> float | None:
    try:
        return float(request.args[name]) if request.args.get(name, "").strip() else None
    except ValueError:
        return None


def _filters(queue: bool) -> queries.Filters:
    return queries.Filters(block=request.args.get("block", ""), decision=request.args.get("decision", ""),
                           min_sim=_float_arg("min_sim"), max_sim=_float_arg("max_sim"), queue=queue,
                           page=request.args.get("page", 0, type=int) or 0)


def _listing(queue: bool):
    f = _filters(queue)
    with _ctx().engine.connect() as conn:
        rows, blocks = queries.list_decisions(conn, f), queries.blocks(conn)
    return render_template("list.html", rows=rows, blocks=blocks, f=f, queue=queue, page_size=queries.PAGE_SIZE)


@bp.route("/")
@login_required
def index():
    return _listing(queue=False)


@bp.route("/queue")
@login_required
def queue():
    return _listing(queue=True)


def _shows_image(clip) -> bool:
    return clip is not None and (clip.has_inline or bool(
        clip.image_uri and file_shows(clip.image_uri, _ctx().settings.review_image_roots)))


def _linker_entity(clipping_id: str) -> str | None:
    """The linker's entity of the clipping now, from Redis; None when Redis is not configured or away."""
    state = _ctx().redis
    if state is None:
        return None
    try:
        return state.current_entities([clipping_id]).get(clipping_id, "(not in Redis)")
    except Exception as exc:  # noqa: BLE001 (the page shows the database's view without it)
        log.warning(kv("review_redis_unavailable", detail=str(exc).splitlines()[0]))
        return None


@bp.route("/decision/<path:clipping_id>")
@login_required
def decision(clipping_id: str):
    with _ctx().engine.connect() as conn:
        d = queries.decision(conn, clipping_id)
        if d is None:
            abort(404)
        clip = queries.clipping(conn, clipping_id)
        matched = queries.clipping(conn, d.matched_id) if d.matched_id else None
        others = [m for m in queries.members(conn, d.entity) if m.clipping_id not in (clipping_id, d.matched_id)]
        history = queries.history(conn, d.entity)
        mine = conn.execute(select(corrections).where(corrections.c.clipping_id == clipping_id)
                            .order_by(corrections.c.at.desc())).all()
    left, right = segments(clip.text if clip else "", matched.text if matched else "")
    return render_template("decision.html", d=d, clip=clip, matched=matched, others=others, history=history,
                           mine=mine, left=left, right=right, shows_image=_shows_image,
                           linker_entity=_linker_entity(clipping_id))


@bp.route("/entity/<path:entity_id>")
@login_required
def entity(entity_id: str):
    with _ctx().engine.connect() as conn:
        members = queries.members(conn, entity_id)
        history = queries.history(conn, entity_id)
    if not members and not history:
        abort(404)
    return render_template("entity.html", entity_id=entity_id, members=members, history=history)


@bp.route("/image/<path:clipping_id>")
@login_required
def image(clipping_id: str):
    with _ctx().engine.connect() as conn:
        row = queries.image(conn, clipping_id)
    data = image_bytes(row.image, row.image_uri, _ctx().settings.review_image_roots) if row else None
    kind = content_type(data) if data else None
    if kind is None:
        abort(404)
    return Response(data, mimetype=kind, headers={"Cache-Control": "private, max-age=3600"})
