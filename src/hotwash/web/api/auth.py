"""`/api/v1` routes: log in and out (the session cookie), who am I, people and API tokens (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from hotwash.errors import NotFound
from hotwash.web.auth import (
    ROLES,
    SESSION_COOKIE,
    Principal,
    add_token,
    add_user,
    login,
    require,
    token_hash,
)

Viewer = Annotated[Principal, Depends(require("viewer"))]
Admin = Annotated[Principal, Depends(require("admin"))]

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class PrincipalOut(BaseModel):
    name: str
    role: str
    via: str


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(description=f"one of {', '.join(ROLES)}")
    password: str | None = Field(default=None, max_length=1024,
                                 description="at least 8 characters; omit for reverse-proxy-only accounts")


class UserPublic(BaseModel):
    name: str
    role: str
    created_at: datetime
    disabled: bool
    password: bool


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="what the token is for, e.g. ci-ingest")
    role: str = Field(description=f"one of {', '.join(ROLES)}")


class TokenPublic(BaseModel):
    id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret: shown once, only its SHA-256 is stored")


@router.post("/auth/login", response_model=PrincipalOut)
def login_api(body: LoginIn, request: Request, response: Response) -> PrincipalOut:
    """Open a web session (sets the HttpOnly ``hotwash_session`` cookie)."""
    settings = request.app.state.settings
    cookie = login(request.app.state.store, body.name, body.password, hours=settings.session_hours)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=settings.session_hours * 3600, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    user = request.app.state.store.get_user(body.name)
    return PrincipalOut(name=body.name, role=user["role"], via="session")


@router.post("/auth/logout", status_code=204)
def logout_api(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        request.app.state.store.drop_session(token_hash(cookie))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/auth/me", response_model=PrincipalOut)
def whoami(principal: Viewer) -> PrincipalOut:
    return PrincipalOut(name=principal.name, role=principal.role, via=principal.via)


def _user_public(row: dict) -> UserPublic:
    return UserPublic(name=row["name"], role=row["role"], created_at=row["created_at"], disabled=row["disabled"],
                      password=row["password_hash"] is not None)


@router.get("/users", response_model=list[UserPublic])
def list_users(request: Request, _: Admin) -> list[UserPublic]:
    return [_user_public(r) for r in request.app.state.store.list_users()]


@router.post("/users", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, request: Request, _: Admin) -> UserPublic:
    """Add a person (or change an existing person's role and password)."""
    store = request.app.state.store
    add_user(store, name=body.name, role=body.role, password=body.password)
    request.app.state.auth_configured = True
    return _user_public(store.get_user(body.name.strip()))


@router.delete("/users/{name}", status_code=204)
def disable_user(name: str, request: Request, _: Admin) -> Response:
    """Disable a person and end their sessions (their history stays)."""
    if not request.app.state.store.disable_user(name):
        raise NotFound(f"no person named {name!r}: see GET /api/v1/users")
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(request: Request, _: Admin) -> list[TokenPublic]:
    return [TokenPublic(**r) for r in request.app.state.store.list_tokens()]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, request: Request, _: Admin) -> TokenCreated:
    """Make an API token. The response carries the secret once; store it now."""
    store = request.app.state.store
    token_id, token = add_token(store, name=body.name, role=body.role)
    request.app.state.auth_configured = True
    row = next(r for r in store.list_tokens() if r["id"] == token_id)
    return TokenCreated(**row, token=token)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, request: Request, _: Admin) -> Response:
    if not request.app.state.store.revoke_token(token_id, datetime.now(UTC)):
        raise NotFound(f"no active token {token_id}: see GET /api/v1/tokens")
    return Response(status_code=204)

