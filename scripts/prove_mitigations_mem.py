#!/usr/bin/env python3
"""The memory-budget and interruption mitigations (issue 11), proven like the others: remove
each one (one line), run its test, expect a failure, restore the line.

    .venv/bin/python scripts/prove_mitigations_mem.py [NAME-PART...]

Uses the runner of scripts/prove_mitigations.py; MUTATIONS here are meant to join its list.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "prove_mitigations", Path(__file__).with_name("prove_mitigations.py")
)
assert _spec is not None and _spec.loader is not None
_prove = importlib.util.module_from_spec(_spec)
sys.modules["prove_mitigations"] = _prove
_spec.loader.exec_module(_prove)
Mutation = _prove.Mutation

INT = "tests/test_interrupt.py::"
M = "tests/test_memory_budget.py::"
T = "tests/test_batch_tuning.py::"

MUTATIONS = [
    Mutation(
        "big texts are tokenized a piece at a time",
        "ingest/chunking.py",
        "start, end = self._pos, min(self._pos + self._piece, self._end)",
        "start, end = self._pos, self._end",
        f"{M}test_a_big_text_is_never_tokenized_whole "
        f"{M}test_add_with_a_10mb_file_under_a_hard_memory_cap",
    ),
    Mutation(
        "the ingest queue is bounded in bytes",
        "ingest/feed.py",
        "len(self._queue) >= self._max_items or self._bytes + size > self._max_bytes",
        "len(self._queue) >= self._max_items",
        f"{M}test_the_queue_holds_no_more_bytes_than_the_budget_allows",
    ),
    Mutation(
        "an item bigger than the whole queue goes in alone",
        "ingest/feed.py",
        "while self._queue and (",
        "while (",
        f"{M}test_a_document_bigger_than_the_whole_queue_still_goes_through",
    ),
    Mutation(
        "an interrupt does not wait for the producer (main's join, put back)",
        "ingest/pipeline.py",
        "            feed.close()\n",
        "            feed.close()\n"
        "            feed.producer_thread.join()  # type: ignore[union-attr]\n",
        f"{INT}test_interrupt_does_not_wait_for_a_producer_stuck_in_one_file",
    ),
    Mutation(
        "a cancelled producer stops chunking",
        "ingest/chunking.py",
        "if self._cancel is not None and self._cancel.is_set():",
        "if False:",
        f"{INT}test_a_cancelled_producer_stops_chunking_a_big_file",
    ),
    Mutation(
        "ingest.file_timeout_s",
        "ingest/feed.py",
        "if elapsed <= self._timeout_s:",
        "if True:",
        f"{INT}test_a_file_past_the_timeout_fails_and_the_run_goes_on",
    ),
    Mutation(
        "an abandoned producer cannot queue what it prepared",
        "ingest/feed.py",
        "            if me.cancelled.is_set():\n"
        "                return False\n"
        "            me.current",
        "            me.current",
        f"{INT}test_a_stuck_producer_is_abandoned_and_can_write_nothing",
    ),
    Mutation(
        "producers never write to the store",
        "ingest/pipeline.py",
        "            return Touched(path, stamp)",
        "            return self._store.update_stamp(path, stamp) or FileResult(path, FileOutcome.UNCHANGED)",  # noqa: E501
        f"{INT}test_only_the_calling_thread_writes_to_the_store",
    ),
    Mutation(
        "embedding in units of EMBED_UNIT texts",
        "ingest/pipeline.py",
        "EMBED_UNIT = 256",
        "EMBED_UNIT = 1_000_000",
        f"{INT}test_embedding_goes_in_units_a_ctrl_c_can_land_between",
    ),
    Mutation(
        "SIGTERM acts like Ctrl-C",
        "cli/signals.py",
        "    signal.signal(signal.SIGTERM, _raise_interrupt)",
        "    pass",
        f"{INT}test_a_signal_stops_add_within_two_seconds_leaving_whole_documents",
    ),
    Mutation(
        "an allocation failure halves the batch",
        "embed/onnx.py",
        "if is_allocation_failure(exc.__cause__) and self.tuner.allocation_failed(padded, n):",
        "if False:",
        f"{T}test_a_batch_that_cannot_allocate_is_retried_halved",
    ),
    Mutation(
        "a batch stays within the memory budget",
        "embed/tuning.py",
        "if n and self._over_budget(texts, width):",
        "if False:",
        f"{T}test_a_batch_stays_within_the_memory_budget",
    ),
    Mutation(
        "batches stop growing past half a second (Ctrl-C latency)",
        "embed/tuning.py",
        "elif last_seconds > _MAX_BATCH_S or self._limit * 2 > MAX_TOKENS:",
        "elif self._limit * 2 > MAX_TOKENS:",
        f"{T}test_growth_stops_once_a_batch_takes_too_long_to_interrupt",
    ),
    Mutation(
        "a user-set embed.batch_tokens switches tuning off",
        "embed/registry.py",
        'tune="batch_tokens" not in cfg.model_fields_set,',
        "tune=True,",
        f"{T}test_tuning_is_on_unless_the_user_set_batch_tokens",
    ),
]


def main() -> int:
    wanted = [m for m in MUTATIONS if all(a.lower() in m.name.lower() for a in sys.argv[1:])]
    results = [_prove.run(m) for m in wanted]
    print(f"{sum(results)}/{len(results)} mitigations proven by a failing test")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
