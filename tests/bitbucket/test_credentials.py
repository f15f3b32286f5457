"""Credentials come from the environment or files, and say clearly what is missing."""

from __future__ import annotations

import pytest

from auditor.bitbucket.credentials import (
    AccessTokenCredential,
    ApiTokenCredential,
    OAuthClientCredentials,
    load_credential,
)
from auditor.bitbucket.errors import CredentialsError
from auditor.redaction import forget_secrets, redact


def test_nothing_configured_names_every_variable():
    with pytest.raises(CredentialsError) as caught:
        load_credential({})
    message = str(caught.value)
    for variable in (
        "BITBUCKET_EMAIL",
        "BITBUCKET_API_TOKEN",
        "BITBUCKET_ACCESS_TOKEN",
        "BITBUCKET_OAUTH_CLIENT_ID",
        "BITBUCKET_OAUTH_CLIENT_SECRET",
        "_FILE",
    ):
        assert variable in message
    assert caught.value.exit_code == 2


def test_api_token_needs_the_email():
    with pytest.raises(CredentialsError, match="BITBUCKET_EMAIL is not"):
        load_credential({"BITBUCKET_API_TOKEN": "tok-123456"})


def test_api_token_from_a_file_is_read_and_masked(tmp_path):
    forget_secrets()
    secret_file = tmp_path / "token"
    secret_file.write_text("file-token-123456\n")
    credential = load_credential(
        {"BITBUCKET_EMAIL": "a@example.com", "BITBUCKET_API_TOKEN_FILE": str(secret_file)}
    )
    assert isinstance(credential, ApiTokenCredential)
    assert credential.token == "file-token-123456"
    assert "file-token-123456" not in repr(credential)
    assert redact("x file-token-123456 y") == "x *** y"
    assert credential.identity == "API token of a@example.com"
    forget_secrets()


def test_a_token_file_with_a_byte_order_mark_is_read_without_it(tmp_path):
    """Notepad and PowerShell write UTF-8 with a BOM; it once failed every request with
    "'latin-1' codec can't encode character '\\ufeff'"."""
    secret_file = tmp_path / "token"
    secret_file.write_bytes(b"\xef\xbb\xbffile-token-123456\r\n")
    credential = load_credential({"BITBUCKET_ACCESS_TOKEN_FILE": str(secret_file)})
    assert credential.authorization() == "Bearer file-token-123456"
    forget_secrets()


def test_a_token_that_is_not_ascii_is_refused_without_showing_it(tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text("tök-123456-secret", encoding="utf-8")
    with pytest.raises(CredentialsError, match="not ASCII") as raised:
        load_credential({"BITBUCKET_ACCESS_TOKEN_FILE": str(secret_file)})
    assert "tök" not in str(raised.value)
    forget_secrets()


def test_unreadable_or_empty_secret_file_names_the_variable(tmp_path):
    with pytest.raises(CredentialsError, match=r"BITBUCKET_ACCESS_TOKEN_FILE=.*cannot read"):
        load_credential({"BITBUCKET_ACCESS_TOKEN_FILE": str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(CredentialsError, match="the file is empty"):
        load_credential({"BITBUCKET_ACCESS_TOKEN_FILE": str(empty)})


def test_variable_and_file_together_is_ambiguous(tmp_path):
    path = tmp_path / "t"
    path.write_text("abc-123456")
    with pytest.raises(CredentialsError, match="either BITBUCKET_ACCESS_TOKEN or"):
        load_credential(
            {"BITBUCKET_ACCESS_TOKEN": "abc-123456", "BITBUCKET_ACCESS_TOKEN_FILE": str(path)}
        )


def test_access_token_is_a_bearer_token():
    credential = load_credential({"BITBUCKET_ACCESS_TOKEN": "access-123456"})
    assert isinstance(credential, AccessTokenCredential)
    assert credential.authorization() == "Bearer access-123456"


def test_oauth_needs_both_halves_and_has_a_default_token_url():
    with pytest.raises(CredentialsError, match="both BITBUCKET_OAUTH_CLIENT_ID"):
        load_credential({"BITBUCKET_OAUTH_CLIENT_ID": "id"})
    credential = load_credential(
        {"BITBUCKET_OAUTH_CLIENT_ID": "id", "BITBUCKET_OAUTH_CLIENT_SECRET": "secret-123456"}
    )
    assert isinstance(credential, OAuthClientCredentials)
    assert credential.token_url == "https://bitbucket.org/site/oauth2/access_token"
