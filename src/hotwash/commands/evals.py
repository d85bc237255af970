"""`hotwash eval ...` and `hotwash verify`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Regression eval cases born from incidents.", no_args_is_help=True)


def verify(incident: str) -> None:
    """Compute and store both proofs of the verify step for an incident."""
    raise typer.Exit(2)
