"""alerts and dead_letters (sinks.store), as create_all made them; adopted when they exist

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("alerts"):
        op.create_table(
            "alerts",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("series_key", sa.String(1024), nullable=False),
            sa.Column("metric", sa.String(64), nullable=False),
            sa.Column("detector", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("score", sa.Float, nullable=False),
            sa.Column("observed", sa.Float, nullable=False),
            sa.Column("baseline", sa.Float, nullable=False),
            sa.Column("started_at", TS, nullable=False),
            sa.Column("resolved_at", TS, nullable=True),
            sa.Column("payload", sa.JSON, nullable=False),
            sa.Column("created_at", TS, nullable=False),
        )
        op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"], unique=True)
        op.create_index("ix_alerts_series_key", "alerts", ["series_key"])
        op.create_index("ix_alerts_started_at", "alerts", ["started_at"])
    if _missing("dead_letters"):
        op.create_table(
            "dead_letters",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
            sa.Column("topic", sa.String(255), nullable=False),
            sa.Column("partition", sa.Integer, nullable=True),
            sa.Column("offset", sa.Integer, nullable=True),
            sa.Column("index", sa.Integer, nullable=True),
            sa.Column("reason", sa.String(2000), nullable=False),
            sa.Column("original_b64", sa.String, nullable=False),
            sa.Column("key_b64", sa.String, nullable=True),
            sa.Column("received_at", TS, nullable=False),
            sa.Column("replayed_at", TS, nullable=True),
        )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("alerts")
