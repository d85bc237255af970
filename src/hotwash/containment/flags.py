"""The kill switch of each feature: what mode it is in, who set it, and why.

A flag is one of five modes:

    enabled    the feature runs normally
    disabled   the feature is off (the application shows its fallback)
    human      every case is routed to people
    rollback   pin the previous prompt/model version; ``params`` carries it (``prompt_version``,
               ``model``), taken from the manifest's ``containment.rollback_to``
    throttle   a rate cap (``params.rate_per_s``, from the caller or the manifest's
               ``containment.throttle_rps``) and/or a budget cap (``params.budget_usd_per_day``)

A feature with no stored flag is in its manifest's ``containment.default`` (enabled unless the
manifest says otherwise); so is a feature the manifest does not know, because applications must be
able to read a flag for any feature. Every change is recorded on the timeline of each open
incident of the feature, in the same unit of work as the change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

from hotwash.errors import InvalidValue, NotFound, StaleUpdate
from hotwash.manifest import Manifest, Mode

if TYPE_CHECKING:
    from hotwash.store import Store

__all__ = ["MODES", "check_mode", "default_flag", "get_flag", "list_flags", "set_mode"]

MODES: tuple[str, ...] = get_args(Mode)

# The params each mode understands; other modes keep whatever JSON object they are given.
_PARAM_KEYS = {
    "rollback": ("prompt_version", "model"),
    "throttle": ("rate_per_s", "budget_usd_per_day"),
}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidValue(f"unknown mode {mode!r}: use one of {', '.join(MODES)}", field="mode")
    return mode


def check_feature(feature: str) -> str:
    if not isinstance(feature, str) or not 1 <= len(feature) <= 200 or not feature.isprintable():
        raise InvalidValue(f"not a feature name: {feature!r} (1-200 printable characters)", field="feature")
    return feature


def _incident_ref(number: int | None) -> str | None:
    return f"INC-{number}" if number is not None else None


def _manifest_params(manifest: Manifest, feature: str, mode: str) -> dict[str, Any]:
    """The params a mode takes from the manifest (empty when the manifest declares none)."""
    declared = manifest.features.get(feature)
    if declared is None:
        return {}
    containment = declared.containment
    if mode == "rollback" and containment.rollback_to is not None:
        return containment.rollback_to.model_dump(exclude_none=True)
    if mode == "throttle" and containment.throttle_rps is not None:
        return {"rate_per_s": containment.throttle_rps}
    return {}


def default_flag(manifest: Manifest | None, feature: str) -> dict[str, Any]:
    """The flag of a feature nobody has set: the manifest's declared default, else enabled."""
    declared = manifest.features.get(feature) if manifest is not None else None
    mode = declared.containment.default if declared is not None else "enabled"
    params = _manifest_params(manifest, feature, mode) if manifest is not None else {}
    return {"feature": feature, "mode": mode, "params": params, "reason": None, "incident": None,
            "updated_at": None, "updated_by": None, "version": 0, "source": "default"}


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"feature": row["feature"], "mode": row["mode"], "params": row["params"] or {}, "reason": row["reason"],
            "incident": _incident_ref(row["incident_id"]), "updated_at": row["updated_at"],
            "updated_by": row["updated_by"], "version": row["version"], "source": "set"}


def get_flag(store: Store, manifest: Manifest, feature: str) -> dict[str, Any]:
    """The flag of ``feature``: the stored one, else the manifest's default (``source`` says which)."""
    row = store.get_flag_row(feature)
    return _public(row) if row is not None else default_flag(manifest, feature)


def list_flags(store: Store, manifest: Manifest) -> list[dict[str, Any]]:
    """Every feature of the manifest and every feature with a stored flag, by name."""
    stored = {row["feature"]: _public(row) for row in store.list_flag_rows()}
    names = sorted(set(manifest.features) | set(stored))
    return [stored.get(name) or default_flag(manifest, name) for name in names]


