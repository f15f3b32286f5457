"""The first evidence store: observations, content-addressed payloads, and their links.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("observation_id", sa.String(80), primary_key=True),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_label", sa.String(80), nullable=False),
        sa.Column("period_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credential_type", sa.String(40), nullable=False),
        sa.Column("credential_identity", sa.String(400), nullable=False),
        sa.Column("api_url", sa.String(400), nullable=False),
        sa.Column("tool_version", sa.String(40), nullable=False),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("http", sa.Text, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("repositories", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("payloads_new", sa.Integer, nullable=False),
        sa.Column("payloads_reused", sa.Integer, nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("workspace", "sequence", name="uq_observations_workspace_sequence"),
    )
    op.create_table(
        "payloads",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "observation_parts",
        sa.Column(
            "observation_id",
            sa.String(80),
            sa.ForeignKey("observations.observation_id"),
            primary_key=True,
        ),
        sa.Column("query", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("repository", sa.String(400), nullable=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("payloads.sha256"), nullable=False),
    )
    op.create_index("ix_observation_parts_sha256", "observation_parts", ["sha256"])


def downgrade() -> None:
    op.drop_table("observation_parts")
    op.drop_table("payloads")
    op.drop_table("observations")
