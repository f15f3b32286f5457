"""Secrets never reach a log line, in plain or Basic-auth form."""

import base64
import logging

from auditor.logsetup import configure_logging
from auditor.redaction import forget_secrets, redact, register_secret


def test_registered_secret_and_its_basic_auth_form_are_masked():
    forget_secrets()
    register_secret("s3cr3t-token-value", username="audit@example.com")
    basic = base64.b64encode(b"audit@example.com:s3cr3t-token-value").decode()
    text = f"token s3cr3t-token-value header Basic {basic}"
    assert redact(text) == "token *** header Basic ***"
    forget_secrets()


def test_log_records_are_masked_including_arguments(capfd):
    forget_secrets()
    register_secret("another-secret-1234")
    configure_logging()
    logging.getLogger("auditor.test").info("using %s for %s", "another-secret-1234", "acme")
    err = capfd.readouterr().err
    assert "another-secret-1234" not in err
    assert "using *** for acme" in err
    forget_secrets()
