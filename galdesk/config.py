"""User settings: a JSON file in the platform's config folder, versioned, with ``GALDESK_*`` environment overrides.

Location: ``$GALDESK_CONFIG_DIR`` if set, else ``$XDG_CONFIG_HOME/galdesk`` (Linux), ``~/Library/Application
Support/galdesk`` (macOS), ``%APPDATA%\\galdesk`` (Windows). Logs go to the matching data folder
(``$GALDESK_DATA_DIR`` or ``~/.local/share/galdesk``).

Environment overrides: ``GALDESK_DEVICE`` (auto|cpu|cuda|mps), ``GALDESK_VETTER`` (vetter name),
``GALDESK_WORKERS`` (processes for parallel ingest).

Safety limits (:func:`limit`): each has a default in the module that enforces it, may be set in the settings file's
``"limits"`` object (e.g. ``{"limits": {"max_catalog_columns": 50000}}``, read once per process) and is overridden
by its environment variable (read at every use): ``max_aspect_ratio`` (``GALDESK_MAX_ASPECT_RATIO``),
``max_stack_bytes`` (``GALDESK_MAX_STACK_BYTES``), ``max_catalog_columns`` (``GALDESK_MAX_CATALOG_COLUMNS``),
``lock_timeout`` (``GALDESK_LOCK_TIMEOUT``, seconds).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

__all__ = ["config_dir", "data_dir", "log_path", "Settings", "load_settings", "SETTINGS_SCHEMA_VERSION", "limit",
           "reload_limits", "LIMIT_ENV"]

SETTINGS_SCHEMA_VERSION = 1

DEFAULTS: dict = {
    "schema_version": SETTINGS_SCHEMA_VERSION,
    "device": "auto",
    "vetter": "",
    "recent_projects": [],
    "working_size": 64,
    "workers": 0,          # 0 = one per core
    "window": {},          # geometry/state, base64 strings written by the GUI
    "display": {},
}

_ENV = {"device": "GALDESK_DEVICE", "vetter": "GALDESK_VETTER", "workers": "GALDESK_WORKERS"}


def _platform_dir(kind: str) -> Path:
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "galdesk"
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA" if kind == "config" else "LOCALAPPDATA") or str(home)
        return Path(base) / "galdesk"
    if kind == "config":
        return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "galdesk"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "galdesk"


def config_dir() -> Path:
    return Path(os.environ.get("GALDESK_CONFIG_DIR") or _platform_dir("config"))


def data_dir() -> Path:
    return Path(os.environ.get("GALDESK_DATA_DIR") or _platform_dir("data"))


def log_path() -> Path:
    """The log file (errors with tracebacks land here)."""
    return data_dir() / "galdesk.log"


def migrate(d: dict) -> dict:
    """Bring older settings up to date (version 0: before schema_version existed)."""
    if int(d.get("schema_version", 0)) < 1:
        d["schema_version"] = 1
    return d


class Settings:
    """Dictionary-like settings; ``get`` applies environment overrides, ``save`` writes atomically."""

    def __init__(self, path: Path, values: dict) -> None:
        self.path = path
        self.values = values

    def get(self, key: str, default=None):
        env = _ENV.get(key)
        if env and os.environ.get(env):
            raw = os.environ[env]
            return int(raw) if isinstance(DEFAULTS.get(key), int) and raw.isdigit() else raw
        return self.values.get(key, DEFAULTS.get(key, default))

    def set(self, key: str, value) -> None:
        self.values[key] = value

    def add_recent(self, project_path: str, keep: int = 10) -> None:
        recent = [p for p in self.values.get("recent_projects", []) if p != str(project_path)]
        self.values["recent_projects"] = [str(project_path)] + recent[: keep - 1]

    def save(self) -> None:
        from galdesk.fsutil import atomic_write

        text = json.dumps(self.values, indent=2)
        try:
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError:
            pass  # settings are a convenience: an unwritable config folder must not stop the work


def load_settings() -> Settings:
    """Read the settings file (defaults when absent or unreadable)."""
    path = config_dir() / "settings.json"
    values = dict(DEFAULTS)
    try:
        values.update(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    return Settings(path, migrate(values))


#: The safety limits :func:`limit` knows, and their environment variables.
LIMIT_ENV = {"max_aspect_ratio": "GALDESK_MAX_ASPECT_RATIO", "max_stack_bytes": "GALDESK_MAX_STACK_BYTES",
             "max_catalog_columns": "GALDESK_MAX_CATALOG_COLUMNS", "lock_timeout": "GALDESK_LOCK_TIMEOUT"}


@functools.lru_cache(maxsize=1)
def _file_limits() -> dict:
    """The settings file's ``"limits"`` (read once per process; {} when absent or not an object)."""
    lim = load_settings().values.get("limits")
    return dict(lim) if isinstance(lim, dict) else {}


def reload_limits() -> None:
    """Read the settings file's ``"limits"`` again at the next :func:`limit` (they are read once per process)."""
    _file_limits.cache_clear()


def limit(name: str, default: float, allow_zero: bool = False) -> float:
    """A safety limit: its environment variable, else the settings file's ``limits[name]``, else ``default``. A value
    that is not a positive number (or zero, with ``allow_zero``) is ignored: the next source is used."""
    for raw in (os.environ.get(LIMIT_ENV[name], ""), _file_limits().get(name)):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if value > 0 or (allow_zero and value == 0):
            return value
    return float(default)
