"""The HTTP side of hotwash: ``create_app(settings)`` builds the ASGI app.

Imported lazily: CLI commands that only need ``hotwash.web.auth`` (password and token hashing)
must not pay for the app, the monitor engine and SciPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from hotwash.web.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hotwash.web.app import create_app

        return create_app
    raise AttributeError(f"module 'hotwash.web' has no attribute {name!r}")
