"""Line protocol encoding and the InfluxWriter's batching, spool and dead letter, against a tiny
fake of InfluxDB's v1 /write (a real HTTP server on 127.0.0.1:0 that can be told to fail)."""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.monitoring.adapters.influx import InfluxWriter, SpoolLocked, bad_lines_from_error
from services.monitoring.adapters.line_protocol import (
    LineProtocolError,
    alarm_line,
    encode_line,
    env_line,
    env_lines,
    escape_key,
    escape_string_field,
    quote_ident,
    quote_literal,
    reading_line,
    to_epoch_ms,
    transition_line,
)
from services.monitoring.domain.alarms import AlarmEvidence, AlarmTransition
from services.monitoring.domain.readings import Reading
from tests.support.polling import eventually

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
T0_MS = 1795852800000


# --- line protocol -----------------------------------------------------------------------------

def test_env_line_has_sorted_tags_float_fields_integer_seq_and_ms_timestamp():
    line = env_line("D1", "Z1", "S1", "cold_chain", T0, 4, 55.5, 17)
    assert line == (f"env,depot=D1,sensor=S1,storage_class=cold_chain,zone=Z1 "
                    f"temp_c=4.0,rh=55.5,seq=17i {T0_MS}")


def test_env_line_leaves_out_missing_rh_and_unknown_storage_class():
    assert env_line("D1", "Z1", "S1", None, T0_MS, -18.25, None, 0) == (
        f"env,depot=D1,sensor=S1,zone=Z1 temp_c=-18.25,seq=0i {T0_MS}")


def test_tag_keys_and_values_escape_commas_spaces_equals_and_keep_chinese():
    line = env_line("城关 镇,一号库", "冷库=A", "探头 1", "冷链", T0_MS, 2.5, 60.0, 1)
    assert line.startswith(r"env,depot=城关\ 镇\,一号库,sensor=探头\ 1,storage_class=冷链,zone=冷库\=A ")
    assert escape_key("a,b c=d") == r"a\,b\ c\=d"
    assert encode_line("my meas,x", {"k y": "v"}, {"f,1": 1.0}, 5) == r"my\ meas\,x,k\ y=v f\,1=1.0 5"


def test_string_fields_escape_quotes_and_backslashes():
    assert escape_string_field('say "hi" C:\\tmp') == r'"say \"hi\" C:\\tmp"'
    line = alarm_line("D1", "Z1", "TEMP_HIGH", "consecutive", "opened", 9.5, 'a"1\\', T0,
                      sensor="S 1")
    assert line == (f'alarm,depot=D1,kind=consecutive,rule_code=TEMP_HIGH,zone=Z1 '
                    f'state="opened",value=9.5,alert_id="a\\"1\\\\",sensor="S 1" {T0_MS}')


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, float("nan")])
def test_nan_and_inf_are_refused(bad):
    with pytest.raises(LineProtocolError, match="not finite"):
        env_line("D1", "Z1", "S1", None, T0, bad, 50.0, 1)
    with pytest.raises(LineProtocolError, match="not finite"):
        env_line("D1", "Z1", "S1", None, T0, 5.0, bad, 1)
    with pytest.raises(LineProtocolError, match="not finite"):
        alarm_line("D1", "Z1", "R", "instant", "opened", bad, "a1", T0)


@pytest.mark.parametrize("call, match", [
    (lambda: env_line("D1", "Z1", "S1", None, T0, True, 50.0, 1), "must be a number"),
    (lambda: env_line("D1", "Z1", "S1", None, T0, "4", 50.0, 1), "must be a number"),
    (lambda: env_line("D1", "Z1", "S1", None, T0, 4.0, 50.0, 1.0), "must be an int"),
    (lambda: env_line("D1", "Z1", "S1", None, T0, 4.0, 50.0, True), "must be an int"),
    (lambda: env_line("D1", "Z1", "S1", None, T0, 4.0, 50.0, 2**63), "outside int64"),
    (lambda: env_line("D1", "Z1", "S1", None, datetime(2026, 1, 1), 4.0, 50.0, 1), "no timezone"),
    (lambda: env_line("", "Z1", "S1", None, T0, 4.0, 50.0, 1), "empty"),
    (lambda: env_line("D\n1", "Z1", "S1", None, T0, 4.0, 50.0, 1), "line break"),
    (lambda: env_line("D1\\", "Z1", "S1", None, T0, 4.0, 50.0, 1), "backslash"),
    (lambda: alarm_line("D1", "Z1", "R", "k", "open\ned", 1.0, "a", T0), "line break"),
    (lambda: env_line("D\ud800", "Z1", "S1", None, T0, 4.0, 50.0, 1), "lone surrogate"),
    (lambda: alarm_line("D1", "Z1", "R", "k", "opened", 1.0, "a\udc80", T0), "lone surrogate"),
    (lambda: encode_line("m", {}, {"f": None}, 1), "at least one field"),
    (lambda: encode_line("m", {}, {"f": [1]}, 1), "unsupported type"),
])
def test_values_line_protocol_cannot_carry_are_refused(call, match):
    with pytest.raises(LineProtocolError, match=match):
        call()


