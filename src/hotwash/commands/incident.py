"""`hotwash incident ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="incident commands.", no_args_is_help=True)
