"""`hotwash user ...` and `hotwash token ...`: people and machine tokens, with roles."""

from __future__ import annotations

import typer

user_app = typer.Typer(help="People who log in to the web UI.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for machines and scripts.", no_args_is_help=True)
