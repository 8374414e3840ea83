"""The database: an engine from the settings, and the Alembic migrations applied from Python."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sqlalchemy import Engine, create_engine

from clippings.errors import ClippingsError

MIGRATIONS = Path(str(files("clippings.review").joinpath("migrations")))


class DatabaseError(ClippingsError):
    """The review database cannot be reached or migrated."""


def make_engine(url: str) -> Engine:
    # pool_pre_ping: a Postgres restart costs one failed check, not one failed request.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # '%' is ConfigParser's interpolation character: a percent-encoded password must survive it.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _quiet_alembic() -> None:
    """Before alembic is imported: its INFO lines list plugins and steps."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent: at head it does nothing)."""
    _quiet_alembic()
    from alembic import command
    from sqlalchemy.exc import OperationalError

    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:  # the message names host and database, never the password
        raise DatabaseError(f"cannot reach the review database: {exc.orig}") from None


def current_revision(engine: Engine) -> str | None:
    """The schema's Alembic revision; None where the review page's tables were never made."""
    _quiet_alembic()
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