def _positive(params: Mapping[str, Any], key: str) -> None:
    value = params.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InvalidValue(f"params.{key} must be a positive number, got {value!r}", field=f"params.{key}")


def resolve_params(manifest: Manifest, feature: str, mode: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params stored with ``mode``: the manifest's, overridden by the caller's, checked."""
    given = dict(params or {})
    known = _PARAM_KEYS.get(mode)
    if known is None:
        return given
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidValue(f"{mode} takes params {', '.join(known)}; not {', '.join(unknown)}",
                           field=f"params.{unknown[0]}")
    merged = {**_manifest_params(manifest, feature, mode), **{k: v for k, v in given.items() if v is not None}}
    if mode == "rollback":
        for key in known:
            if key in merged and (not isinstance(merged[key], str) or not merged[key].strip()):
                raise InvalidValue(f"params.{key} must be a non-empty string", field=f"params.{key}")
        if not merged:
            raise InvalidValue(
                f"rollback of {feature} needs the version to pin: declare features.{feature}.containment.rollback_to "
                "(prompt_version and/or model) in hotwash.yaml",
                field=f"features.{feature}.containment.rollback_to")
    else:
        for key in known:
            _positive(merged, key)
        if not merged:
            raise InvalidValue(
                f"throttle of {feature} needs a cap: give a rate (--rate, params.rate_per_s) or a budget "
                f"(params.budget_usd_per_day), or declare features.{feature}.containment.throttle_rps in hotwash.yaml",
                field="params.rate_per_s")
    return merged


def set_mode(store: Store, manifest: Manifest, feature: str, mode: str, *, actor: str,
             params: Mapping[str, Any] | None = None, reason: str | None = None, incident_id: int | None = None,
             expected_version: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Put ``feature`` in ``mode`` and record the change on each open incident of the feature.

    ``expected_version`` is the version the caller last read (0 for a feature never set): if the
    flag changed since, nothing is written and StaleUpdate is raised. ``incident_id`` links the
    change to an incident (it is also recorded on that incident's timeline, open or not).
    Returns the new flag.
    """
    check_feature(feature)
    check_mode(mode)
    if not actor:
        raise InvalidValue("a flag change needs an actor", field="actor")
    if expected_version is not None and expected_version < 0:
        raise InvalidValue(f"expected_version must be 0 or more, got {expected_version}", field="expected_version")
    resolved = resolve_params(manifest, feature, mode, params)
    ts = now or datetime.now(UTC)
    with store.transaction() as conn:
        current = store.lock_flag(conn, feature)
        stored_version = current["version"] if current else 0
        if expected_version is not None and expected_version != stored_version:
            raise _stale(feature, expected_version, current)
        if incident_id is not None and not store.incident_exists(conn, incident_id):
            raise NotFound(f"no incident INC-{incident_id}: see `hotwash incident list`")
        before = current["mode"] if current else default_flag(manifest, feature)["mode"]
        row = store.write_flag(conn, feature=feature, mode=mode, params=resolved, reason=reason,
                               incident_id=incident_id, updated_at=ts, updated_by=actor, version=stored_version + 1)
        targets = store.open_incident_ids_for(conn, feature)
        if incident_id is not None and incident_id not in targets:
            targets.append(incident_id)
        text = f"{feature}: {before} → {mode}" + (f" ({reason})" if reason else "")
        data = {"feature": feature, "from": before, "to": mode, "params": resolved, "version": row["version"]}
        for target in targets:
            store.add_timeline(incident_id=target, ts=ts, actor=actor, kind="flag", text=text, data=data, conn=conn)
    return _public(row)


def _stale(feature: str, expected: int, current: Mapping[str, Any] | None) -> StaleUpdate:
    if current is None:
        return StaleUpdate(f"the flag of {feature} has never been set (version 0), not version {expected}: "
                           "read it again and retry")
    return StaleUpdate(f"the flag of {feature} is at version {current['version']} ({current['mode']}, set by "
                       f"{current['updated_by']}), not {expected}: read it again and retry")
