"""Issue 14 finding 8: the repository's Mosquitto ACL (deploy/mosquitto/acl) in a Mosquitto of
the test's own, with a password file made for the test: `monitoring` reads and cannot publish
(not even under supply/monitoring/…), a gateway account writes under its own depot and not under
another's, and the simulator logs each gateway in with its own account."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.gateway import GatewayOptions, GatewayRunner
from simulators.sensors import Simulation
from tests.support.infra import free_port, port_open
from tests.support.monitoring import hours_ago
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "acl-test-" + uuid.uuid4().hex
USERS = ("monitoring", "health", "gw-cs01", "gw-wh01")


@pytest.fixture
def broker(tmp_path):
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    tool = shutil.which("mosquitto_passwd")
    if not Path(binary).exists() or tool is None:
        pytest.fail("mosquitto / mosquitto_passwd are not installed: run deploy/scripts/servers.sh up")
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    for user in USERS:
        subprocess.run([tool, "-b", str(passwd), user, PASSWORD], check=True, capture_output=True)
    shutil.copy(ROOT / "deploy/mosquitto/acl", tmp_path / "acl")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
                    f"acl_file {tmp_path / 'acl'}\nuser {getpass.getuser()}\n"
                    f"log_dest file {tmp_path / 'mosquitto.log'}\nlog_type all\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        eventually(lambda: proc.poll() is None and port_open(port), timeout=15, what="mosquitto up")
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=15)


class Client:
    def __init__(self, port: int, user: str, subscribe: str | None = None):
        self.received: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(user, PASSWORD)
        self.client.on_message = lambda c, u, msg: self.received.append(msg.topic)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: (not rc.is_failure) and connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), f"{user} could not log in"
        if subscribe:
            self.client.subscribe(subscribe, qos=1)
            assert subscribed.wait(10)

    def publish(self, topic: str) -> None:
        self.client.publish(topic, b'{"ts": 1, "seq": 1, "temp_c": 2}', qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_monitoring_reads_only_and_a_gateway_writes_under_its_own_depot_only(broker):
    monitoring = Client(broker, "monitoring", subscribe="supply/#")
    cs01, wh01 = Client(broker, "gw-cs01"), Client(broker, "gw-wh01")
    try:
        monitoring.publish("supply/monitoring/chl/s1/telemetry")  # the old `pattern` hole
        monitoring.publish("supply/cs01/chl/s1/telemetry")
        cs01.publish("supply/wh01/oxd/s1/telemetry")  # another depot's topic
        wh01.publish("supply/cs01/chl/s2/telemetry")
        # each publish above was acknowledged (Mosquitto drops a refused one silently) before
        # these: once they arrive, anything that got through would have arrived
        cs01.publish("supply/cs01/chl/s9/telemetry")
        wh01.publish("supply/wh01/oxd/s9/telemetry")
        eventually(lambda: len(monitoring.received) >= 2, timeout=10, what="the allowed publishes")
        assert sorted(monitoring.received) == ["supply/cs01/chl/s9/telemetry", "supply/wh01/oxd/s9/telemetry"]
    finally:
        for c in (monitoring, cs01, wh01):
            c.close()


def test_the_simulator_logs_each_gateway_in_with_its_own_account(broker):
    monitoring = Client(broker, "monitoring", subscribe="supply/+/gw/+/batch")
    sim = Simulation({"name": "acl", "interval_s": 60, "depots": [
        {"id": "cs01", "zones": [{"id": "cs01-chl", "storage_class": "chilled", "sensors": 1}]},
        {"id": "wh01", "zones": [{"id": "wh01-oxd", "storage_class": "oxidizer", "sensors": 1}]}]},
        seed=1, start=hours_ago(1))
    runner = GatewayRunner(sim, GatewayOptions(mqtt_url=f"mqtt://gw-{{depot}}:{PASSWORD}@127.0.0.1:{broker}",
                                               speed=0, batch_size=5, client_prefix="acl-"),
                           log=lambda line: None)
    try:
        runner.connect()
        stats = runner.run(duration_min=10)
        assert stats.unacked == 0 and stats.readings == 20
        eventually(lambda: {t.split("/")[1] for t in monitoring.received} == {"cs01", "wh01"},
                   timeout=10, what="batches of both gateways")
    finally:
        runner.close(mark_offline=False)
        monitoring.close()
