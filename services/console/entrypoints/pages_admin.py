"""Console accounts for the county's administrator: add a person with a role (and the village
or unit they act for), disable or enable them, set a new password (which lifts a lock-out).
`supplyctl user …` does the same from a terminal."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.common.errors import Conflict, DomainError, InvalidInput
from services.console.domain.accounts import ROLES
from services.console.entrypoints.web import Viewer, audit, console_of, gettext_of, page, render

ADMIN = ("admin",)


async def _users_page(request: Request, errors: dict | None = None, values: dict | None = None,
                      status: int = 200) -> Response:
    store = console_of(request).store
    users = await run_in_threadpool(store.list_users)
    return render(request, "admin/users.html", status=status, users=users, roles=ROLES, errors=errors or {},
                  values=values or {}, now=console_of(request).now())


@page(*ADMIN)
async def users(request: Request, viewer: Viewer) -> Response:
    return await _users_page(request)


@page(*ADMIN)
async def add_user(request: Request, viewer: Viewer) -> Response:
    form = request.state.form
    values = {k: str(form.get(k, "")).strip() for k in ("username", "role", "scope", "display_name")}
    values["username"] = values["username"].lower()
    password = str(form.get("password", ""))
    _ = gettext_of(request)
    try:
        await run_in_threadpool(console_of(request).store.add_user, values["username"], values["role"],
                                values["scope"], password, values["display_name"])
    except InvalidInput as exc:
        return await _users_page(request, {exc.field: exc.message.split(": ", 1)[-1]}, values, 422)
    except Conflict:
        return await _users_page(request, {"username": _("This user name is taken")}, values, 422)
    await audit(request, viewer, "add_user", f"{values['username']} ({values['role']} {values['scope']})")
    return RedirectResponse("/admin/users", status_code=303)


@page(*ADMIN)
async def change_user(request: Request, viewer: Viewer) -> Response:
    form = request.state.form
    username = request.path_params["username"]
    action = str(form.get("action", ""))
    store = console_of(request).store
    try:
        if action in ("disable", "enable"):
            if username == viewer.username:
                return await _users_page(request, {f"user-{username}": gettext_of(request)(
                    "You cannot disable your own account")}, status=422)
            await run_in_threadpool(store.set_disabled, username, action == "disable")
        elif action == "password":
            await run_in_threadpool(store.set_password, username, str(form.get("password", "")))
        else:
            return Response("unknown action", status_code=400)
    except DomainError as exc:
        return await _users_page(request, {f"user-{username}": exc.message.split(": ", 1)[-1]}, status=422)
    await audit(request, viewer, f"{action}_user", username)
    return RedirectResponse("/admin/users", status_code=303)


routes = [
    Route("/admin/users", users),
    Route("/admin/users/add", add_user, methods=["POST"]),
    Route("/admin/users/{username}", change_user, methods=["POST"]),
]
