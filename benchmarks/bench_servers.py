"""Search requests/s with 1, 2 and 3 `ragkeep serve` processes on one PostgreSQL database.

    python benchmarks/bench_servers.py [--docs 500] [--clients 6] [--seconds 20]
                                       [--max-requests 20000] [--rounds 3] [--postgres-url URL]

A benchmark, not a test: it prints a table and writes results/servers.json; it asserts
nothing. It starts its own PostgreSQL (scripts/postgres_server.py) unless given
`--postgres-url` (a superuser URL: it creates and drops a database), indexes the first
`--docs` SciFact abstracts, written as .txt files, into a new database, then for each
caching setting (off: every request is a real hybrid search; on: the cache is first filled
with every query's answer, untimed, so every request is a hit, in the server's memory tier
or in the tier shared through the database) and each count of server processes:

- starts that many `ragkeep serve` processes on 127.0.0.1, each with a data dir of its own
  and `store.url` naming the one database, and empties the shared result cache;
- sends `GET /api/search` (hybrid, k=10) from `--clients` threads, one keep-alive connection
  each, spread round-robin over the servers, cycling through the SciFact test queries from
  a different offset each, for `--seconds` or `--max-requests`, whichever ends first;
- reports requests/s, p50/p95 latency, non-200 answers, the result cache's hits (caching
  on), and the cores busy (CPU time over wall time): the servers', the PostgreSQL backends'
  that serve the database (when PostgreSQL runs on this machine), this client's, and the
  whole machine's, whose rest is anything else running meanwhile.

The sweep (caching off and on, 1, 2 and 3 servers) runs `--rounds` times, so that a change
in the machine's speed meanwhile (a shared VM) lands on every configuration alike; the
summary has the median requests/s of each. The client count is the same for every server
count, so only the number of processes changes. On a small machine the servers, PostgreSQL
and the client share the same cores: read the cores-busy figures before reading the
requests/s as scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bench_http import cpu_seconds, free_port
from bench_postgres import new_database, postgres_server, postgres_versions
from common import SCIFACT, cpu_probe_ms, write_result
from perf_stats import percentile
from perf_workload import cli_env, corpus, test_queries

SERVER_COUNTS = (1, 2, 3)
K = 10
READY_TIMEOUT_S = 180.0
WARM_UP_PER_SERVER = 5


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer (transport error)
    left: int = 0  # requests still allowed: the count bound

    def take(self) -> bool:
        with self.lock:
            self.left -= 1
            return self.left >= 0


@dataclass(frozen=True)
class Figures:
    servers: int
    round: int
    caching: bool
    clients: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    non_200: dict[str, int]
    cache_hits: int
    cache_lookups: int
    servers_cores_busy: float
    postgres_cores_busy: float  # the backends serving this database (127.0.0.1 only)
    client_cores_busy: float
    machine_cores_busy: float
    others_cores_busy: float  # the machine's, less the above: other work running meanwhile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=500, help="SciFact abstracts to index")
    parser.add_argument("--clients", type=int, default=6, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--max-requests", type=int, default=20000, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="sweeps, interleaved; medians")
    parser.add_argument("--postgres-url", default="", help="a superuser URL of your own server")
    args = parser.parse_args()
    queries = test_queries(SCIFACT)
    work = Path(tempfile.mkdtemp(prefix="ragkeep-bench-servers-"))
    probe_before = cpu_probe_ms()
    try:
        with postgres_server(args.postgres_url) as admin, new_database(admin) as url:
            out: dict[str, Any] = {
                "command": "python benchmarks/bench_servers.py " + " ".join(sys.argv[1:]),
                "postgres": postgres_versions(admin),
                "load_average_before": os.getloadavg()[0],
                "index": build_index(work, url, args.docs),
                "queries": len(queries),
                "mode": "hybrid",
                "k": K,
            }
            rows = [
                replace(measure(work, url, n, caching, queries, args), round=r)
                for r in range(1, args.rounds + 1)
                for caching in (False, True)
                for n in SERVER_COUNTS
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["cpu_probe_ms"] = [probe_before, cpu_probe_ms()]
    out["rows"] = [asdict(r) for r in rows]
    out["summary"] = summary(rows)
    print(out["summary"])
    write_result("servers", out, echo=False)


# -- the index -------------------------------------------------------------------------------


def build_index(work: Path, url: str, n: int) -> dict[str, Any]:
    """The first n SciFact abstracts as .txt files, added by `ragkeep add` into `url`."""
    docs = work / "docs"
    docs.mkdir()
    for _, (doc_id, title, text) in zip(range(n), corpus(SCIFACT), strict=False):
        (docs / f"{doc_id}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [*ragkeep(work / "indexer", url), "-q", "add", str(docs)], env=cli_env(), check=True
    )
    seconds = time.perf_counter() - started
    status = subprocess.run(
        [*ragkeep(work / "indexer", url), "status", "--json"],
        env=cli_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    counts = json.loads(status.stdout)
    print(f"indexed {counts['documents']} documents, {counts['chunks']} chunks in {seconds:.1f} s")
    return {"documents": counts["documents"], "chunks": counts["chunks"], "seconds": seconds}


def ragkeep(data_dir: Path, url: str, *settings: str) -> list[str]:
    cmd = [sys.executable, "-m", "ragkeep", "--data-dir", str(data_dir)]
    for setting in (f"store.url={url}", *settings):
        cmd += ["--set", setting]
    return cmd


# -- the servers -----------------------------------------------------------------------------


@contextmanager
def servers(work: Path, url: str, n: int, caching: bool) -> Iterator[list[Server]]:
    """n `ragkeep serve` processes on the one database, started together, ready when given."""
    started: list[Server] = []
    settings = (
        f"flags.caching={str(caching).lower()}",
        "llm.provider=none",
        "server.max_searches=256",  # refuse nothing: measure searches, not 429s
    )
    try:
        for i in range(n):
            port = free_port()
            data = work / f"server{i}"
            data.mkdir(exist_ok=True)
            log = data / "serve.log"
            with log.open("wb") as fh:
                cmd = [*ragkeep(data, url, *settings), "-q", "serve", "--port", str(port)]
                proc = subprocess.Popen(cmd, env=cli_env(), stdout=fh, stderr=subprocess.STDOUT)
            started.append(Server(proc, f"http://127.0.0.1:{port}", log))
        for server in started:
            wait_ready(server)
        yield started
    finally:
        for server in started:
            server.proc.terminate()
        for server in started:
            try:
                server.proc.wait(60)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"a server exited early:\n{server.log.read_text(errors='replace')}")
        try:
            if httpx.get(server.url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"a server did not become ready:\n{server.log.read_text(errors='replace')}")


# -- the load --------------------------------------------------------------------------------


def measure(
    work: Path, url: str, n: int, caching: bool, queries: list[str], args: argparse.Namespace
) -> Figures:
    with servers(work, url, n, caching) as running:
        for server in running:  # model, connections, page cache; not cached: other queries
            with httpx.Client(base_url=server.url, timeout=60) as c:
                for i in range(WARM_UP_PER_SERVER):
                    search(c, f"warm up {i}")
        httpx.delete(running[0].url + "/api/cache", timeout=60).raise_for_status()
        if caching:
            prefill(running, queries, args.clients)
        figures = run_load(running, url, caching, queries, args)
    print(
        f"{n} server(s), caching {'on ' if caching else 'off'}: "
        f"{figures.requests_per_s:7.1f} req/s  p50 {figures.p50_ms:7.2f} ms  "
        f"p95 {figures.p95_ms:7.2f} ms  non-200 {figures.non_200 or 0}  cores busy: "
        f"servers {figures.servers_cores_busy:.2f}, postgres {figures.postgres_cores_busy:.2f}, "
        f"client {figures.client_cores_busy:.2f}, "
        f"other work {figures.others_cores_busy:.2f}",
        flush=True,
    )
    return figures


def run_load(
    running: list[Server], url: str, caching: bool, queries: list[str], args: argparse.Namespace
) -> Figures:
    tally = Tally(left=args.max_requests)
    deadline = time.monotonic() + args.seconds
    threads = [
        threading.Thread(
            target=client,
            args=(running[i % len(running)].url, queries, i * len(queries) // args.clients),
            kwargs={"deadline": deadline, "tally": tally},
        )
        for i in range(args.clients)
    ]
    pids = [s.proc.pid for s in running]
    cache_before = cache_counts(running) if caching else (0, 0)
    backends_before = cpu_of(backend_pids(url))
    servers_cpu, client_cpu, machine = sum(map(cpu_seconds, pids)), time.process_time(), busy()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    backends = cpu_of(backend_pids(url))
    postgres_cpu = sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends.items())
    cache_after = cache_counts(running) if caching else (0, 0)
    hits, lookups = cache_after[0] - cache_before[0], cache_after[1] - cache_before[1]
    ms = [s * 1000 for s in tally.latencies]
    figures = Figures(
        servers=len(running),
        round=0,  # set by the caller
        caching=caching,
        clients=args.clients,
        requests=len(ms),
        seconds=round(wall, 2),
        requests_per_s=round(len(ms) / wall, 1),
        p50_ms=round(percentile(ms, 50), 2),
        p95_ms=round(percentile(ms, 95), 2),
        non_200={str(k): v for k, v in tally.statuses.items() if k != 200},
        cache_hits=hits,
        cache_lookups=lookups,
        servers_cores_busy=round((sum(map(cpu_seconds, pids)) - servers_cpu) / wall, 2),
        postgres_cores_busy=round(postgres_cpu / wall, 2),
        client_cores_busy=round((time.process_time() - client_cpu) / wall, 2),
        machine_cores_busy=round((busy() - machine) / wall, 2),
        others_cores_busy=0.0,
    )
    ours = figures.servers_cores_busy + figures.postgres_cores_busy + figures.client_cores_busy
    others = max(0.0, round(figures.machine_cores_busy - ours, 2))
    return replace(figures, others_cores_busy=others)


def prefill(running: list[Server], queries: list[str], clients: int) -> None:
    """Each query once, spread over the servers: the shared cache tier then holds every
    answer, and the measurement is of a warm cache (caching off measures the searches)."""

    def send(url: str, mine: list[str]) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for q in mine:
                search(c, q)

    threads = [
        threading.Thread(target=send, args=(running[i % len(running)].url, queries[i::clients]))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def client(url: str, queries: list[str], offset: int, *, deadline: float, tally: Tally) -> None:
    """One keep-alive connection; the queries in turn from `offset`, until either bound."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    i = offset
    with httpx.Client(base_url=url, timeout=60) as c:
        while time.monotonic() < deadline and tally.take():
            started = time.perf_counter()
            status = search(c, queries[i % len(queries)])
            if status == 200:
                latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            i += 1
    with tally.lock:
        tally.latencies.extend(latencies)
        tally.statuses.update(statuses)


