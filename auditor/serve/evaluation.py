"""Control evaluations for the service: in child processes, cached, bounded by the caller's
deadline.

Evaluating the controls of an observation, or of a period (every observation in it, through
``evaluate_period``, the period reports' code), takes seconds on a large workspace. Run in a
request's thread it would hold the GIL against every other caller and could not be stopped: the
probe saw eight period queries of one identity make another's one-repository answer take 20 s.
So evaluations run in ``processes`` child processes of their own (each with its own store
connection), one job at a time each:

- a caller waits for a free child, and for the answer, only as long as its ``Deadline`` allows;
  past it the child doing its job is killed (its work cancelled, its memory returned) and a new
  one started, and the caller gets the ``time_limit`` error;
- two callers asking for the same evaluation share one job (the first runs it; the others wait
  for it within their own deadlines, and take it over if it is abandoned);
- results are cached by what they are computed from, (observation ids, period), within
  ``cache_bytes`` (least recently used first out; a result's size is its pickled size).
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from auditor.controls.catalog import Catalog
from auditor.serve.limits import Deadline

log = logging.getLogger("auditor.serve")

# A process started by "spawn" imports only what it needs: never a copy of the service's
# threads, locks and connections (which "fork" would make).
_CONTEXT = multiprocessing.get_context("spawn")


class EvaluationFailed(Exception):
    """The evaluation raised; the message says why (for the caller)."""


@dataclass
class EvaluationStats:
    jobs: int = 0
    shared: int = 0  # callers served by another caller's job
    cached: int = 0
    cancelled: int = 0  # children killed at a deadline
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


# -- the child ----------------------------------------------------------------------------


def child_main(connection: Connection, store_url: str, catalog: Catalog) -> None:
    """A child's loop: one job at a time from ``connection``, answered pickled."""
    from auditor.controls.engine import evaluate
    from auditor.controls.period import evaluate_period
    from auditor.period import Period
    from auditor.serve.findings import ControlFindings
    from auditor.store import open_store

    store = open_store(store_url, read_only=True)
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        try:
            if job[0] == "observation":
                observation = store.observation(job[1])
                info = observation.evidence.info
                result = evaluate(
                    observation.evidence,
                    catalog,
                    evaluated_on=observation.observed_at.date(),
                    period=Period(info.period_label, info.period_since, info.period_until),
                )
            else:
                _, chosen, since, until = job
                result = evaluate_period(
                    store.observations_by_reference(list(chosen)),
                    catalog,
                    period=Period(f"{since:%Y-%m-%d}_{until:%Y-%m-%d}", since, until),
                    evaluated_on=(until - timedelta(microseconds=1)).date(),
                )
            answer: tuple[str, Any] = ("ok", ControlFindings.of(result))
        except Exception as error:
            answer = ("error", f"{type(error).__name__}: {error}")
        connection.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(self, target: Callable[..., None], store_url: str, catalog: Catalog) -> None:
        self.connection, theirs = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=target, args=(theirs, store_url, catalog), daemon=True, name="auditor-eval"
        )
        self.process.start()
        theirs.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()


# -- the parent ---------------------------------------------------------------------------


@dataclass
class _Job:
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None
    abandoned: bool = False


