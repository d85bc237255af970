"""The public API is exactly ``hotwash.__all__``: each name resolves, and nothing else is promised."""

from __future__ import annotations

import hotwash


def test_all_names_resolve_and_are_sorted() -> None:
    names = [n for n in hotwash.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in names:
        member = getattr(hotwash, name)
        assert member.__module__.startswith("hotwash."), name
        assert member.__name__ == name


def test_errors_share_one_root() -> None:
    for name in ("AuthError", "ConfigError", "Conflict", "IllegalTransition", "InputError", "InvalidValue",
                 "NotFound", "StoreError"):
        assert issubclass(getattr(hotwash, name), hotwash.HotwashError)


def test_unknown_names_are_attribute_errors() -> None:
    try:
        hotwash.Store  # noqa: B018 - the store is not public API
    except AttributeError as exc:
        assert "Store" in str(exc)
    else:
        raise AssertionError("hotwash.Store must not be public")
