"""What every CLI command shares: consoles, JSON output, settings, the store, the actor, times."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from hotwash.errors import HotwashError
from hotwash.settings import Settings, get_settings
from hotwash.store import Store, open_store

# soft_wrap: messages stay on one line (greppable), whatever the terminal width.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who is acting, for the timeline (default: $HOTWASH_USER, else your login name)."),
]


def print_json(value: Any) -> None:
    """One JSON document on stdout; datetimes as ISO 8601 UTC."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z).decode() + "\n")


def settings() -> Settings:
    return get_settings()


def store(cfg: Settings | None = None) -> Store:
    """The store, checked to be migrated (a clear error says to run `hotwash init` if not)."""
    st = open_store((cfg or settings()).resolved_database_url)
    st.check_ready()
    return st


def actor(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("HOTWASH_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time from an option; naive times are UTC."""
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HotwashError(f"{option}: not an ISO 8601 time: {value!r} (e.g. 2026-11-27T04:00:00Z)") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def parse_incident_id(value: str) -> int:
    """``INC-3``, ``inc-3`` or ``3`` -> 3."""
    text = value.strip()
    if text.upper().startswith("INC-"):
        text = text[4:]
    if not text.isdigit():
        raise HotwashError(f"not an incident id: {value!r} (expected INC-<number>, e.g. INC-3)")
    return int(text)
