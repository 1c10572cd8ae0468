"""`supplyctl logs SERVICE`: a service's process logs under var/log/, merged by time, followed
across rotations; JSON lines shown short."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich.console import Console

from services.common.config import load_settings
from services.workers import SHARED as SHARED_WORKERS

console = Console()


def cmd_logs(service: str, kinds: list[str], follow: bool, lines: int) -> None:
    """The last `lines` lines of each process's log, oldest first; then, with `follow`, new
    lines as they come (a rotated file is reopened). JSON lines are shown short."""
    from services.common.logs import log_path

    log_dir = load_settings("tools").var_dir / "log"
    paths = [log_path(log_dir, service, k) for k in kinds]
    shared = {"relay": log_path(log_dir, "relays", "relay")}  # supplyctl's one relay, one light worker
    if service in SHARED_WORKERS:
        shared["worker"] = log_path(log_dir, "workers", "worker")
    paths = [_newest(p, shared[k]) if k in shared else p for k, p in zip(kinds, paths, strict=True)]
    if not any(p.exists() for p in paths):
        console.print(f"[red]no log of {service} under {log_dir} / 没有日志[/]")
        sys.exit(1)
    tail = [(p, line) for p in paths if p.exists()
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]]
    for path, line in sorted(tail, key=lambda pl: _log_time(pl[1])):
        _print_log_line(path, line)
    if not follow:
        return
    files = {p: _open_at_end(p) for p in paths}
    try:
        while True:
            quiet = True
            for path, f in list(files.items()):
                if f is None or _rotated(path, f):
                    if f is not None:
                        for line in f:  # what was written before the rotation
                            _print_log_line(path, line.rstrip("\n"))
                        f.close()
                    f = files[path] = path.open(encoding="utf-8", errors="replace") if path.exists() else None
                    continue
                for line in f:
                    quiet = False
                    _print_log_line(path, line.rstrip("\n"))
            if quiet:
                time.sleep(0.3)
    except KeyboardInterrupt:
        pass


def _open_at_end(path: Path):
    if not path.exists():
        return None
    f = path.open(encoding="utf-8", errors="replace")
    f.seek(0, os.SEEK_END)
    return f


def _rotated(path: Path, f) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _newest(own: Path, shared: Path) -> Path:
    """The process's own log or the shared process's, whichever was written last (supplyctl up
    runs the shared one; `supplyctl run` or an older layout the own one)."""
    mtimes = {p: p.stat().st_mtime for p in (own, shared) if p.exists()}
    return max(mtimes, key=mtimes.__getitem__) if mtimes else own


def _log_time(line: str) -> str:
    import json

    try:
        return str(json.loads(line).get("time", ""))
    except (ValueError, AttributeError):
        return ""


def _print_log_line(path: Path, line: str) -> None:
    import json

    try:
        r = json.loads(line)
        shown = (f"{r.get('time', '')} {r.get('process_kind', '')} {r.get('level', '')} "
                 f"{r.get('message', '')}")
        extra = {k: v for k, v in r.items() if k not in (
            "time", "level", "logger", "message", "service", "process_kind") and v not in ("", None)}
        if extra:
            shown += " " + json.dumps(extra, ensure_ascii=False, default=str)
    except (ValueError, AttributeError):
        shown = f"{path.stem} {line}"
    console.print(shown, markup=False, highlight=False, soft_wrap=True)
