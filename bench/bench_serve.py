"""Benchmark: `auditor serve` over a store of 1,000 repositories, 50 concurrent clients.

Builds the store (one collection of the synthetic simulator's workspace, as bench_store does)
unless ``--store`` names one, runs a local OIDC issuer on loopback (RSA key made here), starts
the service in a child process (uvicorn, one process, as `auditor serve` runs) and sends, from
50 client threads each with its own token, a fixed number of single-repository queries and then
of workspace-wide queries. Every request carries a bearer token the service verifies (RS256).

Prints: p50/p95 latency of the single-repository query (target p95 < 200 ms) and of the
workspace-wide query, throughput of each, and the share of the service's CPU time spent
verifying tokens (thread CPU time inside the verifier / the service process's CPU time).

    python bench/bench_serve.py                        # 1000 repositories, SQLite in a temp dir
    python bench/bench_serve.py --repos 200 --single 500 --wide 20
    python bench/bench_serve.py --store reports/evidence.db --workspace acme
    python bench/bench_serve.py --workers 2             # `auditor serve --workers 2`

Then one identity keeps ``--flood`` expensive queries in flight (``controlsOverPeriod`` with a new
period each time, so nothing is cached) while another asks single-repository questions one after
another: their p50/p95 (target p95 < 200 ms) and what the flooder got (200s, 429s, time limits).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
AUDIENCE = "auditor-bench"
OBSERVED_AT = datetime(2026, 8, 14, 6, 0, tzinfo=UTC)

SINGLE = """query One($name: String!) {
  repository(fullName: $name) {
    fullName mainBranch isPrivate
    branchRestrictions { kind pattern value }
    pullRequests(toDefaultBranch: true) {
      id mergedOn participants { approved } sourceBuilds { state }
    }
    controls { controlId status }
  }
}"""
# The flooding identity's expensive query: a period evaluation (every observation of the period
# evaluated) per distinct period, so nothing it asks is ever cached.
FLOOD = """query Flood($name: String!, $since: DateTime!, $until: DateTime!) {
  repository(fullName: $name) {
    controlsOverPeriod(since: $since, until: $until) { controlId status }
  }
}"""
WIDE = """query All($workspace: String!) {
  workspace(slug: $workspace) {
    repositories { fullName isPrivate mainBranch branchRestrictions { kind pattern } }
  }
}"""
# Each client sends as fast as it is answered; the per-identity rate limit is not what is measured
# (the flooder is held by its concurrency limit, as `auditor serve` sets it by default).
IDENTITY_RATE = 1000
POLICY = """grants:
  - name: bench
    when: {groups: bench}
    workspaces: ["*"]
    datasets: [configuration, changes, controls, access]
