"""The report's Jinja2 environment and HTML rendering.

Autoescape is on for every template (not only ``*.html``): everything the report shows from
Bitbucket is attacker-controlled text. ``StrictUndefined`` turns a misspelt field into an error
instead of an empty cell. Every printed value passes ``auditor.visible.for_display``: invisible and
direction-changing characters are shown, unbroken runs too long for a table cell are shortened.
The templates receive one object, ``report`` (a ``ReportContext``).

The HTML report is one self-contained file: the stylesheet and the table-filter script are
inlined, and a Content-Security-Policy admits exactly those two inline blocks (by hash) and
nothing else: no fetch, no other script, no form, even if some text ever escaped its escaping.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from pathlib import Path

import jinja2
import markupsafe

from auditor.reporting.context import ReportContext
from auditor.resources import templates_dir
from auditor.visible import for_display

REPORT_TEMPLATE = "report.html"
STYLESHEET_TEMPLATE = "report.css"
SCRIPT_TEMPLATE = "table-filter.js"


def _thousands(value: int | float) -> str:
    return f"{value:,}"


def _displayed(value: object) -> object:
    """Every value a template prints: text shows its invisible characters and has its
    over-long unbroken runs shortened (``auditor.visible``); markup the report built itself
    (``Markup``) and other values pass unchanged."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return for_display(value)
    return value


# Where an identifier may wrap in a narrow cell: after a path, key or word separator followed by
# a word character. A word is never cut inside (`branch_restrict ions`).
_BREAK_AFTER = re.compile(r"(?<=[/_:#.@=&?-])(?=\w)")


@jinja2.pass_context
def _breakable(context: jinja2.runtime.Context, value: object) -> object:
    """For the PDF, escaped text with ``<wbr>`` after its separators
    (``branch_<wbr>restrictions``, ``evidence/<wbr>bundle.jsonl.gz``): identifiers, paths and
    keys wrap at their joints in a narrow table cell instead of anywhere inside a word. The text
    is split before it is escaped, so no break lands inside an entity. The HTML report is left
    as it is (a browser wraps the cell, and the text copies without break marks)."""
    text = _displayed(value)
    report = context.get("report")
    if isinstance(text, markupsafe.Markup) or not getattr(report, "is_pdf", False):
        return text
    parts = _BREAK_AFTER.split(str(text))
    return markupsafe.Markup("<wbr>").join(markupsafe.escape(part) for part in parts)


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment over the packaged templates (or ``templates``)."""
    env = jinja2.Environment(
        finalize=_displayed,
        loader=jinja2.FileSystemLoader(str(templates or templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["thousands"] = _thousands
    env.filters["breakable"] = _breakable
    return env


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(env: jinja2.Environment) -> str:
    """A policy that allows the report's own inline stylesheet and script and nothing else."""
    style = env.get_template(STYLESHEET_TEMPLATE).render()
    script = env.get_template(SCRIPT_TEMPLATE).render()
    return (
        "default-src 'none'; "
        f"style-src {_csp_hash(style)}; "
        f"script-src {_csp_hash(script)}; "
        "base-uri 'none'; form-action 'none'"
    )


def render_report(context: ReportContext, env: jinja2.Environment | None = None) -> str:
    """The report as an HTML document for ``context.target`` (``html`` or ``pdf``)."""
    env = env or environment()
    if not context.is_pdf:
        context = dataclasses.replace(context, content_security_policy=content_security_policy(env))
    return env.get_template(REPORT_TEMPLATE).render(report=context)
