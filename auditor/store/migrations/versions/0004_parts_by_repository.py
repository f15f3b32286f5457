"""Parts by repository: a period report reads a chunk of repositories at a time
(``auditor.store.chunks``), so the parts of given repositories are found by an index on
``observation_parts.repository`` instead of a scan of every observation's parts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_observation_parts_repository",
        "observation_parts",
        ["repository", "observation_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_observation_parts_repository", table_name="observation_parts")
