"""The review database's tables (SQLAlchemy Core). The schema itself is made by the Alembic
migrations in migrations/versions/; these objects only describe it to the queries."""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Float, Integer, LargeBinary, MetaData, String, Table,
                        Text, Uuid)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# One row per clipping id from clippings.raw (the first event of an id; a replay changes nothing).
clippings = Table(
    "clippings", metadata,
    Column("id", Text, primary_key=True),
    Column("block", Text, nullable=False),
    Column("source", Text, nullable=False, server_default=""),
    Column("text", Text, nullable=False, server_default=""),
    Column("image", LargeBinary),  # inline bytes
    Column("image_uri", Text),  # or the reference
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# The linker's decision per clipping: its first link event without `correction`.
decisions = Table(
    "decisions", metadata,
    Column("id", Text, primary_key=True),
    Column("block", Text, nullable=False),
    Column("entity_id", Text, nullable=False),  # as decided (membership holds the current one)
    Column("is_duplicate", Boolean, nullable=False),
    Column("matched_id", Text),
    Column("similarity", Float),
    Column("closest", Float),  # similarity, else the best neighbour's: what the review queue ranks
    Column("threshold", Float, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("neighbours", JSONB, nullable=False),
    Column("merged_entities", JSONB, nullable=False),
    Column("origin_topic", Text, nullable=False),
    Column("origin_partition", Integer, nullable=False),
    Column("origin_offset", BigInteger, nullable=False),
    Column("linked_ts_ms", BigInteger, nullable=False),
)

# Link events made by corrections (the linker applying one): part of an entity's history.
correction_events = Table(
    "correction_events", metadata,
    Column("correction_id", Text, primary_key=True),
    Column("clipping_id", Text, primary_key=True),
    Column("block", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("reviewer", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("merged_entities", JSONB, nullable=False),
    Column("linked_ts_ms", BigInteger, nullable=False),
)

# Entity membership now, as the link events say (decisions, merges, applied corrections).
membership = Table(
    "membership", metadata,
    Column("clipping_id", Text, primary_key=True),
    Column("entity_id", Text, nullable=False),
    Column("block", Text, nullable=False),
)

# Reviewers' actions; published_at is set only after the broker acknowledged the Correction.
corrections = Table(
    "corrections", metadata,
    Column("id", Uuid, primary_key=True),
    Column("action", String(16), nullable=False),
    Column("block", Text, nullable=False),
    Column("clipping_id", Text, nullable=False),
    Column("target_id", Text),
    Column("reviewer", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("entity_id", Text, nullable=False),  # the clipping's entity when the action was taken
    Column("kafka_partition", Integer, nullable=False),  # the clipping's link event origin.partition
    Column("published_at", DateTime(timezone=True)),
)
