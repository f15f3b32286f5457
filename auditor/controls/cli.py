"""``auditor controls …``: validate and list control catalogs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from auditor.controls.catalog import Catalog, load_catalog
from auditor.controls.exceptions import load_exceptions
from auditor.controls.frameworks import check_framework

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def controls() -> None:
    """Validate and list control catalogs (controls.yaml)."""


@controls.command()
@click.argument("catalog_file", metavar="[FILE]", required=False, type=_FILE)
@click.option(
    "--exceptions",
    "exceptions_file",
    type=_FILE,
    help="Also validate this exceptions file (risk acceptances) against the catalog.",
)
def validate(catalog_file: Path | None, exceptions_file: Path | None) -> None:
    """Check a catalog (default: the shipped controls.yaml) and optionally an exceptions file.

    Prints one line per problem as file:line:column: control: message and exits with code 2
    when anything is invalid.
    """
    catalog = load_catalog(catalog_file)
    counts = _counts(catalog)
    name = catalog_file if catalog_file is not None else catalog.path.name
    click.echo(f"{name}: {len(catalog.controls)} controls valid ({counts})")
    if exceptions_file is not None:
        exceptions = load_exceptions(exceptions_file, catalog)
        click.echo(f"{exceptions_file}: {len(exceptions.rules)} exceptions valid")


def _counts(catalog: Catalog) -> str:
    automated = sum(1 for control in catalog.controls if control.automated)
    disabled = sum(1 for control in catalog.controls if not control.enabled)
    manual = len(catalog.controls) - automated
    return f"{automated} automated, {manual} manual, {disabled} disabled"


@controls.command(name="list")
@click.argument("catalog_file", metavar="[FILE]", required=False, type=_FILE)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Print a table for people or JSON for scripts.",
)
@click.option(
    "--framework",
    metavar="KEY",
    help="Only the controls mapped to this framework (soc2 or iso27001 in the shipped catalog).",
)
def list_controls(catalog_file: Path | None, output_format: str, framework: str | None) -> None:
    """List the controls of a catalog (default: the shipped controls.yaml).

    Shows each control's ID, title, framework criteria, whether it is automated or manual, and
    whether it is enabled. With --framework, only that framework's controls and criteria.
    """
    catalog = load_catalog(catalog_file)
    controls = catalog.controls
    if framework is not None:
        check_framework(framework, catalog.frameworks, str(catalog.path))
        controls = [c for c in controls if any(r.framework == framework for r in c.frameworks)]
    records = [
        {
            "id": control.id,
            "title": control.title,
            "family": control.family_title,
            "severity": control.severity,
            "frameworks": [
                catalog.framework_label(ref)
                for ref in control.frameworks
                if framework is None or ref.framework == framework
            ],
            "automated": control.automated,
            "check": control.check,
            "parameters": control.parameter_values(),
            "enabled": control.enabled,
            "scope": control.scope.describe(),
        }
        for control in controls
    ]
    if output_format == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{catalog.path.name} ({len(records)} controls)", show_lines=False)
    for header in ("ID", "Title", "Frameworks", "Type", "Enabled"):
        table.add_column(header, overflow="fold")
    for record in records:
        table.add_row(
            record["id"],
            record["title"],
            ", ".join(record["frameworks"]),
            "automated" if record["automated"] else "manual",
            "yes" if record["enabled"] else "no",
        )
    Console(width=160).print(table)
