"""`supplyctl doctor [--production]`: the settings every process checks at start, and whether
the configured servers answer; nothing is started."""

from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape

from services.common.config import SERVICES, ConfigError, database_url, load_settings

console = Console()
MIGRATED = (*SERVICES, "market", "console", "reports", "notify")  # every service with a database


def _servers_problems(env: dict, timeout: float = 2.0) -> list[str]:
    """Each configured server that does not answer within `timeout` s, named by its setting."""
    import pika
    import requests

    from services.common.db import make_engine, ping

    def database(service: str) -> None:
        url = database_url(service, env)
        if url.startswith("postgresql"):
            engine = make_engine(url, pool_size=1)
            try:
                ping(engine)
            finally:
                engine.dispose()

    def amqp() -> None:
        params = pika.URLParameters(load_settings("tools", env).amqp_url)
        params.socket_timeout = params.blocked_connection_timeout = timeout
        params.connection_attempts = 1
        pika.BlockingConnection(params).close()

    def mqtt() -> None:
        import threading
        from urllib.parse import urlparse

        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        u = urlparse(load_settings("tools", env).mqtt_url)
        answered, reason = threading.Event(), []
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        if u.username:
            client.username_pw_set(u.username, u.password)
        if u.scheme == "mqtts":
            client.tls_set()
        client.on_connect = lambda c, ud, flags, code, props: (reason.append(code), answered.set())
        client.connect(u.hostname or "127.0.0.1", u.port or 1883, keepalive=5)
        client.loop_start()
        try:
            if not answered.wait(timeout):
                raise TimeoutError("no CONNACK")
            if reason[0].is_failure:
                raise ConnectionError(str(reason[0]))
        finally:
            client.disconnect()
            client.loop_stop()

    def influx() -> None:
        from urllib.parse import urlparse

        u = urlparse(load_settings("tools", env).influx_url)
        base = u._replace(netloc=u.hostname + (f":{u.port}" if u.port else "")).geturl()
        auth = (u.username, u.password or "") if u.username else None
        requests.get(f"{base.rstrip('/')}/ping", auth=auth, timeout=timeout).raise_for_status()

    checks = [(f"{s.upper()}_DATABASE_URL", lambda s=s: database(s)) for s in MIGRATED]
    checks += [("AMQP_URL", amqp), ("MQTT_URL", mqtt), ("INFLUX_URL", influx)]
    problems = []
    for name, check in checks:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            problems.append(f"{name}: the server does not answer ({type(exc).__name__}) / 服务器无应答")
    return list(dict.fromkeys(problems))


def cmd_doctor(production: bool) -> int:
    """The settings every process would check at start (as production would, with --production),
    then whether the configured servers answer; nothing is started. 0 and "ok", or 1 and a list."""
    from services.common.production import production_problems

    env = dict(os.environ)
    if production:
        env["SUPPLY_ENV"] = "production"
    problems = []
    if env.get("SUPPLY_ENV", "").strip() == "production":
        problems = list(dict.fromkeys(p for s in (*SERVICES, "console") for p in production_problems(env, s)))
    if not problems:
        try:
            from services.console.config import load_console_settings

            for service in SERVICES:
                load_settings(service, env)
            load_console_settings(env)
        except ConfigError as exc:
            problems.append(str(exc))
    # the servers are asked with the settings as given, even weak ones: both lists at once
    problems += _servers_problems({**env, "SUPPLY_ENV": "dev"})
    for problem in problems:
        console.print(f"[red]✗[/] {escape(problem)}", highlight=False)
    if problems:
        console.print(f"{len(problems)} problem(s) / 个问题")
        return 1
    console.print("[green]ok[/] — settings and servers / 配置与服务器正常")
    return 0
