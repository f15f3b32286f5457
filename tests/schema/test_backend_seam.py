"""The schema reaches Bitbucket only through the backend seam (auditor.backends.Backend)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import auditor.schema
from auditor.backends import Backend
from auditor.backends.cloud import CloudBackend
from auditor.schema.loaders import Loaders

SCHEMA_DIR = Path(auditor.schema.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_schema_modules_import_no_client_and_no_particular_backend():
    offenders = {
        path.name: sorted(
            name
            for name in _imports(path)
            if name.startswith(("auditor.bitbucket", "auditor.backends.", "requests"))
        )
        for path in SCHEMA_DIR.glob("*.py")
    }
    # The credential type (for the context) and the typed errors are shared vocabulary, not
    # a way to Bitbucket: nothing else of the client may be imported.
    allowed = {"auditor.bitbucket.credentials", "auditor.bitbucket.errors"}
    found = {
        name: [module for module in modules if module not in allowed]
        for name, modules in offenders.items()
    }
    assert {name: modules for name, modules in found.items() if modules} == {}


def test_every_read_the_loaders_make_is_named_by_the_protocol_and_cloud_implements_it():
    source = inspect.getsource(Loaders)
    protocol = {
        name
        for name, member in vars(Backend).items()
        if inspect.iscoroutinefunction(member) or name == "close"
    }
    used = {name for name in protocol if f"b.{name}" in source}
    assert used == protocol - {"close"}
    missing = [name for name in protocol if not callable(getattr(CloudBackend, name, None))]
    assert missing == []
