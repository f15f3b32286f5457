"""Incremental collection: when each part of an observation was actually read, and the
validators (ETag and body) of answers that carried an ETag, for conditional requests.

``observation_parts.observed_at`` is when that part's data was read from Bitbucket: the
observation's own time for what it read, an earlier time for what it carried forward from the
last reading, NULL for what was never read (its errors say why). Existing parts were all read
by their own observation, so they are filled with its time.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observation_parts") as batch:
        batch.add_column(sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE observation_parts SET observed_at = (SELECT observations.observed_at FROM "
        "observations WHERE observations.observation_id = observation_parts.observation_id)"
    )
    op.create_table(
        "known_responses",
        sa.Column("url_sha256", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("etag", sa.String(400), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("known_responses")
    with op.batch_alter_table("observation_parts") as batch:
        batch.drop_column("observed_at")
