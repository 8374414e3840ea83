"""Login: one shared password (CLIPPINGS_REVIEW_PASSWORD), the reviewer's name, a session cookie.

The password is compared in constant time and never logged; a failed login waits a little, so
guessing is slow. The reviewer name goes into every correction ("who did it").
"""

from __future__ import annotations

import functools
import hmac
import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

bp = Blueprint("auth", __name__)
FAILED_LOGIN_DELAY_S = 0.5
NAME_MAX = 256


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not session.get("reviewer"):
            return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    # Only a path of this site: an absolute or scheme-relative URL would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("views.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    name = request.form.get("reviewer", "").strip()
    given = request.form.get("password", "").encode("utf-8")
    expected = current_app.extensions["review"].password.encode("utf-8")
    if not hmac.compare_digest(given, expected):
        time.sleep(FAILED_LOGIN_DELAY_S)
        flash("Wrong password.", "error")
        return render_template("login.html", next=request.form.get("next", ""), reviewer=name), 401
    if not name or len(name) > NAME_MAX:
        flash(f"Give your name (1 to {NAME_MAX} characters): it is recorded with every action.", "error")
        return render_template("login.html", next=request.form.get("next", "")), 400
    session.clear()  # a fresh session at login: no fixation
    session["reviewer"] = name
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