"""


def build_store(url: str, repos: int, prs: int, seed: int) -> str:
    """Collect the synthetic workspace once into the store; returns the workspace slug."""
    from bench_collect import SimulatorProcess

    from auditor.bitbucket.client import BitbucketClient, ClientSettings
    from auditor.bitbucket.credentials import load_credential
    from auditor.collector import collect
    from auditor.simulator import synthetic_dataset
    from auditor.store import open_store
    from auditor.store.collecting import pull_request_window

    dataset = synthetic_dataset(repos=repos, prs_per_repo=prs, seed=seed)
    workspace = dataset.workspaces[0]
    simulator = SimulatorProcess(repos, prs, seed, 0)
    try:
        env = {"BITBUCKET_API_URL": f"{simulator.root}/2.0", **dataset.credential_env("api_token")}
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        with client:
            collection = collect(
                client, [workspace], pull_request_window(OBSERVED_AT), now=lambda: OBSERVED_AT
            )
    finally:
        simulator.stop()
    with open_store(url) as store:
        store.append(collection.raw, collection.evidence.info)
    return workspace


class Issuer:
    """Discovery and JWKS on loopback; mints RS256 tokens."""

    def __init__(self) -> None:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = {"keys": [{**jwk, "kid": "bench", "use": "sig", "alg": "RS256"}]}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = (
                    {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                    if self.path == "/.well-known/openid-configuration"
                    else jwks
                )
                data = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, subject: str) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + 3600,
            "groups": ["bench"],
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "bench"})


def serve_only(store: str, issuer: str, policy: str, port: int) -> None:
    """Child process: the service, as `auditor serve` builds it; prints its CPU figures at exit."""
    import logging

    import uvicorn

    from auditor.controls.catalog import load_catalog
    from auditor.serve.app import ServeSettings, create_app
    from auditor.serve.auth import oidc_verifier
    from auditor.serve.evidence import EvidenceReader
    from auditor.serve.fairness import FairnessLimits
    from auditor.serve.policy import load_policy
    from auditor.store import open_store

    # The audit trail's durations: the time inside the service, without the clients' queueing.
    durations: dict[str, list[float]] = {}

    class Durations(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            line = json.loads(record.getMessage())
            if line.get("operation"):
                durations.setdefault(line["operation"], []).append(line["duration_ms"])

    audit = logging.getLogger("auditor.serve.audit")
    audit.addHandler(Durations())
    audit.setLevel(logging.INFO)
    audit.propagate = False
    reader = EvidenceReader(open_store(store), load_catalog(None))
    started = time.perf_counter()
    reader.warm()  # as `auditor serve` does before listening
    warm = time.perf_counter() - started
    verifier = oidc_verifier(issuer, AUDIENCE)
    settings = ServeSettings(
        reader=reader,
        verifier=verifier,
        policy=load_policy(Path(policy)),
        fairness=FairnessLimits(rate=IDENTITY_RATE, burst=IDENTITY_RATE),
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )

    def stop_on_request() -> None:  # a line on stdin; a signal would be re-raised by uvicorn
        sys.stdin.readline()
        server.should_exit = True

    threading.Thread(target=stop_on_request, daemon=True).start()
    cpu_before = os.times()
    server.run()
    cpu_after = os.times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    stats = verifier.stats
    print(
        json.dumps(
            {
                "warm_seconds": warm,
                "process_cpu_seconds": cpu,
                "verify_cpu_seconds": stats.cpu_seconds,
                "verified": stats.verified,
                "refused": stats.refused,
                "durations": durations,
            }
        ),
        flush=True,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_clients(
    url: str, tokens: list[str], body_of, requests_total: int, time_cap: float
) -> tuple[list[float], float, int]:
    """``requests_total`` requests spread over one thread per token; latencies in ms."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + time_cap
    per_client = max(1, requests_total // len(tokens))

    def client(index: int) -> None:
        nonlocal failures
        session = requests.Session()
        headers = {"Authorization": f"Bearer {tokens[index]}"}
        rng = random.Random(index)
        for _ in range(per_client):
            if time.perf_counter() > stop_at:
                return
            started = time.perf_counter()
            response = session.post(url, json=body_of(rng), headers=headers, timeout=120)
            elapsed = (time.perf_counter() - started) * 1000
            # Evidence the collection could not get is an error in the answer (NOT_COLLECTED),
            # as it must be; anything else is a failure of the service.
            ok = response.status_code == 200 and all(
                (error.get("extensions") or {}).get("code") == "NOT_COLLECTED"
                for error in response.json().get("errors", [])
            )
            if not ok and not failures:
                print(f"first failure: {response.status_code} {response.text[:300]}")
            with lock:
                latencies.append(elapsed)
                failures += not ok

    started = time.perf_counter()
    with ThreadPoolExecutor(len(tokens)) as pool:
        list(pool.map(client, range(len(tokens))))
    return latencies, time.perf_counter() - started, failures


def _flooded(
    url: str,
    victim: str,
    flooder: str,
    body_of,
    flood_of,
    victims: int,
    flooders: int,
    time_cap: float,
) -> tuple[list[float], dict[str, int]]:
    """One identity (``victim``) asks ``victims`` single-repository questions one after another
    while another (``flooder``) keeps ``flooders`` expensive queries in flight. Only the victim's
    requests made while the flood was verifiably in progress (a flood request sent and not yet
    answered) count. Returns the victim's latencies (ms) and the flooder's answers by status."""
    statuses: dict[str, int] = {}
    in_flight = 0
    lock = threading.Lock()
    stop = threading.Event()

    def flood(index: int) -> None:
        nonlocal in_flight
        session = requests.Session()
        headers = {"Authorization": f"Bearer {flooder}"}
        rng = random.Random(1000 + index)
        while not stop.is_set():
            with lock:
                in_flight += 1
            try:
                response = session.post(url, json=flood_of(rng), headers=headers, timeout=120)
                status = str(response.status_code)
                if status == "200" and response.json().get("errors"):
                    codes = {
                        (e.get("extensions") or {}).get("limit")
                        or (e.get("extensions") or {}).get("code")
                        for e in response.json()["errors"]
                    }
                    status = "200 with " + ",".join(sorted(str(c) for c in codes))
                if response.status_code == 429:
                    time.sleep(float(response.headers.get("Retry-After", "1")))
            except requests.RequestException as error:
                status = type(error).__name__
            finally:
                with lock:
                    in_flight -= 1
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(flooders)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # let the flood reach the service before measuring
    latencies: list[float] = []
    session = requests.Session()
    headers = {"Authorization": f"Bearer {victim}"}
    rng = random.Random(7)
    stop_at = time.perf_counter() + time_cap
    try:
        while len(latencies) < victims and time.perf_counter() < stop_at:
            with lock:
                flooding = in_flight > 0
            started = time.perf_counter()
            try:
                response = session.post(url, json=body_of(rng), headers=headers, timeout=time_cap)
            except requests.Timeout:  # counted as the time waited: a lower bound
                print(f"victim request not answered within {time_cap:.0f} s")
                response = None
            elapsed = (time.perf_counter() - started) * 1000
            if response is not None and response.status_code != 200:
                print(f"victim failure: {response.status_code} {response.text[:200]}")
            if flooding:
                latencies.append(elapsed)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=130)
    return latencies, statuses


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _report(name: str, latencies: list[float], seconds: float, failures: int) -> None:
    print(
        f"{name}: {len(latencies)} requests in {seconds:.1f} s = "
        f"{len(latencies) / seconds:.1f} req/s; latency p50 {statistics.median(latencies):.0f} ms, "
        f"p95 {_percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms; "
        f"failed {failures}"
    )