def test_timestamps_are_exact_milliseconds_in_any_timezone():
    cst = timezone(timedelta(hours=8))
    assert to_epoch_ms(datetime(2026, 11, 28, 16, 0, tzinfo=cst)) == T0_MS
    assert to_epoch_ms(T0 + timedelta(microseconds=1999)) == T0_MS + 1
    assert to_epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) == -1


def test_float_formatting_round_trips_and_never_looks_like_an_integer():
    for v in (0.1, -0.0, 1e22, 1e-5, 123456789.123, 25.0):
        text = encode_line("m", {}, {"v": v}, 1).split(" ")[1][2:]
        assert float(text) == v and ("." in text or "e" in text)


def test_reading_and_transition_helpers_use_the_domain_objects():
    r = Reading(depot="D1", zone="Z1", sensor="S1", ts=T0, seq=3, temp_c=5.5, rh=40.0)
    assert reading_line(r, "cold_chain") == env_line("D1", "Z1", "S1", "cold_chain", T0, 5.5, 40.0, 3)
    ev = AlarmEvidence(peak=9.0, minutes_beyond=31.0, first_beyond_at=T0, limit=8.0, op=">",
                       metric="temp_c")
    t = AlarmTransition(depot="D1", zone="Z1", sensor="S2", rule_code="COLD_HIGH_30M",
                        kind="consecutive", state="opened", at=T0, value=9.0, evidence=ev,
                        spoilage=True, name_zh="冷链超温", name_en="cold chain too warm")
    assert transition_line(t, "alert-1") == alarm_line(
        "D1", "Z1", "COLD_HIGH_30M", "consecutive", "opened", 9.0, "alert-1", T0, sensor="S2")


def test_influxql_quoting():
    assert quote_ident('we"ird\\name') == '"we\\"ird\\\\name"'
    assert quote_literal("o'brien\\x") == "'o\\'brien\\\\x'"


def test_bad_lines_are_found_in_a_real_1x_partial_write_error():
    lines = ["m,t=a v=1 1000", "m,t=b v=abc 2000", "m,t=c v=3 3000", "m,t=d,bad 4000",
             "m,t=e s=\"x': y\",v=abc 5000"]
    # the text InfluxDB 1.6.7 returned for such a batch (" dropped=0" glued to the last reason)
    error = ("partial write: unable to parse 'm,t=b v=abc 2000': invalid boolean\n"
             "unable to parse 'm,t=e s=\"x': y\",v=abc 5000': invalid boolean\n"
             "unable to parse 'm,t=d,bad 4000': missing tag value dropped=0")
    assert bad_lines_from_error(error, lines) == [lines[1], lines[4], lines[3]]


# --- a fake InfluxDB /write --------------------------------------------------------------------

