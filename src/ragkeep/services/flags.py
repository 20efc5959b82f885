"""Feature flags at run time: settings force a flag, else the index's persisted value, else
the declared default.

Flags live in the store, so a switch made by any process (`ragkeep flags`, the API, another
`Keep`) reaches every running one: each re-reads the persisted flags at most once per
REFRESH_S, when a flag is next read. `enabled()` is on the search path, so between re-reads
it costs one clock read and a dict lookup. A combination whose requirements are not met
stops start-up; met later (e.g. `ann_index` switched on by a process that has usearch, in
one that has not), the running process keeps its last good state and reports the error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from ragkeep.config.flags import (
    FLAGS,
    FlagError,
    check_flag_name,
    check_requirements,
    unknown_flag_message,
)
from ragkeep.config.settings import ConfigError, Settings
from ragkeep.models import FlagSource, FlagState
from ragkeep.store.base import Store, StoreError
from ragkeep.store.url import store_backend

log = logging.getLogger(__name__)

REFRESH_S = 1.0  # how stale a running process's flags may be: one small read per second

Listener = Callable[[Sequence[FlagState]], None]
_monotonic = time.monotonic  # one lookup less on the search path


class FlagService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._forced = settings.flags
        self._backend = store_backend(settings.store.url)
        self._persisted = store.persisted_flags()
        try:
            self._states = _resolve(self._forced, self._persisted, self._backend)
        except FlagError as exc:
            raise ConfigError(str(exc)) from None
        self._next_check = time.monotonic() + REFRESH_S
        # Only one thread re-reads; the others keep answering from the current states.
        self._refreshing = threading.Lock()
        self._listeners: list[Listener] = []
        self.error: str | None = None  # why the persisted flags are not applied, if they aren't

    def enabled(self, name: str) -> bool:
        if _monotonic() >= self._next_check:  # inline: a cached search takes ~60 µs
            self._refresh_unless_busy()
        state = self._states.get(name)
        if state is None:
            raise FlagError(unknown_flag_message(name))
        return state.enabled

    def states(self) -> list[FlagState]:
        if _monotonic() >= self._next_check:
            self._refresh_unless_busy()
        states = self._states
        return [states[name] for name in sorted(states)]

    def on_change(self, listener: Listener) -> None:
        """Call `listener` with the flags whose value changed, each time some do. It runs on
        the thread that noticed (often a search's), holding no lock a search needs."""
        self._listeners.append(listener)

    def set(self, name: str, enabled: bool | None, *, log_change: bool = True) -> FlagState:
        """Persist a flag in the index (None: back to the default); it applies at once here
        and within REFRESH_S in every other process. Raises FlagError for an unknown flag or
        one whose requirements are not met; nothing is written then. `log_change=False`: the
        caller reports the change itself (the CLI prints it)."""
        check_flag_name(name)
        with self._refreshing:
            self._refresh(True)  # check against what other processes may have set meanwhile
            trial = {n: s.enabled for n, s in self._states.items()}
            trial[name] = FLAGS[name].default if enabled is None else enabled
            check_requirements(trial, self._backend)
            self._store.set_flag(name, enabled)
            self._refresh(log_change)
        return self._states[name]

    def refresh(self) -> None:
        """Re-read the persisted flags now (normally done at most once per REFRESH_S)."""
        with self._refreshing:
            self._refresh(True)

    def _refresh_unless_busy(self) -> None:
        if self._refreshing.acquire(blocking=False):  # another thread is at it: do not wait
            try:
                self._refresh(True)
            finally:
                self._refreshing.release()

    def _refresh(self, log_change: bool) -> None:
        """Apply the persisted flags if they changed; the caller holds `_refreshing`."""
        self._next_check = time.monotonic() + REFRESH_S
        try:
            persisted = self._store.persisted_flags()
        except StoreError as exc:  # busy or unreadable: flags stay as they are until next time
            self._fail(f"cannot read the feature flags: {exc}")
            return
        if persisted == self._persisted:
            self.error = None  # e.g. the combination that could not apply was undone
            return
        try:
            states = _resolve(self._forced, persisted, self._backend)
        except FlagError as exc:
            self._fail(f"feature flags not applied, keeping the previous ones: {exc}")
            return
        old, self._states, self._persisted, self.error = self._states, states, persisted, None
        changed = [s for name, s in states.items() if s.enabled != old[name].enabled]
        for state in changed:
            if log_change:
                log.warning(
                    "feature flag %s switched %s (%s)",
                    state.name,
                    "on" if state.enabled else "off",
                    state.source.value,
                )
        if changed:
            self._notify(changed)

    def _fail(self, message: str) -> None:
        if message != self.error:  # once per distinct problem, not once per second
            log.error("%s", message)
        self.error = message

    def _notify(self, changed: Sequence[FlagState]) -> None:
        for listener in self._listeners:
            try:
                listener(changed)
            except Exception:  # a search that noticed the switch must not fail because of it
                log.exception("applying a feature-flag change failed")


def _resolve(
    forced: Mapping[str, bool], persisted: Mapping[str, bool], backend: str
) -> dict[str, FlagState]:
    """Every flag's state; raises FlagError when the combination's requirements are not met."""
    states: dict[str, FlagState] = {}
    for name, spec in FLAGS.items():
        if name in forced:
            enabled, source = forced[name], FlagSource.SETTINGS
        elif name in persisted:
            enabled, source = persisted[name], FlagSource.DATABASE
        else:
            enabled, source = spec.default, FlagSource.DEFAULT
        states[name] = FlagState(name, enabled, spec.default, spec.stage, source, spec.description)
    check_requirements({n: s.enabled for n, s in states.items()}, backend)
    return states
