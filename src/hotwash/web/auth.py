"""Who is asking, and may they? Tokens for machines, logins for people, roles for both.

Roles are ordered ``viewer < responder < admin``: viewers read, responders run the playbook
(contain, update, diagnose, write postmortems), admins manage people and tokens.

A request is identified, in this order, by ``Authorization: Bearer <token>`` (the bootstrap
``HOTWASH_ADMIN_TOKEN`` or a token made with ``hotwash token add``; only its SHA-256 is stored),
the web login cookie, or the header of a trusted reverse proxy (``HOTWASH_TRUSTED_USER_HEADER``).
A store with no people and no tokens, and no admin token set, is an unconfigured local install:
requests are served as ``local`` with the admin role (``hotwash serve`` refuses to listen on a
non-loopback address in that state).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request

from hotwash.errors import AuthError, Forbidden, InvalidValue
from hotwash.store import Store
from hotwash.store.auth import ROLES

SESSION_COOKIE = "hotwash_session"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    via: str  # token | admin-token | session | proxy | open

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValue(f"unknown role {role!r}: use one of {', '.join(ROLES)}", field="role")
    return role


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "hw_" + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """scrypt (stdlib, memory-hard) with a random salt: ``scrypt$n$r$p$salt$hash``."""
    if len(password) < 8:
        raise InvalidValue("a password needs at least 8 characters", field="password")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got.hex(), digest)


def login(store: Store, name: str, password: str, *, hours: int) -> str:
    """Check a person's password and open a web session; returns the cookie value."""
    user = store.get_user(name)
    if user is None or user["disabled"] or not verify_password(password, user["password_hash"]):
        raise AuthError("wrong name or password")
    cookie = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    store.add_session(id_hash=token_hash(cookie), user_name=name, now=now, expires_at=now + timedelta(hours=hours))
    return cookie


def identify(request: Request) -> Principal | None:
    """The principal behind a request, or None if it carries no valid credentials."""
    store: Store = request.app.state.store
    settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        if settings.admin_token and hmac.compare_digest(token, settings.admin_token):
            return Principal("admin-token", "admin", "admin-token")
        row = store.token_by_hash(token_hash(token))
        if row is None:
            raise AuthError("unknown or revoked API token: make one with `hotwash token add NAME --role ROLE`")
        return Principal(row["name"], row["role"], "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user = store.session_user(token_hash(cookie), datetime.now(UTC))
        if user is not None:
            return Principal(user["name"], user["role"], "session")
    if settings.trusted_user_header:
        name = request.headers.get(settings.trusted_user_header)
        if name:
            user = store.get_user(name)
            if user is not None and user["disabled"]:
                raise Forbidden(f"{name} is disabled")
            return Principal(name, user["role"] if user else "viewer", "proxy")
    if settings.admin_token is None and not _configured(request):
        return Principal("local", "admin", "open")
    return None


def _configured(request: Request) -> bool:
    # Once a person or token exists the install stays configured; remember it.
    state = request.app.state
    if not getattr(state, "auth_configured", False):
        state.auth_configured = state.store.auth_configured()
    return state.auth_configured


def require(role: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the principal, if its role is at least ``role`` (else 401 / 403)."""
    check_role(role)

    def dependency(request: Request) -> Principal:
        principal = identify(request)
        if principal is None:
            raise AuthError("authentication required: send 'Authorization: Bearer <token>' or log in")
        if not principal.allows(role):
            raise Forbidden(f"{principal.name} has the {principal.role} role; this needs {role}")
        request.state.principal = principal
        return principal

    return dependency


# -- managing people and tokens (the CLI, the API and the admin page share these) ----------------
def check_name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 200 or not name.isprintable():
        raise InvalidValue(f"not a usable name: {name!r} (1-200 printable characters)", field=field)
    return name


def add_user(store: Store, *, name: str, role: str, password: str | None) -> dict[str, object]:
    """Create a person, or update their role and password (which also re-enables them).

    ``password`` None makes an account that cannot log in with a password (reverse-proxy logins)."""
    name = check_name(name)
    check_role(role)
    hashed = hash_password(password) if password is not None else None
    store.upsert_user(name=name, role=role, password_hash=hashed, now=datetime.now(UTC))
    return {"name": name, "role": role, "password": hashed is not None}


def add_token(store: Store, *, name: str, role: str) -> tuple[int, str]:
    """Make an API token; returns its id and the token itself, which is shown once and never stored."""
    name = check_name(name)
    check_role(role)
    token = new_token()
    token_id = store.add_token(name=name, token_hash=token_hash(token), role=role, now=datetime.now(UTC))
    return token_id, token
