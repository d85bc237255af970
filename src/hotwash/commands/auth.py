"""`hotwash user ...` and `hotwash token ...`: people and machine tokens, with roles."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hotwash.commands.common import JsonOpt, out, print_json, store
from hotwash.errors import InvalidValue, NotFound
from hotwash.store.auth import ROLES

user_app = typer.Typer(help="People who log in to the web UI.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for machines and scripts.", no_args_is_help=True)

RoleOpt = Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")]


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The person's login name.")],
    role: RoleOpt = "viewer",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input (first line), never from an argument.",
    )] = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="No password: the person logs in through the trusted reverse proxy only.")] = False,
) -> None:
    """Add a person, or change an existing person's role and password."""
    if password_stdin == no_password:
        raise InvalidValue("give --password-stdin (and pipe the password in) or --no-password", field="password")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidValue("no password on standard input: e.g. `printf %s \"$PW\" | hotwash user add NAME "
                               "--password-stdin`", field="password")
    st = store()
    try:
        from hotwash.web.auth import add_user  # not at import: it needs FastAPI, a fifth of a second

        user = add_user(st, name=name, role=role, password=password)
    finally:
        st.dispose()
    out.print(f"user {escape(str(user['name']))} ({role}) saved", highlight=False)


@user_app.command("list")
def user_list(json_: JsonOpt = False) -> None:
    """Everyone who can log in, with their role."""
    st = store()
    try:
        rows = st.list_users()
    finally:
        st.dispose()
    people = [{"name": r["name"], "role": r["role"], "created_at": r["created_at"], "disabled": r["disabled"],
               "password": r["password_hash"] is not None} for r in rows]
    if json_:
        print_json(people)
        return
    table = Table("name", "role", "password", "disabled", "created")
    for p in people:
        table.add_row(escape(p["name"]), p["role"], "yes" if p["password"] else "no", "yes" if p["disabled"] else "",
                      p["created_at"].strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument(help="The person's login name.")]) -> None:
    """Disable a person and end their web sessions (history keeps their name)."""
    st = store()
    try:
        if not st.disable_user(name):
            raise NotFound(f"no person named {name!r}: see `hotwash user list`")
    finally:
        st.dispose()
    out.print(f"user {escape(name)} disabled", highlight=False)


@token_app.command("add")
def token_add(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci-ingest.")],
    role: RoleOpt = "viewer",
    json_: JsonOpt = False,
) -> None:
    """Make an API token and print it once (only its SHA-256 is stored)."""
    st = store()
    try:
        from hotwash.web.auth import add_token

        token_id, token = add_token(st, name=name, role=role)
    finally:
        st.dispose()
    if json_:
        print_json({"id": token_id, "name": name, "role": role, "token": token})
        return
    # The secret alone on stdout, so `TOKEN=$(hotwash token add ci --role responder)` works.
    sys.stdout.write(token + "\n")
    sys.stderr.write(f"token {token_id} ({role}) for {name}: shown once, store it now; "
                     f"revoke with `hotwash token revoke {token_id}`\n")


@token_app.command("list")
def token_list(json_: JsonOpt = False) -> None:
    """Every token with its role and last use (never the secret)."""
    st = store()
    try:
        rows = st.list_tokens()
    finally:
        st.dispose()
    if json_:
        print_json(rows)
        return
    table = Table("id", "name", "role", "created", "last used", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["name"]), r["role"], r["created_at"].strftime("%Y-%m-%d %H:%M"),
                      r["last_used_at"].strftime("%Y-%m-%d %H:%M") if r["last_used_at"] else "",
                      r["revoked_at"].strftime("%Y-%m-%d %H:%M") if r["revoked_at"] else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (see `hotwash token list`).")]) -> None:
    """Revoke a token: requests carrying it get 401 from now on."""
    from datetime import UTC, datetime

    st = store()
    try:
        if not st.revoke_token(token_id, datetime.now(UTC)):
            raise NotFound(f"no active token {token_id}: see `hotwash token list`")
    finally:
        st.dispose()
    out.print(f"token {token_id} revoked")
