"""Containment: each feature's kill switch, served over HTTP and read by applications.

``flags`` holds the modes and the service (``get_flag``, ``list_flags``, ``set_mode``); ``client``
is the cached :class:`FlagClient` applications embed; ``hotwash.containment.openfeature`` is the
OpenFeature provider built on it (imported on its own, so the SDK loads only where it is used).
"""

from __future__ import annotations

from hotwash.containment.client import FlagClient
from hotwash.containment.flags import MODES, default_flag, get_flag, list_flags, set_mode

__all__ = ["MODES", "FlagClient", "default_flag", "get_flag", "list_flags", "set_mode"]
