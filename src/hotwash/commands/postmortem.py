"""`hotwash postmortem ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="postmortem commands.", no_args_is_help=True)
