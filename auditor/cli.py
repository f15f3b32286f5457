"""The ``auditor`` command line: one boundary that turns domain errors into messages and exit codes.

Commands live beside the concern they drive (``auditor.simulator.cli``, ``auditor.controls.cli``,
``auditor.reporting.cli``); this module assembles them and owns the error boundary. Exit codes are
documented in ``auditor.errors``.
"""

from __future__ import annotations

import sys

import click

from auditor import __version__, sysdeps
from auditor.errors import EXIT_RUN_FAILED, AuditorError
from auditor.redaction import redact


class AuditorGroup(click.Group):
    """A click group whose commands report ``AuditorError`` as one masked line and exit code."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except AuditorError as error:
            if ctx.meta.get("auditor.debug"):
                raise
            click.echo(f"error: {redact(error)}", err=True)
            sys.exit(error.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:  # the tool itself broke: say so, never print a secret
            if ctx.meta.get("auditor.debug"):
                raise
            click.echo(
                f"error: internal error: {type(error).__name__}: {redact(error)} "
                "(run with --debug for the traceback)",
                err=True,
            )
            sys.exit(EXIT_RUN_FAILED)


@click.group(cls=AuditorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Collect Bitbucket governance evidence and report SOC 2 / ISO 27001 control results.

    Credentials come from environment variables (or *_FILE variables naming files), never
    from arguments: BITBUCKET_EMAIL + BITBUCKET_API_TOKEN, or BITBUCKET_ACCESS_TOKEN, or
    BITBUCKET_OAUTH_CLIENT_ID + BITBUCKET_OAUTH_CLIENT_SECRET.
    """
    ctx.meta["auditor.debug"] = debug


@main.command()
def doctor() -> None:
    """Check that this machine can render PDF reports (Pango, HarfBuzz subset, a font)."""
    requirements = sysdeps.check()
    for requirement in requirements:
        mark = "ok " if requirement.present else "MISSING"
        click.echo(f"{mark:8} {requirement.name}: {requirement.detail}")
    missing = [r for r in requirements if not r.present]
    if missing:
        click.echo(sysdeps.missing_message(missing), err=True)
        sys.exit(EXIT_RUN_FAILED)


def _register_commands() -> None:
    from auditor.controls.cli import controls
    from auditor.reporting.cli import verify
    from auditor.simulator.cli import simulator

    main.add_command(controls)
    main.add_command(simulator)
    main.add_command(verify)


_register_commands()
