"""Provenance in run.json and on the report, the sign-off page, and signed manifests.

Runs go through the real entry point against the simulator over HTTP; verification is the real
``auditor verify``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shutil
import socket
from importlib import metadata
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import auditor
from auditor.cli import main
from auditor.provenance import masked_command_line
from auditor.redaction import forget_secrets, register_secret
from auditor.reporting.manifest import write_manifest
from auditor.signing import SIGNATURE_NAME, SigningKey


def _write_key(path: Path) -> Path:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_public(private: Path, path: Path) -> Path:
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    ours = _write_key(folder / "ours.pem")
    theirs = _write_key(folder / "theirs.pem")
    return {
        "ours": ours,
        "ours_pub": _write_public(ours, folder / "ours.pub"),
        "theirs": theirs,
        "theirs_pub": _write_public(theirs, folder / "theirs.pub"),
    }


@pytest.fixture(scope="module")
def signed_run(demo_simulator, keys, tmp_path_factory):
    out = tmp_path_factory.mktemp("signed") / "run"
    env = demo_simulator.credential_env("api_token")
    result = CliRunner().invoke(
        main,
        [
            *("run", "-w", "acme", "--period", "2026-Q3", "--as-of", "2026-10-01"),
            *("--format", "html,csv", "--fail-on", "none", "--out", str(out)),
            *("--sign-key", str(keys["ours"])),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return out, env


def _verify(*arguments: str):
    return CliRunner().invoke(main, ["verify", *arguments])


def test_run_json_records_operator_host_command_and_the_installed_code(signed_run, keys):
    out, env = signed_run
    provenance = json.loads((out / "run.json").read_text())["provenance"]
    assert provenance["operator"] == getpass.getuser()
    assert provenance["host"] == socket.gethostname()
    assert provenance["command_line"].startswith("auditor run -w acme --period 2026-Q3")
    assert f"--sign-key {keys['ours']}" in provenance["command_line"]
    assert env["BITBUCKET_API_TOKEN"] not in json.dumps(provenance)
    assert provenance["dependencies"]["pandas"] == metadata.version("pandas")
    assert provenance["python"]["version"].count(".") == 2
    assert provenance["backend"]["kind"] == "Bitbucket Cloud"
    assert "not published" in provenance["backend"]["server_version"]

    # The documented fingerprint, recomputed here the way sha256sum would list the files.
    package = Path(auditor.__file__).resolve().parent
    templates = Path(provenance["tool"]["installed_code"]["templates_path"])
    lines = sorted(
        [
            (f"auditor/{p.relative_to(package).as_posix()}", p)
            for p in package.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
        + [(f"templates/{p.relative_to(templates).as_posix()}", p) for p in templates.rglob("*")]
    )
    listing = "".join(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {name}\n"
        for name, path in lines
        if path.is_file()
    )
    code = provenance["tool"]["installed_code"]
    assert code["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert code["files"] == listing.count("\n")


def test_a_secret_never_reaches_the_recorded_command_line():
    register_secret("s3cr3t-token-value")
    try:
        line = masked_command_line(
            "auditor",
            ["run", "--api-token", "abc123", "--client-secret=xyz789", "-w", "s3cr3t-token-value"],
        )
    finally:
        forget_secrets()
    for secret in ("abc123", "xyz789", "s3cr3t"):
        assert secret not in line
    assert line == "auditor run --api-token '***' '--client-secret=***' -w '***'"


def test_the_cover_shows_provenance_and_the_signing_key(signed_run):
    out, _ = signed_run
    soup = BeautifulSoup((out / "report.html").read_text(), "html.parser")
    cover = {
        row.th.get_text(strip=True): row.td.get_text(" ", strip=True)
        for row in soup.select("#cover table.cover-facts tr")
    }
    fingerprint = SigningKey.from_file(
        Path(json.loads((out / "run.json").read_text())["provenance"]["command_line"].split()[-1])
    ).fingerprint
    assert cover["Run by"] == f"{getpass.getuser()} on host {socket.gethostname()}"
    assert cover["Command line"].startswith("auditor run -w acme")
    assert cover["Installed code"].startswith("SHA-256 ")
    assert fingerprint in cover["Manifest signature"]
    assert cover["Backend"].startswith("Bitbucket Cloud")


def test_the_sign_off_page_states_scope_basis_and_what_was_not_tested(signed_run):
    out, _ = signed_run
    soup = BeautifulSoup((out / "report.html").read_text(), "html.parser")
    signoff = soup.select_one("#signoff")
    facts = {
        row.th.get_text(strip=True): row.td.get_text(" ", strip=True)
        for row in signoff.select("table.signoff-facts tr")
    }
    assert facts["Period"].startswith("2026-Q3: 2026-07-01 to 2026-09-30")
    assert "One observation on" in facts["Observation basis"]
    assert "does not show the state during the period" in facts["Observation basis"]
    run = json.loads((out / "run.json").read_text())
    for control in ("AC-9", "AC-10"):  # MANUAL in the demo
        assert control in facts["Not tested"]
    # AC-6 is automated; only the two members whose setting Bitbucket hides are untested.
    assert "AC-6 Members use two-step verification: MANUAL for 2 resources" in facts["Not tested"]
    assert f"{run['counts']['ERROR']} result rows could not be assessed" in facts["Not tested"]
    roles = [
        row.th.get_text(strip=True) for row in signoff.select("table.signature-lines tbody tr")
    ]
    assert roles == ["Prepared by", "Reviewed by"]


def test_a_signed_folder_verifies_against_its_trusted_key(signed_run, keys):
    out, _ = signed_run
    assert (out / SIGNATURE_NAME).is_file()
    fingerprint = SigningKey.from_file(keys["ours"]).fingerprint
    result = _verify(str(out), "--trusted-key", str(keys["ours_pub"]))
    assert result.exit_code == 0, result.output
    assert f"manifest signed by {fingerprint}" in result.output
    alone = _verify(str(out))
    assert alone.exit_code == 0, alone.output
    assert "give --trusted-key" in alone.output


def _resigned_copy(out: Path, tmp_path: Path, key: Path) -> Path:
    """The folder with a file changed, its manifest regenerated and re-signed with ``key``."""
    copy = tmp_path / "tampered"
    shutil.copytree(out, copy)
    findings = copy / "findings.csv"
    findings.write_text(findings.read_text().replace("FAIL", "PASS"))
    (copy / SIGNATURE_NAME).unlink()
    write_manifest(copy, json.loads((copy / "run.json").read_text())["run_id"])
    SigningKey.from_file(key).sign_manifest(copy)
    return copy


def test_verify_rejects_a_manifest_re_signed_with_another_key(signed_run, keys, tmp_path):
    out, _ = signed_run
    tampered = _resigned_copy(out, tmp_path, keys["theirs"])
    theirs = SigningKey.from_file(keys["theirs"]).fingerprint

    trusted = _verify(str(tampered), "--trusted-key", str(keys["ours_pub"]))
    assert trusted.exit_code == 5, trusted.output
    assert f"signed by an unknown key {theirs}" in trusted.output

    untrusted = _verify(str(tampered))
    assert untrusted.exit_code == 5, untrusted.output
    assert f"signed by an unknown key {theirs}" in untrusted.output


def test_verify_rejects_a_manifest_changed_after_signing(signed_run, keys, tmp_path):
    out, _ = signed_run
    copy = tmp_path / "edited"
    shutil.copytree(out, copy)
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"version": 1', '"version":  1'))
    result = _verify(str(copy), "--trusted-key", str(keys["ours_pub"]))
    assert result.exit_code == 5, result.output
    assert "changed after it was signed" in result.output


def test_a_stripped_signature_is_reported(signed_run, tmp_path):
    out, _ = signed_run
    copy = tmp_path / "stripped"
    shutil.copytree(out, copy)
    (copy / SIGNATURE_NAME).unlink()
    result = _verify(str(copy))
    assert result.exit_code == 5, result.output
    assert f"{SIGNATURE_NAME} is missing" in result.output


def test_a_bad_signing_key_stops_the_run_before_any_request(make_simulator, tmp_path):
    simulator = make_simulator()
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    result = CliRunner().invoke(
        main,
        ["run", "-w", "acme", "--period", "2026-Q3", "--sign-key", str(not_a_key)],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 2, result.output
    assert f"{not_a_key}: not an Ed25519 private key" in result.output
    assert simulator.stats()["total"] == 0
