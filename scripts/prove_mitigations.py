#!/usr/bin/env python3
"""Prove that each risk mitigation's test can fail: remove the mitigation (one line), run its
test, expect a failure, restore the line.

    .venv/bin/python scripts/prove_mitigations.py            # every mitigation
    .venv/bin/python scripts/prove_mitigations.py breaker    # those whose name contains it

Prints one line per mitigation and exits 1 if any test still passed without its mitigation
(a test that cannot fail is a defect). The source is always restored, also on Ctrl-C.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ragkeep"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # under src/ragkeep
    line: str  # exactly one occurrence in the file
    replacement: str
    test: str  # pytest node id(s), space-separated


MUTATIONS = [
    Mutation(
        "embedder failure: hybrid falls back to BM25",
        "search/engine.py",
        "                if req.mode is SearchMode.DENSE:\n                    raise",
        "                if True:\n                    raise",
        "tests/test_degradation.py::test_failing_embedder_hybrid_answers_from_bm25_and_says_so",
    ),
    Mutation(
        "degraded results are not cached",
        "search/engine.py",
        "and final and not results.degraded:",
        "and final:",
        "tests/test_degradation.py::test_degraded_results_are_not_cached",
    ),
    Mutation(
        "query embedding deadline (embed.timeout_s)",
        "search/query_vector.py",
        "return future.result(timeout=self._timeout_s)",
        "return future.result()",
        "tests/test_degradation.py::test_slow_embedder_is_cut_off_at_its_deadline",
    ),
    Mutation(
        "embedder circuit breaker",
        "search/query_vector.py",
        "        if not self.breaker.allow():\n            raise EmbedderUnavailableError",
        "        if False:\n            raise EmbedderUnavailableError",
        "tests/test_degradation.py::test_embedder_breaker_stops_calling_then_probes_once",
    ),
    Mutation(
        "LLM circuit breaker",
        "services/querying.py",
        "        if not self.llm_breaker.allow():",
        "        if False:",
        "tests/test_degradation.py::test_llm_breaker_opens_after_failures_and_answers_at_once",
    ),
    Mutation(
        "breaker: one probe when half-open",
        "resilience/breaker.py",
        "            if self._probing:\n                return False",
        "            if False:\n                return False",
        "tests/test_degradation.py::test_llm_breaker_lets_only_one_probe_through",
    ),
    Mutation(
        "LLM breaker shared by every process on the data dir",
        "resilience/breaker.py",
        "        self._load()\n",
        "\n",
        "tests/test_degradation.py::test_llm_breaker_is_remembered_by_the_next_process",
    ),
    Mutation(
        "LLM deadline: the socket is cut at llm.deadline_s",
        "answer/llm.py",
        "                sock.shutdown(socket.SHUT_RDWR)",
        "                pass",
        "tests/test_degradation.py::test_slow_llm_is_cut_off_at_llm_deadline[trickle]",
    ),
    Mutation(
        "LLM deadline bounds the wait for the response's headers",
        "answer/llm.py",
        "min(self._timeout_s, left), connect=min(self._connect_timeout_s, left)",
        "self._timeout_s, connect=self._connect_timeout_s",
        "tests/test_degradation.py::test_slow_llm_is_cut_off_at_llm_deadline[hang]",
    ),
    Mutation(
        "slow searches are logged",
        "resources/slow.py",
        "        if elapsed > threshold_s:",
        "        if False:",
        "tests/test_degradation.py::test_a_slow_search_is_logged_as_a_warning",
    ),
    Mutation(
        "store and embedder failures are one CLI line",
        "cli/app.py",
        "    except (StoreError, EmbedderError) as exc:",
        "    except ZeroDivisionError as exc:",
        "tests/test_failure_matrix.py::test_damaged_model_dense_search_is_one_line_exit_2",
    ),
    Mutation(
        "searches keep answering with a damaged model (server)",
        "server/routes/health.py",
        "    if not problems and state.model_error is not None:",
        "    if False:",
        "tests/server/test_server_degradation.py",
    ),
    Mutation(
        "query-term statistics are bounded",
        "search/engine.py",
        "            if len(self._df) + len(terms) > self._df_max:",
        "            if False:",
        "tests/test_leaks.py",
    ),
]


def run(m: Mutation) -> bool:
    """True when the test failed without the mitigation (as it must)."""
    path = SRC / m.file
    original = path.read_text(encoding="utf-8")
    if original.count(m.line) != 1:
        print(f"SKIP  {m.name}: the line is not found exactly once in {m.file}")
        return False
    try:
        path.write_text(original.replace(m.line, m.replacement), encoding="utf-8")
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.test.split()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        path.write_text(original, encoding="utf-8")
    if proc.returncode not in (0, 1):  # 1: tests failed; anything else: pytest could not run
        print(f"ERROR {m.name}: pytest exited {proc.returncode}\n{proc.stdout[-2000:]}")
        return False
    failed = proc.returncode == 1
    verdict = "ok   " if failed else "FAIL "
    outcome = "failed as it must" if failed else "still PASSED without its mitigation"
    print(f"{verdict} {m.name}: {outcome} ({time.monotonic() - started:.0f} s)", flush=True)
    return failed


def main() -> int:
    wanted = [m for m in MUTATIONS if all(a.lower() in m.name.lower() for a in sys.argv[1:])]
    results = [run(m) for m in wanted]
    print(f"{sum(results)}/{len(results)} mitigations proven by a failing test")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
