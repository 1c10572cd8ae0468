"""Settings from the environment. A bad value stops the process at start with a message that
names the variable: a county's IT staff should never find out at 11:00 that a port was mistyped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.auth import MIN_KEY_CHARS, ROLES, SCOPED_ROLES, is_jwt
from services.common.clock import Clock, parse_clock

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "allocation", "logistics", "monitoring")
DEFAULT_GRPC_PORTS = {"intake": 50051, "allocation": 50052, "logistics": 50053, "monitoring": 50054,
                      "market": 50055}
REPORTS_GRPC_PORT = 50056  # the reports process (services/reports): GetDailyReport, forwarded by allocation


class ConfigError(ValueError):
    pass


def _env(env: dict, name: str, default: str) -> str:
    return env.get(name, default).strip()


def _int(env: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = _env(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _flag(env: dict, name: str) -> bool:
    raw = _env(env, name, "0")
    if raw not in ("0", "1"):
        raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")
    return raw == "1"


def _url(env: dict, name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = _env(env, name, default)
    scheme = urlparse(raw).scheme.split("+")[0]
    if scheme not in schemes:
        raise ConfigError(f"{name} must be a URL with scheme {' or '.join(schemes)}, got {raw!r}")
    return raw


def _tokens(raw: str) -> dict[str, tuple[str, str, str]]:
    """`token=identity:role[:scope],…` → {token: (identity, role, scope)}.

    scope ties a village worker or a unit head to their requester id ('' = county-wide).
    """
    tokens: dict[str, tuple[str, str, str]] = {}
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        token, _, who = entry.partition("=")
        identity, _, rest = who.partition(":")
        role, _, scope = rest.partition(":")
        if not token or not identity or not role:
            raise ConfigError(f"SUPPLY_AUTH_TOKENS entry must be token=identity:role[:scope], got {entry!r}")
        if len(token) < 16:
            raise ConfigError(f"SUPPLY_AUTH_TOKENS: token for {identity!r} is shorter than 16 characters")
        if is_jwt(token):
            raise ConfigError(f"SUPPLY_AUTH_TOKENS: token for {identity!r} has two dots, so it would "
                              f"be read as a signed token (JWT); choose another")
        if role not in ROLES:
            raise ConfigError(f"SUPPLY_AUTH_TOKENS: token for {identity!r} has unknown role {role!r}; "
                              f"one of {', '.join(ROLES)}")
        if role in SCOPED_ROLES and not scope:
            raise ConfigError(f"SUPPLY_AUTH_TOKENS: token for {identity!r} has role {role} but no scope "
                              f"(the requester id it acts for: …={identity}:{role}:<requester id>)")
        tokens[token] = (identity, role, scope)
    return tokens


def _targets(env: dict) -> dict[str, str]:
    out = {}
    names = [(s, f"{s.upper()}_GRPC_TARGET") for s in DEFAULT_GRPC_PORTS] + [("reports", "REPORTS_GRPC_TARGET")]
    for s, name in names:
        raw = _env(env, name, "")
        if raw:
            host, _, port = raw.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"{name} must be host:port, got {raw!r}")
            out[s] = raw
    return out


DEV_TOKEN = "dev-token-county-supply-0001"
DEV_JWT_KEY = "dev-jwt-key-NOT-FOR-PRODUCTION-county-supply"
DEV_SECRET = "dev-secret-not-for-production"
DEV_LEDGER_KEY = "dev-ledger-key-NOT-FOR-PRODUCTION-county-supply"  # logistics' SUPPLY_LEDGER_KEY


@dataclass(frozen=True)
class GrpcTls:
    """PEM files for gRPC. Server: cert + key, and client_ca to demand client certificates
    (mTLS). Client: ca to verify servers, client_cert + client_key to present (mTLS)."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @property
    def enabled(self) -> bool:
        """The deployment speaks TLS: servers serve it, clients inside the system use it."""
        return bool(self.cert or self.ca)