class Evaluations:
    """Evaluations in child processes, cached within a memory bound (module docstring)."""

    def __init__(
        self,
        store_url: str,
        catalog: Catalog,
        *,
        processes: int = 1,
        cache_bytes: int = 256 << 20,
        monotonic: Callable[[], float] = time.monotonic,
        child: Callable[[Connection, str, Catalog], None] = child_main,
    ) -> None:
        self.child_main = child  # the child's loop (importable by name: the child imports it)
        self.store_url = store_url
        self.catalog = catalog
        self.cache_bytes = cache_bytes
        self.monotonic = monotonic
        self.stats = EvaluationStats()
        self._idle: list[_Child] = []
        self._free = threading.Semaphore(processes)
        self._cache: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._cached_bytes = 0
        self._jobs: dict[Hashable, _Job] = {}
        self._lock = threading.Lock()

    # -- the cache ------------------------------------------------------------------------

    def cached(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                return None
            self._cache.move_to_end(key)
            return found[0]

    def keep(self, key: Hashable, result: Any, size: int) -> None:
        """Cache ``result`` (``size`` bytes); the least recently used go past the bound. A
        result larger than the whole bound is not kept."""
        with self._lock:
            if key in self._cache:
                self._cached_bytes -= self._cache.pop(key)[1]
            if size > self.cache_bytes:
                return
            self._cache[key] = (result, size)
            self._cached_bytes += size
            while self._cached_bytes > self.cache_bytes:
                _, (_, dropped) = self._cache.popitem(last=False)
                self._cached_bytes -= dropped

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    # -- evaluations ----------------------------------------------------------------------

    def observation(self, observation_id: str, deadline: Deadline) -> Any:
        """The ``ControlFindings`` of one observation."""
        return self._evaluate(((observation_id,), None), ("observation", observation_id), deadline)

    def period(
        self, chosen: tuple[str, ...], since: datetime, until: datetime, deadline: Deadline
    ) -> Any:
        """The ``ControlFindings`` of the period [since, until) over the observations
        ``chosen``."""
        return self._evaluate((chosen, (since, until)), ("period", chosen, since, until), deadline)

    def _evaluate(self, key: Hashable, job: tuple[Any, ...], deadline: Deadline) -> Any:
        while True:
            found = self.cached(key)
            if found is not None:
                with self.stats.lock:
                    self.stats.cached += 1
                return found
            with self._lock:
                running = self._jobs.get(key)
                owner = running is None
                if owner:
                    running = self._jobs[key] = _Job()
            assert running is not None
            if owner:
                try:
                    self._run(key, job, running, deadline)
                finally:
                    with self._lock:
                        self._jobs.pop(key, None)
                    running.done.set()
            elif not running.done.wait(deadline.remaining()):
                raise deadline.exceeded()
            else:
                with self.stats.lock:
                    self.stats.shared += 1
            if running.error is not None:
                raise EvaluationFailed(running.error)
            if not running.abandoned:
                return running.result
            deadline.check()  # its owner ran out of time; take it over if there is any left

    def _run(self, key: Hashable, job: tuple[Any, ...], running: _Job, deadline: Deadline) -> None:
        if not self._free.acquire(timeout=deadline.remaining()):
            running.abandoned = True
            raise deadline.exceeded()
        child = None
        try:
            child = self._child()
            with self.stats.lock:
                self.stats.jobs += 1
            child.connection.send(job)
            if not child.connection.poll(deadline.remaining()):
                running.abandoned = True
                with self.stats.lock:
                    self.stats.cancelled += 1
                log.info("an evaluation passed its deadline: its process is stopped")
                child.kill()
                child = None
                raise deadline.exceeded()
            data = child.connection.recv_bytes()
        except (EOFError, OSError) as error:  # the child died (killed from outside, OOM)
            if child is not None:
                child.kill()
                child = None
            running.error = f"the evaluation process ended: {error or 'killed'}"
            return
        finally:
            if child is not None:
                with self._lock:
                    self._idle.append(child)
            self._free.release()
        status, value = pickle.loads(data)  # noqa: S301 (our own child's answer)
        if status == "error":
            running.error = value
            return
        running.result = value
        self.keep(key, value, len(data))

    def _child(self) -> _Child:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Child(self.child_main, self.store_url, self.catalog)

    def start(self) -> None:
        """Start one child now, so the first evaluation does not wait for its imports."""
        with self._lock:
            if self._idle:
                return
            self._idle.append(_Child(self.child_main, self.store_url, self.catalog))

    def close(self) -> None:
        with self._lock:
            children, self._idle = self._idle, []
        for child in children:
            child.kill()
