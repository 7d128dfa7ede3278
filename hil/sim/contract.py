"""Checks what the box publishes against the MQTT contract: schemas, duplicate ids, seq gaps."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

DOCS_SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"
OCPI_SCHEMAS = Path(__file__).parents[2].parent / "shared" / "ocpi-schemas" / "2.2.1"

# topic (relative to root) -> (payload schema, data schema); "ocpi:x" is ocpi.2_2_1.x.json
_RULES: list[tuple[re.Pattern[str], str | None, str | None]] = [
    (re.compile(r"online"), "online.json", None),
    (re.compile(r"location"), "ocpi:location", None),
    (re.compile(r"evses/[^/]+/status"), "envelope.json", "evse_status.json"),
    (re.compile(r"events/status"), "envelope.json", "evse_status.json"),
    (re.compile(r"telemetry/meters/[^/]+"), "envelope.json", "meter_reading.json"),
    (re.compile(r"tokens/state"), "envelope.json", "token_state.json"),
    (re.compile(r"tokens/resync"), "envelope.json", "token_resync_request.json"),
    (re.compile(r"errors"), "envelope.json", "downlink_rejected.json"),
    (re.compile(r"auth/requests"), "envelope.json", "auth_request.json"),
    (re.compile(r"commands/[^/]+/response"), "envelope.json", "command_response.json"),
    (re.compile(r"commands/[^/]+/result"), "envelope.json", "command_result.json"),
    # OCPI objects are checked against the OCPI 2.2.1 schemas themselves ("ocpi:<name>").
    (re.compile(r"sessions/[^/]+"), "envelope.json", "ocpi:session"),
    (re.compile(r"cdrs/[^/]+"), "envelope.json", "ocpi:cdr"),
    (re.compile(r"reports/uptime/\d{4}-\d{2}"), "envelope.json", "uptime_report.json"),
    (re.compile(r"reports/partners/\d{4}-\d{2}"), "envelope.json", "partner_report.json"),
    (re.compile(r"reports/quarterly/\d{4}-Q[1-4]/\d+"), "envelope.json", "quarterly_report.json"),
]
# What the backend itself sends down; a subscriber to {root}/# sees it too, and it is not ours.
_DOWN = re.compile(
    r"tokens/full/.+|tokens/delta|tariffs/.+|commands/[A-Z_]+|auth/responses/.+|reports/request"
)


def _validator(name: str) -> Draft7Validator:
    path = OCPI_SCHEMAS / f"ocpi.2_2_1.{name[5:]}.json" if name.startswith("ocpi:") else DOCS_SCHEMAS / name
    return Draft7Validator(json.loads(path.read_text()), format_checker=Draft7Validator.FORMAT_CHECKER)


@dataclass(slots=True)
class ContractChecker:
    """Feed it every up message; it keeps violations, duplicate ids and per-stream seq gaps."""

    root: str
    violations: list[str] = field(default_factory=list)
    duplicates: int = 0
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    _ids: set[str] = field(default_factory=set)
    _last_seq: dict[str, int] = field(default_factory=dict)
    # For a gap: the stream's recent (seq, id, ts, type) up to and including the offending message,
    # so a rare reordering can be traced to the messages involved.
    gap_evidence: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    _recent: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(list))
    _validators: dict[str, Draft7Validator] = field(default_factory=dict)

    def _validate(self, schema: str, instance: Any, where: str) -> None:
        if schema not in self._validators:
            try:
                self._validators[schema] = _validator(schema)
            except (OSError, ValueError) as exc:
                # Runs on paho's thread: a missing schema is a finding, not a dead subscriber.
                self.violations.append(f"{where}: cannot load schema {schema}: {exc}")
                return
        for err in self._validators[schema].iter_errors(instance):
            self.violations.append(f"{where}: {schema}: {err.json_path}: {err.message}")

    def check(self, topic: str, payload: Any, retained: bool = False) -> bool:
        """Check one message; False if it is a duplicate (same envelope id seen before)."""
        rel = topic[len(self.root) + 1 :] if topic.startswith(self.root + "/") else topic
        if payload is None or _DOWN.fullmatch(rel):
            return True  # an empty retained payload clears a topic; downlink is the backend's
        rule = next(((s, d) for rx, s, d in _RULES if rx.fullmatch(rel)), None)
        if rule is None:
            self.violations.append(f"{rel}: topic not in the contract")
            return True
        schema, data_schema = rule
        if schema:
            self._validate(schema, payload, rel)
        if data_schema and isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            self._validate(data_schema, _credit_as_schema_sees_it(payload["data"], rel, self.violations), rel)
        if schema != "envelope.json" or not isinstance(payload, dict):
            return True
        msg_id = str(payload.get("id"))
        if msg_id in self._ids:
            self.duplicates += 1
            return False
        self._ids.add(msg_id)
        if not retained:  # a retained copy replays an old seq by design
            self._seq(rel, payload)
        return True

    def _seq(self, rel: str, payload: dict[str, Any]) -> None:
        # Streams follow the topic; retained status topics may legitimately skip superseded seqs.
        stream = rel
        seq = payload.get("seq")
        if not isinstance(seq, int):
            return
        last = self._last_seq.get(stream)
        recent = self._recent[stream]
        recent.append((seq, payload.get("id"), payload.get("ts"), payload.get("type")))
        del recent[:-8]
        # Telemetry (QoS 0, droppable under pressure) and superseded retained statuses may skip.
        if last is not None and seq != last + 1 and not rel.startswith(("evses/", "telemetry/")):
            self.gaps[stream].append((last, seq))
            self.gap_evidence.setdefault(stream, list(recent))
        if last is None or seq > last:
            self._last_seq[stream] = seq


def _credit_as_schema_sees_it(data: dict[str, Any], rel: str, violations: list[str]) -> dict[str, Any]:
    """A credit CDR with its total_cost mirrored, so the OCPI schema can check everything else.

    OCPI 2.2.1 mod_cdrs "Credit CDRs": the credit CDR's total_cost SHALL hold the negated amounts,
    while the published JSON schema gives Price a minimum of 0 (IZIVIA/ocpi-toolkit#162 hit the
    same contradiction). The rule text wins: a credit CDR must carry credit_reference_id and a
    total_cost <= 0, and is schema-checked with that one field mirrored.
    """
    if not rel.startswith("cdrs/") or data.get("credit") is not True:
        return data
    total = data.get("total_cost")
    if not data.get("credit_reference_id"):
        violations.append(f"{rel}: credit CDR without credit_reference_id")
    if not isinstance(total, dict):
        return data
    amounts = [v for v in total.values() if isinstance(v, int | float)]
    if any(v > 0 for v in amounts):
        violations.append(f"{rel}: credit CDR with a positive total_cost {total}")
    mirrored = {k: (-v if isinstance(v, int | float) else v) for k, v in total.items()}
    return {**data, "total_cost": mirrored}
