"""HTTP search latency and throughput of `ragkeep serve`, next to the same searches in-process.

    python benchmarks/bench_http.py [--queries 300] [--clients 1,8,32]

A benchmark, not a test: it prints a table and writes results/http.json. It serves the
SciFact index that `make bench` builds (benchmarks/.work/scifact) with the result cache off,
so every request is a real hybrid search, and sends the SciFact test queries:

- in-process: `Keep.search` from N threads of this process;
- HTTP: `GET /api/search` from N client threads (one keep-alive connection each) to a real
  server process on 127.0.0.1, with enough search slots that none is refused.

For each N it reports p50/p95 latency, requests/s, and how many of the machine's cores the
searching process kept busy (its CPU time over the wall time). The two figures issue 10 asks for
are printed at the end: what HTTP adds to the in-process p95 at 1 client, and the throughput
at 8 clients over that at 1. Both sides run in the same run, one after the other, per N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from common import SCIFACT, WORK, write_result
from perf_workload import cli_env, percentile, test_queries

INDEX = WORK / "scifact"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "ragkeep", "--data-dir", str(INDEX),
        "--set", "flags.caching=false", "--set", "server.max_searches=256",
        "-q", "serve", "--port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=cli_env(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(
    clients: int, queries: list[str], make: Callable[[], Callable[[str], None]], pid: int
) -> dict[str, Any]:
    """Each of `clients` threads sends its share of `queries`; latency per request, and the
    cores the searching process (`pid`) kept busy meanwhile."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(mine: list[str]) -> None:
        search = make()
        own = []
        for q in mine:
            started = time.perf_counter()
            search(q)
            own.append(time.perf_counter() - started)
        with lock:
            latencies.extend(own)

    shares = [queries[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=worker, args=(s,)) for s in shares]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    cores = (cpu_seconds(pid) - cpu_before) / wall
    return {
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "cores_busy": round(cores, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--clients", default="1,8,32")
    args = parser.parse_args()
    if not (INDEX / "ragkeep.db").is_file():
        raise SystemExit(f"no SciFact index at {INDEX}: run `make bench` first")
    from ragkeep import Keep

    queries = test_queries(SCIFACT)[: args.queries]
    levels = [int(c) for c in args.clients.split(",")]
    port = free_port()
    server = start_server(port)
    rows: list[dict[str, Any]] = []
    try:
        with Keep(INDEX, overrides={"flags.caching": False}) as keep:

            def in_process() -> Callable[[str], None]:
                return lambda q: (keep.search(q, 10, "hybrid"), None)[1]

            def over_http() -> Callable[[str], None]:
                client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

                def search(q: str) -> None:
                    r = client.get("/api/search", params={"q": q, "k": 10, "mode": "hybrid"})
                    if r.status_code != 200:
                        raise SystemExit(f"HTTP {r.status_code}: {r.text[:200]}")

                return search

            for q in queries[:20]:  # warm both sides: model, page cache, connections
                keep.search(q, 10, "hybrid")
            run_clients(4, queries[:40], over_http, server.pid)
            for n in levels:
                for side, make, pid in (
                    ("in-process", in_process, os.getpid()),
                    ("http", over_http, server.pid),
                ):
                    row = {"side": side, **run_clients(n, queries, make, pid)}
                    rows.append(row)
                    print(
                        f"{side:10s} {n:3d} clients  p50 {row['p50_ms']:7.2f} ms  "
                        f"p95 {row['p95_ms']:7.2f} ms  {row['requests_per_s']:6.1f} req/s  "
                        f"{row['cores_busy']:.2f} cores busy",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait(60)
    by = {(r["side"], r["clients"]): r for r in rows}
    summary: dict[str, Any] = {}
    if (("http", 1) in by) and (("in-process", 1) in by):
        summary["http_adds_to_p95_ms_at_1"] = round(
            by[("http", 1)]["p95_ms"] - by[("in-process", 1)]["p95_ms"], 2
        )
    if ("http", 8) in by and ("http", 1) in by:
        summary["http_throughput_8_over_1"] = round(
            by[("http", 8)]["requests_per_s"] / by[("http", 1)]["requests_per_s"], 2
        )
    print(summary)
    write_result(
        "http",
        {
            "command": "python benchmarks/bench_http.py " + " ".join(sys.argv[1:]),
            "index": str(INDEX.relative_to(ROOT)),
            "queries": len(queries),
            "rows": rows,
            "summary": summary,
        },
        echo=False,
    )


if __name__ == "__main__":
    main()
