"""Settings and feature flags."""

from ragkeep.config.flags import FLAGS, FlagError, FlagSpec, Stage
from ragkeep.config.settings import ConfigError, LoadedSettings, Settings, load_settings

__all__ = [
    "FLAGS",
    "ConfigError",
    "FlagError",
    "FlagSpec",
    "LoadedSettings",
    "Settings",
    "Stage",
    "load_settings",
]
