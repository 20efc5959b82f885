"""Logging that never blocks a request: the standard `logging` module, with one bounded queue
between the threads that log and the one thread that writes.

Every record goes to a single root handler that only puts it on a queue; a listener thread
formats it and writes it to the sink (stderr or `logging.file`). When the sink falls behind
and the queue is full, new records are dropped and counted (`dropped_records()`), so a
search never waits for a disk or a terminal. High-frequency INFO events (one per search, per
embedded batch) go through `sampled()` and `log_event()`: a check that costs one
`isEnabledFor` when INFO is off, and a cheap record when it is on. docs/logging.md.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import logging.handlers
import queue
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from ragkeep.config.settings import LoggingSettings

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
BATCH_S = 0.05  # the writer wakes at most this often while records keep coming
STOP_TIMEOUT_S = 5.0  # at exit, a stuck sink gets this long before its records are abandoned

log = logging.getLogger(__name__)

# -- request ids ----------------------------------------------------------------------------

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ragkeep_request_id", default=None
)


def request_id() -> str | None:
    """The id of the request this code runs for (None outside a server request)."""
    return _request_id.get()


def bind_request_id(value: str | None) -> contextvars.Token[str | None]:
    """Make `value` the current request id; pass the token to `reset_request_id` after."""
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamps `record.request_id` on the thread that logs: the context is gone by the time
    the listener thread sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class QueryStringFilter(logging.Filter):
    """For uvicorn's access log: the path without its query string, since
    `GET /api/search?q=...` would put the query text, which may be private, in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path?query, http version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path = args[2].partition("?")[0]
            record.args = (args[0], args[1], path, args[3], args[4])
        return True


# -- dropped records ------------------------------------------------------------------------

_drops_lock = threading.Lock()
_dropped = 0


def dropped_records() -> int:
    """Records dropped because the queue was full, since the process started."""
    with _drops_lock:
        return _dropped


def _count_drop() -> None:
    global _dropped
    with _drops_lock:  # only taken when the queue is full: never on the normal path
        _dropped += 1


# -- the handler the logging threads see -----------------------------------------------------


