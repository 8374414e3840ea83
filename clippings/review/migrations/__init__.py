"""Alembic migrations of the review database (applied by `clippings review` and `clippings review migrate`)."""
