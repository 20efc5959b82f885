"""Feature flags at run time: settings force a flag, else the index's persisted value, else
the declared default. A combination whose requirements are not met stops start-up."""

from __future__ import annotations

from ragkeep.config.flags import FLAGS, FlagError, check_flag_name, check_requirements
from ragkeep.config.settings import ConfigError, Settings
from ragkeep.models import FlagSource, FlagState
from ragkeep.store.base import Store


class FlagService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._forced = settings.flags
        self._states = self._resolve()

    def enabled(self, name: str) -> bool:
        return self._states[check_flag_name(name).name].enabled

    def states(self) -> list[FlagState]:
        return [self._states[name] for name in sorted(self._states)]

    def set(self, name: str, enabled: bool | None) -> FlagState:
        """Persist a flag in the index (None: back to the default). Raises FlagError for an
        unknown flag or one whose requirements are not met; nothing is written then."""
        check_flag_name(name)
        trial = {n: s.enabled for n, s in self._states.items()}
        trial[name] = FLAGS[name].default if enabled is None else enabled
        check_requirements(trial)
        self._store.set_flag(name, enabled)
        self._states = self._resolve()
        return self._states[name]

    def _resolve(self) -> dict[str, FlagState]:
        persisted = self._store.persisted_flags()
        states: dict[str, FlagState] = {}
        for name, spec in FLAGS.items():
            if name in self._forced:
                enabled, source = self._forced[name], FlagSource.SETTINGS
            elif name in persisted:
                enabled, source = persisted[name], FlagSource.DATABASE
            else:
                enabled, source = spec.default, FlagSource.DEFAULT
            states[name] = FlagState(
                name, enabled, spec.default, spec.stage, source, spec.description
            )
        try:
            check_requirements({n: s.enabled for n, s in states.items()})
        except FlagError as exc:
            raise ConfigError(str(exc)) from None
        return states
