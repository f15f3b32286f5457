"""Alembic's entry point for the evidence store: migrate the connection the store hands over.

``auditor.store.store`` opens the connection, takes the migration lock and begins the
transaction; this only runs the revisions inside it, so a failed migration changes nothing.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
