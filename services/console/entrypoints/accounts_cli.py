"""`supplyctl user …`: console accounts from a terminal (the first admin is made here)."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from services.common.db import make_engine
from services.common.errors import DomainError
from services.common.migrate import check_at_head
from services.console.adapters.store import AccountStore
from services.console.config import load_console_settings
from services.console.domain.accounts import ROLE_NAMES


def account_store() -> AccountStore:
    settings = load_console_settings()
    engine = make_engine(settings.common.database_url)
    check_at_head("console", engine)
    return AccountStore(engine, lambda: datetime.now(UTC), settings.lockout, settings.session)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password / 密码: ")
    if getpass.getpass("again / 再次输入: ") != first:
        raise SystemExit("the two passwords differ / 两次输入不一致")
    return first


def run_user_command(args, out: Console) -> int:
    store = account_store()
    try:
        if args.user_cmd == "add":
            user = store.add_user(args.name, args.role, args.scope, _password(args.password_stdin),
                                  args.display_name)
            out.print(f"[green]✓[/] {user.username}: {user.role} ({ROLE_NAMES[user.role][0]})"
                      + (f", scope {user.scope}" if user.scope else ""))
        elif args.user_cmd == "list":
            table = Table(title="console accounts / 控制台账号")
            for col in ("user", "role", "scope", "name", "state"):
                table.add_column(col)
            now = datetime.now(UTC)
            for u in store.list_users():
                state = "disabled" if u.disabled else "locked" if u.locked(now) else "active"
                table.add_row(u.username, f"{u.role} {ROLE_NAMES[u.role][0]}", u.scope, u.display_name, state)
            out.print(table)
        elif args.user_cmd == "passwd":
            store.set_password(args.name, _password(args.password_stdin))
            out.print(f"[green]✓[/] password of {args.name} changed; the lock, if any, is lifted")
        else:
            store.set_disabled(args.name, args.user_cmd == "disable")
            out.print(f"[green]✓[/] {args.name} {args.user_cmd}d")
    except DomainError as exc:
        out.print(f"[red]{exc.message}[/]")
        return 2
    return 0
