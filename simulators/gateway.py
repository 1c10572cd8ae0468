"""Sensor gateways over MQTT: the demo's sensor source and the monitoring load generator.

    python -m simulators.gateway --scenario simulators/scenarios/sensors_county.yaml \
        --speed 60 --duration-min 120 --mqtt mqtt://127.0.0.1:1883 --root supply \
        [--seed 7] [--batch 500] [--single] [--max-rate MSGS_PER_S] [--start now|ISO]

One MQTT client per gateway (one gateway per depot), client id `gw-<depot>` (prefixed by the
topic root when the root is not `supply`, so that a test never takes over a running demo's
session), MQTT 3.1.1 with a persistent session (clean_session False), QoS 1 throughout.

Each gateway logs in with its own account: `{depot}` in the user name or password of the MQTT
URL is replaced by the gateway's depot id, e.g. `mqtt://gw-{depot}:<password>@broker:1883` logs
the cs01 gateway in as `gw-cs01`, which the broker's ACL lets write under `supply/cs01/#` only
(deploy/mosquitto/acl).

Status (DESIGN.md §4): on every (re)connect the gateway publishes retained `online` on its own
status topic `<root>/<depot>/gw/<gateway>/status` and on each sensor's
`<root>/<depot>/<zone>/<sensor>/status`. MQTT gives a client one last will only, so the will
(retained `offline`) sits on the gateway's status topic: when a gateway's will says `offline`,
monitoring takes every sensor of that gateway as offline (their own retained `online` is stale
then). A clean exit publishes retained `offline` on the gateway and on every sensor explicitly.

Readings go out as batches `<root>/<depot>/gw/<gateway>/batch` `{gateway, readings: [...]}`,
or with `--single` one message per reading on `<root>/<depot>/<zone>/<sensor>/telemetry`
`{ts, seq, temp_c, rh}`. `--speed N` runs N simulated seconds per wall second (0: as fast as
possible, for load; `--max-rate` then caps messages per second). `--clock SPEC` (`env` reads
SUPPLY_CLOCK) follows the services' clock instead: the run starts at the clock's now and keeps
pace with it, so the readings' timestamps agree with the other services' simulated time. Every QoS 1 message is tracked
by its mid until its PUBACK arrives (on_publish); the process exits once all are acknowledged
(exit code 1 when some are not within --ack-timeout) and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from services.common.clock import Clock, SimulatedClock, parse_clock
from simulators.sensors import (
    MS_PER_MIN,
    Batcher,
    Message,
    ScenarioConfig,
    ScenarioError,
    Simulation,
    encode_single,
    gateway_status_topic,
    parse_scenario,
    sensor_status_topic,
    to_ms,
)

ONLINE, OFFLINE = b"online", b"offline"


def load_scenario(path: str | Path) -> ScenarioConfig:
    with open(path, encoding="utf-8") as f:
        return parse_scenario(yaml.safe_load(f))


@dataclass(frozen=True)
class GatewayOptions:
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    root: str = "supply"
    batch_size: int = 500
    single: bool = False
    speed: float = 60.0
    max_rate: float | None = None  # messages per second, None: unlimited
    qos: int = 1
    client_prefix: str | None = None  # None: derived from the root
    keepalive: int = 30
    max_inflight: int = 100  # QoS 1 messages on the wire without PUBACK (paho's window)
    max_unacked: int = 2000  # publish() blocks beyond this many unacknowledged messages
    tick_s: float = 0.25  # wall seconds between steps when speed > 0
    chunk_s: float = 60.0  # simulated seconds per step when speed == 0
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 60.0
    progress_s: float = 0.0  # 0: no progress lines

    def prefix(self) -> str:
        if self.client_prefix is not None:
            return self.client_prefix
        root = self.root.strip("/")
        return "" if root == "supply" else root.replace("/", "-") + "-"


@dataclass
class RunStats:
    readings: int = 0
    messages: int = 0
    batches: int = 0
    garbage: int = 0
    duplicates: int = 0
    sim_ms: int = 0
    wall_s: float = 0.0
    acked: int = 0
    unacked: int = 0
    stopped_early: bool = False

    def summary(self) -> str:
        wall = max(self.wall_s, 1e-9)
        return (
            f"gateway summary: readings={self.readings} batches={self.batches} "
            f"messages={self.messages} garbage={self.garbage} duplicates={self.duplicates} "
            f"acked={self.acked}/{self.acked + self.unacked} "
            f"sim={self.sim_ms / MS_PER_MIN:.1f}min wall={self.wall_s:.2f}s "
            f"rate={self.readings / wall:.0f} readings/s {self.messages / wall:.1f} msgs/s"
            + (" (stopped early)" if self.stopped_early else "")
        )


class MqttUrlError(ValueError):
    pass


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    u = urlparse(url)
    if u.scheme not in ("mqtt", "tcp"):
        raise MqttUrlError(f"--mqtt must be mqtt://host:port, got {url!r}")
    return u.hostname or "127.0.0.1", u.port or 1883, u.username, u.password


def account_of(depot: str, user: str, password: str | None) -> tuple[str, str | None]:
    """The gateway's own login: `{depot}` in the URL's user or password is its depot id."""
    return (user.replace("{depot}", depot),
            None if password is None else password.replace("{depot}", depot))


class GatewayLink:
    """One gateway's MQTT client: persistent session, last will, status announcements, and
    QoS 1 publishes tracked by mid until their PUBACK."""

    def __init__(self, gateway: str, depot: str, sensors: Iterable[tuple[str, str]],
                 options: GatewayOptions):
        self.gateway, self.depot, self.options = gateway, depot, options
        self.sensors = list(sensors)  # (zone, sensor)
        self.root = options.root.strip("/")
        self.client_id = f"{options.prefix()}{gateway}"
        self.status_topic = self.topic(gateway_status_topic(depot, gateway))
        self._cv = threading.Condition()
        self._unacked: set[int] = set()
        self._acked_early: set[int] = set()
        self.sent = 0
        self.acked = 0
        self.connects = 0
        self.connected = threading.Event()
        self.connect_error: str | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  clean_session=False, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(options.max_inflight)
        self.client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def topic(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def status_topics(self) -> list[str]:
        return [self.status_topic] + [self.topic(sensor_status_topic(self.depot, z, s))
                                      for z, s in self.sensors]

    # -- callbacks (network thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.connect_error = str(reason_code)
            return
        self.connects += 1
        self.connect_error = None
        # (re)announce: the will may have marked us offline while we were away
        for t in self.status_topics()[1:]:
            self.publish(t, ONLINE, retain=True, block=False)
        self.publish(self.status_topic, ONLINE, retain=True, block=False)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cv:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:  # PUBACK processed before publish() returned its mid to us
                self._acked_early.add(mid)
            self.acked += 1
            self._cv.notify_all()

    # -- calls (publishing thread)

    def connect(self) -> None:
        host, port, user, password = parse_mqtt_url(self.options.mqtt_url)
        if user:
            self.client.username_pw_set(*account_of(self.depot, user, password))
        self.client.connect_async(host, port, self.options.keepalive)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> None:
        if not self.connected.wait(timeout):
            self.client.loop_stop()
            raise ConnectionError(f"{self.client_id}: not connected to {self.options.mqtt_url} "
                                  f"within {timeout:g} s ({self.connect_error or 'no CONNACK'})")

    def publish(self, topic: str, payload: bytes, retain: bool = False, block: bool = True) -> None:
        if block:
            with self._cv:
                while len(self._unacked) >= self.options.max_unacked:
                    self._cv.wait(1.0)
        info = self.client.publish(topic, payload, qos=self.options.qos, retain=retain)
        # NO_CONN: paho keeps a QoS 1 message queued and sends it after reconnecting
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"{self.client_id}: publish to {topic} failed: {mqtt.error_string(info.rc)}")
        with self._cv:
            self.sent += 1
            if self.options.qos == 0:
                self.acked += 1
            elif info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
            else:
                self._unacked.add(info.mid)

    @property
    def unacked(self) -> int:
        with self._cv:
            return len(self._unacked)

    def wait_acked(self, deadline: float) -> bool:
        with self._cv:
            while self._unacked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.5))
            return True

    def close(self, deadline: float, mark_offline: bool = True) -> bool:
        """Clean shutdown: retained `offline` for the gateway and its sensors, every PUBACK, then
        DISCONNECT (which the broker does not answer with the will)."""
        if mark_offline:
            for t in self.status_topics():
                self.publish(t, OFFLINE, retain=True, block=False)
        ok = self.wait_acked(deadline)
        self.client.disconnect()
        self.client.loop_stop()
        return ok


class RateLimiter:
    """At most `per_s` calls of `wait` per second (None: no limit)."""

    def __init__(self, per_s: float | None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / per_s if per_s else 0.0
        self.sleep, self.monotonic = sleep, monotonic
        self.next = monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.monotonic()
        if self.next > now:
            self.sleep(self.next - now)
        self.next = max(self.next, now) + self.interval


class GatewayRunner:
    """Drives a Simulation and publishes what it produces through one link per gateway."""

    def __init__(self, sim: Simulation, options: GatewayOptions = GatewayOptions(),
                 log: Callable[[str], None] | None = None, clock: Clock | None = None):
        """`clock`: when given (and speed > 0), simulated time is the clock's now."""
        self.sim, self.options, self.clock = sim, options, clock
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        sensors: dict[str, list[tuple[str, str]]] = {}
        for depot, zone, sensor, _ in sim.sensors():
            sensors.setdefault(depot, []).append((zone, sensor))
        self.links = {gw: GatewayLink(gw, depot, sensors[depot], options)
                      for gw, depot in sim.gateways.items()}
        self.stats = RunStats()
        self._stop = threading.Event()
        self._batcher = Batcher(options.batch_size)
        self._limiter = RateLimiter(options.max_rate)

    def stop(self) -> None:
        self._stop.set()

    def connect(self) -> None:
        for link in self.links.values():
            link.connect()
        deadline = time.monotonic() + self.options.connect_timeout_s
        for link in self.links.values():
            link.wait_connected(max(0.0, deadline - time.monotonic()))

    def _publish(self, messages: list[Message]) -> None:
        st = self.stats
        for m in messages:
            self._limiter.wait()
            self.links[m.gateway].publish(self.links[m.gateway].topic(m.topic), m.payload)
            st.messages += 1
            st.readings += m.readings
            st.garbage += m.garbage
            if m.kind == "batch":
                st.batches += 1

    def _encode(self, readings: list, final: bool) -> list[Message]:
        self.stats.duplicates += sum(1 for r in readings if r.duplicate)
        if self.options.single:
            return encode_single(readings)
        out = self._batcher.add(readings)
        # timed runs send what they have every tick; load runs send full batches only
        if final or self.options.speed > 0:
            out += self._batcher.flush()
        return out

    def run(self, duration_min: float) -> RunStats:
        """Publish `duration_min` simulated minutes, then wait for every PUBACK. Leaves the
        connections open (see `close`)."""
        opts, sim, st = self.options, self.sim, self.stats
        start_ms = sim.now_ms
        end_ms = start_ms + round(duration_min * MS_PER_MIN)
        wall0 = time.monotonic()
        next_progress = wall0 + opts.progress_s if opts.progress_s > 0 else float("inf")
        target = start_ms
        while target < end_ms and not self._stop.is_set():
            if opts.speed > 0 and self.clock is not None:
                target = max(target, min(end_ms, to_ms(self.clock.now())))
            elif opts.speed > 0:
                elapsed = time.monotonic() - wall0
                target = min(end_ms, start_ms + round(elapsed * opts.speed * 1000))
            else:
                target = min(end_ms, target + round(opts.chunk_s * 1000))
            self._publish(self._encode(sim.step(target), final=False))
            now = time.monotonic()
            if now >= next_progress:
                self.log(f"progress: sim +{(target - start_ms) / MS_PER_MIN:.1f} min, "
                         f"{st.readings} readings, {st.readings / (now - wall0):.0f} readings/s")
                next_progress = now + opts.progress_s
            if opts.speed > 0 and target < end_ms:
                self._stop.wait(opts.tick_s)
        st.stopped_early = target < end_ms
        self._publish(self._encode(sim.drain(), final=True))
        deadline = time.monotonic() + opts.ack_timeout_s
        for link in self.links.values():
            link.wait_acked(deadline)
        st.wall_s = time.monotonic() - wall0
        st.sim_ms = target - start_ms
        self._count_acks()
        return st

    def _count_acks(self) -> None:
        self.stats.acked = sum(link.acked for link in self.links.values())
        self.stats.unacked = sum(link.unacked for link in self.links.values())

    def close(self, mark_offline: bool = True) -> bool:
        deadline = time.monotonic() + self.options.ack_timeout_s
        ok = all([link.close(deadline, mark_offline) for link in self.links.values()])
        self._count_acks()
        return ok


