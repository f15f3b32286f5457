"""The built-in demo: the simulator's ``acme`` workspace, audited for 2026-Q3 as of 2026-10-01.

``auditor run --demo`` needs no account and no configuration: it starts the simulator in this
process, points the client at it with the demo credential, and applies the demo's exceptions and
credential declaration, so the report shows every verdict the catalog can give (docs/DEMO.md).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from auditor.period import Period, parse_period

WORKSPACE = "acme"
ORGANISATION = "Acme Corp (demo)"
PERIOD_LABEL = "2026-Q3"
EVALUATED_ON = date(2026, 10, 1)
CREDENTIAL_KIND = "api_token"

_DEMO_DIR = Path(__file__).resolve().parent / "controls" / "demo"


def period() -> Period:
    return parse_period(PERIOD_LABEL)


def exceptions_path() -> Path:
    return _DEMO_DIR / "exceptions.yaml"


def credential_facts_path() -> Path:
    return _DEMO_DIR / "credential.yaml"
