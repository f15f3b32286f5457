"""``auditor verify``: check a run folder or report PDF against its manifest."""

from __future__ import annotations

import click


@click.command()
@click.argument("target", type=click.Path(exists=True))
def verify(target: str) -> None:
    """Check a run folder (or a report PDF) against its manifest.json."""
    raise click.ClickException("not implemented yet")