def _grpc_tls(env: dict) -> GrpcTls:
    paths = {}
    for attr, name in (("cert", "SUPPLY_GRPC_TLS_CERT"), ("key", "SUPPLY_GRPC_TLS_KEY"),
                       ("client_ca", "SUPPLY_GRPC_TLS_CLIENT_CA"), ("ca", "SUPPLY_GRPC_TLS_CA"),
                       ("client_cert", "SUPPLY_GRPC_TLS_CLIENT_CERT"),
                       ("client_key", "SUPPLY_GRPC_TLS_CLIENT_KEY")):
        raw = _env(env, name, "")
        if raw and not Path(raw).is_file():
            raise ConfigError(f"{name}: no such file {raw} / 证书文件不存在")
        paths[attr] = Path(raw) if raw else None
    for a, b in (("cert", "key"), ("client_cert", "client_key")):
        if bool(paths[a]) != bool(paths[b]):
            raise ConfigError(f"SUPPLY_GRPC_TLS_{a.upper()} and SUPPLY_GRPC_TLS_{b.upper()} go together "
                              f"/ 证书与私钥须同时配置")
    if paths["client_ca"] and not paths["cert"]:
        raise ConfigError("SUPPLY_GRPC_TLS_CLIENT_CA needs SUPPLY_GRPC_TLS_CERT and SUPPLY_GRPC_TLS_KEY "
                          "/ 要求客户端证书须先配置服务端证书")
    return GrpcTls(**paths)


PLAINTEXT = GrpcTls()  # no TLS: development on one machine


@dataclass(frozen=True)
class Settings:
    service: str
    env: str
    database_url: str
    amqp_url: str
    mqtt_url: str
    influx_url: str
    influx_db: str
    grpc_host: str
    grpc_port: int
    grpc_ports: dict[str, int]
    grpc_targets: dict[str, str]
    timezone: ZoneInfo
    clock_spec: str
    auth_tokens: dict[str, tuple[str, str, str]]
    secret: str
    var_dir: Path
    catalogue_path: Path | None
    relay_batch: int
    log_level: str
    group_commit_linger: float = 0.005
    relay_stop_grace: float = 10.0
    relay_idle: float = 0.05  # SUPPLY_RELAY_IDLE_MS: how often an idle relay looks for new events
    jwt_key: str = ""  # SUPPLY_JWT_KEY: signs the console's per-person tokens; '' accepts none
    grpc_tls: GrpcTls = PLAINTEXT
    grpc_threads: int = 0  # SUPPLY_GRPC_THREADS: the API's thread pool; 0 = the service's default
    grpc_reuseport: bool = False  # SUPPLY_GRPC_REUSEPORT=1: several API processes share the port
    extra: dict[str, str] = field(default_factory=dict)  # SUPPLY_* and <SERVICE>_* variables

    def clock(self) -> Clock:
        return parse_clock(self.clock_spec)

    def grpc_target(self, service: str) -> str:
        """Where to call another service: <SERVICE>_GRPC_TARGET (host:port, e.g. logistics-api:50053
        in containers), else this machine at that service's port."""
        if service in self.grpc_targets:
            return self.grpc_targets[service]
        host = "127.0.0.1" if self.grpc_host in ("0.0.0.0", "[::]") else self.grpc_host
        return f"{host}:{self.grpc_ports[service]}"


def seconds(settings: Settings, name: str, default: float, lo: float, hi: float) -> float:
    """A service's own duration setting <name> in seconds, refused naming it unless lo … hi."""
    raw = settings.extra.get(name, "").strip() or f"{default:g}"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r} / {name} 应为秒数") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g} seconds, got {value:g} "
                          f"/ {name} 应在 {lo:g} 至 {hi:g} 秒之间")
    return value


def database_url(service: str, env: dict) -> str:
    """<SERVICE>_DATABASE_URL, else DATABASE_URL, else a SQLite file under SUPPLY_VAR_DIR."""
    var_dir = Path(_env(env, "SUPPLY_VAR_DIR", str(ROOT / "var")))
    default_db = f"sqlite:///{var_dir / (service + '.db')}"
    db_url = _env(env, f"{service.upper()}_DATABASE_URL", _env(env, "DATABASE_URL", default_db))
    if not db_url.startswith(("sqlite", "postgresql")):
        raise ConfigError(f"DATABASE_URL must be sqlite:/// or postgresql+psycopg://, got {db_url!r}")
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    return db_url


