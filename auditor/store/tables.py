"""The evidence store's tables (SQLAlchemy Core), as the newest migration leaves them.

The migrations in ``auditor/store/migrations/versions`` create and change these tables; this
module is what the store's code reads and writes. Timestamps are stored in UTC (SQLite keeps them
without a zone; ``auditor.store.store`` puts UTC back on reading).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# One observation: one collection of one workspace. Never updated; deleted only by prune.
observations = sa.Table(
    "observations",
    metadata,
    sa.Column("observation_id", sa.String(80), primary_key=True),
    sa.Column("workspace", sa.String(200), nullable=False),
    # Position in the workspace's hash chain: 1, 2, 3, … in the order observations were added.
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),  # collection finished
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_label", sa.String(80), nullable=False),
    sa.Column("period_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("credential_type", sa.String(40), nullable=False),
    sa.Column("credential_identity", sa.String(400), nullable=False),
    sa.Column("api_url", sa.String(400), nullable=False),
    sa.Column("tool_version", sa.String(40), nullable=False),
    sa.Column("variables", sa.Text, nullable=False),  # JSON: query -> variables as executed
    sa.Column("http", sa.Text, nullable=False),  # JSON: HttpStats.as_dict() of the collection
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("repositories", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),  # collection_errors rows
    sa.Column("payloads_new", sa.Integer, nullable=False),
    sa.Column("payloads_reused", sa.Integer, nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("workspace", "sequence", name="uq_observations_workspace_sequence"),
    sa.Index("ix_observations_workspace_observed_at", "workspace", "observed_at"),  # 0002
)

# Content-addressed payloads: canonical JSON (or a query document), zlib-compressed.
payloads = sa.Table(
    "payloads",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),  # of the uncompressed content
    sa.Column("size", sa.Integer, nullable=False),  # uncompressed bytes
    sa.Column("content", sa.LargeBinary, nullable=False),
)

# Which payloads make up each observation (auditor.store.payloads says how they fit together).
observation_parts = sa.Table(
    "observation_parts",
    metadata,
    sa.Column(
        "observation_id",
        sa.String(80),
        sa.ForeignKey("observations.observation_id"),
        primary_key=True,
    ),
    sa.Column("query", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # workspace | repository | document
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("repository", sa.String(400), nullable=True),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("payloads.sha256"), nullable=False),
    # Revision 0003: when this part's data was read from Bitbucket — the observation's time,
    # an earlier one when carried forward by an incremental collection, NULL if never read.
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_observation_parts_sha256", "sha256"),
    sa.Index("ix_observation_parts_repository", "repository", "observation_id"),  # 0004
)

# Revision 0002: every prune, so the chain stays verifiable after the oldest links are gone.
prunes = sa.Table(
    "prunes",
    metadata,
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

# Revision 0003: the validators of answers that carried an ETag, so the next collection asks
# If-None-Match (auditor.bitbucket.conditional). A cache, not evidence: outside the hash chain.
known_responses = sa.Table(
    "known_responses",
    metadata,
    sa.Column("url_sha256", sa.String(64), primary_key=True),  # of the request URL
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.String(400), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),  # zlib-compressed body
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)
