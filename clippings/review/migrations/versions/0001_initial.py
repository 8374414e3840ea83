"""The first schema: clippings, decisions, correction events, membership, corrections.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _stream_tables()
    _review_tables()


def _stream_tables() -> None:
    """What the topics say: clippings, decisions, correction link events."""
    op.create_table(
        "clippings",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("block", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("image", sa.LargeBinary),
        sa.Column("image_uri", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("block", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("is_duplicate", sa.Boolean, nullable=False),
        sa.Column("matched_id", sa.Text),
        sa.Column("similarity", sa.Float),
        sa.Column("closest", sa.Float),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("neighbours", JSONB, nullable=False),
        sa.Column("merged_entities", JSONB, nullable=False),
        sa.Column("origin_topic", sa.Text, nullable=False),
        sa.Column("origin_partition", sa.Integer, nullable=False),
        sa.Column("origin_offset", sa.BigInteger, nullable=False),
        sa.Column("linked_ts_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("decisions_linked", "decisions", ["linked_ts_ms"])
    op.create_table(
        "correction_events",
        sa.Column("correction_id", sa.Text, primary_key=True),
        sa.Column("clipping_id", sa.Text, primary_key=True),
        sa.Column("block", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("merged_entities", JSONB, nullable=False),
        sa.Column("linked_ts_ms", sa.BigInteger, nullable=False),
    )


def _review_tables() -> None:
    """Membership now, and the reviewers' corrections."""
    op.create_table(
        "membership",
        sa.Column("clipping_id", sa.Text, primary_key=True),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("block", sa.Text, nullable=False),
    )
    op.create_index("membership_entity", "membership", ["entity_id"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("block", sa.Text, nullable=False),
        sa.Column("clipping_id", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("corrections_clipping", "corrections", ["clipping_id"])
    # The republisher's scan: only the rows still to publish.
    op.create_index("corrections_unpublished", "corrections", ["at"],
                    postgresql_where=sa.text("published_at IS NULL"))


def downgrade() -> None:
    for table in ("corrections", "membership", "correction_events", "decisions", "clippings"):
        op.drop_table(table)
