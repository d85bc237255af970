"""The CLI reference (``docs/cli.md``), generated from the Typer app itself.

``python -m hotwash.docs.cli_reference > docs/cli.md`` regenerates it; a test fails when the
committed file differs from what the code says.
"""

from __future__ import annotations

from typing import Any

import typer

HEADER = """# CLI reference

Generated from the code by `python -m hotwash.docs.cli_reference > docs/cli.md`;
`tests/test_docs.py` fails when this file and the commands disagree. Every command accepts `--help`.
Errors exit with status 2 and a message that names the problem; `--json` prints machine-readable output.
"""


def _param_row(param: Any) -> str:
    # Typer vendors its own click: go by what a parameter says about itself, not by class.
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`"
        kind = "argument" + ("" if param.required else ", optional") + (", repeatable" if param.nargs == -1 else "")
    else:
        name = " / ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        kind = "flag" if isinstance(param.default, bool) else "option"
        if param.required:
            kind += ", required"
        elif param.default not in (None, (), []) and not isinstance(param.default, bool):
            kind += f", default `{param.default}`"
        if getattr(param, "multiple", False):
            kind += ", repeatable"
    cell = (param.help or "").replace("|", r"\|")
    return f"| {name} | {kind} | {cell} |"


def _walk(cmd: Any, path: list[str], out: list[str]) -> None:
    if hasattr(cmd, "commands"):
        if path:
            out.append(f"{'#' * min(len(path) + 1, 4)} `hotwash {' '.join(path)}`\n")
            out.append((cmd.help or "").strip() + "\n")
        for sub in cmd.commands.values():
            if not sub.hidden:
                _walk(sub, [*path, sub.name], out)
        return
    params = [p for p in cmd.params if not getattr(p, "hidden", False) and p.name != "help"]
    usage_args = " ".join(
        p.name.upper() + ("..." if p.nargs == -1 else "") for p in params if p.param_type_name == "argument")
    out.append(f"{'#' * min(len(path) + 1, 4)} `hotwash {' '.join(path)}`\n")
    out.append(f"```\nhotwash {' '.join(path)} [OPTIONS] {usage_args}".rstrip() + "\n```\n")
    out.append((cmd.help or "").strip() + "\n")
    if params:
        out.append("| parameter | kind | meaning |\n|---|---|---|")
        out.extend(_param_row(p) for p in params)
        out.append("")


def render() -> str:
    from hotwash.cli import app

    root = typer.main.get_command(app)
    out = [HEADER]
    _walk(root, [], out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
