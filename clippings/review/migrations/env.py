"""Alembic's entry point: online migrations only, on the URL db.alembic_config set."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from clippings.review.tables import metadata

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
