"""An OpenFeature provider for hotwash's kill switches, on the official ``openfeature-sdk``.

    from openfeature import api
    from hotwash.containment.openfeature import HotwashProvider

    api.set_provider(HotwashProvider("https://hotwash.internal", token="hw_...", defaults="hotwash.yaml"))
    flags = api.get_client()
    mode = flags.get_string_value("support-bot", "enabled")       # enabled | disabled | human | ...
    if not flags.get_boolean_value("support-bot", True):           # True only when mode == enabled
        ...
    flag = flags.get_object_value("support-bot", {})               # the whole flag, params included

The flag key is the feature name. Reads go through a :class:`~hotwash.containment.client.FlagClient`
(local cache, last known value, manifest default), so an evaluation never raises and never
returns an error for an unreachable hotwash: it returns the best value known, and the reason says
which it is:

    STATIC   hotwash answered just now
    CACHED   the local cache, younger than cache_seconds
    STALE    the last value hotwash sent; hotwash is unreachable or failing
    DEFAULT  the manifest's declared default, or (nothing known) the default value you passed
    ERROR    only for a type hotwash flags do not have (integer, float): your default value

The variant is the mode. Flag metadata carries ``source`` (set | default), ``version``,
``served``, ``params`` (a JSON string), and ``incident``, ``reason``, ``error`` when present.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagMetadata, FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from hotwash.containment.client import FlagClient
from hotwash.manifest import Manifest

__all__ = ["HotwashProvider"]

log = logging.getLogger("hotwash.containment")

_REASONS = {"live": Reason.STATIC, "cached": Reason.CACHED, "stale": Reason.STALE, "default": Reason.DEFAULT,
            "fallback": Reason.DEFAULT}


class HotwashProvider(AbstractProvider):
    """Resolves feature flags from hotwash. Give it a ``base_url`` (and the FlagClient options),
    or a ready ``client`` to share one cache with code that calls FlagClient directly."""

    def __init__(self, base_url: str | None = None, token: str | None = None, *, cache_seconds: float = 5.0,
                 defaults: Mapping[str, str] | Manifest | str | Path | None = None, timeout: float = 1.0,
                 client: FlagClient | None = None) -> None:
        super().__init__()
        if client is None:
            if base_url is None:
                raise ValueError("HotwashProvider needs base_url or client")
            client = FlagClient(base_url, token, cache_seconds=cache_seconds, defaults=defaults, timeout=timeout)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client

    def get_metadata(self) -> Metadata:
        return Metadata(name="hotwash")

    def shutdown(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- resolution --------------------------------------------------------------------------
    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, lambda flag: str(flag["mode"]))

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, lambda flag: flag["mode"] == "enabled")

    def resolve_object_details(
        self, flag_key: str, default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, _object)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[int]:
        return _type_mismatch(default_value, "integer")

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[float]:
        return _type_mismatch(default_value, "float")

    # The SDK's async variants call the sync ones on the event loop; a flag fetch may wait for
    # the network (up to the client's timeout), so run it in a worker thread instead.
    async def resolve_string_details_async(self, flag_key: str, default_value: str,
                                           evaluation_context: EvaluationContext | None = None
                                           ) -> FlagResolutionDetails[str]:
        return await asyncio.to_thread(self.resolve_string_details, flag_key, default_value, evaluation_context)

    async def resolve_boolean_details_async(self, flag_key: str, default_value: bool,
                                            evaluation_context: EvaluationContext | None = None
                                            ) -> FlagResolutionDetails[bool]:
        return await asyncio.to_thread(self.resolve_boolean_details, flag_key, default_value, evaluation_context)

    async def resolve_object_details_async(
        self, flag_key: str, default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return await asyncio.to_thread(self.resolve_object_details, flag_key, default_value, evaluation_context)

    def _resolve(self, flag_key: str, default_value: Any, value_of: Any) -> FlagResolutionDetails[Any]:
        try:
            flag = self.client.get(flag_key)
            served = flag.get("served", "fallback")
            # Nothing known about the feature: the caller's default is the better answer than ours.
            value = default_value if served == "fallback" else value_of(flag)
            variant = None if served == "fallback" else str(flag["mode"])
            return FlagResolutionDetails(value=value, reason=_REASONS.get(served, Reason.UNKNOWN), variant=variant,
                                         flag_metadata=_metadata(flag))
        except Exception as exc:  # an evaluation never raises into the application
            log.exception("hotwash flag evaluation of %r failed", flag_key)
            return FlagResolutionDetails(value=default_value, reason=Reason.ERROR, error_code=ErrorCode.GENERAL,
                                         error_message=f"{type(exc).__name__}: {exc}")


def _object(flag: Mapping[str, Any]) -> dict[str, Any]:
    # JSON-safe (datetimes as ISO strings) whether the flag came from hotwash or from a default.
    return orjson.loads(orjson.dumps(dict(flag), option=orjson.OPT_UTC_Z))


def _metadata(flag: Mapping[str, Any]) -> FlagMetadata:
    meta: dict[str, bool | int | float | str] = {
        "source": str(flag.get("source") or "default"),
        "version": int(flag.get("version") or 0),
        "served": str(flag.get("served") or ""),
        "params": orjson.dumps(flag.get("params") or {}).decode(),
    }
    for key in ("incident", "reason", "error"):
        if flag.get(key):
            meta[key] = str(flag[key])
    return meta


def _type_mismatch(default_value: Any, kind: str) -> FlagResolutionDetails[Any]:
    return FlagResolutionDetails(value=default_value, reason=Reason.ERROR, error_code=ErrorCode.TYPE_MISMATCH,
                                 error_message=f"hotwash flags are strings (the mode), booleans (enabled or not) "
                                               f"or objects (the whole flag), not {kind}s")
