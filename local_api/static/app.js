// siteedge technician page: renders /api/v1/live `health` snapshots; no framework, no build step.
"use strict";

(() => {
  const STATUSES = new Set([
    "AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER",
    "PLANNED", "REMOVED", "RESERVED", "UNKNOWN",
  ]);
  // EventSource gives up for good on an HTTP error (e.g. 503 when too many pages are open);
  // then we start a new one ourselves after this delay.
  const RESTART_MS = 5000;

  const byId = (id) => document.getElementById(id);
  const kw = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const kwh = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const secs = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  // Builds an element with textContent only: charger ids, vendors and errors come from field
  // devices and must never be parsed as HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setPill(node, text, tone, attrs) {
    node.textContent = text;
    node.className = `pill pill-${tone}`;
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  }

  function localTime(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
  }

  // Relative to the snapshot's own time, not the browser clock: both come from the box, so a
  // technician's phone with a wrong clock still reads "seen 3 s ago" correctly.
  function ago(iso, nowIso) {
    const then = Date.parse(iso);
    const now = Date.parse(nowIso);
    if (Number.isNaN(then) || Number.isNaN(now)) return localTime(iso);
    const s = Math.max(0, Math.round((now - then) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
    return localTime(iso);
  }

  function num(format, value, divisor) {
    return typeof value === "number" && Number.isFinite(value) ? format.format(value / divisor) : "—";
  }

  function evseItem(evse) {
    const status = STATUSES.has(evse.status) ? evse.status : "UNKNOWN";
    const since = evse.last_updated ? `since ${localTime(evse.last_updated)}` : "no status yet";
    return el("li", null,
      el("span", { class: "evse-uid" }, evse.evse_uid),
      el("span", {
        class: `badge st-${status.toLowerCase()}`,
        "data-evse-uid": evse.evse_uid,
        "data-status": status,
        title: `${evse.evse_uid}: ${status}, ${since} (OCPP EVSE ${evse.ocpp_evse})`,
      }, status));
  }

  function chargerRow(ch, now) {
    const product = [ch.vendor, ch.model].filter(Boolean).join(" ");
    const details = [product, ch.firmware ? `fw ${ch.firmware}` : ""].filter(Boolean).join(" · ");
    const link = ch.connected
      ? el("span", { class: "pill pill-ok", "data-field": "connected" }, "online")
      : el("span", { class: "pill pill-bad", "data-field": "connected" }, "offline");
    return el("tr", { "data-charger-id": ch.id, "data-connected": String(Boolean(ch.connected)) },
      el("th", { scope: "row", class: "c-name" },
        el("span", { class: "id" }, ch.id),
        ch.configured ? null : el("span", { class: "tag" }, "not configured"),
        details ? el("span", { class: "sub", "data-field": "product" }, details) : null),
      el("td", { class: "c-link" },
        link,
        el("span", { class: "sub", "data-field": "ocpp" },
          ch.ocpp_version ? `OCPP ${ch.ocpp_version}` : "OCPP —"),
        ch.last_seen
          ? el("span", { class: "sub", title: localTime(ch.last_seen) }, `seen ${ago(ch.last_seen, now)}`)
          : null),
      el("td", { class: "c-evses" },
        ch.evses.length
          ? el("ul", { class: "evses" }, ...ch.evses.map(evseItem))
          : el("span", { class: "sub" }, "no EVSEs mapped")));
  }

  function meterState(m) {
    if (m.ok) return el("span", { class: "pill pill-ok" }, "OK");
    if (m.last_error) return el("span", { class: "pill pill-bad" }, "error");
    return el("span", { class: "pill pill-warn" }, m.last_reading_age_s === null ? "no data" : "stale");
  }

  function meterRow(m) {
    const v = m.values || {};
    // data-label: the narrow layout shows each value with its column name (CSS ::before).
    const cell = (field, label, text) =>
      el("td", { class: `num c-${field}`, "data-field": field, "data-label": label }, text);
    return el("tr", { "data-meter-id": m.id, "data-ok": String(Boolean(m.ok)) },
      el("th", { scope: "row", class: "c-name" },
        el("span", { class: "id" }, m.id),
        el("span", { class: "sub" }, m.role)),
      cell("power", "Power kW", num(kw, v.power, 1000)),
      cell("energy", "Import kWh", num(kwh, v.energy_import, 1000)),
      cell("age", "Age s", num(secs, m.last_reading_age_s, 1)),
      el("td", { class: "c-state", "data-field": "state" },
        meterState(m),
        m.last_error ? el("span", { class: "sub error" }, m.last_error) : null));
  }

  function fill(tableId, emptyId, countId, rows) {
    byId(tableId).tBodies[0].replaceChildren(...rows);
    byId(emptyId).hidden = rows.length > 0;
    byId(countId).textContent = `(${rows.length})`;
  }

  function render(h) {
    byId("version").textContent = h.version ? `v${h.version}` : "";
    const site = h.site || {};
    byId("site-name").textContent = site.name || site.location_id || "";
    if (site.name) document.title = `${site.name} · siteedge`;
    const ok = h.status === "ok";
    setPill(byId("site-status"), ok ? "site ok" : "site degraded", ok ? "ok" : "warn",
      { "data-status": h.status });

    const up = h.uplink || {};
    let text = up.connected ? "uplink connected" : "uplink offline";
    if (up.backlog > 0) text += ` · ${up.backlog} queued`;
    setPill(byId("uplink"), text, up.connected ? "ok" : "bad", {
      "data-connected": String(Boolean(up.connected)),
      "data-backlog": String(up.backlog ?? 0),
      title: [up.detail, up.since ? `since ${localTime(up.since)}` : ""].filter(Boolean).join(", "),
    });

    fill("chargers", "chargers-empty", "charger-count", (h.chargers || []).map((ch) => chargerRow(ch, h.time)));
    fill("meters", "meters-empty", "meter-count", (h.meters || []).map(meterRow));

    const stamp = byId("snapshot-time");
    stamp.textContent = localTime(h.time);
    if (h.time) stamp.setAttribute("datetime", h.time);
  }

  function setLive(state) {
    const label = { live: "live", connecting: "connecting…", disconnected: "disconnected" }[state];
    const tone = { live: "ok", connecting: "muted", disconnected: "bad" }[state];
    setPill(byId("live"), label, tone, { "data-state": state });
    document.body.dataset.live = state;
  }

  let source = null;

  function connect() {
    setLive("connecting");
    source = new EventSource("/api/v1/live");
    source.addEventListener("health", (event) => {
      let snapshot;
      try {
        snapshot = JSON.parse(event.data);
      } catch (err) {
        console.error("siteedge: bad health event", err);
        return;
      }
      render(snapshot);
      setLive("live");
    });
    source.addEventListener("error", () => {
      // The data on screen is now possibly old; say so. CONNECTING: the browser retries itself.
      setLive("disconnected");
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, RESTART_MS);
      }
    });
  }

  connect();
})();
