"""Ctrl-C and SIGTERM: stop within a moment, say what was interrupted, exit 130 or 143.

During the collection, a signal only sets the run's stop event (``Stopper``): every worker
waiting for the budget or a retry wakes at once, and the collector's event loop, which polls the
event, raises ``RunInterrupted`` with the line to show. Outside the event loop (validation,
evaluation, rendering), the handler raises ``SignalReceived`` at once — a ``BaseException``, like
``KeyboardInterrupt``, so that no ``except Exception`` on the way (logging's own, a library's)
swallows it; the run folder is written into a hidden partial folder that is removed on any
exception, so an interrupted write leaves nothing that looks complete. A second signal ends the
process immediately.

The process then ends with ``os._exit``: a worker thread blocked in a socket read cannot be woken,
and the interpreter would otherwise wait for it (up to the read timeout) before exiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from auditor.bitbucket.pacing import Stopper
from auditor.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, RunInterrupted

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalReceived(BaseException):
    """Ctrl-C or SIGTERM outside the collection; carries the ``RunInterrupted`` to report."""

    def __init__(self, interrupted: RunInterrupted) -> None:
        super().__init__(str(interrupted))
        self.interrupted = interrupted


def exit_code_for(signal_name: str) -> int:
    return EXIT_TERMINATED if signal_name == "SIGTERM" else EXIT_INTERRUPTED


@contextlib.contextmanager
def stop_on_signals(
    stopper: Stopper,
    next_step: Callable[[], str] | None = None,
    *,
    unwritten: str | Callable[[], str] = "no run folder was written",
) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM stop ``stopper`` (and the run) instead of raising
    ``KeyboardInterrupt`` wherever the main thread happens to be. ``next_step`` says how to go
    on (resume from the response journal, or start over); ``unwritten`` what was not written."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only delivered to the main thread
        return

    def handle(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if stopper.stopped:  # the second signal: the user insists
            exit_now(exit_code_for(name))
        stopper.stop(name)
        if not stopper.cooperative:
            raise SignalReceived(
                RunInterrupted(
                    f"interrupted by {name}; "
                    + (unwritten() if callable(unwritten) else unwritten)
                    + "; "
                    + (next_step() if next_step else "run the same command again to start over"),
                    signal_name=name,
                )
            )

    previous = {number: signal.signal(number, handle) for number in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def exit_now(code: int) -> None:
    """Flush what was said and end the process without waiting for worker threads.

    Only when a worker thread is still alive (one blocked in a request): otherwise a normal exit
    is as quick, and keeps in-process callers (tests driving the command line) alive."""
    if not any(
        thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
        for thread in threading.enumerate()
    ):
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
