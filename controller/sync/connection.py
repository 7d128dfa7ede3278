"""The broker connection: paho-mqtt on its own thread, reconnecting with capped, jittered backoff."""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.core.backoff import backoff_delay
from controller.core.config import MqttSettings

log = logging.getLogger(__name__)

# Keep the broker-side session for a day so QoS 1 state survives short outages (MQTT 5).
SESSION_EXPIRY_S = 86_400
RECEIVE_MAXIMUM = 16


class BrokerConnection:
    """Owns one paho client and its network thread; callbacks fire on that thread."""

    def __init__(
        self,
        settings: MqttSettings,
        online_payload: Callable[[bool], bytes],
        on_state: Callable[[bool, str], None],
        on_ack: Callable[[int], None],
        subscriptions: Callable[[], Sequence[str]] = tuple,
        on_message: Callable[[str, bytes, bool, Callable[[], None]], None] | None = None,
    ) -> None:
        self._s = settings
        self._subscriptions = subscriptions  # read at each connect: routes may be added after start-up
        self._on_message = on_message
        self._online_payload = online_payload
        self._on_state = on_state
        self._on_ack = on_ack
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.attempts = 0
        self._generation = 0  # bumped per connection; acks of an older one are dropped
        v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            # A downlink message is acknowledged only once handled: the broker keeps (and with a
            # persistent session redelivers) what a crash interrupted, and holds back more than
            # RECEIVE_MAXIMUM unhandled messages, so a big whitelist sync cannot flood our memory.
            manual_ack=True,
        )
        self._v5 = v5
        c = self._client
        c.max_inflight_messages_set(settings.max_inflight)
        if settings.username is not None:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls:
            c.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.cert_file,
                keyfile=settings.key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        c.will_set(f"{settings.topic_root}/online", online_payload(False), qos=1, retain=True)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_publish = self._handle_publish
        c.on_message = self._handle_message

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread; it connects and keeps reconnecting until stop()."""
        self._thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say offline (retained), disconnect cleanly and join the network thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand one message to paho; its mid, or None if paho refused it (not connected)."""
        if not self.connected:
            return None
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    # --- network thread --------------------------------------------------------------------

    def _connect_once(self) -> None:
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            self._client.connect(
                self._s.host, self._s.port, self._s.keepalive, clean_start=False, properties=props
            )
        else:
            self._client.connect(self._s.host, self._s.port, self._s.keepalive)

    def _run(self) -> None:
        rng = random.Random()
        while not self._stop.is_set():
            try:
                self._connect_once()
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._retry_later(rng, f"connect failed: {exc}")
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            while not self._stop.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._client.loop(timeout=0.1)
            if self._stop.is_set():
                self._goodbye()
                return
            self._mark(False, f"connection lost ({rc.name})")
            self._retry_later(rng, "connection lost")

    def _retry_later(self, rng: random.Random, why: str) -> None:
        delay = backoff_delay(self.attempts, self._s.reconnect_min, self._s.reconnect_max, rng.random)
        self.attempts += 1
        log.warning("uplink: %s; retry %d in %.2f s", why, self.attempts, delay)
        self._stop.wait(delay)

    def _goodbye(self) -> None:
        # A clean disconnect suppresses the will, so say "offline" ourselves, then let it flush.
        if self.connected:
            info = self._client.publish(f"{self._s.topic_root}/online", self._online_payload(False), 1, True)
            for _ in range(20):
                if info.is_published():
                    break
                self._client.loop(timeout=0.05)
            self._client.disconnect()
            self._client.loop(timeout=0.05)
        self._mark(False, "stopped")

    def _mark(self, connected: bool, detail: str) -> None:
        changed = connected != self.connected
        self.connected = connected
        if changed or not connected:
            self._on_state(connected, detail)

    # --- paho callbacks (network thread) ---------------------------------------------------

    def _handle_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("uplink: broker refused the connection: %s", reason)
            return
        self.attempts = 0
        self._generation += 1
        # Subscribe on every connect: a broker without our session has forgotten them.
        for topic in self._subscriptions():
            client.subscribe(topic, qos=1)
        client.publish(f"{self._s.topic_root}/online", self._online_payload(True), qos=1, retain=True)
        log.info(
            "uplink: connected to %s:%d (session present: %s)",
            self._s.host,
            self._s.port,
            flags.session_present,
        )
        self._mark(True, "connected")

    def _handle_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected = False

    def _handle_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._on_ack(mid)

    def _handle_message(self, client: Any, userdata: Any, msg: Any) -> None:
        mid, qos, generation = int(msg.mid), int(msg.qos), self._generation

        def done() -> None:
            # Message ids belong to one connection: after a reconnect the broker resends anyway.
            if qos > 0 and generation == self._generation:
                client.ack(mid, qos)

        if self._on_message is None:
            done()
            return
        self._on_message(str(msg.topic), bytes(msg.payload), bool(msg.retain), done)


def online_payload(version: str, since: str) -> Callable[[bool], bytes]:
    """The retained {root}/online document for a given state."""

    def build(online: bool) -> bytes:
        return json.dumps({"online": online, "since": since, "version": version}).encode()

    return build
