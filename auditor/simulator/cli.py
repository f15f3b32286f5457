"""``auditor simulator …``: run the local Bitbucket Cloud simulator."""

from __future__ import annotations

import click


@click.group()
def simulator() -> None:
    """Run the local Bitbucket Cloud simulator (demo or synthetic workspaces)."""
