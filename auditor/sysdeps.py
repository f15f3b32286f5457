"""Checks that the system libraries WeasyPrint needs are present, naming the install command.

WeasyPrint renders text through Pango (≥ 1.44), subsets fonts with HarfBuzz's subset library, and
needs at least one installed font, or PDF text comes out as empty boxes. These come from the
operating system, not from PyPI, so ``pip install`` alone cannot provide them.
"""

from __future__ import annotations

import ctypes.util
import shutil
import subprocess
from dataclasses import dataclass

DEBIAN_PACKAGES = (
    "libpango-1.0-0",
    "libpangoft2-1.0-0",
    "libharfbuzz-subset0",
    "fonts-dejavu-core",
)
INSTALL_COMMAND = "apt-get install -y " + " ".join(DEBIAN_PACKAGES)
OTHER_SYSTEMS = (
    "Fedora: dnf install pango harfbuzz dejavu-sans-fonts; "
    "macOS: brew install pango; Alpine: apk add pango font-dejavu"
)


@dataclass(frozen=True)
class Requirement:
    name: str
    present: bool
    detail: str


def _library(name: str, soname: str) -> Requirement:
    found = ctypes.util.find_library(soname)
    return Requirement(name, found is not None, found or f"lib{soname} not found")


def _fonts() -> Requirement:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return Requirement("a font (fontconfig)", False, "fc-list not found")
    result = subprocess.run([fc_list, ":", "family"], capture_output=True, text=True, check=False)
    families = {line.strip() for line in result.stdout.splitlines() if line.strip()}
    detail = f"{len(families)} font families" if families else "no fonts installed"
    return Requirement("a font (fontconfig)", bool(families), detail)


def check() -> list[Requirement]:
    """Every requirement with whether it is present."""
    return [
        _library("Pango", "pango-1.0"),
        _library("PangoFT2", "pangoft2-1.0"),
        _library("HarfBuzz subset", "harfbuzz-subset"),
        _fonts(),
    ]


def missing_message(missing: list[Requirement]) -> str:
    names = ", ".join(f"{r.name} ({r.detail})" for r in missing)
    return (
        f"WeasyPrint cannot render PDFs on this machine: missing {names}.\n"
        f"Install them with:\n    sudo {INSTALL_COMMAND}\n({OTHER_SYSTEMS})"
    )