def load_settings(service: str, env: dict | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    if service not in SERVICES + ("tools", "console", "reports", "notify", "market"):
        raise ConfigError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    var_dir = Path(_env(env, "SUPPLY_VAR_DIR", str(ROOT / "var")))
    db_url = database_url(service, env)
    ports = {
        s: _int(env, f"{s.upper()}_GRPC_PORT", port, 1, 65535) for s, port in DEFAULT_GRPC_PORTS.items()
    }
    ports["reports"] = _int(env, "REPORTS_GRPC_PORT", REPORTS_GRPC_PORT, 1, 65535)
    tz_name = _env(env, "SUPPLY_TIMEZONE", "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"SUPPLY_TIMEZONE is not a known time zone: {tz_name!r}") from None
    clock_spec = _env(env, "SUPPLY_CLOCK", "real")
    try:
        parse_clock(clock_spec)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    supply_env = _env(env, "SUPPLY_ENV", "dev")
    if supply_env == "production":
        from services.common.production import refuse_weak_settings

        refuse_weak_settings(env, service)
    raw_tokens = _env(env, "SUPPLY_AUTH_TOKENS", "")
    tokens = _tokens(raw_tokens)
    if not tokens:
        if supply_env == "production":
            raise ConfigError("SUPPLY_AUTH_TOKENS must be set in production")
        tokens = {DEV_TOKEN: ("dev", "admin", "")}
    secret = _env(env, "SUPPLY_SECRET", "")
    if not secret:
        if supply_env == "production":
            raise ConfigError("SUPPLY_SECRET must be set in production (pseudonyms, hashes)")
        secret = DEV_SECRET
    jwt_key = _env(env, "SUPPLY_JWT_KEY", "")
    if not jwt_key and supply_env != "production":
        jwt_key = DEV_JWT_KEY
    if len(jwt_key) < MIN_KEY_CHARS:
        raise ConfigError(f"SUPPLY_JWT_KEY must be set{' in production' if not jwt_key else ''} to a "
                          f"random key of at least {MIN_KEY_CHARS} characters (signs the console's "
                          f"per-person tokens)")
    cat = _env(env, "SUPPLY_CATALOGUE", "")
    if cat and not Path(cat).is_file():
        raise ConfigError(f"SUPPLY_CATALOGUE file not found: {cat}")
    level = _env(env, "SUPPLY_LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"SUPPLY_LOG_LEVEL must be DEBUG/INFO/WARNING/ERROR, got {level!r}")
    return Settings(
        service=service,
        env=supply_env,
        database_url=db_url,
        amqp_url=_url(env, "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", ("amqp", "amqps")),
        mqtt_url=_url(env, "MQTT_URL", "mqtt://127.0.0.1:1883", ("mqtt", "mqtts")),
        influx_url=_url(env, "INFLUX_URL", "http://127.0.0.1:8086", ("http", "https")),
        influx_db=_env(env, "INFLUX_DB", "supply"),
        grpc_host=_env(env, "SUPPLY_GRPC_HOST", "127.0.0.1"),
        grpc_port=ports.get(service, 0),
        grpc_ports=ports,
        grpc_targets=_targets(env),
        timezone=tz,
        clock_spec=clock_spec,
        auth_tokens=tokens,
        secret=secret,
        var_dir=var_dir,
        catalogue_path=Path(cat) if cat else None,
        relay_batch=_int(env, "SUPPLY_RELAY_BATCH", 500, 1, 10_000),
        log_level=level,
        group_commit_linger=_int(env, "SUPPLY_GROUP_COMMIT_LINGER_MS", 5, 0, 100) / 1000,
        relay_stop_grace=_int(env, "SUPPLY_RELAY_STOP_GRACE_S", 10, 1, 300),
        relay_idle=_int(env, "SUPPLY_RELAY_IDLE_MS", 50, 1, 2_000) / 1000,
        jwt_key=jwt_key,
        grpc_tls=_grpc_tls(env),
        grpc_threads=_int(env, "SUPPLY_GRPC_THREADS", 0, 0, 1_000),
        grpc_reuseport=_flag(env, "SUPPLY_GRPC_REUSEPORT"),
        # the platform's SUPPLY_* and the service's own <SERVICE>_* (MONITORING_WATCH_STREAMS_MAX …)
        extra={k: v for k, v in env.items() if k.startswith(("SUPPLY_", f"{service.upper()}_"))},
    )