def _flood_phase(args, endpoint: str, issuer: Issuer, names: list[str], single) -> None:
    """One identity floods controlsOverPeriod queries while another asks single questions."""

    def flood(rng: random.Random) -> dict:
        since = OBSERVED_AT - timedelta(days=rng.randint(1, 100_000), seconds=rng.random())
        variables = {
            "name": rng.choice(names),
            "since": since.isoformat(),
            "until": (OBSERVED_AT + timedelta(days=1)).isoformat(),
        }
        return {"query": FLOOD, "variables": variables}

    victim_latencies, flood_statuses = _flooded(
        endpoint,
        issuer.token("victim"),
        issuer.token("flooder"),
        single,
        flood,
        args.victim,
        args.flood,
        args.time_cap,
    )
    print(
        f"single-repository query of one identity while another keeps {args.flood} "
        f"controlsOverPeriod queries (distinct periods) in flight: {len(victim_latencies)} "
        f"requests, p50 {statistics.median(victim_latencies):.0f} ms, "
        f"p95 {_percentile(victim_latencies, 0.95):.0f} ms (target < 200 ms), "
        f"max {max(victim_latencies):.0f} ms; the flooder's answers: {flood_statuses}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--prs-per-repo", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", help="an existing store [build one in a temp dir]")
    parser.add_argument("--workspace", help="workspace to query (with --store)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--single", type=int, default=2000, help="single-repository requests")
    parser.add_argument("--wide", type=int, default=100, help="workspace-wide requests")
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument(
        "--phases", default="single,wide,flood", help="which to run (comma-separated)"
    )
    parser.add_argument("--victim", type=int, default=200, help="victim requests under flood")
    parser.add_argument("--flood", type=int, default=8, help="flooding requests in flight")
    parser.add_argument("--time-cap", type=float, default=120.0, help="seconds per phase, at most")
    parser.add_argument("--serve-only", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_only:
        store, issuer_url, policy, port = args.serve_only
        serve_only(store, issuer_url, policy, int(port))
        return

    temporary = tempfile.TemporaryDirectory(prefix="bench-serve-")
    if args.store:
        url, workspace = args.store, args.workspace
    else:
        url = str(Path(temporary.name) / "evidence.db")
        started = time.perf_counter()
        workspace = build_store(url, args.repos, args.prs_per_repo, args.seed)
        print(f"store of {args.repos} repositories built in {time.perf_counter() - started:.0f} s")
    from auditor.store import open_store

    with open_store(url) as store:
        observation = store.observation(store.entries([workspace])[-1].observation_id)
    names = list(observation.evidence.table("repositories")["repository"])

    issuer = Issuer()
    policy = Path(temporary.name) / "policy.yaml"
    policy.write_text(POLICY)
    port = _free_port()
    command = [sys.executable, __file__, "--serve-only", url, issuer.url, str(policy), str(port)]
    if args.workers > 1:  # the command itself; the CPU figures of one process are not printed
        command = [
            sys.executable, "-m", "auditor", "serve", "--store", url, "--oidc-issuer", issuer.url,
            "--oidc-audience", AUDIENCE, "--policy", str(policy), "--port", str(port),
            "--workers", str(args.workers), "--identity-rate", str(IDENTITY_RATE),
        ]  # fmt: skip
    service = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if args.workers == 1 else subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.time() + 300
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if time.time() > deadline or service.poll() is not None:
                    raise RuntimeError("the service did not start") from None
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}/graphql"
        tokens = [issuer.token(f"client-{n}") for n in range(args.clients)]

        def single(rng: random.Random) -> dict:
            return {"query": SINGLE, "variables": {"name": rng.choice(names)}}

        def wide(rng: random.Random) -> dict:
            return {"query": WIDE, "variables": {"workspace": workspace}}

        one = requests.post(endpoint, json=wide(random.Random()),
            headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=300).json()  # fmt: skip
        returned = len(one["data"]["workspace"]["repositories"])
        print(f"workspace-wide answer: {returned} repositories, {len(json.dumps(one)) >> 10} KiB")
        phases = set(args.phases.split(","))
        if "single" in phases:
            _report(
                f"single-repository query, {args.clients} clients",
                *_run_clients(endpoint, tokens, single, args.single, args.time_cap),
            )
        if "wide" in phases:
            _report(
                f"workspace-wide query ({returned} repositories), {args.clients} clients",
                *_run_clients(endpoint, tokens, wide, args.wide, args.time_cap),
            )
            single_client = _run_clients(endpoint, tokens[:1], wide, 20, args.time_cap)
            _report(f"workspace-wide query ({returned} repositories), 1 client", *single_client)

        if "flood" in phases:
            _flood_phase(args, endpoint, issuer, names, single)
    finally:
        if args.workers > 1:
            service.terminate()
        output, _ = service.communicate("stop\n", timeout=60)
    if args.workers > 1:
        temporary.cleanup()
        return
    figures = json.loads(output.strip().splitlines()[-1])
    print(
        f"service: indexes and control results built in {figures['warm_seconds']:.1f} s at start; "
        f"{figures['verified']} tokens verified, {figures['refused']} refused"
    )
    for operation, name in (("One", "single-repository"), ("All", "workspace-wide")):
        inside = figures["durations"].get(operation) or [0.0]
        print(
            f"{name} query, time inside the service (audit trail duration_ms): "
            f"p50 {statistics.median(inside):.0f} ms, p95 {_percentile(inside, 0.95):.0f} ms"
        )
    print(
        f"token verification: {figures['verify_cpu_seconds']:.2f} s of "
        f"{figures['process_cpu_seconds']:.1f} s service CPU = "
        f"{100 * figures['verify_cpu_seconds'] / max(figures['process_cpu_seconds'], 1e-9):.1f} %"
    )
    temporary.cleanup()


if __name__ == "__main__":
    main()
