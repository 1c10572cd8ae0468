"""InfluxDB adapter (DESIGN.md §2, §4): a batched writer over the v1 HTTP API (`/write`, `/query`,
`/ping`) with a durable on-disk spool, and a small InfluxQL query helper (the lines themselves:
line_protocol.py).

Why replaying the spool is safe: InfluxDB stores one point per measurement + tag set + timestamp;
writing the same point again overwrites it with the same field values. A batch whose write timed
out may in fact have been stored; replaying it later rewrites identical points, so no reading is
ever doubled (`COUNT(seq)` stays exact). The one thing this relies on is that a point's timestamp
and tags are fixed when it is encoded, never at send time: lines are spooled already encoded.

What is durable: lines handed to `add()` live in memory until a flush either writes them or puts
them in a spool segment (fsync'd, renamed into place, then the directory fsync'd). A crash loses
only the in-memory buffer (at most one flush interval of data).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from services.monitoring.adapters.line_protocol import quote_ident

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Writer with spool
# ---------------------------------------------------------------------------------------------

class InfluxError(RuntimeError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class SpoolLocked(RuntimeError):
    """Another writer (this or another process) owns the spool directory."""


@dataclass(frozen=True)
class _Outcome:
    kind: str  # ok | retry | dead
    error: str = ""
    status: int | None = None


_SEGMENT_RE = re.compile(r"^seg-(\d{20})\.lp$")
_DROPPED_RE = re.compile(r"dropped=(\d+)")
# Server errors that are configuration, not data: keep the data and retry (after a fix).
_RETRYABLE_4XX = ("database not found", "retention policy not found")


def bad_lines_from_error(error: str, lines: Iterable[str]) -> list[str]:
    """The lines a 1.x server names in `unable to parse '<line>': <reason>` entries, matched
    against the batch (the reason and a trailing ` dropped=N` make plain splitting unreliable)."""
    candidates = set(lines)
    found: list[str] = []
    marker = "unable to parse '"
    pos = error.find(marker)
    while pos >= 0:
        start = pos + len(marker)
        end = error.find("': ", start)
        while end >= 0 and error[start:end] not in candidates:
            end = error.find("': ", end + 1)
        if end >= 0:
            found.append(error[start:end])
            pos = error.find(marker, end)
        else:
            pos = error.find(marker, start)
    return found


class InfluxWriter:
    """Buffers lines; `flush()` writes them in batches of ≤ `batch_lines` to /write (precision
    ms). A batch that fails by connection error, timeout, 5xx (or a missing database/retention
    policy) goes to the spool: one fsync'd file per batch, `seg-<20-digit sequence>.lp`. Every
    flush first replays the spool oldest-first, so order is preserved; while the spool is not
    empty, new data goes behind it. A batch the server refuses as bad data (400: parse error,
    field type conflict) goes to `dead-letter.jsonl` with the server's error and is not retried;
    one over the server's body limit (413) is written in halves.

    After a failure, automatic flushes (background thread, or `flush()` without `force`) do not
    touch the network for a back-off period (retry_min doubling to retry_max): they spool, so a
    hung server costs one timeout per back-off period, not one per flush.

    Counters: `written_lines` (acknowledged by InfluxDB, replayed ones included),
    `replayed_lines` (of those, from the spool), `spooled_lines` (ever put in the spool),
    `dead_lines` (refused by the server), `spool_bytes` (on disk now). At rest:
    added = written + dead + buffered + lines in the spool.
    """

    DEAD_LETTER = "dead-letter.jsonl"

    def __init__(self, url: str, db: str, spool_dir: str | os.PathLike, batch_lines: int = 5000,
                 flush_interval: float = 0.5, timeout: float = 5, retention_policy: str | None = None,
                 *, retry_min: float = 0.5, retry_max: float = 30.0):
        if batch_lines < 1:
            raise ValueError("batch_lines must be ≥ 1")
        self.url = url.rstrip("/")
        self.db = db
        self.retention_policy = retention_policy
        self.batch_lines = batch_lines
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)

        self._lock = threading.Lock()        # buffer and counters
        self._io_lock = threading.RLock()    # one flush (network + spool files) at a time
        self._query_lock = threading.Lock()
        self._buffer: list[str] = []
        self._session = requests.Session()
        self._query_session = requests.Session()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.last_error: str = ""

        self.added_lines = 0
        self.written_lines = 0
        self.written_at: float | None = None  # wall clock of the last write InfluxDB acknowledged
        self.spooled_lines = 0
        self.replayed_lines = 0
        self.dead_lines = 0

        self._lock_fd = os.open(self.spool_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLocked(f"spool {self.spool_dir} is in use by another writer") from None
        for tmp in self.spool_dir.glob("seg-*.tmp"):  # a crash mid-spool: never acknowledged
            tmp.unlink()
        segments = self._segments()
        self._next_seq = (segments[-1][0] + 1) if segments else 1
        self.spool_bytes = sum(p.stat().st_size for _, p in segments)

    # -- public API ---------------------------------------------------------------------------

    def add(self, lines: str | Iterable[str]) -> None:
        """Buffer encoded lines (one string = one line). Never touches the network: without
        start(), the caller flushes. Lines are not validated here (encode them with the
        functions above); a raw line the server refuses ends in the dead letter."""
        new = [lines] if isinstance(lines, str) else list(lines)
        with self._lock:
            self._buffer.extend(new)
            self.added_lines += len(new)
            full = len(self._buffer) >= self.batch_lines
        if full and self._thread is not None:
            self._wake.set()

    def flush(self, force: bool = True) -> int:
        """Replay the spool, then write the buffer. Returns the lines written by this call.
        `force=False` respects the back-off after a failure (spools without trying)."""
        with self._io_lock:
            with self._lock:
                pending, self._buffer = self._buffer, []
            batches = [pending[i:i + self.batch_lines]
                       for i in range(0, len(pending), self.batch_lines)]
            try:
                return self._flush(batches, force)
            except BaseException:
                # Spooling failed (disk full?): keep what was not stored, in order.
                with self._lock:
                    self._buffer[:0] = [line for b in batches for line in b]
                raise

    def start(self) -> InfluxWriter:
        """Background flusher: every `flush_interval`, or sooner when a batch is full."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="influx-flusher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background flusher, then one final flush (whatever fails is spooled)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout)
        self.flush(force=True)

    def close(self) -> None:
        """stop(), then release the spool directory. The spool stays for the next writer."""
        if self._lock_fd < 0:
            return
        try:
            self.stop()
        finally:
            self._session.close()
            self._query_session.close()
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> InfluxWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def buffered_lines(self) -> int:
        with self._lock:
            return len(self._buffer)

    @property
    def spool_segments(self) -> int:
        return len(self._segments())

    def stats(self) -> dict[str, int | float | None]:
        with self._lock:
            return {"added_lines": self.added_lines, "written_lines": self.written_lines,
                    "written_at": self.written_at,
                    "spooled_lines": self.spooled_lines, "replayed_lines": self.replayed_lines,
                    "dead_lines": self.dead_lines, "spool_bytes": self.spool_bytes,
                    "buffered_lines": len(self._buffer)}

    def ping(self) -> bool:
        """True when the server answers /ping (204)."""
        try:
            with self._query_lock:
                r = self._query_session.get(f"{self.url}/ping", timeout=self.timeout)
        except requests.RequestException:
            return False
        return r.status_code == 204

    def ensure_database(self) -> None:
        """CREATE DATABASE (a no-op when it exists)."""
        self._query(f"CREATE DATABASE {quote_ident(self.db)}", None, None, None)

    def query(self, influxql: str, params: Mapping[str, Any] | None = None,
              epoch: str | None = "ms") -> list[dict]:
        """Run InfluxQL; return the series of all statements: dicts with `name`, `tags` (when
        grouped), `columns`, `values`. `params` are bound parameters (`$name` in the query),
        the safe way to put values in a WHERE; identifiers go through `quote_ident`. Times come
        back as epoch milliseconds unless `epoch=None` (RFC 3339 strings)."""
        return self._query(influxql, params, self.db, epoch)

    def _query(self, influxql: str, params: Mapping[str, Any] | None, database: str | None,
               epoch: str | None) -> list[dict]:
        form = {"q": influxql}
        if database:
            form["db"] = database
        if self.retention_policy:
            form["rp"] = self.retention_policy
        if epoch:
            form["epoch"] = epoch
        if params:
            form["params"] = json.dumps(params)
        with self._query_lock:
            try:
                r = self._query_session.post(f"{self.url}/query", data=form, timeout=self.timeout)
            except requests.RequestException as e:
                raise InfluxError(f"query failed: {e}") from e
        return query_series(r)

    # -- flushing -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush(force=False)
            except Exception:
                log.exception("influx flush failed; lines kept in memory")
                self._stop.wait(self.flush_interval)

    def _flush(self, batches: list[list[str]], force: bool) -> int:
        written = 0
        if not force and time.monotonic() < self._retry_at:
            self._spool_all(batches)
            return 0
        ok, n = self._replay()
        written += n
        if not ok:
            self._spool_all(batches)
            return written
        while batches:
            batch = batches[0]
            outcome = self._post(batch)
            if outcome.kind == "retry":
                self._failed(outcome)
                self._spool_all(batches)
                return written
            if outcome.status == 413 and len(batch) > 1:  # over the server's max-body-size: halves
                half = len(batch) // 2
                batches[:1] = [batch[:half], batch[half:]]
                continue
            if outcome.kind == "dead":
                written += self._dead_letter(batch, outcome, from_spool=False)
            else:
                with self._lock:
                    self.written_lines += len(batch)
                    self.written_at = time.time()
                written += len(batch)
            batches.pop(0)
        self._succeeded()
        return written

    def _replay(self) -> tuple[bool, int]:
        """Write the spool oldest-first; a group of segments of ≤ batch_lines per request."""
        written = 0
        segments = self._segments()
        i = 0
        while i < len(segments):
            group: list[Path] = []
            lines: list[str] = []
            size = 0
            while i < len(segments):
                path = segments[i][1]
                # split on "\n" only: str.splitlines() would also cut at U+2028, \x85, …
                seg_lines = path.read_text("utf-8").split("\n")
                if seg_lines and seg_lines[-1] == "":
                    seg_lines.pop()
                if group and len(lines) + len(seg_lines) > self.batch_lines:
                    break
                group.append(path)
                lines.extend(seg_lines)
                size += path.stat().st_size
                i += 1
            outcome = self._post(lines)
            if outcome.kind == "retry":
                self._failed(outcome)
                return False, written
            if outcome.kind == "dead":
                n = self._dead_letter(lines, outcome, from_spool=True)
            else:
                n = len(lines)
                with self._lock:
                    self.written_lines += n
                    self.written_at = time.time()
            with self._lock:
                self.replayed_lines += n
            written += n
            for path in group:
                path.unlink()
            self._fsync_dir()
            with self._lock:
                self.spool_bytes = max(0, self.spool_bytes - size)
        return True, written

    def _post(self, lines: list[str]) -> _Outcome:
        params = {"db": self.db, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        body = ("\n".join(lines) + "\n").encode("utf-8", errors="replace")
        try:
            r = self._session.post(f"{self.url}/write", params=params, data=body,
                                   timeout=self.timeout)
        except requests.RequestException as e:
            return _Outcome("retry", f"{type(e).__name__}: {e}")
        if 200 <= r.status_code < 300:
            return _Outcome("ok")
        try:
            error = r.json().get("error", r.text)
        except ValueError:
            error = r.text
        error = error or f"HTTP {r.status_code}"
        if r.status_code >= 500 or r.status_code in (401, 403, 408, 429) or any(
                s in error for s in _RETRYABLE_4XX):
            return _Outcome("retry", error, r.status_code)
        return _Outcome("dead", error, r.status_code)

    def _dead_letter(self, lines: list[str], outcome: _Outcome, from_spool: bool) -> int:
        """Record what the server refused. A 1.x 400 is often a *partial* write: the good lines
        were stored. Returns how many lines of the batch were stored."""
        bad = bad_lines_from_error(outcome.error, lines)
        m = _DROPPED_RE.search(outcome.error)
        dropped = len(bad) + (int(m.group(1)) if m else 0)
        partial = outcome.error.startswith("partial write")
        if not partial or dropped == 0:
            dropped = len(lines)
        record = {"at": datetime.now(UTC).isoformat(), "status": outcome.status,
                  "error": outcome.error, "dropped": dropped, "batch_lines": len(lines),
                  "from_spool": from_spool, "lines": bad if partial and bad else lines}
        with open(self.spool_dir / self.DEAD_LETTER, "a", encoding="utf-8",
                  errors="backslashreplace") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        stored = len(lines) - dropped
        with self._lock:
            self.dead_lines += dropped
            self.written_lines += stored
            self.written_at = time.time()
        log.error("influx refused %d of %d lines: %s", dropped, len(lines), outcome.error[:500])
        return stored

    def _failed(self, outcome: _Outcome) -> None:
        self._backoff = min(self.retry_max, self._backoff * 2 if self._backoff else self.retry_min)
        self._retry_at = time.monotonic() + self._backoff
        if outcome.error != self.last_error:
            log.warning("influx write failed, spooling (retry in %.1f s): %s", self._backoff,
                        outcome.error[:500])
        self.last_error = outcome.error

    def _succeeded(self) -> None:
        self._backoff = 0.0
        self._retry_at = 0.0
        self.last_error = ""

    # -- spool files --------------------------------------------------------------------------

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for p in self.spool_dir.iterdir():
            m = _SEGMENT_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        found.sort()
        return found

    def _spool_all(self, batches: list[list[str]]) -> None:
        while batches:
            self._spool(batches[0])
            batches.pop(0)

    def _spool(self, lines: list[str]) -> None:
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8", errors="replace")
        seq = self._next_seq
        final = self.spool_dir / f"seg-{seq:020d}.lp"
        tmp = self.spool_dir / f"seg-{seq:020d}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        self._fsync_dir()
        self._next_seq = seq + 1
        with self._lock:
            self.spooled_lines += len(lines)
            self.spool_bytes += len(data)

    def _fsync_dir(self) -> None:
        fd = os.open(self.spool_dir, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)


def query_series(r: requests.Response) -> list[dict]:
    """The series of a /query answer, or InfluxError with the server's own message."""
    try:
        body = r.json()
    except ValueError:
        raise InfluxError(f"query: HTTP {r.status_code}: {r.text[:500]}", r.status_code) from None
    if r.status_code >= 300 or "error" in body:
        raise InfluxError(f"query: {body.get('error', r.text[:500])}", r.status_code)
    series: list[dict] = []
    for result in body.get("results", []):
        if "error" in result:
            raise InfluxError(f"query: {result['error']}", r.status_code)
        series.extend(result.get("series", []))
    return series