class RecordQueue(queue.Queue[logging.LogRecord | None]):
    """The bounded queue between the logging threads and the writer."""

    def put_past_bound(self, item: logging.LogRecord | None) -> None:
        """For the listener's stop sentinel: a full queue must still be able to stop."""
        with self.mutex:
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """Puts records on a bounded queue and never waits: a full queue drops the record."""

    queue: RecordQueue

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes a per-handler lock around emit; the queue is thread-safe, so
        # the lock would only add cost to every record on every thread.
        if self.filter(record):
            self.emit(record)
            return True
        return False

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Render on the calling thread what cannot wait (the arguments may change, the
        # traceback belongs to this thread), and nothing else. Unlike the stdlib version this
        # neither formats the whole line nor copies the record: other handlers see the same
        # `message` and `exc_text` a Formatter would set, and the listener formats the line.
        record.message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            _count_drop()


_TRACEBACKS = logging.Formatter()


# -- the listener and its sink ---------------------------------------------------------------


class _FlushRequest(logging.LogRecord):
    """Travels the queue behind the records logged before it; the writer answers it."""

    def __init__(self) -> None:  # not a record anyone formats: no LogRecord attributes
        self.done = threading.Event()


class _Listener(logging.handlers.QueueListener):
    """The writer thread. It flushes the sink only when the queue runs dry, so a burst costs
    one write to the terminal or file, and while records keep coming it wakes once per
    BATCH_S rather than once per record: on 2 cores, waking for each record (a thread switch
    and a GIL handover every search) cost more than writing it."""

    queue: RecordQueue

    def __init__(self, records: RecordQueue, sink: logging.Handler) -> None:
        super().__init__(records, sink)
        self.wake = threading.Event()
        self._second_started = time.monotonic()

    def dequeue(self, block: bool) -> logging.LogRecord:
        try:
            record = self.queue.get_nowait()
        except queue.Empty:
            if not block:
                raise
            self._flush_sink()
            self.new_second()
            if self.wake.wait(BATCH_S):  # let the next records gather (stop/flush cut it short)
                self.wake.clear()
            record = self._next_or_idle()
        # None is the stop sentinel, which the stdlib loop compares against.
        return cast(logging.LogRecord, record)

    def _next_or_idle(self) -> logging.LogRecord | None:
        while True:
            try:
                return self.queue.get(timeout=1.0)  # idle: sleep until the next record...
            except queue.Empty:
                self.new_second()  # ...but open the events' budget again once a second

    def new_second(self) -> None:
        """Empty the per-second event counts (sampled()) when a second has passed: a capped
        kind logs nothing more until then, so the queue runs dry and this runs in time."""
        now = time.monotonic()
        if now - self._second_started >= 1.0:
            self._second_started = now
            _event_counts.clear()

    def handle(self, record: logging.LogRecord) -> None:
        if isinstance(record, _FlushRequest):
            self._flush_sink()
            record.done.set()
            return
        super().handle(record)

    def _flush_sink(self) -> None:
        for handler in self.handlers:
            handler.flush()

    def enqueue_sentinel(self) -> None:
        self.queue.put_past_bound(None)  # None: the stdlib loop's sentinel
        self.wake.set()

    def flush(self, timeout_s: float) -> bool:
        request = _FlushRequest()
        self.queue.put_past_bound(request)
        self.wake.set()
        return request.done.wait(timeout_s)

    def stop_within(self, timeout_s: float) -> None:
        """Write what is queued, then stop; a sink stuck longer than `timeout_s` is left
        behind (its thread is a daemon) rather than holding up the exit."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.enqueue_sentinel()
        thread.join(timeout_s)
        if not thread.is_alive():
            self._flush_sink()


def _write_line(handler: logging.StreamHandler[Any], record: logging.LogRecord) -> None:
    """Emit without the flush StreamHandler does after every record (see _Listener)."""
    try:
        handler.stream.write(handler.format(record) + "\n")
    except Exception:
        handler.handleError(record)


class StderrSink(logging.StreamHandler[TextIO]):
    def emit(self, record: logging.LogRecord) -> None:
        _write_line(self, record)


class FileSink(logging.FileHandler):
    def emit(self, record: logging.LogRecord) -> None:
        _write_line(self, record)


# -- formats ----------------------------------------------------------------------------------

_STANDARD = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", None, None)),
        *("message", "asctime", "request_id", "event_fields"),
        "color_message",  # uvicorn's copy of the message with terminal colour codes
    }
)
# Built once: json.dumps() with options builds a new encoder for every call.
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def _extras(record: logging.LogRecord) -> Iterable[tuple[str, Any]]:
    """The fields passed with `extra=` or `log_event`, in the order given."""
    attrs = record.__dict__
    fields: Mapping[str, Any] | None = attrs.get("event_fields")
    if fields is not None:
        return fields.items()
    if attrs.keys() <= _STANDARD:  # most records: no extras, and no loop to find that out
        return ()
    return [(k, v) for k, v in attrs.items() if k not in _STANDARD]


def _message(record: logging.LogRecord) -> str:
    message = record.__dict__.get("message")
    return message if isinstance(message, str) else record.getMessage()


class _UtcTime:
    """ISO 8601 UTC with milliseconds; the seconds part is reused within the same second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # each formatter is used by the listener thread alone
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message key=value ...`, as the CLI has always printed warnings; a log
    file also gets the time in front."""

    def __init__(self, with_time: bool) -> None:
        super().__init__()
        self._time = _UtcTime() if with_time else None

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {_message(record)}"
        if self._time is not None:
            line = f"{self._time(record.created)} {line}"
        for key, value in _extras(record):
            line = f"{line} {key}={value}"
        rid = getattr(record, "request_id", None)
        if rid:
            line = f"{line} request_id={rid}"
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{record.stack_info}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (when set), the
    `extra` fields, and exc (the traceback) when there is one."""

    def __init__(self) -> None:
        super().__init__()
        self._time = _UtcTime()

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            doc["request_id"] = rid
        for key, value in _extras(record):
            doc.setdefault(key, value)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return _JSON.encode(doc)


# -- configuration ----------------------------------------------------------------------------


@dataclass
class _Installed:
    settings: LoggingSettings
    handler: DroppingQueueHandler
    listener: _Listener


_lock = threading.Lock()
_installed: _Installed | None = None
_atexit_registered = False
_sample_rate = LoggingSettings().sample_rate
_events_per_s = 0  # the cap needs the writer thread, which resets it: none until configured


def configure_logging(
    settings: LoggingSettings,
    level_override: int | None = None,
    *,
    sink: logging.Handler | None = None,
) -> None:
    """Route all logging through one bounded queue to the sink the settings name.

    Calling it again replaces the earlier handler (its queue is written out first); with the
    same settings only the level changes. `level_override` is the CLI's -v/-q; `sink`
    replaces stderr/`logging.file` (tests use a sink that blocks)."""
    global _installed, _sample_rate, _events_per_s, _atexit_registered
    root = logging.getLogger()
    with _lock:
        _sample_rate, _events_per_s = settings.sample_rate, settings.events_per_s
        _event_counts.clear()
        root.setLevel(level_override if level_override is not None else settings.level)
        if _installed is not None and _installed.settings == settings and sink is None:
            return
        _uninstall()
        # Who logs (thread, process) is never printed: skip looking it up for every record.
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        handler = DroppingQueueHandler(RecordQueue(settings.queue_size))
        handler.addFilter(RequestIdFilter())
        target = sink or _sink(settings)
        listener = _Listener(handler.queue, target)
        listener.start()
        root.addHandler(handler)
        _installed = _Installed(settings, handler, listener)
        if not _atexit_registered:
            atexit.register(shutdown_logging)
            _atexit_registered = True


def _sink(settings: LoggingSettings) -> logging.Handler:
    """stderr, or the file (appended; OSError when it cannot be opened)."""
    if settings.file:
        handler: logging.Handler = FileSink(Path(settings.file).expanduser(), encoding="utf-8")
    else:
        handler = StderrSink()
    text = TextFormatter(with_time=settings.file is not None)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else text)
    return handler


def flush_logs(timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Wait until everything logged so far is written; False if the sink is stuck."""
    installed = _installed
    return installed is None or installed.listener.flush(timeout_s)


def shutdown_logging(timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Write out what is queued and remove the handler (also run at interpreter exit)."""
    with _lock:
        _uninstall(timeout_s)


def _uninstall(timeout_s: float = STOP_TIMEOUT_S) -> None:
    global _installed
    if _installed is None:
        return
    old, _installed = _installed, None
    logging.getLogger().removeHandler(old.handler)
    old.listener.stop_within(timeout_s)
    for handler in old.listener.handlers:
        handler.close()


def logging_status() -> dict[str, Any]:
    """What `GET /api/logging` shows."""
    installed = _installed
    return {
        "level": current_level(),
        "format": installed.settings.format if installed else None,
        "sample_rate": _sample_rate,
        "events_per_s": _events_per_s,
        "queue_size": installed.settings.queue_size if installed else None,
        "queued": installed.handler.queue.qsize() if installed else 0,
        "dropped_records": dropped_records(),
    }


# -- the level at run time ------------------------------------------------------------------------


def current_level() -> str:
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())


def set_level(level: str) -> None:
    """Change the level of a running process; the change itself is logged as a warning
    (under whichever of the two levels lets it through)."""
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    before = root.getEffectiveLevel()
    if logging.getLevelName(name) > logging.WARNING:
        log.warning("log level changed to %s (was %s)", name, logging.getLevelName(before))
        root.setLevel(name)
    else:
        root.setLevel(name)
        log.warning("log level changed to %s (was %s)", name, logging.getLevelName(before))


# -- high-frequency events ------------------------------------------------------------------------


def sampled(logger: logging.Logger, rate: float | None = None) -> bool:
    """Whether to log this occurrence of a high-frequency INFO event (each kind is its
    logger): a share `rate` of them (default `logging.sample_rate`), and at most
    `logging.events_per_s` a second. Costs one `isEnabledFor` when INFO is off. Do not ask
    it about a slow operation: that is always logged."""
    if not logger.isEnabledFor(logging.INFO):
        return False
    share = _sample_rate if rate is None else rate
    if share < 1.0 and _random() >= share:
        return False
    cap = _events_per_s
    if not cap:
        return True
    # No clock here, so that a capped event costs a cached search almost nothing: the
    # writer thread empties the counts about once a second (_Listener.new_second).
    count = _event_counts.get(logger.name, 0)
    if count >= cap:
        return False
    _event_counts[logger.name] = count + 1  # racing threads may pass a few more, never wait
    return True


_event_counts: dict[str, int] = {}  # event kind (logger name) -> events since the last reset
_random = random.random


class EventRecord(logging.LogRecord):
    """An INFO record for a high-frequency event, built in a third of the time a LogRecord
    takes: no caller lookup, no argument checks, the invariant attributes copied at once."""

    def __init__(self, name: str, message: str, fields: Mapping[str, object]) -> None:
        attrs = self.__dict__
        attrs.update(_EVENT_TEMPLATE)
        now = time.time()
        attrs["name"] = name
        attrs["msg"] = message
        attrs["created"] = now
        attrs["msecs"] = (now - int(now)) * 1000
        attrs["relativeCreated"] = (now - _START) * 1000
        attrs.update(fields)  # as `extra=` would: %(mode)s works in any formatter
        attrs["event_fields"] = fields  # ours need not search for them


_EVENT_TEMPLATE = {
    **vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)),
    # Not the importing thread's: who logs is not looked up (configure_logging).
    **dict.fromkeys(("thread", "threadName", "process", "processName")),
}
_START = time.time()


def log_event(logger: logging.Logger, message: str, fields: Mapping[str, object]) -> None:
    """Log an INFO event with its fields (JSON keys; `key=value` in text). For events that
    happen once per search or batch: call it when `sampled(logger)` says so."""
    if logger.isEnabledFor(logging.INFO):
        logger.handle(EventRecord(logger.name, message, fields))
