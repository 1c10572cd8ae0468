"""`supplyctl backup DIR` and `supplyctl restore DIR`: every service's database and InfluxDB.

PostgreSQL databases are dumped with pg_dump (custom format, --no-owner: restorable into a
database owned by another role); SQLite files are copied with SQLite's online backup API; InfluxDB
with `influxd backup -portable` over its RPC port (INFLUX_BACKUP_ADDR, else INFLUX_URL's host at
port 8088). Each dump is consistent in itself; they are taken one after the other, while the
services may run.

Why a restore re-sends the end of every outbox: events that were on their way at backup time
(in a broker queue, or consumed by a service whose database was dumped before it applied them)
are gone with the wiped broker. The restore marks every outbox event published since
`replay` before the backup started as unsent; the relays send them again, and consumers, which
record each event id with its effect (services.common.consumers), apply only those they had not.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from services.common.config import ROOT, SERVICES, database_url, load_settings
from services.common.db import make_engine
from services.common.migrate import current, heads
from services.ops.manifest import (
    FORMAT,
    INFLUX_DIR,
    KIND,
    MANIFEST,
    SUMS,
    BackupRefused,
    file_problems,
    manifest_problems,
    parse_sums,
    sums_text,
)


def services_with_databases() -> list[str]:
    """Every service with migrations (a database of its own), the four domain services first."""
    found = {p.parent.parent.name for p in (ROOT / "services").glob("*/migrations/env.py")}
    return [*(s for s in SERVICES if s in found), *sorted(found - set(SERVICES))]


DEFAULT_REPLAY = timedelta(hours=24)
Step = Callable[[str], None]


@dataclass(frozen=True)
class Database:
    service: str
    url: str  # SQLAlchemy URL, as the service reads it

    @property
    def kind(self) -> str:
        return "postgresql" if self.url.startswith("postgresql") else "sqlite"

    @property
    def file(self) -> str:
        return f"{self.service}.dump" if self.kind == "postgresql" else f"{self.service}.db"

    @property
    def name(self) -> str:
        """The database name or SQLite path, no credentials (for the manifest and messages)."""
        return make_url(self.url).database or ""


def databases(env: dict) -> list[Database]:
    """Each service's database; a SQLite file not yet created is left out (nothing to keep)."""
    dbs = [db for db in (Database(s, database_url(s, env)) for s in services_with_databases())
           if db.kind == "postgresql" or Path(db.name).is_file()]
    by_url: dict[str, str] = {}
    for db in dbs:
        if db.url in by_url:
            raise BackupRefused(f"{db.service} and {by_url[db.url]} share one database ({db.name}); "
                                f"each service needs its own / 每个服务须有独立数据库")
        by_url[db.url] = db.service
    return dbs


