"""The charger registry: who may use the site, who waits for approval, what each last booted with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core.charger_credentials import effective_profile
from controller.core.clock import Clock, rfc3339
from controller.core.commissioning import BootAnswer, Registration, decide_boot, may_send
from controller.core.config import Config
from controller.core.ports import DocumentStore

TABLE = "chargers"
# Security profile 1/2 password hashes (core/passwords.py records), apart from the registrations so
# a charger with a password but no boot yet is not mistaken for one that booted.
PASSWORDS = "passwords"
BOOT_FIELDS = ("vendor", "model", "serial", "firmware", "ocpp_version")


@dataclass(frozen=True, slots=True)
class ChargerApproved:
    """A technician approved a charger that is not in the configuration (or it was at startup)."""

    charger_id: str
    at: datetime


class ChargerRegistry:
    """Registration decisions over a DocumentStore; documents are cached, written only on change.

    Configured chargers are always approved. Writes are rare (a first boot, changed boot data,
    an approval) and small, so they go straight through the store's atomic write.
    """

    def __init__(
        self, store: DocumentStore, config: Config, clock: Clock, emit: Callable[[object], None]
    ) -> None:
        self._store = store
        self._clock = clock
        self._emit = emit
        self._policy = config.ocpp.unknown_chargers
        self._configured = {c.id for c in config.chargers}
        self._docs: dict[str, dict[str, Any]] = store.all(TABLE)
        self._passwords: dict[str, dict[str, Any]] = store.all(PASSWORDS)

    def announce(self) -> None:
        """Emit ChargerApproved for every approved charger not in the configuration (at startup)."""
        now = self._clock.now()
        for cp_id, doc in self._docs.items():
            if cp_id not in self._configured and doc.get("registration") == Registration.APPROVED:
                self._emit(ChargerApproved(cp_id, now))

    def registration(self, charger_id: str) -> Registration | None:
        """The charger's standing; None if it never booted and is not configured."""
        if charger_id in self._configured:
            return Registration.APPROVED
        doc = self._docs.get(charger_id)
        return Registration(doc["registration"]) if doc else None

    def is_approved(self, charger_id: str) -> bool:
        """True if the charger's next boot is Accepted."""
        return self.registration(charger_id) is Registration.APPROVED

    def boot_answer(self, charger_id: str) -> BootAnswer:
        """What the charger is told when it boots now."""
        return decide_boot(self.registration(charger_id), self._policy)

    def may_send(self, charger_id: str) -> bool:
        """May the charger send calls other than BootNotification (see commissioning.may_send)."""
        doc = self._docs.get(charger_id, {})
        return may_send(self.registration(charger_id), doc.get("last_answer"))

    def record_boot(self, charger_id: str, answer: str, boot: Mapping[str, Any]) -> None:
        """Remember a boot and its answer; an unknown charger starts waiting for approval."""
        old = self._docs.get(charger_id)
        registration = self.registration(charger_id) or Registration.WAITING
        doc = dict(old or {"first_seen": rfc3339(self._clock.now())})
        doc["registration"] = registration.value
        doc["last_answer"] = answer
        doc["boot"] = {k: boot.get(k) for k in BOOT_FIELDS}
        if doc != old:
            # Only on change: 500 chargers re-booting after an outage must not mean 500 rewrites.
            doc["boot_at"] = rfc3339(self._clock.now())
            self._put(charger_id, doc)

    def approve(self, charger_id: str) -> bool:
        """Approve a charger seen booting (or already configured); False if never seen."""
        return self._set(charger_id, Registration.APPROVED)

    def reject(self, charger_id: str) -> bool:
        """Reject a charger seen booting; False if never seen or configured (edit the config)."""
        if charger_id in self._configured:
            return False
        return self._set(charger_id, Registration.REJECTED)

    def _set(self, charger_id: str, registration: Registration) -> bool:
        doc = self._docs.get(charger_id)
        if doc is None:
            return charger_id in self._configured
        if doc.get("registration") != registration.value:
            self._put(charger_id, {**doc, "registration": registration.value})
            if registration is Registration.APPROVED and charger_id not in self._configured:
                self._emit(ChargerApproved(charger_id, self._clock.now()))
        return True

    def _put(self, charger_id: str, doc: dict[str, Any]) -> None:
        self._store.put(TABLE, charger_id, doc)
        self._docs[charger_id] = doc

    def password_hash(self, charger_id: str) -> dict[str, Any] | None:
        """The charger's stored password hash record (never the password), None if it has none."""
        return self._passwords.get(charger_id)

    def set_password_hash(self, charger_id: str, record: dict[str, Any]) -> None:
        """Store the charger's password hash record (replacing an older one)."""
        self._store.put(PASSWORDS, charger_id, record)
        self._passwords[charger_id] = record

    def forget_password_hash(self, charger_id: str) -> None:
        """Drop the charger's password hash (its configuration no longer has a password)."""
        if self._passwords.pop(charger_id, None) is not None:
            self._store.delete(PASSWORDS, charger_id)

    def knows(self, charger_id: str) -> bool:
        """True if the charger is configured or ever booted here."""
        return charger_id in self._configured or charger_id in self._docs

    def ocpp_version(self, charger_id: str) -> str | None:
        """The OCPP version of the charger's last boot, None if it never booted."""
        boot = self._docs.get(charger_id, {}).get("boot") or {}
        version = boot.get("ocpp_version")
        return str(version) if version else None

    def security_profile(self, charger_id: str) -> int:
        """The profile its stored credential asks for (0: none; the old one while switching)."""
        return effective_profile(self._passwords.get(charger_id))

    def password_hash_ids(self) -> set[str]:
        """The chargers with a stored password hash."""
        return set(self._passwords)

    def listing(self) -> list[dict[str, Any]]:
        """Every charger known by configuration or boot, JSON-ready, sorted by id."""
        out = []
        for cp_id in sorted(self._configured | set(self._docs)):
            doc = self._docs.get(cp_id, {})
            reg = self.registration(cp_id)
            out.append(
                {
                    "id": cp_id,
                    "configured": cp_id in self._configured,
                    "registration": reg.value if reg else None,
                    "waiting_for_approval": reg is Registration.WAITING,
                    "last_answer": doc.get("last_answer"),
                    "first_seen": doc.get("first_seen"),
                    "boot_at": doc.get("boot_at"),
                    "boot": doc.get("boot"),
                }
            )
        return out
