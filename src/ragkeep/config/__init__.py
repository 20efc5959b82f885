"""Settings and feature flags."""

from ragkeep.config.flags import FLAGS, FlagError, FlagSpec
from ragkeep.config.settings import ConfigError, LoadedSettings, Settings, load_settings
from ragkeep.models import Stage

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