# ---- tools -------------------------------------------------------------------------------------
def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it (not in `ps`)."""
    u = make_url(url)
    env = {**os.environ, "PGPASSWORD": u.password} if u.password else dict(os.environ)
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run(args: list[str], env: dict | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    except FileNotFoundError:
        raise BackupRefused(f"{args[0]} is not installed / 未安装 {args[0]}") from None
    if done.returncode != 0:
        raise BackupRefused(f"{' '.join(args[:2])} failed (exit {done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-600:]} / 命令执行失败")
    return done.stdout


def _version(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def _code_version() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version("county-supply")
        except PackageNotFoundError:
            return "unknown"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


# ---- InfluxDB ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Influx:
    url: str
    database: str
    rpc: str  # host:port of influxd's backup/restore service

    @classmethod
    def from_env(cls, env: dict) -> Influx:
        settings = load_settings("tools", env)
        default_rpc = f"{urlparse(settings.influx_url).hostname or '127.0.0.1'}:8088"
        return cls(settings.influx_url, settings.influx_db,
                   env.get("INFLUX_BACKUP_ADDR", "").strip() or default_rpc)

    def query(self, q: str) -> None:
        u = urlparse(self.url)
        base = u._replace(netloc=(u.hostname or "") + (f":{u.port}" if u.port else "")).geturl()
        auth = (u.username, u.password or "") if u.username else None
        resp = requests.post(f"{base.rstrip('/')}/query", data={"q": q}, auth=auth, timeout=30)
        resp.raise_for_status()
        errors = [r["error"] for r in resp.json().get("results", []) if "error" in r]
        if errors:
            raise BackupRefused(f"InfluxDB: {q}: {errors[0]} / InfluxDB 操作失败")

    def backup(self, into: Path) -> None:
        _run(["influxd", "backup", "-portable", "-host", self.rpc, "-db", self.database, str(into)])

    def restore(self, source: Path, backed_up_as: str) -> None:
        self.query(f'DROP DATABASE "{self.database}"')
        _run(["influxd", "restore", "-portable", "-host", self.rpc, "-db", backed_up_as,
              "-newdb", self.database, str(source)])


# ---- one database ------------------------------------------------------------------------------
def _dump(db: Database, path: Path) -> str:
    """Write db to path; the server's version."""
    if db.kind == "postgresql":
        url, env = _libpq(db.url)
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(path), "--dbname", url], env)
        with closing(psycopg.connect(url, password=make_url(db.url).password)) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    with closing(sqlite3.connect(db.name)) as src, closing(sqlite3.connect(path)) as dst:
        src.backup(dst)
    return sqlite3.sqlite_version


def _revision(url: str) -> list[str]:
    engine = make_engine(url, pool_size=1)
    try:
        return sorted(current(engine))
    finally:
        engine.dispose()


