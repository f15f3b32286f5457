"""Ed25519 signatures over a run folder's ``manifest.json``.

The manifest lists the SHA-256 of every other file, so a signature over its exact bytes vouches
for the whole folder; anyone can recompute hashes, only the key holder can sign them. The
signature goes beside the manifest as ``manifest.sig.json``::

    {"format": "bitbucket-auditor/manifest-signature", "version": 1, "algorithm": "ed25519",
     "signed_file": "manifest.json", "manifest_sha256": "...",
     "public_key": "ssh-ed25519 AAAA...", "fingerprint": "SHA256:...", "signature": "<base64>"}

Key fingerprints are OpenSSH's (``ssh-keygen -lf key.pub`` prints the same), so operators can
compare them with tools they already have. Keys are read from files: a private key as PKCS#8 PEM
(``openssl genpkey -algorithm ed25519``) or OpenSSH (``ssh-keygen -t ed25519``), unencrypted; a
trusted public key as PEM, an OpenSSH ``.pub`` line, or the private key file itself.

Sigstore keyless signing needs its transparency log and certificate authority on the network;
this tool's runs must work offline, so it is not offered.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor.errors import ConfigError

SIGNATURE_NAME = "manifest.sig.json"
SIGNATURE_FORMAT = "bitbucket-auditor/manifest-signature"
ALGORITHM = "ed25519"


def _openssh_line(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """OpenSSH's SHA256 fingerprint of ``public_key`` (``SHA256:<base64, unpadded>``)."""
    blob = base64.b64decode(_openssh_line(public_key).split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the {what}: {error.strerror}") from error


def _private_key(data: bytes, path: Path) -> Ed25519PrivateKey:
    loaders = (serialization.load_pem_private_key, serialization.load_ssh_private_key)
    for load in loaders:
        try:
            key = load(data, password=None)
        except TypeError as error:  # encrypted: a password would be needed
            raise ConfigError(
                f"{path}: the signing key is encrypted; give an unencrypted Ed25519 key file "
                "(keep it in a secret mount readable only by the job)"
            ) from error
        except (ValueError, UnsupportedAlgorithm):
            continue
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"{path}: the signing key is {type(key).__name__.removeprefix('_')}, not Ed25519 "
                "(create one with: openssl genpkey -algorithm ed25519 -out key.pem)"
            )
        return key
    raise ConfigError(
        f"{path}: not an Ed25519 private key in PEM (PKCS#8) or OpenSSH format "
        "(create one with: openssl genpkey -algorithm ed25519 -out key.pem)"
    )


@dataclass(frozen=True)
class SigningKey:
    """A private key that signs manifests, and where it came from."""

    private_key: Ed25519PrivateKey
    path: Path

    @classmethod
    def from_file(cls, path: Path) -> SigningKey:
        """Load the key, or ``ConfigError`` naming the file (checked before any request)."""
        return cls(_private_key(_read(path, "signing key"), Path(path)), Path(path))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def describe(self) -> dict[str, Any]:
        """What ``run.json`` records about the signature (never the private key)."""
        return {
            "algorithm": ALGORITHM,
            "fingerprint": self.fingerprint,
            "public_key": _openssh_line(self.public_key),
            "signature_file": SIGNATURE_NAME,
            "signed_file": "manifest.json",
        }

    def sign_manifest(self, folder: Path, manifest_name: str = "manifest.json") -> Path:
        """Sign ``folder/manifest.json`` as it is on disk; write and return the signature file."""
        data = (folder / manifest_name).read_bytes()
        document = {
            "format": SIGNATURE_FORMAT,
            "version": 1,
            "algorithm": ALGORITHM,
            "signed_file": manifest_name,
            "manifest_sha256": hashlib.sha256(data).hexdigest(),
            "public_key": _openssh_line(self.public_key),
            "fingerprint": self.fingerprint,
            "signature": base64.b64encode(self.private_key.sign(data)).decode("ascii"),
        }
        target = folder / SIGNATURE_NAME
        target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return target


def load_trusted_key(path: Path) -> Ed25519PublicKey:
    """A public key to check signatures against: PEM, OpenSSH ``.pub``, or a private key file."""
    data = _read(path, "trusted key")
    for load in (serialization.load_pem_public_key, serialization.load_ssh_public_key):
        try:
            key = load(data)
        except (ValueError, UnsupportedAlgorithm):
            continue
        if isinstance(key, Ed25519PublicKey):
            return key
        raise ConfigError(f"{path}: the trusted key is not an Ed25519 public key")
    return _private_key(data, Path(path)).public_key()


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking ``manifest.sig.json``: ``problem`` is None when it holds."""

    signed: bool
    fingerprint: str | None
    problem: str | None
    note: str | None


def check_signature(
    folder: Path,
    *,
    trusted_key: Ed25519PublicKey | None,
    recorded: dict[str, Any] | None,
    manifest_name: str = "manifest.json",
) -> SignatureCheck:
    """Check the folder's manifest signature.

    ``recorded`` is the ``signing`` entry of the folder's ``run.json`` (the key the run said it
    would sign with). Without ``trusted_key`` the signature must still verify and its key must be
    the recorded one; a different key is "signed by an unknown key". With ``trusted_key`` the
    signing key must be that one.
    """
    path = folder / SIGNATURE_NAME
    if not path.is_file():
        if trusted_key is not None:
            return SignatureCheck(
                False, None, f"{manifest_name} is not signed, but a trusted key was given", None
            )
        if recorded:
            return SignatureCheck(
                False,
                None,
                f"run.json says the manifest is signed by {recorded.get('fingerprint')}, "
                f"but {SIGNATURE_NAME} is missing",
                None,
            )
        return SignatureCheck(False, None, None, None)
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != SIGNATURE_FORMAT or document.get("algorithm") != ALGORITHM:
            raise ValueError("not an ed25519 manifest signature document")
        public_key = serialization.load_ssh_public_key(document["public_key"].encode("ascii"))
        if not isinstance(public_key, Ed25519PublicKey):
            raise ValueError("the public key is not Ed25519")
        signature = base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError, UnsupportedAlgorithm) as error:
        return SignatureCheck(True, None, f"{SIGNATURE_NAME} cannot be read: {error}", None)
    signer = fingerprint(public_key)
    try:
        public_key.verify(signature, (folder / manifest_name).read_bytes())
    except InvalidSignature:
        return SignatureCheck(
            True,
            signer,
            f"the signature by {signer} does not match {manifest_name}: the manifest was "
            "changed after it was signed",
            None,
        )
    except OSError as error:
        return SignatureCheck(True, signer, f"cannot read {manifest_name}: {error}", None)
    if trusted_key is not None:
        trusted = fingerprint(trusted_key)
        if signer != trusted:
            return SignatureCheck(
                True,
                signer,
                f"signed by an unknown key {signer}, not by the trusted key {trusted}",
                None,
            )
        return SignatureCheck(True, signer, None, f"signed by the trusted key {signer}")
    expected = (recorded or {}).get("fingerprint")
    if expected != signer:
        said = f"run.json records {expected}" if expected else "run.json records no signing key"
        return SignatureCheck(True, signer, f"signed by an unknown key {signer} ({said})", None)
    return SignatureCheck(
        True,
        signer,
        None,
        f"signed by {signer}, the key run.json records; give --trusted-key to check that it "
        "is your key",
    )
