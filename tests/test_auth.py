"""People, tokens and roles: the CLI that makes them, the API that manages them, the web login
(scrypt passwords, HttpOnly + SameSite=Lax session cookie, CSRF on forms), and 401/403 — never 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hotwash.cli import app as cli_app
from hotwash.errors import InvalidValue, NotFound
from hotwash.settings import get_settings
from hotwash.store import Store
from hotwash.web import create_app
from hotwash.web.auth import SESSION_COOKIE, token_hash, verify_password
from hotwash.web.ui.core import CSRF_COOKIE, safe_next

ADMIN = "bootstrap-admin-token"
MANIFEST = "features:\n  support-bot:\n    containment: {fallback: human}\n"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


@pytest.fixture
def client(store: Store, tmp_path: Path, db_url: str) -> Iterator[TestClient]:
    (tmp_path / "hotwash.yaml").write_text(MANIFEST)
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, admin_token=ADMIN,
                            manifest=tmp_path / "hotwash.yaml")
    with TestClient(create_app(settings, store=store)) as c:
        yield c


def login(c: TestClient, name: str, password: str, *, next_: str = "/incidents") -> object:
    page = c.get("/login")
    return c.post("/login", data={"name": name, "password": password, "next": next_, "csrf_token": csrf_of(page.text)},
                  follow_redirects=False)


# -- the CLI ----------------------------------------------------------------------------------------
def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli_app, list(args), input=stdin, catch_exceptions=True)


def test_cli_users_and_tokens(workspace: Path, store: Store) -> None:
    added = run("user", "add", "ana", "--role", "responder", "--password-stdin", stdin="correct horse\n")
    assert added.exit_code == 0, added.output
    user = store.get_user("ana")
    assert user["role"] == "responder" and verify_password("correct horse", user["password_hash"])
    assert "correct horse" not in user["password_hash"]

    listed = orjson.loads(run("user", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["password"], u["disabled"]) for u in listed] == [("ana", "responder", True,
                                                                                         False)]

    made = run("token", "add", "ci-ingest", "--role", "viewer")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("hw_") and len(token) > 30
    row = store.token_by_hash(token_hash(token))
    assert row["name"] == "ci-ingest" and row["role"] == "viewer"

    tokens = orjson.loads(run("token", "list", "--json").stdout)
    assert [(t["id"], t["name"], t["role"], t["revoked_at"]) for t in tokens] == [(row["id"], "ci-ingest", "viewer",
                                                                                    None)]
    assert token not in run("token", "list").stdout and "token_hash" not in run("token", "list", "--json").stdout

    assert run("token", "revoke", str(row["id"])).exit_code == 0
    assert store.token_by_hash(token_hash(token)) is None
    again = run("token", "revoke", str(row["id"]))
    assert isinstance(again.exception, NotFound)


def test_cli_refuses_bad_users(workspace: Path, store: Store) -> None:
    bad_role = run("user", "add", "bo", "--role", "root", "--password-stdin", stdin="long enough pw\n")
    assert isinstance(bad_role.exception, InvalidValue) and bad_role.exception.field == "role"
    short = run("user", "add", "bo", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert isinstance(short.exception, InvalidValue) and short.exception.field == "password"
    neither = run("user", "add", "bo", "--role", "viewer")
    assert isinstance(neither.exception, InvalidValue)
    assert store.get_user("bo") is None
    bad_token = run("token", "add", "x", "--role", "god")
    assert isinstance(bad_token.exception, InvalidValue) and store.list_tokens() == []


# -- the API ----------------------------------------------------------------------------------------
def test_api_people_and_tokens_need_admin(client: TestClient, store: Store) -> None:
    assert client.get("/api/v1/users").status_code == 401
    assert client.get("/api/v1/users", headers=bearer("hw_nonsense")).status_code == 401

    made = client.post("/api/v1/users", json={"name": "vic", "role": "viewer", "password": "viewer-pass"},
                       headers=bearer(ADMIN))
    assert made.status_code == 201 and made.json()["password"] is True
    bad = client.post("/api/v1/users", json={"name": "x", "role": "boss", "password": "whatever1"},
                      headers=bearer(ADMIN))
    assert bad.status_code == 422 and bad.json()["field"] == "role"
    short = client.post("/api/v1/users", json={"name": "x", "role": "viewer", "password": "123"},
                        headers=bearer(ADMIN))
    assert short.status_code == 422 and short.json()["field"] == "password"

    tok = client.post("/api/v1/tokens", json={"name": "reader", "role": "viewer"}, headers=bearer(ADMIN))
    assert tok.status_code == 201
    secret, token_id = tok.json()["token"], tok.json()["id"]
    assert store.token_by_hash(token_hash(secret))["id"] == token_id
    listed = client.get("/api/v1/tokens", headers=bearer(ADMIN)).json()
    assert [t["name"] for t in listed] == ["reader"] and all("token" not in t for t in listed)

    # A viewer token reads but is refused people management, with 403 (not 401, not 500).
    assert client.get("/api/v1/auth/me", headers=bearer(secret)).json() == {"name": "reader", "role": "viewer",
                                                                              "via": "token"}
    assert client.get("/api/v1/users", headers=bearer(secret)).status_code == 403
    assert client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=bearer(secret)).status_code == 403

    assert client.delete(f"/api/v1/tokens/{token_id}", headers=bearer(ADMIN)).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(secret)).status_code == 401
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=bearer(ADMIN)).status_code == 404
    assert client.delete("/api/v1/users/nobody", headers=bearer(ADMIN)).status_code == 404


def test_api_login_sets_a_safe_cookie(client: TestClient, store: Store) -> None:
    client.post("/api/v1/users", json={"name": "ana", "role": "responder", "password": "ana-password"},
                headers=bearer(ADMIN))
    wrong = client.post("/api/v1/auth/login", json={"name": "ana", "password": "nope-nope"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.cookies
    ok = client.post("/api/v1/auth/login", json={"name": "ana", "password": "ana-password"})
    assert ok.status_code == 200 and ok.json() == {"name": "ana", "role": "responder", "via": "session"}
    header = ok.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header
    assert client.get("/api/v1/auth/me").json()["name"] == "ana"
    assert client.post("/api/v1/auth/logout").status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/auth/me").status_code == 401


# -- the web login ----------------------------------------------------------------------------------
def test_web_login_logout_and_redirects(client: TestClient, store: Store) -> None:
    client.post("/api/v1/users", json={"name": "ana", "role": "responder", "password": "ana-password"},
                headers=bearer(ADMIN))
    page = client.get("/incidents?status=all", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/incidents%3Fstatus%3Dall"

    form = client.get("/login?next=/flags")
    assert form.status_code == 200 and 'value="/flags"' in form.text
    assert "httponly" in form.headers["set-cookie"].lower() and CSRF_COOKIE in form.headers["set-cookie"]

    wrong = login(client, "ana", "not-the-password")
    assert wrong.status_code == 401 and "wrong name or password" in wrong.text
    empty = login(client, "", "")
    assert empty.status_code == 422 and "enter your name" in empty.text and "enter your password" in empty.text

    ok = login(client, "ana", "ana-password", next_="/flags")
    assert ok.status_code == 303 and ok.headers["location"] == "/flags"
    cookie = next(h for h in ok.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    home = client.get("/incidents")
    assert home.status_code == 200 and "ana · responder" in home.text

    # Logging out needs the CSRF token, ends the session in the store, and drops the cookie.
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    out = client.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/incidents", follow_redirects=False).status_code == 303


def test_login_form_needs_its_csrf_token_and_refuses_open_redirects(client: TestClient) -> None:
    client.post("/api/v1/users", json={"name": "ana", "role": "admin", "password": "ana-password"},
                headers=bearer(ADMIN))
    client.get("/login")
    forged = client.post("/login", data={"name": "ana", "password": "ana-password", "csrf_token": "0" * 64},
                         follow_redirects=False)
    assert forged.status_code == 403 and SESSION_COOKIE not in forged.cookies
    ok = login(client, "ana", "ana-password", next_="//evil.example/x")
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    for bad in ("https://evil.example", "//evil", "/\\evil", "javascript:alert(1)", ""):
        assert safe_next(bad) == "/"
    assert safe_next("/incidents/INC-3?x=1") == "/incidents/INC-3?x=1"


def test_cross_site_posts_are_refused(client: TestClient, store: Store) -> None:
    client.post("/api/v1/users", json={"name": "ana", "role": "admin", "password": "ana-password"},
                headers=bearer(ADMIN))
    login(client, "ana", "ana-password")
    page = client.get("/flags")
    token = csrf_of(page.text)
    other = client.post("/flags/support-bot", data={"mode": "disabled", "csrf_token": token},
                        headers={"origin": "https://evil.example"}, follow_redirects=False)
    assert other.status_code == 403
    # A token from another browser (another CSRF cookie) does not fit this one.
    stolen = client.post("/flags/support-bot", data={"mode": "disabled", "csrf_token": "ab" * 32},
                         follow_redirects=False)
    assert stolen.status_code == 403
    assert store.get_flag_row("support-bot") is None
    ok = client.post("/flags/support-bot", data={"mode": "disabled", "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and store.get_flag_row("support-bot")["updated_by"] == "ana"
    # htmx sends the token as a header instead of a form field.
    via_header = client.post("/flags/support-bot", data={"mode": "enabled"}, headers={"x-csrf-token": token},
                             follow_redirects=False)
    assert via_header.status_code == 303 and store.get_flag_row("support-bot")["mode"] == "enabled"


def test_viewers_see_no_buttons_and_cannot_post(client: TestClient, store: Store) -> None:
    client.post("/api/v1/users", json={"name": "vic", "role": "viewer", "password": "viewer-pass"},
                headers=bearer(ADMIN))
    login(client, "vic", "viewer-pass")
    page = client.get("/flags")
    assert page.status_code == 200 and 'data-feature="support-bot"' in page.text and "flag-form" not in page.text
    refused = client.post("/flags/support-bot", data={"mode": "disabled", "csrf_token": csrf_of(page.text)},
                          follow_redirects=False)
    assert refused.status_code == 403 and "vic has the viewer role; this needs responder" in refused.text
    assert client.get("/admin").status_code == 403
    assert store.get_flag_row("support-bot") is None


def test_trusted_proxy_header(store: Store, tmp_path: Path, db_url: str) -> None:
    settings = get_settings(home=tmp_path / ".hotwash", database_url=db_url, admin_token=ADMIN,
                            trusted_user_header="X-Forwarded-User", manifest=tmp_path / "hotwash.yaml")
    (tmp_path / "hotwash.yaml").write_text(MANIFEST)
    store.upsert_user(name="rita", role="responder", password_hash=None, now=datetime.now(UTC))
    with TestClient(create_app(settings, store=store)) as c:
        assert c.get("/flags", follow_redirects=False).status_code == 303
        page = c.get("/flags", headers={"X-Forwarded-User": "rita"})
        assert page.status_code == 200 and "rita · responder" in page.text and "flag-form" in page.text
        stranger = c.get("/flags", headers={"X-Forwarded-User": "someone"})
        assert "someone · viewer" in stranger.text and "flag-form" not in stranger.text
        store.disable_user("rita")
        assert c.get("/flags", headers={"X-Forwarded-User": "rita"}).status_code == 403


def test_admin_page_manages_people_and_shows_a_token_once(client: TestClient, store: Store) -> None:
    client.post("/api/v1/users", json={"name": "root", "role": "admin", "password": "root-password"},
                headers=bearer(ADMIN))
    login(client, "root", "root-password")
    page = client.get("/admin")
    token = csrf_of(page.text)
    bad = client.post("/admin/users", data={"name": "bo", "role": "viewer", "password": "short", "csrf_token": token})
    assert bad.status_code == 422 and "at least 8 characters" in bad.text and store.get_user("bo") is None
    ok = client.post("/admin/users", data={"name": "bo", "role": "viewer", "password": "long-enough",
                                           "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and store.get_user("bo")["role"] == "viewer"
    made = client.post("/admin/tokens", data={"token_name": "ci", "token_role": "responder", "csrf_token": token})
    assert made.status_code == 201
    secret = re.search(r'<pre id="new-token">(hw_[^<]+)</pre>', made.text).group(1)
    assert store.token_by_hash(token_hash(secret))["role"] == "responder"
    assert secret not in client.get("/admin").text