class FakeInflux:
    """Stores points by series+timestamp like InfluxDB (a rewrite overwrites). Modes: ok,
    503, close (drop the connection unanswered), store_then_close (store, then drop: the client
    cannot know it was written), hang (answer after `hang_s`), nodb (404 database not found).
    Lines containing BAD are refused with a 1.x style partial-write 400; a body of more than
    `max_lines` lines is refused whole with 413, as InfluxDB does beyond its max-body-size."""

    def __init__(self):
        self.mode = "ok"
        self.hang_s = 1.0
        self.max_lines: int | None = None
        self.points: dict[tuple[str, str], str] = {}
        self.requests: list[list[str]] = []  # bodies of requests that reached a handler
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
                lines = [x for x in body.split("\n") if x]
                q = parse_qs(urlparse(self.path).query)
                assert q["precision"] == ["ms"] and q["db"] == ["testdb"]
                mode = fake.mode
                with fake.lock:
                    fake.requests.append(lines)
                if mode in ("close", "store_then_close"):
                    if mode == "store_then_close":
                        fake.store(lines)
                    self.close_connection = True
                    return
                if mode == "hang":
                    time.sleep(fake.hang_s)
                if fake.max_lines is not None and len(lines) > fake.max_lines:
                    return self.reply(413, {"error": "Request Entity Too Large"})
                if mode == "503":
                    return self.reply(503, {"error": "engine: cache maximum memory size exceeded"})
                if mode == "nodb":
                    return self.reply(404, {"error": 'database not found: "testdb"'})
                bad = [x for x in lines if "BAD" in x]
                fake.store([x for x in lines if "BAD" not in x])
                if bad:
                    error = "\n".join(f"unable to parse '{x}': invalid boolean" for x in bad)
                    prefix = "partial write: " if len(bad) < len(lines) else ""
                    return self.reply(400, {"error": f"{prefix}{error} dropped=0"})
                self.reply(204)

            def reply(self, status, payload=None):
                data = json.dumps(payload).encode() if payload else b""
                # after "hang" the writer has given up and closed the connection
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def store(self, lines):
        with self.lock:
            for line in lines:
                series, fields, ts = line.rsplit(" ", 2)
                self.points[(series, ts)] = fields

    def seqs(self) -> list[int]:
        with self.lock:
            return sorted(int(f.rsplit("seq=", 1)[1].rstrip("i")) for f in self.points.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeInflux()
    yield f
    f.close()


def lines(start: int, n: int, sensor: str = "S1") -> list[str]:
    return [env_line("D1", "Z1", sensor, "cold_chain", T0_MS + i, 4.0, 50.0, i)
            for i in range(start, start + n)]


def writer(fake, tmp_path, **kw) -> InfluxWriter:
    kw.setdefault("timeout", 2)
    return InfluxWriter(fake.url, "testdb", tmp_path / "spool", **kw)


def test_flush_writes_in_batches_of_at_most_batch_lines(fake, tmp_path):
    with writer(fake, tmp_path, batch_lines=400) as w:
        assert w.stats()["written_at"] is None
        w.add(lines(0, 1000))
        before = time.time()
        assert w.flush() == 1000
        assert [len(r) for r in fake.requests] == [400, 400, 200]
        assert fake.seqs() == list(range(1000))
        assert w.stats()["written_lines"] == 1000 and w.spool_bytes == 0 and w.spool_segments == 0
        written_at = w.stats()["written_at"]
        assert before <= written_at <= time.time()  # when InfluxDB acknowledged the last line
        fake.mode = "503"
        w.add(lines(1000, 10))
        w.flush()
        assert w.spooled_lines == 10 and w.stats()["written_at"] == written_at  # spooled is not written


def test_a_batch_over_the_servers_body_limit_is_halved_until_it_fits_not_dead_lettered(fake, tmp_path):
    fake.max_lines = 300
    with writer(fake, tmp_path, batch_lines=1000) as w:
        w.add(lines(0, 1000))
        assert w.flush() == 1000
        assert fake.seqs() == list(range(1000))
        assert w.dead_lines == 0 and w.spooled_lines == 0 and w.written_lines == 1000
        assert [len(r) for r in fake.requests] == [1000, 500, 250, 250, 500, 250, 250]


@pytest.mark.parametrize("mode", ["503", "close", "hang", "nodb"])
def test_failed_batches_are_spooled_then_replayed_oldest_first_before_new_data(fake, tmp_path, mode):
    w = writer(fake, tmp_path, batch_lines=300, timeout=0.3)
    fake.hang_s = 5.0  # far beyond the client's timeout: nothing lands during the test
    fake.mode = mode
    w.add(lines(0, 500))
    assert w.flush() == 0
    w.add(lines(500, 100))
    w.flush()
    assert w.spooled_lines == 600 and w.spool_segments == 3 and w.spool_bytes > 0
    assert w.written_lines == 0 and w.dead_lines == 0 and fake.seqs() == []

    fake.mode = "ok"
    fake.requests.clear()
    w.add(lines(600, 50))
    assert w.flush() == 650
    assert fake.seqs() == list(range(650))
    sent = [int(x.rsplit("seq=", 1)[1].split("i")[0]) for r in fake.requests for x in r]
    assert sent == list(range(650)), "spool replayed in order, before the new lines"
    assert all(len(r) <= 300 for r in fake.requests)
    assert w.replayed_lines == 600 and w.written_lines == 650
    assert w.spool_segments == 0 and w.spool_bytes == 0
    w.close()


def test_a_new_writer_on_the_same_spool_replays_it_and_continues_the_sequence(fake, tmp_path):
    w = writer(fake, tmp_path, batch_lines=100)
    fake.mode = "503"
    w.add(lines(0, 250))
    w.flush()
    w.close()
    names = sorted(p.name for p in (tmp_path / "spool").glob("seg-*.lp"))
    assert len(names) == 3
    (tmp_path / "spool" / "seg-00000000000000000099.tmp").write_text("half-written\n")

    w2 = writer(fake, tmp_path, batch_lines=100)
    assert w2.spool_bytes > 0 and w2.spool_segments == 3
    assert not list((tmp_path / "spool").glob("*.tmp")), "a torn segment is discarded"
    w2.add(lines(250, 10))
    w2.flush()
    newest = sorted(p.name for p in (tmp_path / "spool").glob("seg-*.lp"))[-1]
    assert newest > names[-1], "new segments sort after the old ones"
    fake.mode = "ok"
    assert w2.flush() == 260
    assert fake.seqs() == list(range(260)) and w2.replayed_lines == 260
    w2.close()


def test_replay_of_a_batch_that_was_in_fact_stored_does_not_double_it(fake, tmp_path):
    with writer(fake, tmp_path) as w:
        fake.mode = "store_then_close"
        w.add(lines(0, 100))
        w.flush()
        assert w.spooled_lines == 100 and len(fake.points) == 100
        fake.mode = "ok"
        w.flush()
        assert w.replayed_lines == 100
        assert fake.seqs() == list(range(100)), "same series+timestamp: overwritten, not added"


def test_refused_lines_go_to_the_dead_letter_and_the_rest_continues(fake, tmp_path):
    with writer(fake, tmp_path, batch_lines=10) as w:
        batch = lines(0, 10)
        batch[3] = batch[3].replace("temp_c=4.0", "temp_c=BAD")
        w.add(batch)
        w.add(["BAD line one", "BAD line two"])  # a batch of only bad lines: nothing stored
        w.add(lines(10, 5))
        w.flush()
        assert fake.seqs() == [i for i in range(15) if i != 3]
        assert w.dead_lines == 3 and w.written_lines == 14 and w.spool_segments == 0
        dead = [json.loads(x) for x in
                (tmp_path / "spool" / "dead-letter.jsonl").read_text().splitlines()]
        assert dead[0]["lines"] == [batch[3]] and dead[0]["status"] == 400
        assert "unable to parse" in dead[0]["error"] and dead[0]["dropped"] == 1
        assert dead[1]["lines"] == ["BAD line one", "BAD line two"] and dead[1]["dropped"] == 2
        fake.requests.clear()
        w.flush()
        assert fake.requests == [], "dead lines are not retried"


def test_after_a_failure_automatic_flushes_back_off_instead_of_waiting_on_a_hung_server(fake, tmp_path):
    with writer(fake, tmp_path, timeout=0.3, retry_min=60) as w:
        fake.mode = "hang"
        w.add(lines(0, 10))
        w.flush()
        n = len(fake.requests)
        started = time.monotonic()
        for i in range(5):
            w.add(lines(10 + i, 1))
            w.flush(force=False)
        assert time.monotonic() - started < 0.3 and len(fake.requests) == n
        assert w.spooled_lines == 15
        fake.mode = "ok"
        w.flush(force=False)
        assert fake.seqs() == [], "still backing off"
        assert w.flush() == 15 and fake.seqs() == list(range(15))


def test_background_flusher_writes_and_stop_flushes_what_is_left(fake, tmp_path):
    w = writer(fake, tmp_path, batch_lines=100, flush_interval=0.05).start()
    w.add(lines(0, 250))
    eventually(lambda: w.written_lines == 250, timeout=10, what="background flush")
    w.add(lines(250, 3))
    w.stop()
    assert fake.seqs() == list(range(253)) and w.buffered_lines == 0
    w.close()


def test_background_flusher_spools_during_an_outage_and_catches_up(fake, tmp_path):
    w = writer(fake, tmp_path, flush_interval=0.02, timeout=0.5, retry_min=0.05, retry_max=0.1)
    w.start()
    fake.mode = "close"
    for i in range(20):
        w.add(lines(i * 10, 10))
        eventually(lambda n=i: w.spooled_lines >= (n + 1) * 10, timeout=10, what="spooled")
    fake.mode = "ok"
    eventually(lambda: w.spool_segments == 0 and w.written_lines == 200, timeout=10,
               what="spool drained")
    assert fake.seqs() == list(range(200))
    w.close()


def test_only_one_writer_owns_a_spool_directory(fake, tmp_path):
    w = writer(fake, tmp_path)
    with pytest.raises(SpoolLocked):
        writer(fake, tmp_path)
    w.close()
    writer(fake, tmp_path).close()


def test_unusual_unicode_survives_the_spool(fake, tmp_path):
    odd = "库\u2028点\x85𠀋"  # characters str.splitlines() would cut at, and a non-BMP one
    line = env_line(odd, "Z1", "S1", None, T0_MS, 1.0, None, 7)
    with writer(fake, tmp_path) as w:
        fake.mode = "503"
        w.add([line])
        w.flush()
        fake.mode = "ok"
        w.flush()
        assert w.replayed_lines == 1 and w.dead_lines == 0
        assert list(fake.points) == [(line.rsplit(" ", 2)[0], str(T0_MS))]


def test_env_lines_are_env_line_for_each_reading_and_unencodable_ones_are_reported():
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    rs = [Reading("d 1", "z=1", f"s{i % 3}", t0 + timedelta(minutes=i // 3), i, 2.5 + i, None if i % 2 else 61.0)
          for i in range(9)]
    rs += [Reading("d 1", "z=1", "s0", t0, 20, 4, 50), Reading("d 1", "z=1", "s1", t0, 21, float("nan"), None),
           Reading("d 1", "z2\\", "s1", t0, 22, 1.0, None), Reading("d 1", "z=1", "s2", t0, 2**63, 1.0, None)]
    refused = []
    lines = env_lines(rs, lambda k: None if k.endswith("2\\") else f"class of {k}",
                      lambda r, exc: refused.append(r.seq))
    assert lines == [env_line(r.depot, r.zone, r.sensor, f"class of {r.zone_key}", r.ts, r.temp_c, r.rh, r.seq)
                     for r in rs[:10]]
    assert refused == [21, 22, 2**63]


def test_env_lines_of_parsed_readings_use_the_epoch_milliseconds_they_were_sent_with():
    from services.monitoring.domain.readings import parse_message

    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    sent = [int((now - timedelta(minutes=m)).timestamp() * 1000) + m for m in range(5)]
    payload = json.dumps({"gateway": "g1", "readings": [
        {"depot": "d1", "zone": "z1", "sensor": f"s{i}", "ts": ts, "seq": i, "temp_c": 3.25, "rh": 60}
        for i, ts in enumerate(sent)]}).encode()
    rs = parse_message("supply/d1/gw/g1/batch", payload, now).readings
    assert [r.ts_ms for r in rs] == sent
    lines = env_lines(rs, lambda k: "chilled", lambda r, exc: None)
    assert lines == [env_line(r.depot, r.zone, r.sensor, "chilled", r.ts, r.temp_c, r.rh, r.seq) for r in rs]
    assert [int(line.rsplit(" ", 1)[1]) for line in lines] == sent


_VALUES = st.one_of(st.floats(-60, 80), st.sampled_from([0.0, -0.0, 2.5, 2, float("nan"), float("inf")]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", "s 3"]), st.sampled_from(["z1", "z2\\"]),
                          st.one_of(st.integers(0, 10**6), st.sampled_from([2**63])),
                          _VALUES, st.one_of(st.none(), _VALUES), st.booleans()), max_size=12))
def test_env_lines_encode_every_reading_as_env_line_does_whichever_way_they_are_taken(rows):
    """Column by column for the usual group, reading by reading otherwise: the same lines, the
    same refusals. Zero and minus zero, which are one key of a cache, keep their own texts."""
    readings = [Reading("d1", zone, sensor, T0 + timedelta(seconds=i), seq, temp, rh,
                        T0_MS + 1000 * i if sent_ms else None)
                for i, (sensor, zone, seq, temp, rh, sent_ms) in enumerate(rows)]
    refused, expected = [], []
    for r in readings:
        try:
            expected.append(env_line(r.depot, r.zone, r.sensor, "chilled", r.ts, r.temp_c, r.rh, r.seq))
        except LineProtocolError:
            refused.append(r)
    seen = []
    for _ in range(2):  # the second time, every value's text is remembered
        seen.clear()
        assert env_lines(readings, lambda k: "chilled", lambda r, exc: seen.append(r)) == expected
        assert seen == refused
    usual = [r for r in readings if r not in refused and r.ts_ms is not None and type(r.temp_c) is float]
    assert env_lines([r._replace(temp_c=-0.0) for r in usual], lambda k: "chilled", lambda r, exc: None) == [
        env_line(r.depot, r.zone, r.sensor, "chilled", r.ts, -0.0, r.rh, r.seq) for r in usual]
