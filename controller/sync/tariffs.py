"""Tariffs from the backend: retained OCPI Tariffs, validated whole, stored before they apply."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from controller.core.sessions import TariffStore
from controller.core.tariffs import Tariff, TariffError, parse_tariff
from controller.sync.downlink import Downlink, Rejected

log = logging.getLogger(__name__)


class TariffSync:
    """Applies {root}/tariffs/{tariff_id}; `known` is the live view sessions and prices read."""

    def __init__(self, store: TariffStore) -> None:
        self._store = store
        self.known: dict[str, Tariff] = {}
        for tariff_id, raw in store.tariffs().items():
            try:
                self.known[tariff_id] = parse_tariff(raw)
            except TariffError as exc:  # stored only after parsing, so only a newer parser refuses
                log.error("stored tariff %s no longer parses: %s", tariff_id, exc)

    def register(self, downlink: Downlink) -> None:
        """Route the retained tariffs/{tariff_id} messages to this service."""
        downlink.route("tariffs/+", r"tariffs/([A-Za-z0-9._\-]{1,36})", self._on_tariff)

    async def _on_tariff(self, match: re.Match[str], payload: Any) -> None:
        tariff_id = match.group(1)
        if payload is None:  # an empty retained payload deletes
            await asyncio.to_thread(self._store.delete_tariff, tariff_id)
            self.known.pop(tariff_id, None)
            log.info("tariff %s deleted", tariff_id)
            return
        try:
            tariff = parse_tariff(payload)
        except TariffError as exc:
            raise Rejected(f"tariff {tariff_id}: {exc}") from exc
        if tariff.id != tariff_id:
            raise Rejected(f"tariff {tariff_id}: the payload's id {tariff.id!r} differs from the topic")
        if (old := self.known.get(tariff_id)) is not None and old.raw == tariff.raw:
            return  # the retained copy again after a reconnect: nothing to write
        await asyncio.to_thread(self._store.put_tariff, tariff_id, dict(tariff.raw))
        self.known[tariff_id] = tariff  # only once durable: a crash never leaves it half-applied
        log.info("tariff %s stored (%s, %d element(s))", tariff_id, tariff.currency, len(tariff.elements))
