"""The flag client that applications embed: read a feature's kill switch, never fail because of it.

    flags = FlagClient("https://hotwash.internal", token="hw_...", defaults="hotwash.yaml")
    if flags.mode("support-bot") == "human":
        return route_to_people(case)

A read is answered from a local cache for ``cache_seconds``; after that the client asks hotwash
again, with ``If-None-Match`` so an unchanged flag costs a 304. When hotwash is unreachable or
answers with an error, the read is served, in this order, from the last value hotwash sent, the
default the manifest declares for the feature (``defaults``), and ``enabled``. A flag read never
raises into the application: the outage is logged once (a warning on logger
``hotwash.containment``), and hotwash is asked again at most once every ``cache_seconds``.

Thread-safe: one client is meant to be shared by the whole process. Each flag read by several
threads at once is fetched once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from hotwash.containment.flags import MODES, default_flag
from hotwash.manifest import Manifest, load_manifest

__all__ = ["FlagClient"]

log = logging.getLogger("hotwash.containment")

# How a read was answered, in the ``served`` key of FlagClient.get():
#   live      hotwash answered just now (a new value, or a 304 confirming the cached one)
#   cached    the local cache, younger than cache_seconds
#   stale     the last value hotwash sent; hotwash is unreachable or failing
#   default   the manifest's declared default; hotwash has not answered for this feature yet
#   fallback  nothing is known about the feature: enabled
SERVED = ("live", "cached", "stale", "default", "fallback")

# The least time between two outage warnings, however often hotwash comes and goes.
WARN_INTERVAL = 60.0


@dataclass(slots=True)
class _Entry:
    flag: dict[str, Any]
    etag: str | None
    checked: float  # monotonic time of the last answer from hotwash (or of the last failed try)
    from_server: bool


class FlagClient:
    """Reads flags from a hotwash server with a local cache and a safe fallback.

    ``defaults`` is what to serve for a feature before hotwash has ever answered: a mapping
    ``{feature: mode}``, a :class:`~hotwash.manifest.Manifest`, or the path of ``hotwash.yaml``
    (an unreadable manifest is logged and ignored, never raised).
    """

    def __init__(self, base_url: str, token: str | None = None, *, cache_seconds: float = 5.0,
                 defaults: Mapping[str, str] | Manifest | str | Path | None = None, timeout: float = 1.0,
                 transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_seconds = max(0.0, float(cache_seconds))
        headers = {"accept": "application/json", "user-agent": "hotwash-flag-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self._manifest, self._declared = self._load_defaults(defaults)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._down_until = 0.0  # after a failure, no request before this (monotonic) time
        self._outage: str | None = None  # what went wrong, while hotwash is failing
        self._last_warning = float("-inf")
        self._clock = clock  # monotonic seconds; replaceable so tests can step time
        # Requests sent, answered 304, and failed (unreachable, error status, unreadable body).
        self.stats = {"requests": 0, "not_modified": 0, "failures": 0}

    # -- reading -----------------------------------------------------------------------------
    def mode(self, feature: str) -> str:
        """The feature's mode: ``enabled``, ``disabled``, ``human``, ``rollback`` or ``throttle``."""
        return str(self.get(feature)["mode"])

    def get(self, feature: str) -> dict[str, Any]:
        """The feature's flag (``feature``, ``mode``, ``params``, ``version``, ...), with ``served``
        saying where the answer came from (see ``SERVED``) and ``error`` what failed, if anything."""
        try:
            return self._get(feature)
        except Exception as exc:  # a flag read never raises into the application
            log.exception("hotwash flag read of %r failed unexpectedly; serving the fallback", feature)
            return self._fallback(feature, error=f"{type(exc).__name__}: {exc}")

    def declared_default(self, feature: str) -> str | None:
        """The mode ``defaults`` declares for the feature, or None."""
        return self._declared.get(feature)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FlagClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------
    def _get(self, feature: str) -> dict[str, Any]:
        answer = self._from_cache(feature)
        if answer is not None:
            return answer
        with self._fetch_lock(feature):
            # Another thread may have fetched it while this one waited.
            answer = self._from_cache(feature)
            return answer if answer is not None else self._refresh(feature)

    def _from_cache(self, feature: str) -> dict[str, Any] | None:
        """The cached answer if it may be served without asking hotwash, else None."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(feature)
            if entry is None:
                return None
            if now - entry.checked < self.cache_seconds:
                return self._answer(entry, "cached" if entry.from_server else "default",
                                    error=None if entry.from_server else self._outage)
            if now < self._down_until:
                # hotwash failed moments ago: do not ask again for every feature.
                return self._answer(entry, "stale" if entry.from_server else "default", error=self._outage)
        return None

    def _fetch_lock(self, feature: str) -> threading.Lock:
        with self._lock:
            return self._fetching.setdefault(feature, threading.Lock())

    def _refresh(self, feature: str) -> dict[str, Any]:
        with self._lock:
            entry = self._entries.get(feature)
            skip = self._clock() < self._down_until
        if skip:
            return self._without_server(feature, entry, self._outage or "hotwash is unreachable")
        headers = {"if-none-match": entry.etag} if entry is not None and entry.etag else {}
        with self._lock:
            self.stats["requests"] += 1
        try:
            response = self._http.get(f"/api/v1/flags/{quote(feature, safe='')}", headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(feature, entry, f"cannot reach hotwash at {self.base_url}: {exc!r}")
        if response.status_code == 304 and entry is not None and entry.from_server:
            self._recovered()
            with self._lock:
                entry.checked = self._clock()
                self.stats["not_modified"] += 1
            return self._answer(entry, "live")
        if response.status_code != 200:
            detail = _detail(response)
            return self._failed(feature, entry, f"hotwash answered {response.status_code} for the flag of "
                                                f"{feature}{': ' + detail if detail else ''}")
        try:
            flag = orjson.loads(response.content)
            if not isinstance(flag, dict) or flag.get("mode") not in MODES:
                raise ValueError(f"unexpected flag document: {response.content[:200]!r}")
        except ValueError as exc:
            return self._failed(feature, entry, f"hotwash sent an unreadable flag for {feature}: {exc}")
        self._recovered()
        fresh = _Entry(flag=flag, etag=response.headers.get("etag"), checked=self._clock(), from_server=True)
        with self._lock:
            self._entries[feature] = fresh
        return self._answer(fresh, "live")

    def _failed(self, feature: str, entry: _Entry | None, error: str) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            self.stats["failures"] += 1
            self._down_until = now + self.cache_seconds
            first = self._outage is None
            self._outage = error
            warn = first and now - self._last_warning >= WARN_INTERVAL
            if warn:
                self._last_warning = now
        if warn:
            log.warning("%s; serving the last known flags, then the manifest defaults, until it answers again", error)
        return self._without_server(feature, entry, error)

    def _without_server(self, feature: str, entry: _Entry | None, error: str) -> dict[str, Any]:
        if entry is not None and entry.from_server:
            return self._answer(entry, "stale", error=error)
        if feature in self._declared:
            flag = default_flag(self._manifest, feature) if self._manifest is not None else {
                **default_flag(None, feature), "mode": self._declared[feature]}
            placeholder = _Entry(flag=flag, etag=None, checked=self._clock(), from_server=False)
            with self._lock:
                # Remembered only until hotwash answers; never overwrites a value hotwash sent.
                current = self._entries.get(feature)
                if current is None or not current.from_server:
                    self._entries[feature] = placeholder
            return self._answer(placeholder, "default", error=error)
        return self._fallback(feature, error=error)

    def _recovered(self) -> None:
        with self._lock:
            was, self._outage = self._outage, None
            self._down_until = 0.0
        if was is not None:
            log.info("hotwash at %s answers again; flags are live", self.base_url)

    def _answer(self, entry: _Entry, served: str, *, error: str | None = None) -> dict[str, Any]:
        # A copy: the application may change what it gets without changing the cache.
        return {**entry.flag, "params": dict(entry.flag.get("params") or {}), "served": served, "error": error}

    def _fallback(self, feature: str, *, error: str | None) -> dict[str, Any]:
        return {**default_flag(None, feature), "served": "fallback", "error": error}

    @staticmethod
    def _load_defaults(defaults: Mapping[str, str] | Manifest | str | Path | None
                       ) -> tuple[Manifest | None, dict[str, str]]:
        if defaults is None:
            return None, {}
        if isinstance(defaults, Manifest):
            manifest = defaults
        elif isinstance(defaults, str | Path):
            try:
                manifest = load_manifest(Path(defaults))
            except Exception:  # the application must start even with a broken manifest
                log.exception("cannot read the flag defaults from %s; unknown flags will read as enabled", defaults)
                return None, {}
        else:
            declared = {}
            for feature, mode in defaults.items():
                if mode in MODES:
                    declared[str(feature)] = str(mode)
                else:
                    log.error("flag default %r for %s is not a mode (%s); ignored", mode, feature, ", ".join(MODES))
            return None, declared
        return manifest, {name: f.containment.default for name, f in manifest.features.items()}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail)[:200] if detail else ""