def _recreate(db: Database, source: Path) -> None:
    if db.kind == "postgresql":
        u = make_url(db.url)
        admin, env = _libpq(str(u.set(database="postgres").render_as_string(hide_password=False)))
        with closing(psycopg.connect(admin, password=u.password, autocommit=True)) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{u.database}"')
        url, env = _libpq(db.url)
        _run(["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "--dbname", url,
              str(source)], env)
        return
    target = Path(db.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _replay_outbox(url: str, since: datetime) -> int:
    engine = make_engine(url, pool_size=1)
    try:
        if not inspect(engine).has_table("outbox"):  # the console sends no events
            return 0
        with engine.begin() as conn:
            return conn.execute(text("UPDATE outbox SET published_at = NULL WHERE published_at >= :since"),
                                {"since": since}).rowcount
    finally:
        engine.dispose()


# ---- the two commands --------------------------------------------------------------------------
def backup(dest: Path, env: dict, step: Step = lambda _: None) -> dict:
    """Dump every database and InfluxDB into dest (new or empty); the manifest."""
    if dest.exists() and any(dest.iterdir()):
        raise BackupRefused(f"{dest} is not empty: a backup goes into a new directory / 备份目录须为空")
    dbs = databases(env)
    influx = Influx.from_env(env)
    dest.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    entries, servers = [], {}
    for db in dbs:
        step(f"{db.service}: {db.kind} {db.name}")
        revision = _revision(db.url)
        servers[f"{db.service} ({db.kind})"] = _dump(db, dest / db.file)
        if db.kind == "sqlite":  # the copy's own revision: exact
            revision = _revision(f"sqlite:///{dest / db.file}")
        entries.append({"service": db.service, "kind": db.kind, "database": Path(db.name).name,
                        "file": db.file, "alembic": revision,
                        "bytes": (dest / db.file).stat().st_size})
    step(f"InfluxDB: {influx.database}")
    influx.backup(dest / INFLUX_DIR)
    step("checksums / 校验值")
    files = {rel: {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
             for rel, p in _files_under(dest).items()}
    manifest = {
        "kind": KIND, "format": FORMAT,
        "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "host": socket.gethostname(),
        "versions": {"code": _code_version(), "python": platform.python_version(),
                     "pg_dump": _version(["pg_dump", "--version"]),
                     "influxd": _version(["influxd", "version"]), "servers": servers},
        "databases": entries,
        "influx": {"database": influx.database, "dir": INFLUX_DIR,
                   "bytes": sum(f["bytes"] for r, f in files.items() if r.startswith(INFLUX_DIR + "/"))},
        "files": files,
        "bytes": sum(f["bytes"] for f in files.values()),
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
    digests = {rel: f["sha256"] for rel, f in files.items()}
    digests[MANIFEST] = sha256_of(dest / MANIFEST)
    partial = dest / (SUMS + ".partial")
    partial.write_text(sums_text(digests), encoding="utf-8")
    os.replace(partial, dest / SUMS)  # last: its presence says the backup finished
    return manifest


def verify(source: Path) -> dict:
    """The manifest of a whole, unchanged backup; BackupRefused naming every problem otherwise."""
    if not source.is_dir():
        raise BackupRefused(f"{source}: no such backup directory / 备份目录不存在")
    if not (source / SUMS).is_file():
        raise BackupRefused(f"{source}: no {SUMS}: the backup did not finish (partial); restore "
                            f"another / 备份不完整（缺少校验文件），请使用其他备份")
    listed = parse_sums((source / SUMS).read_text(encoding="utf-8"))
    found = {rel: sha256_of(p) for rel, p in _files_under(source).items() if rel != SUMS}
    problems = file_problems(listed, found)
    if not problems:
        try:
            manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackupRefused(f"{MANIFEST}: unreadable ({exc}) / 清单无法读取") from None
        problems = manifest_problems(manifest, listed)
    if problems:
        raise BackupRefused(problems)
    return manifest


def restore(source: Path, env: dict, step: Step = lambda _: None,
            replay: timedelta = DEFAULT_REPLAY) -> list[str]:
    """Verify, then replace every database and InfluxDB with the backup's; what was done."""
    step("checksums / 校验值")
    manifest = verify(source)
    targets = {s: Database(s, database_url(s, env)) for s in services_with_databases()}
    backed_up = {e["service"]: e for e in manifest["databases"]}
    unknown = sorted(backed_up.keys() - targets.keys())
    if unknown:
        raise BackupRefused(f"the backup holds databases of {', '.join(unknown)}, which this code "
                            f"does not have / 备份中有本版本不存在的服务")
    problems = [f"{s}: the backup holds a {e['kind']} database but {s} is configured for "
                f"{targets[s].kind} / 数据库类型不符" for s, e in sorted(backed_up.items())
                if targets[s].kind != e["kind"]]
    if problems:
        raise BackupRefused(problems)
    since = datetime.fromisoformat(manifest["started_at"]) - replay
    done = []
    for service, entry in backed_up.items():
        db = targets[service]
        step(f"{service}: {db.kind} {db.name}")
        _recreate(db, source / entry["file"])
        revision = _revision(db.url)
        if revision != entry["alembic"]:
            raise BackupRefused(f"{service}: restored at alembic revision {revision}, the backup says "
                                f"{entry['alembic']} / 恢复后的数据库版本与备份不符")
        behind = "" if set(revision) == set(heads(service, db.url)) else \
            " — older than this code: run `supplyctl migrate` / 版本落后，请执行迁移"
        resent = _replay_outbox(db.url, since)
        done.append(f"{service}: {db.name} at {', '.join(revision) or 'no schema'}{behind}; "
                    f"{resent} event(s) to send again")
    for service in sorted(targets.keys() - backed_up.keys()):
        done.append(f"{service}: not in the backup, left as it is / 备份中没有，未改动")
    influx = Influx.from_env(env)
    step(f"InfluxDB: {influx.database}")
    influx.restore(source / manifest["influx"]["dir"], manifest["influx"]["database"])
    done.append(f"InfluxDB: {influx.database} from {manifest['influx']['database']}")
    return done
