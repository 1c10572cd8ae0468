"""supplyctl: operate the county supply system from a terminal.

    supplyctl migrate [SERVICE…]        bring databases to the current schema
    supplyctl up [SERVICE…]             migrate, then start every process in the background (the
                                        shared relay / light-worker process restarts to take new ones)
    supplyctl down                      stop them (SIGTERM, then SIGKILL after 20 s)
    supplyctl status                    processes and gRPC health, outbox lag, queues, dead letters, readings
    supplyctl logs SERVICE [-f] [--process KIND] [-n N]          a service's logs (var/log/)
    supplyctl completion bash|zsh       shell completion: source <(supplyctl completion bash)
    supplyctl run SERVICE KIND          one process in the foreground
    supplyctl import FILE --kind requesters|demands [--partial]   spreadsheet into intake
    supplyctl dead-letters SERVICE [--replay ID]                  inspect failed events
    supplyctl dead-letters monitoring --ingest [--depot D] [--code C] [--hours H]   refused telemetry
    supplyctl doctor [--production]     check the settings (as production would) and that servers answer
    supplyctl user add NAME --role ROLE [--scope ID]               a console account (password asked)
    supplyctl user list | passwd NAME | disable NAME | enable NAME
    supplyctl backup DIR                every database and InfluxDB, with a manifest and checksums
    supplyctl restore DIR               verify, then bring every database and InfluxDB back
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.cli_doctor import MIGRATED, cmd_doctor
from services.cli_logs import cmd_logs
from services.common.config import ROOT, SERVICES, ConfigError, database_url, load_settings
from services.workers import SHARED as SHARED_WORKERS

console = Console()
PROCESSES = {s: importlib.import_module(f"services.{s}").PROCESSES
             for s in (*SERVICES, "market", "console", "reports", "notify")}
NO_HEALTH_PROBE = ("notify",)  # a nameko worker: no gRPC or HTTP port to ask


def available_services() -> list[str]:
    return [*(s for s in (*SERVICES, "market") if (ROOT / "services" / s / "entrypoints" / "grpc_api.py").exists()),
            "console", "reports", "notify"]


def _run_dir() -> Path:
    d = load_settings("tools").var_dir / "run"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def cmd_migrate(services: list[str]) -> None:
    from services.common.migrate import upgrade

    settings = load_settings("tools")  # production: the shared settings; each database below
    if settings.env == "production":
        from services.common.production import HEADER, database_problems

        problems = [p for service in services for p in database_problems(os.environ, service)]
        if problems:
            raise ConfigError("\n  - ".join([HEADER, *problems]))
    for service in services:
        url = database_url(service, dict(os.environ))
        upgrade(service, url)
        console.print(f"[green]✓[/] {service}: schema at head ({url.split('@')[-1]})")


def cmd_up(services: list[str]) -> None:
    cmd_migrate(services)
    settings = load_settings("tools")
    log_dir = settings.var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    relayed = []  # their outboxes: one relay process, a thread each (python -m services.relays)
    light = []  # their workers: one nameko process, a container each (python -m services.workers)
    for service in services:
        for kind in PROCESSES[service]:
            pid_file = _run_dir() / f"{service}-{kind}.pid"
            if pid_file.exists() and _pid_alive(int(pid_file.read_text())):
                console.print(f"  {service} {kind}: already running")
                continue
            if kind == "relay":
                relayed.append(service)
                continue
            if kind == "worker" and service in SHARED_WORKERS:
                light.append(service)
                continue
            pid = _launch(log_dir, f"{service}-{kind}", f"services.{service}", kind)
            pid_file.write_text(str(pid))
            console.print(f"  {service} {kind}: started pid {pid}, log var/log/{service}-{kind}.log")
    if relayed:  # each <service>-relay.pid names the one process, so status and down see it
        relayed = _join_shared("relay", relayed)
        pid = _launch(log_dir, "relays-relay", "services.relays", *relayed)
        for service in relayed:
            (_run_dir() / f"{service}-relay.pid").write_text(str(pid))
        console.print(f"  relay of {', '.join(relayed)}: started pid {pid} (one process), log var/log/relays-relay.log")
    if light:  # likewise each <service>-worker.pid of the light workers (ADR 0009)
        light = _join_shared("worker", light)
        pid = _launch(log_dir, "workers-worker", "services.workers", *light)
        for service in light:
            (_run_dir() / f"{service}-worker.pid").write_text(str(pid))
        console.print(f"  worker of {', '.join(light)}: started pid {pid} (one process), log var/log/workers-worker.log")
    _wait_healthy([s for s in services if s not in NO_HEALTH_PROBE])


def _join_shared(kind: str, adding: list[str]) -> list[str]:
    """`adding` and the services whose `kind` (relay, or light worker) already runs in the one
    shared process, which is stopped: the caller starts one process for all of them. A second
    shared process would rotate the same log file as the first, from another process."""
    running: dict[Path, int] = {}
    for service in PROCESSES:
        pid_file = _run_dir() / f"{service}-{kind}.pid"
        if (service not in adding and (kind == "relay" or service in SHARED_WORKERS)
                and pid_file.exists() and _pid_alive(pid := int(pid_file.read_text()))):
            running[pid_file] = pid
    joined = [f.stem.rsplit("-", 1)[0] for f in running]
    if running:
        console.print(f"  the shared {kind} process of {', '.join(joined)}: restarted with {', '.join(adding)} "
                      f"/ 共用进程重启")
        _stop(running, unlink=False)
    return joined + adding


def _stop(pids: dict[Path, int], unlink: bool = True) -> None:
    """SIGTERM each process group, SIGKILL what has not stopped in 20 s; their pid files removed
    unless `unlink` is False. Several pid files may name one (shared) process."""
    for pid in set(pids.values()):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    pids = dict(pids)
    deadline = time.monotonic() + 20
    while pids and time.monotonic() < deadline:
        for f, pid in list(pids.items()):
            if not _pid_alive(pid):
                if unlink:
                    f.unlink(missing_ok=True)
                del pids[f]
        time.sleep(0.1)
    for f, pid in pids.items():
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:  # the relays' (or light workers') one process, named by several pid files
            pass
        if unlink:
            f.unlink(missing_ok=True)
        console.print(f"[yellow]killed {f.stem} (did not stop in 20 s)[/]")


def _launch(log_dir: Path, name: str, module: str, *args: str) -> int:
    # the process logs to <name>.log itself, rotated (services/common/logs.py); what bypasses
    # logging (a crash before it is set up) goes to the .out file
    out = (log_dir / f"{name}.out").open("ab")
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                            env={**os.environ, "SUPPLY_LOG_DIR": str(log_dir)},
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True).pid


def _health(service: str, timeout: float = 1.0) -> str:
    from services.common.grpc_client import probe

    if service == "console":
        return _console_health(timeout)
    return probe(service, timeout)


def _console_health(timeout: float) -> str:
    import requests

    from services.console.config import load_console_settings

    settings = load_console_settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    try:
        return requests.get(f"http://{host}:{settings.port}/healthz", timeout=timeout).json()["status"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"unreachable ({type(exc).__name__})"


def _wait_healthy(services: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    pending = set(services)
    while pending and time.monotonic() < deadline:
        for s in sorted(pending):
            if _health(s) == "SERVING":
                console.print(f"[green]✓[/] {s} {PROCESSES[s][0]} SERVING / 服务就绪")
                pending.discard(s)
        time.sleep(0.2)
    if pending:
        console.print(f"[red]✗ not SERVING after {timeout:.0f} s: {', '.join(sorted(pending))}; see var/log/[/]")
        sys.exit(1)


def cmd_down() -> None:
    pids = {}
    for pid_file in sorted(_run_dir().glob("*.pid")):
        pid = int(pid_file.read_text())
        if _pid_alive(pid):
            pids[pid_file] = pid
        else:
            pid_file.unlink()
    _stop(pids)
    console.print("all service processes stopped / 服务已停止")


def cmd_status() -> None:
    table = Table(title="county supply processes / 服务进程")
    for col in ("service", "process", "pid", "state", "gRPC health"):
        table.add_column(col)
    for service in available_services():
        for kind in PROCESSES[service]:
            pid_file = _run_dir() / f"{service}-{kind}.pid"
            pid = int(pid_file.read_text()) if pid_file.exists() else None
            state = "running" if pid and _pid_alive(pid) else "stopped"
            health = _health(service) if kind in ("api", "web", "scheduler") and state == "running" else ""
            table.add_row(service, kind, str(pid or ""), state, health)
    console.print(table)
    from services.cli_status import figures

    for figure in figures(available_services()):
        console.print(figure)


def cmd_completion(parser: argparse.ArgumentParser, shell: str) -> None:
    from services.cli_completion import script

    print(script(parser, shell))


def cmd_backup_or_restore(cmd: str, directory: Path, replay_hours: float | None) -> int:
    """Progress as each database is done; a refused backup names every problem (exit 1)."""
    from datetime import timedelta

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from services.ops.backup import backup, restore
    from services.ops.manifest import BackupRefused

    running = [f.stem for f in _run_dir().glob("*.pid") if _pid_alive(int(f.read_text()))]
    if cmd == "restore" and running:
        console.print(f"[red]✗ stop the services first (supplyctl down): {', '.join(running)} "
                      f"/ 请先停止服务[/]")
        return 1
    env = dict(os.environ)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task(cmd, total=None)

            def step(what: str) -> None:
                progress.update(task, description=escape(what))
                progress.console.print(f"  {escape(what)}")

            if cmd == "backup":
                manifest = backup(directory, env, step)
                done = [f"{len(manifest['files'])} files, {manifest['bytes'] / 1e6:.1f} MB, "
                        f"SHA-256 in {directory / 'SHA256SUMS'}"]
            else:
                done = restore(directory, env, step, **(
                    {} if replay_hours is None else {"replay": timedelta(hours=replay_hours)}))
    except BackupRefused as exc:
        console.print(f"[red]✗ {cmd} refused / 已拒绝:[/]")
        for problem in exc.problems:
            console.print(f"  [red]-[/] {escape(problem)}", highlight=False)
        return 1
    for line in done:
        console.print(f"[green]✓[/] {escape(line)}", highlight=False)
    console.print(f"[green]{cmd} done / 完成[/]")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="supplyctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("migrate", "up"):
        p = sub.add_parser(name)
        p.add_argument("services", nargs="*")
    sub.add_parser("down")
    sub.add_parser("status")
    p = sub.add_parser("logs", help="a service's logs under var/log/ (-f to follow)")
    p.add_argument("service", choices=sorted(PROCESSES))
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--process", action="append", metavar="KIND",
                   help="api, worker, relay, … (repeatable; default: every process of the service)")
    p.add_argument("-n", "--lines", type=int, default=50)
    p = sub.add_parser("completion", help="a completion script: source <(supplyctl completion bash)")
    p.add_argument("shell", choices=("bash", "zsh"))
    p = sub.add_parser("run")
    p.add_argument("service", choices=SERVICES)
    p.add_argument("kind")
    p = sub.add_parser("import", help="import a village list or demand spreadsheet (CSV/XLSX)")
    p.add_argument("file", type=Path)
    p.add_argument("--kind", choices=("requesters", "demands"), required=True)
    p.add_argument("--partial", action="store_true",
                   help="import the good rows even if some rows are bad (default: all or nothing)")
    p.add_argument("--token", default=os.environ.get("SUPPLY_TOKEN", ""))
    p = sub.add_parser("user", help="console accounts (指挥部, 村居专班, 仓库管理员 …)")
    users = p.add_subparsers(dest="user_cmd", required=True)
    q = users.add_parser("add", help="add an account; the password is asked twice (or read from stdin)")
    q.add_argument("name")
    q.add_argument("--role", required=True)
    q.add_argument("--scope", default="", help="village, community or unit id (village, grid_worker, unit, unit_head)")
    q.add_argument("--display-name", default="")
    q.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.add_parser("list")
    for name in ("passwd", "disable", "enable"):
        q = users.add_parser(name)
        q.add_argument("name")
        q.add_argument("--password-stdin", action="store_true")
    p = sub.add_parser("doctor", help="check the settings and the servers without starting anything")
    p.add_argument("--production", action="store_true",
                   help="check as SUPPLY_ENV=production would (weak and development settings refused)")
    p = sub.add_parser("dead-letters")
    p.add_argument("service", choices=SERVICES)
    p.add_argument("--replay", type=int, metavar="ID")
    p.add_argument("--ingest", action="store_true",
                   help="monitoring only: telemetry the ingest refused (over gRPC, with --token)")
    p.add_argument("--depot", default="")
    p.add_argument("--code", action="append", default=[], help="a reason code, e.g. bad_json (repeatable)")
    p.add_argument("--hours", type=float, help="received in the last H hours")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--token", default=os.environ.get("SUPPLY_TOKEN", ""))
    p = sub.add_parser("backup", help="every database and InfluxDB into a new directory")
    p.add_argument("directory", type=Path)
    p = sub.add_parser("restore", help="verify a backup, then replace every database and InfluxDB with it")
    p.add_argument("directory", type=Path)
    p.add_argument("--replay-hours", type=float, metavar="H",
                   help="send again the events published this long before the backup (default 24)")
    args = parser.parse_args(argv)
    try:
        if args.cmd in ("migrate", "up"):
            services = args.services or available_services()
            unknown = set(services) - set(MIGRATED)
            if unknown:
                parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
            (cmd_migrate if args.cmd == "migrate" else cmd_up)(services)
        elif args.cmd == "down":
            cmd_down()
        elif args.cmd == "status":
            cmd_status()
        elif args.cmd == "logs":
            kinds = args.process or list(PROCESSES[args.service])
            unknown = set(kinds) - set(PROCESSES[args.service])
            if unknown:
                parser.error(f"{args.service} has no process {', '.join(sorted(unknown))}; "
                             f"one of {', '.join(PROCESSES[args.service])}")
            cmd_logs(args.service, kinds, args.follow, args.lines)
        elif args.cmd == "completion":
            cmd_completion(parser, args.shell)
        elif args.cmd == "run":
            from services.launcher import main as launch

            launch(args.service, [args.kind])
        elif args.cmd == "import":
            from services.intake.entrypoints.import_cli import run_import

            sys.exit(run_import(args.file, args.kind, not args.partial, args.token, console))
        elif args.cmd == "user":
            from services.console.entrypoints.accounts_cli import run_user_command

            sys.exit(run_user_command(args, console))
        elif args.cmd == "doctor":
            sys.exit(cmd_doctor(args.production))
        elif args.cmd == "dead-letters" and args.ingest:
            if args.service != "monitoring" or args.replay is not None:
                parser.error("--ingest: only 'dead-letters monitoring --ingest', without --replay")
            from services.monitoring.entrypoints.dead_letters_cli import run as show_ingest

            sys.exit(show_ingest(args.depot, tuple(args.code), args.hours, args.limit, args.token, console))
        elif args.cmd == "dead-letters":
            from services.common.dead_letters import show_or_replay

            show_or_replay(args.service, args.replay, console)
        elif args.cmd in ("backup", "restore"):
            sys.exit(cmd_backup_or_restore(args.cmd, args.directory,
                                           getattr(args, "replay_hours", None)))
    except ConfigError as exc:
        console.print(f"[red]configuration error / 配置错误: {exc}[/]")
        sys.exit(2)


if __name__ == "__main__":
    main()
