"""Shows each EVSE's ad hoc price on chargers that can display it (docs/price-display.md).

2.0.1 chargers get SetDisplayMessage, 1.6 chargers a vendor DataTransfer where configured. The
text is sent after a boot and again whenever it changes (a new tariff, a time-of-day switch):
the loop re-evaluates every `interval_s` and sends only what differs from what the charger
accepted last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from controller.core.config import Config
from controller.core.events import ChargerBooted, ChargerDisconnected
from controller.core.ports import ChargerCommands, CommandStatus
from controller.core.pricing import display_request, display_target, display_text

log = logging.getLogger(__name__)


class PriceDisplay:
    """Keeps the price shown on each charger's display equal to the EVSE's price now."""

    def __init__(
        self,
        config: Config,
        commands: ChargerCommands,
        price_of: Callable[[str], dict[str, Any] | None],
        version_of: Callable[[str], str | None],
        interval_s: float = 2.0,
    ) -> None:
        self._chargers = {c.id: c for c in config.chargers}
        self._commands = commands
        self._price_of = price_of
        self._version_of = version_of
        self._interval_s = interval_s
        self._shown: dict[tuple[str, int], str] = {}  # (charger, EVSE) -> text the charger accepted
        self._wake = asyncio.Event()

    def handle(self, event: object) -> None:
        """Bus subscriber: a boot (the display is empty again) or a disconnect forgets what was shown."""
        if isinstance(event, ChargerBooted | ChargerDisconnected):
            for key in [k for k in self._shown if k[0] == event.charger_id]:
                del self._shown[key]
            if isinstance(event, ChargerBooted):
                self._wake.set()

    async def run(self) -> None:
        """Re-check every interval (or at once after a boot) until cancelled."""
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as the event fires (gh-86296), and this loop would then never stop.
            try:
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
                await asyncio.sleep(1.0)  # after a boot: let the BootNotification reply go first
            except TimeoutError:
                pass
            self._wake.clear()
            for charger_id in self._chargers:
                try:
                    await self._update(charger_id)
                except Exception:
                    log.exception("price display of %s failed", charger_id)

    async def _update(self, charger_id: str) -> None:
        charger = self._chargers[charger_id]
        target = display_target(charger.price_display, self._version_of(charger_id))
        if target is None:
            return
        for evse in charger.evses:
            price = self._price_of(evse.evse_uid)
            text = None if price is None else display_text(price, evse.ocpp_evse, len(charger.evses))
            key = (charger_id, evse.ocpp_evse)
            if price is None or text is None or self._shown.get(key) == text:
                continue
            action, params = display_request(target, price, text, evse.ocpp_evse, len(charger.evses))
            result = await self._commands.call(charger_id, action, params, 10.0)
            if result.status is CommandStatus.ACCEPTED:
                self._shown[key] = text
                log.info("price shown on %s EVSE %d: %s", charger_id, evse.ocpp_evse, text)
            elif result.status in (CommandStatus.NOT_SUPPORTED, CommandStatus.REJECTED):
                # The charger said no: asking again with the same text every round would only spam.
                self._shown[key] = text
                log.warning("price display on %s refused: %s %s", charger_id, result.status, result.detail)
            else:
                log.info("price display on %s not delivered (%s); retrying", charger_id, result.status)
