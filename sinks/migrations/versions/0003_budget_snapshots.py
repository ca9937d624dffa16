"""budget_snapshots (sinks.budget_store): each budget's figures as the stream holds them; adopted when it exists

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("budget_snapshots"):
        op.create_table(
            "budget_snapshots",
            sa.Column("budget_id", sa.String(128), primary_key=True),
            sa.Column("payload", sa.JSON, nullable=False),
            sa.Column("spend_usd", sa.Float, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("budget_snapshots")
