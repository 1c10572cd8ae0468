"""What SUPPLY_ENV=production refuses: development defaults, published tokens and keys, guest and
anonymous broker accounts, failpoints, plaintext gRPC on a reachable address. Every process
checks at start (load_settings) and `supplyctl doctor --production` checks the same without
starting anything. All problems are listed at once, so an operator fixes them in one pass; no
message repeats a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlparse

from services.common.auth import MIN_KEY_CHARS, ROLES, SCOPED_ROLES
from services.common.config import (
    DEV_JWT_KEY,
    DEV_LEDGER_KEY,
    DEV_SECRET,
    DEV_TOKEN,
    SERVICES,
    ConfigError,
)

MIN_TOKEN_CHARS = 32
MIN_PASSWORD_CHARS = 16
# tokens published in this repository (config, the demo, tests, benches, deploy templates)
PUBLISHED_TOKENS = frozenset({
    DEV_TOKEN, "demo-hq-token-0000000001", "bench-admin-token-00001", "test-gateway-token-0000001",
    "test-admin-token-000001", "test-village-token-00001", "test-hq-token-0000000001",
    "CHANGE-ME-admin-token-000001", "CHANGE-ME-hq-token-0000000001",
})
PUBLISHED_KEYS = frozenset({DEV_JWT_KEY, DEV_SECRET, DEV_LEDGER_KEY})
WEAK_PASSWORDS = frozenset({"guest", "password", "postgres", "admin", "secret", "supply", "change-me",
                            "changeme", *SERVICES, "console"})
LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")
MQTT_SERVICES = ("monitoring",)  # processes that connect to the MQTT broker
HEADER = "production refuses these settings / 生产环境拒绝以下配置:"


def _is_template(value: str) -> bool:
    return "change-me" in value.lower()


def _key(name: str, value: str, purpose: str) -> list[str]:
    if not value:
        return [f"{name} must be set in production ({purpose}) / 生产环境须设置 {name}"]
    if value in PUBLISHED_KEYS or _is_template(value):
        return [f"{name} is a published development or template value / {name} 使用了公开的开发或模板值"]
    if len(value) < MIN_KEY_CHARS:
        return [f"{name} is shorter than {MIN_KEY_CHARS} characters / {name} 少于 {MIN_KEY_CHARS} 个字符"]
    return []


def _tokens(raw: str) -> list[str]:
    if not raw:
        return ["SUPPLY_AUTH_TOKENS must be set in production / 生产环境须设置 SUPPLY_AUTH_TOKENS"]
    problems = []
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        token, _, who = entry.partition("=")
        identity, _, rest = who.partition(":")
        role, _, scope = rest.partition(":")
        whose = f"SUPPLY_AUTH_TOKENS: the token for {identity or '?'!r}"
        if not token or not identity or not role:
            problems.append("SUPPLY_AUTH_TOKENS: an entry is not token=identity:role[:scope] "
                            "/ 令牌格式应为 token=identity:role[:scope]")
            continue
        if token in PUBLISHED_TOKENS or _is_template(token):
            problems.append(f"{whose} is a published development or template token / 使用了公开的开发或模板令牌")
        elif len(token) < MIN_TOKEN_CHARS:
            problems.append(f"{whose} is shorter than {MIN_TOKEN_CHARS} characters / 令牌少于 {MIN_TOKEN_CHARS} 个字符")
        if role not in ROLES:
            problems.append(f"{whose} has unknown role {role!r} / 角色无效")
        elif role in SCOPED_ROLES and not scope:
            problems.append(f"{whose} has role {role} but no scope / 该角色须绑定村居或单位")
    return problems


def _url_account(name: str, url: str, *, anonymous_ok: bool) -> list[str]:
    parsed = urlparse(url)
    user, password = unquote(parsed.username or ""), unquote(parsed.password or "")
    if not user and not password:
        return [] if anonymous_ok else [f"{name} has no user name and password (anonymous) / {name} 未配置账号密码（匿名）"]
    if "guest" in (user, password):
        return [f"{name} uses the guest account or password / {name} 使用了 guest 账号或密码"]
    if (not password or password.lower() in WEAK_PASSWORDS or password.lower() == user.lower()
            or _is_template(password)):
        return [f"{name} has a missing, default or template password / {name} 密码缺失、为默认值或模板值"]
    if len(password) < MIN_PASSWORD_CHARS:
        return [f"{name} password is shorter than {MIN_PASSWORD_CHARS} characters / {name} 密码少于 {MIN_PASSWORD_CHARS} 个字符"]
    return []


def database_problems(env: Mapping[str, str], service: str) -> list[str]:
    for name in (f"{service.upper()}_DATABASE_URL", "DATABASE_URL"):
        url = env.get(name, "").strip()
        if url:
            return _url_account(name, url, anonymous_ok=False) if url.startswith("postgresql") else []
    return []


def production_problems(env: Mapping[str, str], service: str) -> list[str]:
    """Every weak setting of `service`'s process in `env` (a service, "console", or "tools":
    supplyctl, which checks only the settings shared by every process)."""
    get = lambda name: env.get(name, "").strip()  # noqa: E731
    problems = [*_key("SUPPLY_SECRET", get("SUPPLY_SECRET"), "pseudonyms, hashes"),
                *_key("SUPPLY_JWT_KEY", get("SUPPLY_JWT_KEY"), "signs the console's per-person tokens"),
                *_tokens(get("SUPPLY_AUTH_TOKENS"))]
    service_token = get("SUPPLY_SERVICE_TOKEN")
    if service_token and (service_token in PUBLISHED_TOKENS or len(service_token) < MIN_TOKEN_CHARS):
        problems.append(f"SUPPLY_SERVICE_TOKEN is a published token or shorter than {MIN_TOKEN_CHARS} "
                        f"characters / SUPPLY_SERVICE_TOKEN 为公开令牌或过短")
    if get("SUPPLY_FAILPOINTS"):
        problems.append("SUPPLY_FAILPOINTS is set: failpoints kill processes on purpose, for tests only "
                        "/ 生产环境不得设置 SUPPLY_FAILPOINTS（仅供测试）")
    if service == "logistics":
        problems += _key("SUPPLY_LEDGER_KEY", get("SUPPLY_LEDGER_KEY"), "keys the ledger's hash chain")
    if service == "tools":  # supplyctl: migrate checks each database itself; no broker, no port
        return list(dict.fromkeys(problems))
    if service != "console":
        problems += _url_account("AMQP_URL", get("AMQP_URL") or "amqp://guest:guest@127.0.0.1", anonymous_ok=False)
    if service in MQTT_SERVICES:
        problems += _url_account("MQTT_URL", get("MQTT_URL"), anonymous_ok=False)
    problems += database_problems(env, service)
    if service == "console" and get("CONSOLE_COOKIE_SECURE") not in ("", "1"):
        problems.append("CONSOLE_COOKIE_SECURE=0 is refused in production (cookies would travel in clear) "
                        "/ 生产环境须启用 CONSOLE_COOKIE_SECURE=1（否则会话 Cookie 以明文传输）")
    host = get("SUPPLY_GRPC_HOST") or "127.0.0.1"
    if service in SERVICES and host not in LOOPBACK and not get("SUPPLY_GRPC_TLS_CERT"):
        problems.append(f"SUPPLY_GRPC_HOST={host} serves gRPC beyond this machine without TLS: set "
                        f"SUPPLY_GRPC_TLS_CERT and SUPPLY_GRPC_TLS_KEY (docs/security.md) "
                        f"/ gRPC 对外监听须配置 TLS 证书")
    return list(dict.fromkeys(problems))


def refuse_weak_settings(env: Mapping[str, str], service: str) -> None:
    """ConfigError listing every problem, if there is any."""
    problems = production_problems(env, service)
    if problems:
        raise ConfigError("\n  - ".join([HEADER, *problems]))
