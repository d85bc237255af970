"""hotwash: incident response for AI features in production.

The public Python API is small: what an application embeds (the telemetry client, the kill-switch
client and its OpenFeature provider) and the error tree. Everything else is reached through the
``hotwash`` command, the HTTP API, or the modules themselves (no stability promise there).
Names are imported lazily, so ``import hotwash`` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "Conflict",
    "FlagClient",
    "HotwashClient",
    "HotwashError",
    "HotwashProvider",
    "IllegalTransition",
    "InputError",
    "InvalidValue",
    "NotFound",
    "StoreError",
    "__version__",
]

_WHERE = {
    "FlagClient": "hotwash.containment.client",
    "HotwashClient": "hotwash.client",
    "HotwashProvider": "hotwash.containment.openfeature",
    **{name: "hotwash.errors" for name in ("AuthError", "ConfigError", "Conflict", "HotwashError",
                                           "IllegalTransition", "InputError", "InvalidValue", "NotFound",
                                           "StoreError")},
}

if TYPE_CHECKING:
    from hotwash.client import HotwashClient
    from hotwash.containment.client import FlagClient
    from hotwash.containment.openfeature import HotwashProvider
    from hotwash.errors import (
        AuthError,
        ConfigError,
        Conflict,
        HotwashError,
        IllegalTransition,
        InputError,
        InvalidValue,
        NotFound,
        StoreError,
    )


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hotwash' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
