// Pieces the dashboard and the charger page share: connector tiles, charger headers, alarms.

import { el, fmt, statusBadge, pill } from "./ui.js";

/** Seconds between two RFC 3339 times (null if either is missing). */
export function secondsBetween(fromIso, toIso) {
  const a = Date.parse(fromIso);
  const b = Date.parse(toIso);
  return Number.isNaN(a) || Number.isNaN(b) ? null : Math.max(0, (b - a) / 1000);
}

/** One EVSE as a tile: OCPI status (colour + text), and the running session if any. */
export function connectorTile(evse, now, { actions = null } = {}) {
  const tx = evse.transaction;
  const status = evse.status || "UNKNOWN";
  const body = tx
    ? el("dl", { class: "tile-session", "data-testid": "session" },
      el("div", null, el("dt", null, "ID tag"), el("dd", { "data-testid": "id-tag" }, tx.id_tag || "—")),
      el("div", null, el("dt", null, "Energy"), el("dd", { "data-testid": "energy" },
        fmt.kwh(typeof tx.energy_wh === "number" ? tx.energy_wh / 1000 : null))),
      el("div", null, el("dt", null, "Duration"), el("dd", null, fmt.duration(secondsBetween(tx.started, now)))),
      el("div", null, el("dt", null, "Power"), el("dd", { "data-testid": "power" },
        fmt.kw(typeof tx.power_w === "number" ? tx.power_w / 1000 : null))))
    : el("p", { class: "tile-idle" }, evse.last_updated ? `No session · since ${fmt.clock(evse.last_updated)}`
      : "No session · no status yet");
  return el("article", { class: `tile tone-${status.toLowerCase()}`, "data-testid": `tile-${evse.evse_uid}`,
    "data-status": status, "aria-label": `EVSE ${evse.evse_uid}` },
  el("div", { class: "tile-head" },
    el("span", { class: "tile-name" }, el("span", { class: "tile-uid" }, evse.evse_uid),
      el("span", { class: "tile-num" }, `connector ${evse.ocpp_evse}`)),
    statusBadge(status, { "data-testid": "status" })),
  body,
  actions);
}

/** A charger's link state as a pill. */
export function linkPill(ch) {
  return ch.connected
    ? pill("online", "ok", { "data-testid": "link" })
    : pill("offline", ch.configured ? "bad" : "muted", { "data-testid": "link" });
}

/** Problems worth a technician's attention, worst first: [{level: bad|warn, text, href?}]. */
export function alarmsOf(h) {
  const out = [];
  const up = h.uplink || {};
  if (!up.connected) {
    out.push({ level: "warn", text: `Uplink to the backend is offline${up.since ? ` since ${fmt.time(up.since)}` : ""}`
      + `${up.backlog ? `; ${up.backlog} messages wait in the outbox` : ""}${up.detail ? ` (${up.detail})` : ""}.` });
  }
  if (up.near_limit) out.push({ level: "bad", text: "The outbox is near its size bound: old telemetry is being dropped." });
  if (up.dropped_telemetry > 0) {
    out.push({ level: "warn", text: `${up.dropped_telemetry} telemetry messages were dropped to keep the outbox bounded.` });
  }
  for (const ch of h.chargers || []) {
    const href = `#/chargers/${encodeURIComponent(ch.id)}`;
    if (ch.configured && !ch.connected) {
      out.push({ level: "bad", href, text: `Charger ${ch.id} is disconnected (last seen ${fmt.ago(ch.last_seen, h.time)}).` });
    } else if (!ch.configured && ch.connected && !(ch.evses || []).length) {
      out.push({ level: "warn", href: "#/commissioning", text: `Charger ${ch.id} is not configured: approve it in Commissioning.` });
    }
    for (const e of ch.evses || []) {
      if (ch.connected && e.status === "OUTOFORDER") {
        out.push({ level: "bad", href, text: `EVSE ${e.evse_uid} is out of order.` });
      }
    }
  }
  for (const m of h.meters || []) {
    if (m.ok) continue;
    if (m.last_error) out.push({ level: "bad", href: "#/meters", text: `Meter ${m.id}: ${m.last_error}.` });
    else if (m.last_reading_age_s === null || m.last_reading_age_s === undefined) {
      out.push({ level: "warn", href: "#/meters", text: `Meter ${m.id} has not delivered a reading yet.` });
    } else {
      out.push({ level: "warn", href: "#/meters", text: `Meter ${m.id} is stale: last reading ${fmt.num(m.last_reading_age_s, 0)} s ago.` });
    }
  }
  for (const mc of h.modbus_chargers || []) {
    if (mc.ok) continue;
    const why = mc.watchdog_ok === false ? "watchdog not kept alive" : mc.last_error || mc.health || "no fresh status";
    out.push({ level: "bad", href: "#/meters", text: `Modbus charger ${mc.id}: ${why}.` });
  }
  const p = h.power || {};
  if (typeof p.kw === "number" && typeof p.limit_kw === "number") {
    if (p.kw > p.limit_kw) out.push({ level: "bad", text: `Site power ${fmt.kw(p.kw)} is above the ${fmt.kw(p.limit_kw)} limit.` });
    else if (p.kw > 0.9 * p.limit_kw) out.push({ level: "warn", text: `Site power ${fmt.kw(p.kw)} is within 10 % of the ${fmt.kw(p.limit_kw)} limit.` });
  }
  for (const a of h.alarms || []) {
    if (a && a.text) out.push({ level: a.level === "bad" ? "bad" : "warn", text: a.text });
  }
  return out.sort((a, b) => (a.level === b.level ? 0 : a.level === "bad" ? -1 : 1));
}
