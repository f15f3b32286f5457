"""Alembic migrations of the evidence store, applied by ``auditor.store.open_store``."""
