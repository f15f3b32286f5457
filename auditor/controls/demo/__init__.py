"""The demo workspace's exceptions file and credential declaration (docs/DEMO.md).

``auditor run --demo`` passes these to the engine so the report shows an applied, an expired and
an unmatched exception, and CR-2 is judged from the token's declared dates.
"""

from __future__ import annotations

from pathlib import Path

from auditor.controls.facts import CredentialFacts, load_credential_facts

_HERE = Path(__file__).resolve().parent


def exceptions_path() -> Path:
    """The demo's exceptions file."""
    return _HERE / "exceptions.yaml"


def datacenter_exceptions_path() -> Path:
    """The Data Center demo's exceptions file (``auditor run --demo --backend datacenter``)."""
    return _HERE / "datacenter-exceptions.yaml"


def credential_path() -> Path:
    """The demo's declaration of the API token's issue and expiry dates."""
    return _HERE / "credential.yaml"


def credential_facts() -> CredentialFacts:
    return load_credential_facts(credential_path())
