"""`hotwash flag ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="flag commands.", no_args_is_help=True)
