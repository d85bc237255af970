"""Queries behind the diagnostic questions and their stored answers, mixed into
:class:`hotwash.store.Store` (the only SQL layer)."""

from __future__ import annotations

from hotwash.store.base import StoreBase


class DiagnosisQueries(StoreBase):
    """Diagnosis queries. Methods take keyword-only arguments and return plain dicts."""
