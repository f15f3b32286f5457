"""A plain (non-editable) install works from any directory: catalog, templates, queries and demo
data are found where pip put them."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtualenv with the project installed from its wheel (built offline). Its
    dependencies come from the test environment through a .pth file, so nothing is downloaded
    and the project itself is only the installed copy."""
    base = tmp_path_factory.mktemp("install")
    wheels = base / "wheels"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "-q", "-w", str(wheels), str(ROOT)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("bitbucket_auditor-*.whl")
    environment = base / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return environment


def run(environment: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(environment / "bin" / "auditor"), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_the_installed_package_uses_its_installed_share_folder(installed, tmp_path):
    code = "import auditor, auditor.resources as r; print(auditor.__file__); print(r.share_dir())"
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    module, share = result.stdout.split()
    assert module.startswith(str(installed)), "the project must come from the install"
    assert Path(share) == installed / "share" / "bitbucket-auditor"
    assert str(ROOT) not in result.stdout


def test_the_installed_command_validates_the_shipped_catalog(installed, tmp_path):
    result = run(installed, "controls", "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "29 controls valid" in result.stdout


@pytest.mark.slow
def test_the_installed_command_runs_the_demo_from_another_directory(installed, tmp_path):
    result = run(installed, "run", "--demo", "--out", "out", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    for name in ("report.html", "report.pdf", "findings.csv", "run.json", "manifest.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "run.json").read_text())["demo"] is True
    verified = run(installed, "verify", "out", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_installed_command_collects_into_a_store_its_migrations_create(installed, tmp_path):
    """The Alembic migrations ship inside the package: a fresh store is created from them."""
    result = run(installed, "collect", "--demo", "-q", cwd=tmp_path)
    # Stored, with the demo's collection errors (by design): exit 3, and said under -q.
    assert result.returncode == 3, result.stdout + result.stderr
    assert "collection error(s)" in result.stderr
    assert (tmp_path / "reports" / "evidence.db").is_file()
    upgraded = run(installed, "store", "upgrade", cwd=tmp_path)
    assert "schema revision 0004" in upgraded.stdout, upgraded.stdout + upgraded.stderr
