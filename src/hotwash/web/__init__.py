"""The HTTP side of hotwash: ``create_app(settings)`` builds the ASGI app."""

from hotwash.web.app import create_app

__all__ = ["create_app"]
