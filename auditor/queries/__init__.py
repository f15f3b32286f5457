"""The stored GraphQL documents the batch job runs (package data)."""
