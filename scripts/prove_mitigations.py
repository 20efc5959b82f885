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


INT = "tests/test_interrupt.py::"
M = "tests/test_memory_budget.py::"
T = "tests/test_batch_tuning.py::"
LOG = "tests/test_logging.py::"
MET = "tests/test_metrics.py::"
F = "tests/test_flags_runtime.py::"
FH = "tests/test_first_hour_output.py::"
FS = "tests/test_first_hour_search.py::"
CFG = "tests/test_config.py::"
MIG = "tests/sqlite/test_sqlite_migration_rollback.py::"
REC = "tests/test_recovery.py::"
BAK = "tests/sqlite/test_sqlite_backup.py::"
PG = "tests/postgres/test_postgres_store.py::"

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
        "answer/deadline_io.py",
        "            timeout = left if timeout is None else min(timeout, left)",
        "            pass",
        "tests/test_degradation.py::test_slow_llm_is_cut_off_at_llm_deadline[hang]",
    ),
    Mutation(
        "slow searches are logged",
        "services/querying.py",
        "            if elapsed > self._slow_query_s:",
        "            if False:",
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
    Mutation(
        "flags: a running process re-reads the persisted flags",
        "services/flags.py",
        "            try:\n                self._refresh(True)",
        "            try:\n                pass",
        f"{F}test_collapse_documents_switched_by_another_process_applies_and_is_logged_once "
        f"{F}test_every_flag_is_followed",
    ),
    Mutation(
        "flags: a real server follows `ragkeep flags` without a restart",
        "services/flags.py",
        "            try:\n                self._refresh(True)",
        "            try:\n                pass",
        f"{F}test_running_server_follows_the_cli_without_restart",
    ),
    Mutation(
        "flags: each change picked up is logged",
        "services/flags.py",
        "            if log_change:",
        "            if False:",
        f"{F}test_collapse_documents_switched_by_another_process_applies_and_is_logged_once",
    ),
    Mutation(
        "flags: caching switched off bypasses the result cache",
        "search/engine.py",
        "cache = self.results if self._caching() else None",
        "cache = self.results",
        f"{F}test_caching_switched_off_elsewhere_bypasses_both_caches_then_comes_back",
    ),
    Mutation(
        "flags: caching switched off bypasses the query-embedding cache",
        "search/engine.py",
        "if self.embeddings is None or not self._caching():",
        "if self.embeddings is None:",
        f"{F}test_caching_switched_off_elsewhere_bypasses_both_caches_then_comes_back",
    ),
    Mutation(
        "flags: a search overlapping an ann_index switch is not cached",
        "search/engine.py",
        "fresh = cache is not None and cache.unchanged_since(epoch)",
        "fresh = cache is not None",
        f"{F}test_a_search_overlapping_an_ann_index_switch_is_not_cached",
    ),
    Mutation(
        "flags: configure_dense cannot be undone by a search making the old state",
        "store/sqlite/store.py",
        "        with self._dense_lock:\n            if self._dense is None:",
        "        if True:\n            if self._dense is None:",
        "tests/sqlite/test_sqlite_dense_switch.py",
    ),
    Mutation(
        "flags: length_batching on and off share one loaded model",
        "embed/registry.py",
        "model = _model(replace(config, length_batching=True))",
        "model = _model(config)",
        f"{F}test_length_batching_switched_elsewhere_applies_without_a_second_model",
    ),
    Mutation(
        "flags: a combination this process cannot apply keeps the last good state",
        "services/flags.py",
        "        except FlagError as exc:\n            self._fail(",
        "        except ZeroDivisionError as exc:\n            self._fail(",
        f"{F}test_a_combination_this_process_cannot_apply_keeps_the_last_good_state",
    ),
    Mutation(
        "flags: an error applying flags is logged once",
        "services/flags.py",
        "        if message != self.error:",
        "        if True:",
        f"{F}test_a_combination_this_process_cannot_apply_keeps_the_last_good_state",
    ),
    Mutation(
        "flags: an alpha flag must default to off",
        "config/flags.py",
        '            raise ValueError(f"alpha feature flag',
        '            pass  # raise ValueError(f"alpha feature flag',
        f"{F}test_an_alpha_flag_must_default_to_off",
    ),
    Mutation(
        "logging: a full queue drops the record instead of blocking the caller",
        "observability/logs.py",
        "            self.queue.put_nowait(record)",
        "            self.queue.put(record, block=True)",
        f"{LOG}test_a_stalled_sink_does_not_slow_searches_and_the_dropped_records_are_counted",
    ),
    Mutation(
        "logging: the queue is bounded",
        "observability/logs.py",
        "DroppingQueueHandler(RecordQueue(settings.queue_size))",
        "DroppingQueueHandler(RecordQueue())",
        f"{LOG}test_a_full_queue_drops_new_records_and_counts_each_one",
    ),
    Mutation(
        "logging: queued records are written out at exit",
        "observability/logs.py",
        "            atexit.register(shutdown_logging)",
        "            pass",
        f"{LOG}test_warnings_logged_just_before_exit_are_written",
    ),
    Mutation(
        "logging: the request id is stamped on the calling thread",
        "observability/logs.py",
        "        handler.addFilter(RequestIdFilter())",
        "        pass",
        "tests/server/test_server_logging.py::"
        "test_json_lines_carry_the_request_id_into_the_search_and_never_the_query",
    ),
    Mutation(
        "logging: the access log never holds the query string",
        "cli/serve_command.py",
        'logging.getLogger("uvicorn.access").addFilter(QueryStringFilter())',
        "pass",
        "tests/server/test_server_logging.py::"
        "test_json_lines_carry_the_request_id_into_the_search_and_never_the_query",
    ),
    Mutation(
        "logging: per-search events are sampled",
        "observability/logs.py",
        "    if share < 1.0 and _random() >= share:",
        "    if False:",
        f"{LOG}test_search_events_follow_the_sample_rate_and_never_hold_the_query",
    ),
    Mutation(
        "logging: events are capped per second",
        "observability/logs.py",
        "    if count >= cap:",
        "    if False:",
        f"{LOG}test_events_per_second_are_capped_whatever_the_sample_rate",
    ),
    Mutation(
        "logging: the level of a running server changes without a restart",
        "server/routes/logging.py",
        "    set_level(body.level)",
        "    pass",
        "tests/server/test_server_logging.py::test_log_level_changes_a_running_server_without_a_restart",
    ),
    Mutation(
        "health: a failed search is counted as an error",
        "services/querying.py",
        "                observed.failed(time.perf_counter() - started)",
        "                observed.observe(time.perf_counter() - started)",
        f"{MET}test_a_failed_search_is_an_error_and_a_fallback_is_not "
        "tests/server/test_server_observability.py",
    ),
    Mutation(
        "health: /readyz fails on a critical metric",
        "server/routes/health.py",
        "    problems.extend(not_ready(report, state.keep.settings.health))",
        "    pass",
        "tests/server/test_server_observability.py::"
        "test_metrics_and_health_follow_real_traffic_and_failures",
    ),
    Mutation(
        "health: too few requests judge nothing",
        "observability/health.py",
        "    enough = requests >= cfg.min_requests",
        "    enough = True",
        f"{MET}test_too_few_requests_judge_nothing "
        "tests/server/test_server_observability.py::test_health_is_quiet_about_a_handful_of_requests",
    ),
    Mutation(
        "a finished thread's SQLite connection is closed",
        "store/sqlite/store.py",
        "self._all = {t: c for t, c in self._all.items() if t.is_alive()}",
        "pass",
        "tests/sqlite/test_sqlite_connections.py",
    ),
    # Issue 13 (the first hour): progress, output, data dir and sources.
    Mutation(
        "progress counts committed documents (not files read)",
        "ingest/pipeline.py",
        "            report.results.extend(results)\n            for r in results:",
        "            report.results.extend(results)\n            for r in results[:1]:",
        FH + "test_progress_counts_documents_in_the_index_not_files_read",
    ),
    Mutation(
        "the bar shows progress within a big file",
        "ingest/pipeline.py",
        "            on_chars=on_chars,",
        "            on_chars=None,",
        FH + "test_the_bar_shows_chunks_per_second_and_progress_within_a_big_file",
    ),
    Mutation(
        "the bar shows the total from the start",
        "ingest/pipeline.py",
        '            detail(0, total, "")',
        "            pass",
        FH + "test_the_bar_shows_chunks_per_second_and_progress_within_a_big_file",
    ),
    Mutation(
        "the bar shows chunks/s",
        "ingest/pipeline.py",
        "                    detail.chunks(r.chunks)",
        "                    pass",
        FH + "test_the_bar_shows_chunks_per_second_and_progress_within_a_big_file",
    ),
    Mutation(
        "unsupported files: one summary line",
        "cli/output.py",
        "    if unsupported:\n",
        "    if False:\n",
        FH + "test_unsupported_files_are_one_summary_line_and_verbose_lists_the_types",
    ),
    Mutation(
        "watch prints only what changed",
        "cli/app.py",
        "            on_report=changes,",
        "            on_report=_finish_summary,",
        FH + "test_watch_prints_only_what_changed",
    ),
    Mutation(
        "the data dir is refused as a source",
        "services/indexing.py",
        "        if real == home or is_under(real, home):",
        "        if False:",
        FH + "test_the_data_dir_cannot_be_a_source",
    ),
    Mutation(
        "walks skip the data dir",
        "ingest/discover.py",
        "                if key in rules.skip_dirs:\n                    continue",
        "                if False:\n                    continue",
        FH + "test_a_folder_holding_the_data_dir_is_walked_without_it",
    ),
    Mutation(
        "watch ignores the data dir's own writes",
        "ingest/watch.py",
        "            return  # our own writes",
        "            pass  # our own writes",
        FH + "test_watching_a_folder_that_holds_the_data_dir_does_not_sync_forever",
    ),
    Mutation(
        "nested sources: a file is counted once",
        "ingest/pipeline.py",
        "                    continue  # under two nested sources",
        "                    pass  # under two nested sources",
        FH + "test_nested_sources_are_counted_once_after_remove_then_add",
    ),
    Mutation(
        "watch says its folders stay sources",
        "cli/app.py",
        "            if new:  # say it",
        "            if False:  # say it",
        FH + "test_watching_a_folder_that_holds_the_data_dir_does_not_sync_forever",
    ),
    # Issue 13 items 1 and 2: exact terms, phrases, the demo's search and answer.
    Mutation(
        "exact terms: chunks holding the whole term come first",
        "search/engine.py",
        "            whole = _whole_terms(snap, query, n)",
        "            whole = []",
        FS + "test_the_whole_term_ranks_above_its_parts",
    ),
    Mutation(
        "exact terms: a phrase match is checked verbatim",
        "search/engine.py",
        "            if cid in rows and term in rows[cid].text.casefold():",
        "            if cid in rows:",
        FS + "test_the_whole_term_ranks_above_its_parts",
    ),
    Mutation(
        "exact terms: a quoted phrase binds dense hits too",
        "search/engine.py",
        "    if not query.required:\n        return ranking\n    held =",
        "    if True:\n        return ranking\n    held =",
        FS + "test_a_quoted_phrase_binds_every_hit_in_every_mode",
    ),
    Mutation(
        "exact terms: a hyphenated word is also scored as a phrase",
        "search/terms.py",
        "    phrases = [p for p in [*required, *compounds] if len(p) > 1]",
        "    phrases = [p for p in required if len(p) > 1]",
        "tests/test_search.py::test_technical_terms_are_scored_as_phrases_and_quotes_are_required",
    ),
    Mutation(
        "exact terms: a query starting with - gets the -- hint",
        "cli/help.py",
        '            if any(p.name in ("query", "question") for p in self.params):',
        "            if False:",
        FS + "test_an_option_is_searched_after_double_dash_and_the_error_says_so",
    ),
    Mutation(
        "demo search: a small index keeps its words in hybrid BM25",
        "search/engine.py",
        "                self._settings.bm25_common_min_chunks,",
        "                0,",
        FS + "test_the_demo_search_finds_tomatoes_first",
    ),
    Mutation(
        "demo answer: passages below the relevance floor are left out",
        "services/querying.py",
        "        if floor <= 0:",
        "        if True:",
        FS + "test_the_demo_answer_has_only_relevant_passages",
    ),
    # issue 13, item 7: a slow LLM (retries said, the real total, one deadline)
    Mutation(
        "slow LLM: llm.deadline_s bounds the whole ask (reads clamped to it)",
        "answer/deadline_io.py",
        "            timeout = left if timeout is None else min(timeout, left)",
        "            pass",
        "tests/test_slow_llm.py::test_the_deadline_ends_the_ask_with_passages[hang] "
        "tests/test_answer.py::test_headers_trickling_in_end_at_the_deadline",
    ),
    Mutation(
        "slow LLM: a backoff that would cross llm.deadline_s is not slept",
        "answer/llm.py",
        "        if time.monotonic() + delay >= deadline:",
        "        if False:",
        "tests/test_answer.py::test_a_backoff_that_would_cross_the_deadline_is_not_slept",
    ),
    Mutation(
        "slow LLM: headers trickling in end at llm.deadline_s",
        "answer/llm.py",
        "        bound_reads(self._http)  # llm.deadline_s",
        "        pass  # llm.deadline_s",
        "tests/test_answer.py::test_headers_trickling_in_end_at_the_deadline",
    ),
    Mutation(
        "slow LLM: each retry is said as it begins",
        "answer/llm.py",
        "            yield retry  # before the sleep",
        "            pass  # before the sleep",
        "tests/test_slow_llm.py::test_each_retry_is_a_line_and_the_failure_gives_the_real_total "
        "tests/server/test_server_api.py::test_ask_stream_says_when_the_llm_is_retried",
    ),
    Mutation(
        "slow LLM: the web page shows a retry",
        "server/static/ask.js",
        "  retry({ attempt, attempts, reason }) {",
        "  unknown({ attempt, attempts, reason }) {",
        "tests/server/test_server_page.py::test_a_retried_llm_is_shown_as_retrying",
    ),
    # issue 13 item 9: undoing a `remove` re-embeds nothing
    Mutation(
        "readd: unreferenced vectors kept up to store.keep_unreferenced_mb",
        "services/indexing.py",
        "        if unused.bytes > self._settings.store.keep_unreferenced_mb * _MB:",
        "        if unused.count:",
        "tests/test_readd.py::test_adding_a_removed_folder_back_embeds_nothing",
    ),
    # issue 13 item 5: Ctrl-C inside one huge file (tests/test_interrupt_bigfile.py)
    Mutation(
        "big file interrupt: chunk rows written in slices",
        "store/sqlite/store.py",
        "            for part in batches(chunks, WRITE_SLICE):",
        "            for part in batches(chunks, len(chunks) or 1):",
        # CLI-level: tests/sqlite/test_sqlite_interrupt_commit.py (its bound is not tight).
        "tests/sqlite/test_sqlite_store.py::test_a_big_document_is_written_and_replaced_in_slices",
    ),
    Mutation(
        "big file interrupt: old chunk rows deleted in slices",
        "store/sqlite/store.py",
        "                _delete_chunks(c, doc_id)",
        '                c.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))',
        "tests/sqlite/test_sqlite_store.py::test_a_big_document_is_written_and_replaced_in_slices",
    ),
    Mutation(
        "big file interrupt: vector rows written in slices",
        "store/sqlite/store.py",
        "        for part in batches(rows, WRITE_SLICE):  # in slices: see WRITE_SLICE",
        "        for part in batches(rows, len(rows) or 1):",
        "tests/sqlite/test_sqlite_store.py::test_a_big_document_is_written_and_replaced_in_slices",
    ),
    # issue 14: backup, restore, rollback (docs/recovery.md)
    Mutation(
        "recovery: a faulty migration is restored from its snapshot",
        "store/sqlite/migration.py",
        "        store.restore_from(store.shelf.root / snapshot.id / INDEX_FILE, migrate=False)",
        "        pass",
        MIG + "test_a_faulty_migration_is_rolled_back_to_the_results_before_it[drops-rows]",
    ),
    Mutation(
        "recovery: a migrated index must hold the same contents",
        "store/sqlite/migration.py",
        "            if report.ok:\n                return",
        "            if True:\n                return",
        MIG + "test_a_faulty_migration_is_rolled_back_to_the_results_before_it[drops-rows]",
    ),
    Mutation(
        "recovery: a re-embed that fails validation restores its snapshot",
        "services/recovery.py",
        "            if not report.ok:\n                generation = store.restore_from(",
        "            if False:\n                generation = store.restore_from(",
        REC + "test_a_reembed_with_garbage_vectors_rolls_back_by_itself",
    ),
    Mutation(
        "recovery: re-embed validation checks self-retrieval",
        "services/validation.py",
        "        checks.append(self._self_retrieval())",
        "        pass",
        REC + "test_a_reembed_with_garbage_vectors_rolls_back_by_itself",
    ),
    Mutation(
        "recovery: re-embed validation checks the query set",
        "services/validation.py",
        "            checks.append(self._overlap(baseline))",
        "            pass",
        REC + "test_a_query_set_that_changes_rolls_the_reembed_back",
    ),
    Mutation(
        "recovery: a restore gets a generation and state token never seen",
        "store/sqlite/backup.py",
        "        _stamp(prepared, generation)",
        "        pass",
        REC + "test_a_running_process_sees_a_restore_through_its_caches",
    ),
    Mutation(
        "recovery: a restore empties the copied result cache",
        "store/sqlite/backup.py",
        '            conn.execute("DELETE FROM result_cache")',
        "            pass",
        BAK + "test_a_restore_empties_the_copied_result_cache",
    ),
    Mutation(
        "recovery: only a backup matching its checksum is trusted",
        "store/backups.py",
        "    if verify and sha256_of(target) != manifest.sha256:",
        "    if False:",
        BAK
        + "test_a_changed_or_incomplete_backup_is_not_trusted "
        + REC
        + "test_a_bad_backup_is_refused_in_one_line",
    ),
    Mutation(
        "recovery: a restore keeps the index it replaces",
        "services/recovery.py",
        "            replaced = self._keep_replaced(manifest)",
        "            replaced = None",
        REC + "test_backup_remove_rollback_and_undo_from_the_cli",
    ),
    Mutation(
        "recovery: pruning waits until the restore is done",
        "services/recovery.py",
        'self._store.copy_to, f"{RESTORE_REASON} of {restoring.id}", prune=False',
        'self._store.copy_to, f"{RESTORE_REASON} of {restoring.id}", prune=True',
        REC + "test_with_one_backup_kept_a_restore_still_finds_it",
    ),
    Mutation(
        "recovery: rollback skips a restore's own backups",
        "store/backups.py",
        "            if entry.manifest is not None and not entry.manifest.replaced_by_restore:",
        "            if entry.manifest is not None:",
        REC + "test_backup_remove_rollback_and_undo_from_the_cli",
    ),
    Mutation(
        "recovery: snapshot before removing a whole source",
        "services/indexing.py",
        "            taken = self._snapshot(_removing(removal.sources), False) if removal.sources "
        "else None",
        "            taken = None",
        REC + "test_backup_remove_rollback_and_undo_from_the_cli",
    ),
    Mutation(
        "recovery: snapshot before doctor --repair",
        "services/admin.py",
        "            snapshot = self._snapshot_before_repair()",
        "            snapshot = None",
        BAK + "test_doctor_repair_snapshots_first_when_it_has_something_to_repair",
    ),
    Mutation(
        "recovery: an index that cannot be opened is set aside for a restore",
        "cli/recovery_command.py",
        "    except StoreCorruptError as exc:\n        damaged = exc",
        "    except StoreCorruptError:\n        raise",
        BAK + "test_a_restore_over_an_index_that_cannot_be_opened_keeps_it_aside",
    ),
    Mutation(
        "recovery: a damaged index is restored over without a copy of it",
        "services/recovery.py",
        "        except StoreCorruptError as exc:",
        "        except BackupError as exc:",
        BAK + "test_a_restore_over_a_damaged_index_goes_on_without_keeping_it",
    ),
    Mutation(
        "recovery: a failed backup leaves no folder behind",
        "store/backups.py",
        "        if created:\n            shutil.rmtree(folder, ignore_errors=True)",
        "        if False:\n            shutil.rmtree(folder, ignore_errors=True)",
        "tests/sqlite/test_sqlite_failures.py::"
        "test_a_backup_to_a_full_disk_leaves_nothing_and_changes_nothing",
    ),
    Mutation(
        "recovery: a backup is a snapshot (VACUUM INTO), not a file copy",
        "store/sqlite/backup.py",
        '        conn.execute("VACUUM INTO ?", (str(target),))',
        "        shutil.copyfile(live, target)",
        "tests/sqlite/test_sqlite_backup_online.py",
    ),
    Mutation(
        "recovery: a restore is written in one transaction (backup API)",
        "store/sqlite/backup.py",
        "        source.backup(target)  # every page in one step: one transaction on the target",
        "        shutil.copyfile(prepared, live)",
        # 8 kills rarely land in a 15 ms file copy; 40 do (docs/recovery.md).
        "tests/sqlite/test_sqlite_backup_kill.py::test_kill_during_restore[40] -m slow",
    ),
    Mutation(
        "recovery: a re-embed that breaks leaves no staged vectors",
        "services/recovery.py",
        "                store.drop_vectors(_staging_tag(store))\n                raise",
        "                raise",
        REC + "test_a_reembed_that_breaks_leaves_the_index_as_it_was[while-embedding]",
    ),
    Mutation(
        "recovery: a re-embed whose validation breaks is rolled back",
        "services/recovery.py",
        "                store.restore_from(back)\n                raise BackupError(",
        "                raise BackupError(",
        REC + "test_a_reembed_that_breaks_leaves_the_index_as_it_was[while-validating]",
    ),
    Mutation(
        "recovery: pruning removes what a killed backup left",
        "store/backups.py",
        "            return self._remove_incomplete() + self._prune(keep)",
        "            return self._prune(keep)",
        "tests/sqlite/test_sqlite_backup_kill.py::test_kill_during_backup[8]",
    ),
    Mutation(
        "recovery: a restore clears what a killed restore left",
        "store/sqlite/backup.py",
        "    shutil.rmtree(work, ignore_errors=True)\n    try:\n        try:",
        "    try:\n        try:",
        "tests/sqlite/test_sqlite_backup_kill.py::test_kill_during_restore[8]",
    ),
    # issue 15: the PostgreSQL backend (docs/scale-out.md)
    Mutation(
        "postgres: every search reads the generation in its own snapshot",
        "store/postgres/snapshot.py",
        "            self._meta = generation_and_state(self.conn)",
        "            self._meta = self._store.__dict__.setdefault("
        "'m', generation_and_state(self.conn))",
        "tests/postgres/test_multi_server.py",
    ),
    Mutation(
        "postgres: writers wait for the advisory lock",
        "store/postgres/writer_lock.py",
        "            if not _try_lock(conn):",
        "            if False:",
        "tests/test_concurrency.py::test_a_second_writer_waits_instead_of_failing[postgresql]",
    ),
    Mutation(
        "postgres: a document's change is one transaction",
        "store/postgres/connections.py",
        '        with self._transaction("BEGIN", True, (ms, kept)) as c:',
        '        with self._transaction("SELECT 1", True, (ms, kept)) as c:',
        "tests/contract/test_store_contract.py::test_replace_is_atomic_and_bumps_generation"
        "[postgresql]",
    ),
    Mutation(
        "postgres: a search reads one snapshot (repeatable read)",
        "store/postgres/connections.py",
        '"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"',
        '"BEGIN READ ONLY"',
        "tests/contract/test_store_contract.py::test_a_snapshot_does_not_see_later_commits"
        "[postgresql]",
    ),
    Mutation(
        "postgres: BM25 totals follow every write",
        "store/postgres/store.py",
        '"UPDATE lexical_totals SET chunks = chunks + %s, terms = terms + %s",',
        '"UPDATE lexical_totals SET chunks = chunks + 0 * %s, terms = terms + 0 * %s",',
        PG + "test_bm25_scores_as_sqlite_fts5_does",
    ),
    Mutation(
        "postgres: a phrase's terms stand side by side",
        "store/postgres/lexical.py",
        'follows = " AND ".join(f"s.pos + {i} = ANY(p{i}.positions)"',
        'follows = " AND ".join(f"s.pos + {i} > 0 OR true"',
        "tests/contract/test_retrieval_contract.py::test_required_phrases_bind_every_hit"
        "[postgresql]",
    ),
    Mutation(
        "postgres: doctor rebuilds postings from the chunk texts",
        "store/postgres/checks.py",
        "                _rebuild_postings(c, chunk_id)",
        "                pass",
        PG + "test_doctor_finds_and_repairs_broken_postings_and_totals",
    ),
    Mutation(
        "migrate: never into an index that is not empty",
        "store/transfer.py",
        "    if target.counts().documents:",
        "    if False:",
        PG + "test_migrate_copies_both_ways_and_verifies",
    ),
    Mutation(
        "health: the page and `ragkeep health` round a figure alike (ties up)",
        "observability/health.py",
        'return f"{math.floor(value * 1000 + 0.5)} ms" if value < 1',
        'return f"{value * 1000:.0f} ms" if value < 1',
        "tests/server/test_server_health_page.py::"
        "test_the_page_formats_every_figure_as_ragkeep_health_does",
    ),
    Mutation(
        "settings: a store setting of the other backend is refused, not ignored",
        "config/settings.py",
        "        _check_backend_keys(settings, sources, cfg)\n",
        "",
        CFG
        + "test_a_setting_of_the_other_backend_is_refused_naming_where_it_was_set "
        + CFG
        + "test_cli_a_setting_of_the_other_backend_exits_2_in_one_line",
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
