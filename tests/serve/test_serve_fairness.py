"""Fairness and bounded work: per-identity limits (429 with Retry-After), a deadline that covers
the waits and cancels an evaluation past it, a memory-bounded evaluation cache, and the probe's
scenario: one identity flooding expensive queries leaves another's one-repository answers fast."""

from __future__ import annotations

import statistics
import threading
import time

import anyio
import pytest
from slow_evaluation import slow_child

from auditor.controls.catalog import load_catalog
from auditor.serve.evaluation import Evaluations
from auditor.serve.evidence import EvidenceReader
from auditor.serve.fairness import Fairness, FairnessLimits, TooMany
from auditor.serve.limits import Deadline, Limits
from auditor.store import open_store

PERIOD = """query Period($since: DateTime!) { repository(fullName: "acme/payments-api") {
  controlsOverPeriod(since: $since, until: "2026-08-22T00:00:00+00:00") { controlId status } } }"""
ONE = """{ repository(fullName: "acme/payments-api") {
  fullName mainBranch isPrivate branchRestrictions { kind pattern value }
  controls { controlId status } } }"""


def _distinct_period(n: int) -> dict:
    return {"since": f"2026-08-{1 + n % 13:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}+00:00"}


def test_an_identity_over_its_rate_gets_429_with_retry_after(serve_asgi, issuer):
    service = serve_asgi(fairness=FairnessLimits(concurrent=4, rate=0.5, burst=2))
    token = issuer.token(sub="eager")
    statuses = [service.post("{ workspaces { slug } }", token).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = service.post("{ workspaces { slug } }", token)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "too many requests" in refused.json()["errors"][0]["message"]
    # Another identity is not affected.
    assert service.post("{ workspaces { slug } }", issuer.token(sub="other")).status_code == 200
    lines = service.logs.audit()
    assert [line["status"] for line in lines] == [200, 200, 429, 429, 200]
    assert lines[2]["subject"] == "eager"
    assert lines[2]["refusal"].startswith("too many requests: over this identity's rate")


def test_an_identity_may_have_so_many_requests_in_flight():
    clock = [0.0]
    fairness = Fairness(FairnessLimits(concurrent=2, rate=100, burst=100), lambda: clock[0])
    with fairness.admitted("a"), fairness.admitted("a"):
        with pytest.raises(TooMany) as over:
            fairness._admit("a")
        assert over.value.retry_after == 1
        with fairness.admitted("b"):
            pass
    with fairness.admitted("a"):  # released again
        pass


def test_the_evaluation_cache_keeps_within_its_memory_bound():
    evaluations = Evaluations("sqlite://", load_catalog(None), cache_bytes=1000)
    for n in range(10):
        evaluations.keep(n, f"result {n}", 300)
    assert evaluations.cached_bytes <= 1000
    assert [n for n in range(10) if evaluations.cached(n) is not None] == [7, 8, 9]
    evaluations.keep("huge", "x", 5000)  # larger than the bound: not kept, nothing evicted
    assert evaluations.cached("huge") is None
    assert evaluations.cached(9) is not None


@pytest.fixture
def slow_reader(demo_store):
    store = open_store(demo_store)
    evaluations = Evaluations(
        store.url.render_as_string(hide_password=False), load_catalog(None), child=slow_child
    )
    reader = EvidenceReader(store, evaluations.catalog, evaluations=evaluations)
    yield reader
    reader.close()
    store.close()


def test_an_evaluation_past_the_deadline_is_cancelled_and_its_process_stopped(
    serve_asgi, issuer, slow_reader
):
    service = serve_asgi(reader=slow_reader, limits=Limits(seconds=1.0))
    evaluations = slow_reader.evaluations
    started = time.monotonic()
    answer = service.post(PERIOD, issuer.token(), variables=_distinct_period(1)).json()
    elapsed = time.monotonic() - started
    assert [e["extensions"].get("limit") for e in answer["errors"]] == ["time_limit"]
    assert elapsed < 3.0, f"answered after {elapsed:.1f} s: the evaluation was waited for"
    assert evaluations.stats.cancelled == 1
    assert not evaluations._idle  # the child doing the job was stopped, not kept busy


def test_callers_of_one_evaluation_share_it_and_each_waits_within_its_deadline(slow_reader):
    evaluations = slow_reader.evaluations
    (entry,) = slow_reader.entries()[-1:]
    answers: list[object] = []

    def ask(seconds: float) -> None:
        try:
            answers.append(evaluations.observation(entry.observation_id, Deadline(seconds)))
        except Exception as error:
            answers.append(error)

    owner = threading.Thread(target=ask, args=(60.0,))
    owner.start()
    time.sleep(0.5)
    started = time.monotonic()
    ask(0.5)  # an impatient caller of the same evaluation: gives up at its own deadline
    assert time.monotonic() - started < 2.0
    assert "time limit" in str(answers[-1])
    ask(60.0)  # a patient one shares the owner's job
    owner.join()
    assert evaluations.stats.jobs == 1
    assert evaluations.stats.shared == 1
    found = [answer for answer in answers if not isinstance(answer, Exception)]
    assert len(found) == 2
    assert found[0] is found[1]


def test_one_identity_flooding_expensive_queries_leaves_anothers_answers_fast(serve, issuer):
    """The probe's scenario: eight controlsOverPeriod queries with distinct periods kept in flight
    by one identity; another identity's one-repository p95 stays under 200 ms. Only the
    victim's requests made while flood requests are in flight count, and the test insists the
    flood was really served (evaluations ran) meanwhile, so it cannot pass by the flood being
    refused or over."""
    service = serve()
    flooder, victim = issuer.token(sub="flooder"), issuer.token(sub="victim")
    assert "errors" not in service.query(ONE, victim)  # warm: the latest observation's index
    stop = threading.Event()
    in_flight = [0]
    outcomes: list[int] = []
    lock = threading.Lock()

    def flood(worker: int) -> None:
        n = worker * 10_000
        while not stop.is_set():
            n += 1
            with lock:
                in_flight[0] += 1
            try:
                response = service.post(PERIOD, flooder, variables=_distinct_period(n))
            finally:
                with lock:
                    in_flight[0] -= 1
            with lock:
                outcomes.append(response.status_code)
            if response.status_code == 429:  # as the probe's client did: wait as told, again
                stop.wait(float(response.headers["Retry-After"]))

    threads = [threading.Thread(target=flood, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    try:
        time.sleep(1.0)
        evaluated_before = service.settings.reader.evaluations.stats.jobs
        deadline = time.monotonic() + 60
        while len(latencies) < 60 and time.monotonic() < deadline:
            with lock:
                flooding = in_flight[0] > 0
            started = time.perf_counter()
            answer = service.query(ONE, victim)
            elapsed = time.perf_counter() - started
            assert "errors" not in answer, answer
            if flooding:
                latencies.append(elapsed)
            time.sleep(0.06)  # within the victim's own rate limit (20 a second)
        evaluated = service.settings.reader.evaluations.stats.jobs - evaluated_before
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert len(latencies) >= 50, "the flood was not in progress while the victim asked"
    assert evaluated >= 1, "no evaluation of the flood ran while the victim asked"
    assert 429 in outcomes  # over its concurrency: refused at once
    assert 200 in outcomes  # within it: served
    p95 = statistics.quantiles(latencies, n=20)[-1]
    assert p95 < 0.2, f"one-repository p95 {p95 * 1000:.0f} ms under the flood"


def test_the_deadline_covers_the_wait_for_a_worker(serve_asgi, issuer):
    service = serve_asgi(worker_threads=1, limits=Limits(seconds=0.5))
    core = service.app.app.state.service  # the QueryService behind the HTTP layer
    assert service.post("{ workspaces { slug } }", issuer.token()).status_code == 200
    busy = threading.Event()

    def occupy() -> None:
        busy.set()
        time.sleep(3)

    async def hold_the_only_worker() -> None:
        await anyio.to_thread.run_sync(occupy, limiter=core._workers)

    service.portal.start_task_soon(hold_the_only_worker)
    assert busy.wait(5)
    started = time.monotonic()
    answer = service.post("{ workspaces { slug } }", issuer.token(sub="other")).json()
    assert time.monotonic() - started < 2.0
    assert [e["extensions"]["limit"] for e in answer["errors"]] == ["time_limit"]
