"""InfluxWriter against real InfluxDB 1.x: bulk writes counted back on the shared server, and
outages on a throwaway influxd of the test's own (free ports, data under tmp) that is terminated,
frozen and restarted without disturbing the machine's InfluxDB."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import requests

from services.monitoring.adapters.influx import InfluxWriter
from services.monitoring.adapters.line_protocol import env_line, quote_ident
from tests.support.infra import (
    INFLUX_URL,
    create_influx_database,
    drop_influx_database,
    free_port,
)
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
T0_MS = 1795852800000  # 2026-11-28T08:00:00Z
BASE_CONFIGS = (ROOT / "var" / "influxdb" / "influxdb.conf", Path("/etc/influxdb/influxdb.conf"))


def points(start: int, n: int, sensors: int = 10) -> list[str]:
    """Point i: sensor i % sensors, timestamp T0 + i ms, seq i: all distinct."""
    return [env_line("城关库", "冷库A", f"S{i % sensors}", "cold_chain", T0_MS + i,
                     4.0 + (i % 7) / 10, 50.0, i) for i in range(start, start + n)]


def count(w: InfluxWriter, what: str = "COUNT(seq)") -> int:
    series = w.query(f"SELECT {what} FROM env")
    return series[0]["values"][0][1] if series else 0


@pytest.fixture
def shared_db():
    name = f"influxtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    create_influx_database(name)
    yield name
    drop_influx_database(name)


class ThrowawayInflux:
    """An influxd of our own: the shared config with other ports and data dirs under `root`."""

    def __init__(self, root: Path):
        binary = shutil.which("influxd")
        base = next((p for p in BASE_CONFIGS if p.exists()), None)
        if not binary or base is None:
            pytest.fail("influxd is not installed: run deploy/scripts/servers.sh up "
                        "(installs Debian's influxdb)")
        self.binary, self.root = binary, root
        root.mkdir(parents=True, exist_ok=True)
        self.port, rpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "influxdb.conf"
        self.config.write_text(self._config(base.read_text(), rpc_port))
        self.proc: subprocess.Popen | None = None

    def _config(self, text: str, rpc_port: int) -> str:
        out, section = [], ""
        for line in text.splitlines():
            if m := re.match(r"^\s*\[+([\w-]+)\]+", line):
                section = m.group(1)
            if re.match(r"^\s*#?\s*bind-address\s*=", line) and section in ("", "http"):
                addr = f"127.0.0.1:{rpc_port if section == '' else self.port}"
                line = f'  bind-address = "{addr}"'
            elif m := re.match(r'^(\s*)(dir|wal-dir)\s*=\s*"[^"]*/(meta|data|wal)"', line):
                line = f'{m.group(1)}{m.group(2)} = "{self.root / m.group(3)}"'
            elif section == "http" and re.match(r"^\s*#?\s*log-enabled\s*=", line):
                line = "  log-enabled = false"
            elif section == "monitor" and re.match(r"^\s*#?\s*store-enabled\s*=", line):
                line = "  store-enabled = false"
            out.append(line)
        return "\n".join(out) + "\n"

    def start(self) -> ThrowawayInflux:
        log = (self.root / "influxd.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-config", str(self.config)], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        eventually(self._up, timeout=60, interval=0.1, what=f"throwaway influxd on {self.port}")
        return self

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"influxd exited:\n{(self.root / 'influxd.log').read_text()[-3000:]}")
        try:
            return requests.get(f"{self.url}/ping", timeout=1).status_code == 204
        except requests.RequestException:
            return False

    def terminate(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def own_influx(tmp_path):
    server = ThrowawayInflux(tmp_path / "influxd").start()
    yield server
    server.kill()


def test_20000_points_written_in_batches_are_all_counted_back(shared_db, tmp_path):
    with InfluxWriter(INFLUX_URL, shared_db, tmp_path / "spool") as w:
        assert w.ping()
        w.add(points(0, 20_000))
        assert w.flush() == 20_000
        assert eventually(lambda: count(w) == 20_000, what="20 000 points") is True
        assert count(w, "COUNT(DISTINCT(seq))") == 20_000
        assert w.spooled_lines == 0 and w.dead_lines == 0 and w.spool_bytes == 0


def test_escaped_tags_and_strings_round_trip_and_bad_lines_are_dead_lettered(shared_db, tmp_path):
    depot, zone, sensor = "城关 镇,一号=库", "冷库 A", '探头"1'
    with InfluxWriter(INFLUX_URL, shared_db, tmp_path / "spool") as w:
        w.add(env_line(depot, zone, sensor, "cold_chain", T0_MS, 3.5, None, 1))
        w.add("env,depot=x temp_c=notanumber 1")
        w.add(env_line(depot, zone, sensor, "cold_chain", T0_MS + 1, 3.75, 61.0, 2))
        w.flush()
        rows = w.query(f"SELECT temp_c, rh, seq FROM env WHERE depot = $d AND zone = $z "
                       f"AND {quote_ident('sensor')} = $s", params={"d": depot, "z": zone, "s": sensor})
        assert rows[0]["values"] == [[T0_MS, 3.5, None, 1], [T0_MS + 1, 3.75, 61.0, 2]]
        assert w.dead_lines == 1 and w.written_lines == 2
        dead = (tmp_path / "spool" / InfluxWriter.DEAD_LETTER).read_text(encoding="utf-8")
        assert "temp_c=notanumber" in dead and "unable to parse" in dead


def test_outage_terminate_restart_ends_with_exactly_10000_points(own_influx, tmp_path):
    w = InfluxWriter(own_influx.url, "outage", tmp_path / "spool", timeout=2)
    w.ensure_database()
    w.add(points(0, 5_000))
    assert w.flush() == 5_000

    own_influx.terminate()
    assert not w.ping()
    for start in range(5_000, 10_000, 1_000):
        w.add(points(start, 1_000))
        w.flush()
    assert w.spooled_lines == 5_000 and w.spool_segments == 5 and w.written_lines == 5_000

    own_influx.start()
    eventually(lambda: w.flush() and w.spool_segments == 0, timeout=30, what="spool replayed")
    assert eventually(lambda: count(w) == 10_000, what="10 000 points") is True
    assert count(w, "COUNT(DISTINCT(seq))") == 10_000
    assert w.replayed_lines == 5_000 and w.spool_bytes == 0 and w.dead_lines == 0
    w.close()


def test_frozen_server_times_out_spools_and_replay_does_not_double(own_influx, tmp_path):
    """SIGSTOP: connections are accepted by the kernel and requests wait in the socket, so the
    server may store a batch after our timeout, and then again from the spool."""
    w = InfluxWriter(own_influx.url, "frozen", tmp_path / "spool", timeout=1, batch_lines=2_500)
    w.ensure_database()
    w.add(points(0, 5_000))
    assert w.flush() == 5_000
    own_influx.freeze()
    try:
        w.add(points(5_000, 5_000))
        w.flush()
        assert w.spooled_lines == 5_000 and w.written_lines == 5_000
    finally:
        own_influx.thaw()
    eventually(lambda: w.flush() is not None and w.spool_segments == 0, timeout=30,
               what="spool replayed")
    assert eventually(lambda: count(w) == 10_000, what="10 000 points") is True
    assert count(w, "COUNT(DISTINCT(seq))") == 10_000
    w.close()


CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from services.monitoring.adapters.influx import InfluxWriter
    from services.monitoring.adapters.line_protocol import env_line
    w = InfluxWriter({url!r}, "nowhere", {spool!r}, batch_lines=1000, timeout=1)
    w.add([env_line("D1", "Z1", "S1", None, {t0} + i, 4.0, 50.0, i) for i in range(3000)])
    w.flush()
    print(w.spooled_lines, flush=True)
    os.kill(os.getpid(), 9)  # die without close(): the spool is all that is left
""")


def test_a_new_writer_process_replays_the_spool_of_a_killed_one(shared_db, tmp_path):
    spool = tmp_path / "spool"
    code = CHILD.format(root=str(ROOT), url=f"http://127.0.0.1:{free_port()}", spool=str(spool),
                        t0=T0_MS)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL and child.stdout.split() == ["3000"], child.stderr

    with InfluxWriter(INFLUX_URL, shared_db, spool) as w:
        assert w.spool_segments == 3 and w.spool_bytes > 0
        assert w.flush() == 3_000
        assert eventually(lambda: count(w) == 3_000, what="3 000 replayed points") is True
        assert w.replayed_lines == 3_000 and w.spool_segments == 0 and w.spool_bytes == 0
