"""`hotwash incident diagnose ...`: the category's diagnostic questions, pre-filled with evidence."""

from __future__ import annotations

import typer


def register(incident_app: typer.Typer) -> None:
    """Add the diagnosis commands to the `incident` group."""
