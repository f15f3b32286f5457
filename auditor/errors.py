"""The tool's error hierarchy and the exit codes the command line turns them into.

Exit codes are part of the interface for cron and CI jobs (README, "Exit codes"):

====  ==========================================================================
0     completed; no finding matched ``--fail-on``
1     completed with FAIL findings (and ``--fail-on`` includes ``fail``)
2     usage or configuration error: bad option, invalid catalog/exceptions/config file
3     completed, but evidence is incomplete: ERROR rows (and ``--fail-on`` includes ``error``)
4     the run itself failed: authentication, network, Bitbucket unusable, internal error
5     ``auditor verify`` found a missing, added or altered file
6     ``auditor collect`` stored its observations, but a notification could not be delivered
130   interrupted by Ctrl-C (SIGINT); nothing was written
143   stopped by SIGTERM; nothing was written
====  ==========================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_RUN_FAILED = 4
EXIT_VERIFY_FAILED = 5
EXIT_NOTIFY_FAILED = 6
# 128 + the signal number, as a shell reports a process a signal ended.
EXIT_INTERRUPTED = 130  # SIGINT
EXIT_TERMINATED = 143  # SIGTERM


class AuditorError(Exception):
    """Base of every error the command line reports as a message instead of a traceback."""

    exit_code = EXIT_RUN_FAILED


class ConfigError(AuditorError):
    """A file or option the user gave is invalid. The message names the file, line and object."""

    exit_code = EXIT_USAGE


class RunFailed(AuditorError):
    """The run could not complete (no usable credential, Bitbucket unreachable, …)."""

    exit_code = EXIT_RUN_FAILED


class VerificationFailed(AuditorError):
    """An evidence folder or PDF does not match its manifest."""

    exit_code = EXIT_VERIFY_FAILED


class RunInterrupted(AuditorError):
    """The user stopped the run (Ctrl-C or SIGTERM); the message says what was interrupted."""

    def __init__(self, message: str, *, signal_name: str = "SIGINT") -> None:
        super().__init__(message)
        self.signal_name = signal_name
        self.exit_code = EXIT_TERMINATED if signal_name == "SIGTERM" else EXIT_INTERRUPTED
