"""Finds the files the tool ships beside its code: the default catalog and the report templates.

In a source checkout (and an editable install) they sit at the top of the repository, next to the
``auditor`` package. A regular ``pip install`` puts them under ``<prefix>/share/bitbucket-auditor``
(``[options.data_files]`` in setup.cfg); the installed distribution's file list says where that is,
which works for virtualenvs, ``--user`` and ``--prefix`` installs alike.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "bitbucket-auditor"
_SHARE_DIR = "share/bitbucket-auditor"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


class ResourceNotFound(FileNotFoundError):
    """A packaged file is missing: the installation is incomplete."""


@functools.cache
def _installed_share_dir() -> Path | None:
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        return None
    marker = f"{_SHARE_DIR}/controls.yaml"
    for entry in files:
        if str(entry).replace("\\", "/").endswith(marker):
            return Path(str(entry.locate())).resolve().parent
    return None


@functools.cache
def share_dir() -> Path:
    """The folder holding ``controls.yaml`` and ``templates/``."""
    if (_SOURCE_ROOT / "controls.yaml").is_file() and (_SOURCE_ROOT / "setup.cfg").is_file():
        return _SOURCE_ROOT
    installed = _installed_share_dir()
    if installed is not None and (installed / "controls.yaml").is_file():
        return installed
    raise ResourceNotFound(
        f"cannot find the packaged catalog and templates of {DISTRIBUTION}: looked in "
        f"{_SOURCE_ROOT} and in the installed distribution's {_SHARE_DIR}; reinstall the package"
    )


def default_catalog_path() -> Path:
    """The shipped ``controls.yaml``."""
    return share_dir() / "controls.yaml"


def templates_dir() -> Path:
    """The shipped Jinja2 templates and their assets."""
    path = share_dir() / "templates"
    if not path.is_dir():
        raise ResourceNotFound(f"the report templates are missing: {path} does not exist")
    return path


def queries_dir() -> Path:
    """The stored GraphQL documents (package data of ``auditor.queries``)."""
    return Path(__file__).resolve().parent / "queries"
