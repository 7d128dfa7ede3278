"""A stand-in for the central backend: records everything a site publishes under its MQTT root."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hil.sim.contract import ContractChecker


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the backend saw it."""

    topic: str
    payload: Any  # parsed JSON, else the text, else the raw bytes; None for an empty payload
    retain: bool
    qos: int
    received_at: float  # time.time() at arrival

    def as_json(self) -> dict[str, Any]:
        """A JSON-serialisable record (bytes payloads as latin-1 text) for the JSONL log."""
        payload = self.payload.decode("latin-1") if isinstance(self.payload, bytes) else self.payload
        return {
            "topic": self.topic,
            "payload": payload,
            "retain": self.retain,
            "qos": self.qos,
            "received_at": datetime.fromtimestamp(self.received_at, UTC).isoformat().replace("+00:00", "Z"),
        }


def parse_payload(raw: bytes) -> Any:
    """JSON if it parses, else UTF-8 text, else the bytes; an empty payload is None."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def parse_url(url: str) -> tuple[str, int]:
    """(host, port) of an mqtt://host:port URL (port 1883 if omitted)."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"expected mqtt://host:port, got {url!r}")
    return parts.hostname, parts.port or 1883


class BackendSimulator:
    """A paho client subscribed to {root}/# that keeps every message; thread-safe waits for tests.

    paho runs its network loop on its own thread; `on_message` appends under a condition variable
    that wait_for() sleeps on, so tests (or asyncio code via wait_for_async) can block safely.
    """

    def __init__(
        self,
        url: str,
        root: str,
        *,
        out: Path | str | None = None,
        client_id: str | None = None,
        persistent_session: bool = False,
        on_received: Callable[[Received], None] | None = None,
    ) -> None:
        self.host, self.port = parse_url(url)
        self.root = root.rstrip("/")
        self._out_path = Path(out) if out is not None else None
        self._out: IO[str] | None = None
        self._on_received = on_received
        self._cond = threading.Condition()
        self._messages: list[Received] = []
        self.contract = ContractChecker(self.root)  # schema violations, duplicates, seq gaps
        # Plays the eMSP: token uid -> OCPI AuthorizationInfo to answer with, None = stay silent.
        self.emsp: Callable[[str], dict[str, Any] | None] | None = None
        self._connected = threading.Event()
        self.connects = 0  # successful (re)connections, so tests can see an outage was noticed
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"hil-backend-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv311,
            # A persistent session (with a fixed client_id) lets a persistent broker queue what
            # arrives while this subscriber is away, as a real backend's consumer would.
            clean_session=not persistent_session,
        )
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_subscribe = self._handle_subscribe
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> BackendSimulator:
        """Connect, subscribe and return once the subscription is in place."""
        if self._out_path is not None and self._out is None:
            self._out = self._out_path.open("a", encoding="utf-8")
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self.stop()
            raise TimeoutError(f"backend could not subscribe on {self.host}:{self.port} within {timeout} s")
        return self

    def stop(self) -> None:
        """Disconnect, stop paho's thread and close the JSONL file; idempotent."""
        self._client.disconnect()
        self._client.loop_stop()
        with self._cond:
            if self._out is not None:
                self._out.close()
                self._out = None

    def __enter__(self) -> BackendSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._connected.is_set()

    # --- paho callbacks (paho's thread) ------------------------------------------------------

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            return
        # Subscribing in on_connect re-subscribes after every reconnect (clean session).
        client.subscribe(f"{self.root}/#", qos=1)

    def _handle_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        # Ready only after the SUBACK: a message published earlier could otherwise be missed.
        if all(not rc.is_failure for rc in reason_codes):
            self.connects += 1
            self._connected.set()

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        rec = Received(msg.topic, parse_payload(bytes(msg.payload)), bool(msg.retain), msg.qos, time.time())
        with self._cond:
            self.contract.check(rec.topic, rec.payload, rec.retain)
            self._messages.append(rec)
            if self._out is not None:
                self._out.write(json.dumps(rec.as_json()) + "\n")
                self._out.flush()
            self._cond.notify_all()
        if self._on_received is not None:
            self._on_received(rec)
        is_request = rec.topic == f"{self.root}/auth/requests" and isinstance(rec.payload, dict)
        if self.emsp is not None and is_request:
            request = rec.payload.get("data", {})
            answer = self.emsp(str(request.get("token_uid")))
            if answer is not None:
                # On paho's thread: publish without waiting for the PUBACK (that would deadlock).
                topic = f"{self.root}/auth/responses/{request.get('request_id')}"
                client.publish(topic, json.dumps(answer).encode(), qos=1)

    # --- queries ------------------------------------------------------------------------------

    def _full(self, topic: str) -> str:
        # Accept topics relative to the root as well as absolute ones.
        return topic if topic == self.root or topic.startswith(self.root + "/") else f"{self.root}/{topic}"

    def messages(self, topic_prefix: str = "") -> list[Received]:
        """Every message so far whose topic starts with the prefix (relative to root or absolute)."""
        prefix = self._full(topic_prefix) if topic_prefix else self.root
        with self._cond:
            return [m for m in self._messages if m.topic.startswith(prefix)]

    def latest(self, topic: str) -> Received | None:
        """The most recent message on exactly this topic (relative to root or absolute), or None."""
        full = self._full(topic)
        with self._cond:
            return next((m for m in reversed(self._messages) if m.topic == full), None)

    def clear(self) -> None:
        """Forget what was received so far (the JSONL file keeps it)."""
        with self._cond:
            self._messages.clear()

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 5.0) -> Received:
        """The first message (already received or arriving) matching predicate; TimeoutError if none."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for msg in self._messages[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self._messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching message within {timeout} s ({seen} received)")
                self._cond.wait(left)

    async def wait_for_async(self, predicate: Callable[[Received], bool], within: float = 5.0) -> Received:
        """wait_for() from asyncio code without blocking the event loop."""
        # The wait runs in a worker thread, which cancellation cannot stop: it needs its own
        # deadline, so this takes `within` rather than relying on asyncio.timeout().
        return await asyncio.to_thread(self.wait_for, predicate, within)

    def wait_for_topic(self, topic: str, timeout: float = 5.0) -> Received:
        """The first message on exactly this topic (relative to root or absolute)."""
        full = self._full(topic)
        return self.wait_for(lambda m: m.topic == full, timeout)

    def publish(self, subtopic: str, payload: Any, *, qos: int = 1, retain: bool = False) -> None:
        """Publish downlink under the root (dicts/lists as JSON; None clears a retained topic)."""
        if payload is None:
            data: bytes = b""
        elif isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        info = self._client.publish(self._full(subtopic), data, qos=qos, retain=retain)
        info.wait_for_publish(timeout=5.0)

    def summary(self) -> dict[str, Any]:
        """Counts by stream (first topic level under root), retained count, duplicate envelope ids."""
        with self._cond:
            msgs = list(self._messages)
        streams = Counter(m.topic[len(self.root) + 1 :].split("/", 1)[0] for m in msgs)
        ids = Counter(m.payload["id"] for m in msgs if isinstance(m.payload, dict) and "id" in m.payload)
        return {
            "total": len(msgs),
            "retained": sum(m.retain for m in msgs),
            "not_json": sum(not isinstance(m.payload, dict | list) and m.payload is not None for m in msgs),
            "duplicate_ids": sum(n - 1 for n in ids.values() if n > 1),
            "streams": dict(sorted(streams.items())),
            "contract_violations": list(self.contract.violations[:20]),
            "seq_gaps": {k: v[:10] for k, v in self.contract.gaps.items()},
        }


def _line(rec: Received, root: str) -> str:
    stamp = datetime.fromtimestamp(rec.received_at, UTC).strftime("%H:%M:%S.%f")[:-3]
    text = json.dumps(rec.as_json()["payload"], separators=(",", ":"))
    if len(text) > 160:
        text = text[:157] + "..."
    flag = "R" if rec.retain else " "
    return f"{stamp} {flag} {rec.topic[len(root) + 1 :] or rec.topic} {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print one line per message under --root, write --out JSONL, summarise on exit."""
    parser = argparse.ArgumentParser(prog="python -m hil.sim.backend", description=main.__doc__)
    parser.add_argument("--url", required=True, help="mqtt://127.0.0.1:PORT")
    parser.add_argument("--root", required=True, help="topic root, e.g. siteedge/v1/DE/ABC/LOC1")
    parser.add_argument("--out", type=Path, help="append every message to this JSONL file")
    parser.add_argument("--seconds", type=float, default=0.0, help="exit after this long (0 = until ^C)")
    args = parser.parse_args(argv)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    root = args.root.rstrip("/")
    backend = BackendSimulator(
        args.url, root, out=args.out, on_received=lambda r: print(_line(r, root), flush=True)
    )
    started = time.monotonic()
    try:
        backend.start()
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        done.wait(args.seconds or None)
    finally:
        backend.stop()
    summary = backend.summary() | {"seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(summary, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
