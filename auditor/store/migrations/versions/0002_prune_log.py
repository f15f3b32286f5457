"""A log of prunes (so the hash chain stays verifiable) and an index for date range reads.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prunes",
        sa.Column("prune_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observations_removed", sa.Integer, nullable=False),
        sa.Column("payloads_removed", sa.Integer, nullable=False),
        sa.Column("last_removed_id", sa.String(80), nullable=False),
        sa.Column("last_removed_sequence", sa.Integer, nullable=False),
        sa.Column("last_removed_hash", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_observations_workspace_observed_at", "observations", ["workspace", "observed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_observations_workspace_observed_at", "observations")
    op.drop_table("prunes")
