"""`hotwash action ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="action commands.", no_args_is_help=True)
