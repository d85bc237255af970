"""What every page shares: the Jinja2 environment, who is asking, CSRF, and HTML error pages.

Safety rules kept here, once, for every page:

- **Autoescape is on for every template** (``autoescape=True``, whatever the file name), and no
  template is ever built from data (no ``from_string``): telemetry text such as ``{{7*7}}`` or
  ``<script>`` is shown as text. The only ``Markup`` that reaches a template comes from
  :mod:`hotwash.insights.charts` and the Markdown renderer, both of which escape their input.
- **CSRF**: every unsafe request to a page carries a token (hidden form field ``csrf_token`` or the
  ``X-CSRF-Token`` header htmx sends). The token is an HMAC keyed by a random per-browser cookie
  (``hotwash_csrf``, HttpOnly, SameSite=Strict) over the login session cookie, so it is bound to
  the session and changes at login; a cross-site page can neither read nor forge it.
- **Roles**: pages read with ``viewer``; changes need ``responder`` (buttons are hidden below it and
  the POST is refused with 403 anyway); people and tokens need ``admin``.
- Every response carries a strict Content-Security-Policy (scripts only from ``/static``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader

from hotwash.errors import AuthError, Conflict, Forbidden, HotwashError, InvalidValue, NotFound, StoreError
from hotwash.web.auth import SESSION_COOKIE, Principal, identify

CSRF_COOKIE = "hotwash_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


# -- templates ---------------------------------------------------------------------------------
def _dt(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(fmt) + " UTC"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    from hotwash.insights.charts import fmt

    return fmt(seconds, "s")


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    delta = ((now or datetime.now(UTC)) - value).total_seconds()
    word = "ago" if delta >= 0 else "from now"
    return f"{_duration(abs(delta))} {word}"


def _http_url(value: object) -> str | None:
    """The URL if it is http(s), else None: links from data never become ``javascript:`` links."""
    text = str(value or "").strip()
    return text if urlsplit(text).scheme in ("http", "https") and urlsplit(text).netloc else None


def make_environment() -> Environment:
    env = Environment(loader=PackageLoader("hotwash.web", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["dt"] = _dt
    env.filters["day"] = lambda v: _dt(v, "%Y-%m-%d")
    env.filters["duration"] = _duration
    env.filters["ago"] = _ago
    env.filters["http_url"] = _http_url
    env.globals["now"] = lambda: datetime.now(UTC)
    return env


ENV = make_environment()


# -- who is asking -----------------------------------------------------------------------------
class LoginRequired(HotwashError):
    """No credentials on a page request: send the browser to the login page."""


def current_principal(request: Request) -> Principal | None:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = identify(request)
    request.state.principal = principal
    return principal


def need(role: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency for pages: the principal if its role is at least ``role``; unsafe requests must
    also carry the CSRF token."""

    async def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            raise LoginRequired("log in to continue")
        if not principal.allows(role):
            raise Forbidden(f"{principal.name} has the {principal.role} role; this needs {role}")
        if request.method not in SAFE_METHODS:
            await read_form(request)
            check_csrf(request)
        return principal

    return dependency


# -- CSRF --------------------------------------------------------------------------------------
def _csrf_key(request: Request) -> str:
    key = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if not key:
        key = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = key
    return key


def csrf_token(request: Request) -> str:
    """The token pages embed in their forms (and the htmx header)."""
    session = request.cookies.get(SESSION_COOKIE, "")
    return hmac.new(_csrf_key(request).encode(), f"hotwash-csrf|{session}".encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request) -> None:
    """Refuse an unsafe request without this browser's token (a cross-site form post)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden(f"cross-site request refused (Origin {origin})")
    sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "form_csrf", None) or ""
    if not request.cookies.get(CSRF_COOKIE) or not hmac.compare_digest(sent, csrf_token(request)):
        raise Forbidden("the form's security token is missing or stale: reload the page and try again")


async def read_form(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (files ignored); remembers its CSRF field."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    request.state.form_csrf = values.pop(CSRF_FIELD, None)
    return values


# -- responses ---------------------------------------------------------------------------------
def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def finish(request: Request, response: Response) -> Response:
    """Add the security headers and, if this request minted one, the CSRF cookie."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    new = getattr(request.state, "new_csrf_cookie", None)
    already = any(v.startswith(f"{CSRF_COOKIE}=") for v in response.headers.getlist("set-cookie"))
    if new and not request.cookies.get(CSRF_COOKIE) and not already:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", secure=_secure(request), path="/")
    return response


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    ctx = {
        "request": request,
        "user": principal,
        "can_respond": bool(principal and principal.allows("responder")),
        "is_admin": bool(principal and principal.allows("admin")),
        "csrf": csrf_token(request),
        "path": request.url.path,
        **(context or {}),
    }
    html = ENV.get_template(template).render(ctx)
    return finish(request, HTMLResponse(html, status_code=status, headers=headers))  # type: ignore[return-value]


def redirect(request: Request, url: str) -> Response:
    """After a successful POST: see the result with a GET (htmx follows HX-Redirect)."""
    if request.headers.get("hx-request"):
        return finish(request, Response(status_code=204, headers={"HX-Redirect": url}))
    return finish(request, RedirectResponse(url, status_code=303))


def safe_next(value: str | None) -> str:
    """A local path to go back to after login; anything else (another site, a scheme) goes home."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def error_page(request: Request, exc: HotwashError) -> Response:
    if isinstance(exc, LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, f"/login?next={quote(target, safe='/')}")
    if isinstance(exc, Forbidden):
        status, title = 403, "Not allowed"
    elif isinstance(exc, AuthError):
        status, title = 401, "Not logged in"
    elif isinstance(exc, NotFound):
        status, title = 404, "Not found"
    elif isinstance(exc, Conflict):
        status, title = 409, "Conflict"
    elif isinstance(exc, InvalidValue):
        status, title = 422, "Invalid value"
    elif isinstance(exc, StoreError):
        status, title = 503, "Store unavailable"
    else:
        status, title = 400, "Cannot do that"
    if request.headers.get("hx-request"):
        return render(request, "partials/error.html", {"title": title, "message": str(exc)}, status=status)
    return render(request, "error.html", {"title": title, "message": str(exc), "status": status}, status=status)


class UIRoute(APIRoute):
    """Page routes: any deliberate error becomes an HTML page (or a login redirect), never JSON or a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except HotwashError as exc:
                return error_page(request, exc)
            return finish(request, response)

        return page_handler


def field_errors(exc: InvalidValue, default: str = "form") -> dict[str, str]:
    """``{field: message}`` for showing an error next to its field."""
    return {(exc.field or default): str(exc)}


# Page parameters: ``who: Viewer`` etc.
Viewer = Annotated[Principal, Depends(need("viewer"))]
Responder = Annotated[Principal, Depends(need("responder"))]
Admin = Annotated[Principal, Depends(need("admin"))]
