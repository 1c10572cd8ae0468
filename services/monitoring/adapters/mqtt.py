"""The MQTT side of the ingest: paho-mqtt 2 client, MQTT 5, persistent session, manual acks.

- Fixed client id (SUPPLY_MQTT_CLIENT_ID) and clean_start False with a Session Expiry Interval:
  the broker keeps the session (subscriptions, unacked and queued QoS 1 messages) while the
  process is away, and redelivers every message that was not acked when it comes back.
- manual_ack=True: paho does not PUBACK on receipt; the pipeline acks a message only after its
  readings were committed and written or spooled (ack()).
- Receive Maximum (SUPPLY_MQTT_RECEIVE_MAX) bounds the unacked messages in flight to us.
- Telemetry through shared subscriptions `$share/<group>/…` at QoS 1 (several ingest processes
  split the load); statuses through a plain subscription at QoS 0 (see ingest.topic_filters).

A message received on an earlier connection is never acked on a later one (its packet id may be
reused): the broker redelivers it on the new connection, and a repeat is harmless.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from services.monitoring.ingest import InMessage

log = logging.getLogger(__name__)


class MqttConsumer:
    def __init__(self, url: str, client_id: str, subscriptions: list[tuple[str, int]], *,
                 session_expiry_s: int = 86_400, receive_max: int = 500, keepalive: int = 30):
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 1883
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.topics = [t for t, _ in subscriptions]
        self.session_expiry_s = session_expiry_s
        self.receive_max = receive_max
        self.keepalive = keepalive
        self.queue: queue.Queue[InMessage] = queue.Queue()
        self.generation = 0
        self.connected = threading.Event()
        self.state = "starting"
        self.session_present = False
        # when the last connection came up (wall clock, and the process's CPU seconds): a
        # persistent session's queued messages start to arrive then, before the SUBACK
        self.connected_at: float | None = None
        self.cpu_at_connect: float | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        if u.username:
            self.client.username_pw_set(u.username, u.password)
        if u.scheme == "mqtts":
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()

    # -- network thread callbacks

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.state = f"refused: {reason_code}"
            log.error("mqtt connection refused", extra={"reason": str(reason_code), "client_id": self.client_id})
            return
        self.generation += 1
        self.connected_at, self.cpu_at_connect = time.time(), time.process_time()
        self.session_present = bool(getattr(flags, "session_present", False))
        self.state = "connected"
        self.connected.set()
        log.info("mqtt connected", extra={"client_id": self.client_id, "broker": f"{self.host}:{self.port}",
                                          "session_present": self.session_present,
                                          "generation": self.generation})
        client.subscribe(self.subscriptions)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        bad = [str(rc) for rc in reason_codes if rc.is_failure]
        if bad:
            log.error("mqtt subscription refused", extra={"topics": self.topics, "reasons": bad})
            return
        self.state = "subscribed"
        log.info("mqtt subscribed", extra={"topics": self.topics})
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self.state = f"disconnected: {reason_code}"
        log.warning("mqtt disconnected; reconnecting", extra={"client_id": self.client_id,
                                                              "reason": str(reason_code)})

    def _on_message(self, client, userdata, msg) -> None:
        self.queue.put(InMessage(msg.topic, msg.payload, msg.mid, msg.qos, self.generation))

    # -- calls from the pipeline thread

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_max
        self.client.connect_async(self.host, self.port, self.keepalive, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def take(self, max_bytes: int, wait_s: float, timeout: float) -> list[InMessage]:
        """The next group: blocks up to `timeout` for a first message, then gathers what arrives
        within `wait_s` more, up to `max_bytes` of payload."""
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        group = [first]
        size = len(first.payload)
        deadline = time.monotonic() + wait_s
        while size < max_bytes:
            try:
                m = self.queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    m = self.queue.get(timeout=left)
                except queue.Empty:
                    break
            group.append(m)
            size += len(m.payload)
        return group

    def ack(self, messages: list[InMessage]) -> int:
        """PUBACK what came on the current connection; returns how many were acked."""
        n = 0
        generation = self.generation
        for m in messages:
            if m.qos > 0 and m.generation == generation:
                self.client.ack(m.mid, m.qos)
                n += 1
        return n

    def stop(self) -> None:
        """Clean DISCONNECT: the session (and anything unacked) stays on the broker for the next
        start with the same client id."""
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
