"""People and API tokens (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotwash.errors import InvalidValue, NotFound
from hotwash.web.auth import ROLES, add_token, add_user
from hotwash.web.ui.core import Admin, UIRoute, field_errors, read_form, redirect, render

router = APIRouter(route_class=UIRoute)


def _page(request: Request, *, errors: dict[str, str] | None = None, new_token: dict | None = None,
          status: int = 200, form: dict[str, str] | None = None) -> Response:
    store = request.app.state.store
    return render(request, "admin.html", {"users": store.list_users(), "tokens": store.list_tokens(), "roles": ROLES,
                                          "errors": errors or {}, "new_token": new_token, "form": form or {}},
                  status=status)


@router.get("/admin")
def admin_page(request: Request, _: Admin) -> Response:
    return _page(request)


@router.post("/admin/users")
async def admin_add_user(request: Request, _: Admin) -> Response:
    form = await read_form(request)
    password = form.get("password", "")
    try:
        add_user(request.app.state.store, name=form.get("name", ""), role=form.get("role", ""),
                 password=password or None)
    except InvalidValue as exc:
        return _page(request, errors=field_errors(exc, "name"), status=422,
                     form={"name": form.get("name", ""), "role": form.get("role", "")})
    request.app.state.auth_configured = True
    return redirect(request, "/admin")


@router.post("/admin/users/{name}/disable")
async def admin_disable_user(name: str, request: Request, _: Admin) -> Response:
    if not request.app.state.store.disable_user(name):
        raise NotFound(f"no person named {name!r}")
    return redirect(request, "/admin")


@router.post("/admin/tokens")
async def admin_add_token(request: Request, _: Admin) -> Response:
    form = await read_form(request)
    try:
        token_id, token = add_token(request.app.state.store, name=form.get("token_name", ""),
                                    role=form.get("token_role", ""))
    except InvalidValue as exc:
        field = {"name": "token_name", "role": "token_role"}.get(exc.field or "", "token_name")
        return _page(request, errors={field: str(exc)}, status=422)
    request.app.state.auth_configured = True
    # Shown once, on this response only; never stored.
    return _page(request, new_token={"id": token_id, "token": token}, status=201)


@router.post("/admin/tokens/{token_id}/revoke")
async def admin_revoke_token(token_id: int, request: Request, _: Admin) -> Response:
    if not request.app.state.store.revoke_token(token_id, datetime.now(UTC)):
        raise NotFound(f"no active token {token_id}")
    return redirect(request, "/admin")
