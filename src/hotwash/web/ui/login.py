"""Log in and out: local people with scrypt-hashed passwords, a session cookie (HttpOnly, SameSite=Lax)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from hotwash.errors import AuthError, InvalidValue
from hotwash.web.auth import SESSION_COOKIE, login, token_hash
from hotwash.web.ui.core import (
    UIRoute,
    check_csrf,
    current_principal,
    finish,
    read_form,
    redirect,
    render,
    safe_next,
)

router = APIRouter(route_class=UIRoute)


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/incidents", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    current_principal(request)  # the header shows who is logged in already, if anyone
    return render(request, "login.html", {"next": safe_next(next), "name": "", "errors": {}})


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(request)
    name, password = form.get("name", "").strip(), form.get("password", "")
    target = safe_next(form.get("next"))
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "enter your name"
    if not password:
        errors["password"] = "enter your password"  # noqa: S105 - a message, not a secret
    if not errors:
        store = request.app.state.store
        hours = request.app.state.settings.session_hours
        try:
            cookie = login(store, name, password, hours=hours)
        except AuthError as exc:
            errors["form"] = str(exc)
        except InvalidValue as exc:
            errors[exc.field or "form"] = str(exc)
        else:
            response = redirect(request, target)
            response.set_cookie(SESSION_COOKIE, cookie, max_age=hours * 3600, httponly=True, samesite="lax",
                                secure=request.url.scheme == "https", path="/")
            return response
    return render(request, "login.html", {"next": target, "name": name, "errors": errors}, status=401
                  if "form" in errors else 422)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    check_csrf(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        request.app.state.store.drop_session(token_hash(cookie))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return finish(request, response)
