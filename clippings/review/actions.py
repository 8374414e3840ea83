"""The reviewers' actions, POST forms with a CSRF token: confirm, reject, merge.

Each is checked and stored first (one transaction), then published; a refusal or a broker
that does not acknowledge in time is said on the page it came from.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for

from clippings.review.auth import login_required
from clippings.review.corrections import CorrectionRefused, record

bp = Blueprint("actions", __name__)
NOTE_MAX = 2000


def _act(action: str, clipping_id: str):
    ctx = current_app.extensions["review"]
    target = request.form.get("target_id") if action != "confirm" else None
    note = request.form.get("note", "")[:NOTE_MAX]
    back = redirect(url_for("views.decision", clipping_id=clipping_id))
    try:
        with ctx.engine.begin() as conn:
            event, partition = record(conn, action, clipping_id, session["reviewer"], target, note)
    except CorrectionRefused as exc:
        flash(str(exc), "error")
        return back
    if ctx.publisher.publish(event, partition):
        flash(f"{action} of {clipping_id} stored and published (correction {event.id}).", "ok")
    else:
        flash(f"{action} of {clipping_id} stored; the broker has not acknowledged it yet, it is sent again "
              f"in the background (correction {event.id}).", "warn")
    return back


@bp.route("/confirm/<path:clipping_id>", methods=["POST"])
@login_required
def confirm(clipping_id: str):
    return _act("confirm", clipping_id)


@bp.route("/reject/<path:clipping_id>", methods=["POST"])
@login_required
def reject(clipping_id: str):
    return _act("reject", clipping_id)


@bp.route("/merge/<path:clipping_id>", methods=["POST"])
@login_required
def merge(clipping_id: str):
    return _act("merge", clipping_id)
