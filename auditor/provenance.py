"""Who ran the tool, where, how, and with exactly which code: the run's provenance.

Recorded in ``run.json`` and shown on the report cover, so a reader can tell which build of the
tool produced the evidence and reproduce the run. Nothing here is a secret: credentials only ever
come from the environment or from files, and the command line is masked anyway (registered
secrets, and the value of any option whose name says it is a secret) before it is recorded.

The tool's own fingerprint is a SHA-256 over the installed code: every file of the ``auditor``
package (``__pycache__`` left out) and every report template, listed one ``<sha256>  <path>``
line per file, sorted by path, like ``sha256sum`` prints them; the digest of that list is the
fingerprint. A changed line of code or of a template changes it.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import re
import shlex
import socket
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.redaction import MASK, redact

BACKEND = "Bitbucket Cloud"
DATACENTER_BACKEND = "Bitbucket Data Center"
# Bitbucket Cloud is a hosted service: its API (2.0) publishes no server version.
CLOUD_SERVER_VERSION = "not published by Bitbucket Cloud (a hosted service; REST API 2.0)"
# The libraries whose versions change what is collected, evaluated or rendered.
KEY_DEPENDENCIES = (
    "requests",
    "urllib3",
    "tenacity",
    "graphene",
    "graphql-core",
    "pandas",
    "pydantic",
    "jinja2",
    "weasyprint",
    "pydyf",
    "pypdf",
    "cryptography",
    "compliance-trestle",
)
# Notification URLs (collect --notify) are credentials too: a webhook URL is its own secret.
_SECRET_OPTION = re.compile(r"^--?[\w-]*(token|secret|password|passphrase|notify)[\w-]*$", re.I)
_PACKAGE_ROOT = Path(__file__).resolve().parent


def operator_name() -> str:
    """The OS user running the tool (``uid N`` when the user has no name, as in some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def masked_command_line(program: str, arguments: Sequence[str]) -> str:
    """``program arguments…`` as a shell would read it, with secrets masked.

    A value given to an option named like a secret (``--token X`` or ``--token=X``) is masked even
    though no secret option exists: a future one must not leak by accident."""
    masked: list[str] = []
    hide_next = False
    for argument in arguments:
        if hide_next:
            masked.append(MASK)
            hide_next = False
            continue
        name, separator, _value = argument.partition("=")
        if _SECRET_OPTION.match(name):
            if separator:
                masked.append(f"{name}={MASK}")
            else:
                masked.append(argument)
                hide_next = True
            continue
        masked.append(redact(argument))
    return shlex.join([program, *masked])


def _installed_files(templates: Path | None) -> list[tuple[str, Path]]:
    files = [
        (f"auditor/{path.relative_to(_PACKAGE_ROOT).as_posix()}", path)
        for path in _PACKAGE_ROOT.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    if templates is not None and templates.is_dir():
        files += [
            (f"templates/{path.relative_to(templates).as_posix()}", path)
            for path in templates.rglob("*")
            if path.is_file()
        ]
    return sorted(files)


def installed_code_digest(templates: Path | None = None) -> dict[str, Any]:
    """SHA-256 of the installed ``auditor`` package and report templates (see the module doc)."""
    listing = hashlib.sha256()
    files = _installed_files(templates)
    for relative, path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        listing.update(f"{digest}  {relative}\n".encode())
    return {
        "sha256": listing.hexdigest(),
        "files": len(files),
        "what": (
            "SHA-256 of the sorted '<sha256>  <path>' list of every file of the installed "
            "auditor package (without __pycache__) and of the report templates"
        ),
        "package_path": str(_PACKAGE_ROOT),
        "templates_path": str(templates) if templates is not None else None,
    }


def dependency_versions() -> dict[str, str]:
    """The installed version of each key dependency (``not installed`` when absent)."""
    versions = {}
    for name in KEY_DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def collect_provenance(
    *,
    command_line: str,
    demo: bool,
    templates: Path | None = None,
    backend: str = "cloud",
    server_version: str | None = None,
) -> dict[str, Any]:
    """The provenance record written to ``run.json`` (key ``provenance``)."""
    return {
        "operator": operator_name(),
        "host": socket.gethostname(),
        "command_line": command_line,
        "tool": {
            "name": "bitbucket-auditor",
            "version": __version__,
            "installed_code": installed_code_digest(templates),
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "dependencies": dependency_versions(),
        "backend": {
            "kind": (BACKEND if backend == "cloud" else DATACENTER_BACKEND)
            + (" (built-in simulator: demo data)" if demo else ""),
            "server_version": (
                CLOUD_SERVER_VERSION
                if backend == "cloud"
                else (server_version or "not reported by the server")
            ),
        },
    }