def search(c: httpx.Client, q: str) -> int:
    try:
        return c.get("/api/search", params={"q": q, "k": K, "mode": "hybrid"}).status_code
    except httpx.HTTPError:
        return 0


def cache_counts(running: list[Server]) -> tuple[int, int]:
    """(hits, lookups) summed over the servers' reports. Each report is the shared totals,
    which change only when a process closes, plus the server's own counters: so the change of
    this sum over a run is the run's. Every lookup tries the memory tier first."""
    hits = lookups = 0
    for server in running:
        report = httpx.get(server.url + "/api/cache", timeout=60).json()
        memory, persistent = report["memory"], report["persistent"]
        hits += int(memory["hits"]) + int(persistent["hits"])
        lookups += int(memory["hits"]) + int(memory["misses"])
    return hits, lookups


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends connected to the database: the servers' pooled connections."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process that can be read here (none, for a server elsewhere). A
    backend that is new at the end of a run counts whole: it started during the run."""
    out: dict[int, float] = {}
    for pid in pids:
        with suppress(OSError):
            out[pid] = cpu_seconds(pid)
    return out


def busy() -> float:
    """CPU seconds the whole machine has spent on anything but idling (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def summary(rows: list[Figures]) -> dict[str, Any]:
    """Per caching setting: the median requests/s over the rounds for each server count, and
    each median over the one-server median."""
    out: dict[str, Any] = {}
    for caching in (False, True):
        by: dict[int, float] = {}
        for n in SERVER_COUNTS:
            rates = [r.requests_per_s for r in rows if (r.caching, r.servers) == (caching, n)]
            by[n] = statistics.median(rates)
        out["caching_on" if caching else "caching_off"] = {
            "median_requests_per_s": {str(n): round(v, 1) for n, v in by.items()},
            **{f"{n}_over_1": round(by[n] / by[1], 2) for n in by if n != 1 and by[1]},
        }
    return out


if __name__ == "__main__":
    main()
