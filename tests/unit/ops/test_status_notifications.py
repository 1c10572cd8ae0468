"""`supplyctl status` shows, per notification channel, what waits and what was given up (nobody
was told), read from notify's own database."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from sqlalchemy import insert

from services import cli_status
from services.common.db import make_engine, utcnow
from services.common.migrate import upgrade
from services.notify.adapters.schema import tables


def _row(i: int, channel: str, state: str, error: str | None = None, minutes_ago: int = 0) -> dict:
    at = utcnow() - timedelta(minutes=minutes_ago)
    return {"notification_id": f"n-{i}", "channel": channel, "event_id": f"e-{i}",
            "event_type": "alert_raised", "notice": {}, "state": state, "attempts": 3,
            "next_attempt_at": at, "last_error": error, "created_at": at, "sent_at": None}


def test_status_counts_waiting_and_given_up_notifications_per_channel(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    upgrade("notify", url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(tables["notifications"]), [
            _row(1, "hq-wecom", "sent"), _row(2, "hq-wecom", "pending"),
            _row(3, "hq-mail", "dead", "smtp: 421 try again later\nTraceback …", minutes_ago=30),
            _row(4, "hq-mail", "dead", "connection refused", minutes_ago=90),
            _row(5, "hq-mail", "pending")])
    engine.dispose()
    monkeypatch.setenv("NOTIFY_DATABASE_URL", url)

    assert cli_status.notifications() == [
        ("hq-mail", 1, 2, cli_status.notifications()[0][3], "smtp: 421 try again later Traceback …"),
        ("hq-wecom", 1, 0, None, "")]
    console = Console(width=200, record=True)
    console.print(cli_status.notifications_table())
    shown = console.export_text()
    assert "given up" in shown and "hq-mail" in shown and "30 min" in shown


def test_status_says_why_when_notify_has_no_database(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    console = Console(width=200, record=True)
    console.print(cli_status.notifications_table())
    assert "no database yet" in console.export_text()
