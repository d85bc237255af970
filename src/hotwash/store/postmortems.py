"""Queries of the postmortems workflow, mixed into :class:`hotwash.store.Store` (the only SQL layer)."""

from __future__ import annotations

from hotwash.store.base import StoreBase


class PostmortemQueries(StoreBase):
    """postmortems queries. Methods take keyword-only arguments and return plain dicts."""
