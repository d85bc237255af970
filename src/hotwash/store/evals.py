"""Queries of the evals workflow, mixed into :class:`hotwash.store.Store` (the only SQL layer)."""

from __future__ import annotations

from hotwash.store.base import StoreBase


class EvalQueries(StoreBase):
    """evals queries. Methods take keyword-only arguments and return plain dicts."""