def _start_of(spec: str | None, config: ScenarioConfig) -> datetime | None:
    if not spec:
        return None
    if spec == "now":
        return datetime.now(UTC).astimezone(config.start.tzinfo)
    start = datetime.fromisoformat(spec)
    if start.tzinfo is None:
        raise ScenarioError(f"--start {spec!r} needs a UTC offset")
    return start


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulators.gateway",
                                description="Cold-store and warehouse sensor gateways over MQTT.")
    p.add_argument("--scenario", required=True, help="simulators/scenarios/sensors_*.yaml")
    p.add_argument("--speed", type=float, default=60.0,
                   help="simulated seconds per wall second; 0 = as fast as possible (default 60)")
    p.add_argument("--duration-min", type=float, default=120.0, help="simulated minutes (default 120)")
    p.add_argument("--mqtt", default=os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
    p.add_argument("--root", default="supply", help="topic root (default supply)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--batch", type=int, default=500, help="readings per batch message (default 500)")
    p.add_argument("--single", action="store_true",
                   help="one telemetry message per reading instead of gateway batches")
    p.add_argument("--max-rate", type=float, default=None, help="at most this many messages/s")
    p.add_argument("--start", default=None,
                   help="simulated start: 'now' or ISO-8601 with offset (default: the scenario's)")
    p.add_argument("--clock", default=None,
                   help="follow a clock: 'real', 'sim:<start>;speed=<x>;anchor=<unix s>', or 'env' "
                        "(SUPPLY_CLOCK); sets the start and the speed")
    p.add_argument("--client-prefix", default=None,
                   help="client id prefix (default: '' for root supply, else the root)")
    p.add_argument("--ack-timeout", type=float, default=60.0, help="seconds to wait for PUBACKs")
    p.add_argument("--progress", type=float, default=0.0, help="progress line every N s (stderr)")
    p.add_argument("--keep-online", action="store_true",
                   help="on exit leave the retained statuses as they are (default: mark offline)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.speed < 0 or args.duration_min <= 0 or args.batch < 1:
        print("error: --speed ≥ 0, --duration-min > 0 and --batch ≥ 1 are required", file=sys.stderr)
        return 2
    clock: Clock | None = None
    speed = args.speed
    try:
        config = load_scenario(args.scenario)
        start = _start_of(args.start, config)
        if args.clock:
            spec = os.environ.get("SUPPLY_CLOCK", "real") if args.clock == "env" else args.clock
            clock = parse_clock(spec)
            start = clock.now().astimezone(config.start.tzinfo)
            speed = clock.speed if isinstance(clock, SimulatedClock) else 1.0
        sim = Simulation(config, seed=args.seed, start=start)
        parse_mqtt_url(args.mqtt)
    except (OSError, ScenarioError, MqttUrlError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = GatewayOptions(mqtt_url=args.mqtt, root=args.root, batch_size=args.batch,
                             single=args.single, speed=speed, max_rate=args.max_rate,
                             client_prefix=args.client_prefix, ack_timeout_s=args.ack_timeout,
                             progress_s=args.progress)
    runner = GatewayRunner(sim, options, clock=clock)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    try:
        runner.connect()
    except (ConnectionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"gateway: {len(runner.links)} gateways, {config.sensor_count()} sensors, scenario "
          f"{config.name!r} from {sim.config.start.isoformat()}, speed {speed:g}, "
          f"root {options.root!r}", file=sys.stderr, flush=True)
    stats = runner.run(args.duration_min)
    closed = runner.close(mark_offline=not args.keep_online)
    print(stats.summary(), flush=True)
    return 0 if closed and stats.unacked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
