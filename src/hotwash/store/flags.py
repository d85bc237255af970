"""Queries of the flags workflow, mixed into :class:`hotwash.store.Store` (the only SQL layer)."""

from __future__ import annotations

from hotwash.store.base import StoreBase


class FlagQueries(StoreBase):
    """flags queries. Methods take keyword-only arguments and return plain dicts."""
