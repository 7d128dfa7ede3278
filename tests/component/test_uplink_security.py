"""The uplink against a broker that demands TLS, client certificates or passwords."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import SiteController
from controller.core.config import validate
from hil.broker import Broker, BrokerTls
from hil.pki import TestPki
from hil.siteconfig import SiteSpec, render


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return TestPki(tmp_path / "pki")


def make_spec(tmp_path: Path, broker: Broker) -> SiteSpec:
    return SiteSpec(data_dir=str(tmp_path / "data"), mqtt_url=broker.url, reconnect_max=0.5)


def with_mqtt(spec: SiteSpec, **extra: str) -> Any:
    lines = "".join(f'{k} = "{v}"\n' for k, v in extra.items())
    return validate(tomllib.loads(render(spec).replace("[mqtt]\n", "[mqtt]\n" + lines)))


async def drained(ctl: SiteController, within: float = 10.0) -> bool:
    """True once the uplink is connected and the broker acknowledged everything queued."""
    for _ in range(int(within / 0.02)):
        if ctl.uplink.connected and ctl.outbox.stats().pending == 0:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
def tls_broker(pki: TestPki) -> Iterator[Broker]:
    server = pki.issue("broker", "127.0.0.1", server=True)
    with Broker(tls=BrokerTls(pki.ca.cert, server.cert, server.key, require_client_cert=True)) as b:
        yield b


async def test_mutual_tls_delivers(tmp_path: Path, pki: TestPki, tls_broker: Broker) -> None:
    client = pki.issue("site", "siteedge-NL-SED-DEMO01", server=False)
    config = with_mqtt(
        make_spec(tmp_path, tls_broker),
        ca_file=str(pki.ca.cert),
        cert_file=str(client.cert),
        key_file=str(client.key),
    )
    assert config.mqtt.tls and config.mqtt.port == tls_broker.port
    ctl = SiteController(config)
    await ctl.start()
    try:
        assert await drained(ctl), "the uplink never delivered over TLS"
    finally:
        await ctl.stop()


async def test_unknown_server_ca_is_never_trusted(tmp_path: Path, pki: TestPki, tls_broker: Broker) -> None:
    other = TestPki(tmp_path / "other-pki")
    client = pki.issue("site", "siteedge-NL-SED-DEMO01", server=False)
    config = with_mqtt(
        make_spec(tmp_path, tls_broker),
        ca_file=str(other.ca.cert),
        cert_file=str(client.cert),
        key_file=str(client.key),
    )
    ctl = SiteController(config)
    await ctl.start()
    try:
        assert not await drained(ctl, within=2.0)
        assert ctl.outbox.stats().pending >= 1  # the Location waits on disk, nothing is lost
    finally:
        await ctl.stop()


async def test_username_and_password(tmp_path: Path) -> None:
    with Broker(users={"site-1": "correct horse"}) as broker:
        good = SiteController(
            with_mqtt(make_spec(tmp_path / "a", broker), username="site-1", password="correct horse")
        )
        await good.start()
        try:
            assert await drained(good)
        finally:
            await good.stop()
        bad = SiteController(
            with_mqtt(make_spec(tmp_path / "b", broker), username="site-1", password="wrong")
        )
        await bad.start()
        try:
            assert not await drained(bad, within=2.0)
        finally:
            await bad.stop()
