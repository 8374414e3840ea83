"""The Flask application: factory, security headers, CSRF, error pages.

Everything the views need (settings, engine, publisher, Redis) travels in one ReviewContext
in app.extensions["review"], so tests build the app with a real database and broker and no
globals.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, Response, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect

from clippings.review.settings import ReviewSettings, require_password

# No inline script or style, nothing from another origin: a caption that slips past escaping
# still cannot run.
CSP = ("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@dataclass
class ReviewContext:
    settings: ReviewSettings
    engine: object  # sqlalchemy Engine
    publisher: object  # CorrectionPublisher
    password: str
    redis: object | None = None  # RedisState of the linker, when configured


def create_app(settings: ReviewSettings, engine, publisher, redis=None) -> Flask:
    from clippings.review import actions, auth, views

    app = Flask(__name__)
    key = settings.review_secret_key.get_secret_value() if settings.review_secret_key else secrets.token_hex(32)
    app.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.review_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only
    )
    app.extensions["review"] = ReviewContext(settings, engine, publisher, require_password(settings), redis)
    CSRFProtect(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(actions.bp)

    @app.after_request
    def _headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"
        if resp.mimetype == "text/html":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    # Probes, without a session: /healthz says the server answers, /readyz that the database does.
    @app.get("/healthz")
    def _healthz():
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def _readyz():
        from sqlalchemy import text

        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # noqa: BLE001 - not ready, and why (never the URL)
            return Response(f"database: {type(exc).__name__}\n", status=503, mimetype="text/plain")
        return Response("ok\n", mimetype="text/plain")

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return render_template("error.html", title="Form expired or forged",
                               message=f"{exc.description} Reload the page and try again."), 400

    @app.errorhandler(404)
    def _missing(exc):
        return render_template("error.html", title="Not found", message="No such page or clipping."), 404

    return app
