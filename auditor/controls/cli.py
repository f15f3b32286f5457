"""``auditor controls …``: validate and list control catalogs."""

from __future__ import annotations

import click


@click.group()
def controls() -> None:
    """Validate and list control catalogs (controls.yaml)."""
