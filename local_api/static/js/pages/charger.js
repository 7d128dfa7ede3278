// Charger page: identity and boot data, connectors with actions, session energy curve, maintenance
// (firmware, logs) with live progress, OCPP log.

import { itemsOf } from "../api.js";
import { setCredentials } from "../credentials.js";
import { maintenanceCard } from "../maintenance.js";
import { connectorTile, linkPill } from "../tiles.js";

const TRIGGERS = ["StatusNotification", "Heartbeat", "MeterValues", "BootNotification"];
const LOG_PAGE = 20;
const MESSAGE_TYPES = { 2: "call", 3: "result", 4: "error", CALL: "call", CALLRESULT: "result", CALLERROR: "error" };

/** The energy curve of a session: cumulative kWh at each charging period boundary. */
function sessionCurve(session) {
  if (!session) return [];
  const out = [];
  const start = Date.parse(session.start_date_time);
  if (!Number.isNaN(start)) out.push({ t: start, v: 0 });
  const periods = session.charging_periods || [];
  let total = 0;
  periods.forEach((p, i) => {
    const energy = (p.dimensions || []).find((d) => d.type === "ENERGY");
    total += energy ? Number(energy.volume) || 0 : 0;
    const end = i + 1 < periods.length ? Date.parse(periods[i + 1].start_date_time) : Date.parse(session.last_updated);
    if (!Number.isNaN(end)) out.push({ t: end, v: total });
  });
  if (typeof session.kwh === "number" && !Number.isNaN(Date.parse(session.last_updated))) {
    out.push({ t: Date.parse(session.last_updated), v: session.kwh });
  }
  return out.sort((a, b) => a.t - b.t);
}

export default {
  route: "#/chargers/:id",
  title: "Charger",
  role: "viewer",
  nav: false,
  async render(root, ctx) {
    const { api, live, ui, params, can } = ctx;
    const { el, fmt, card, field, confirmAction, toast, reconcile } = ui;
    const id = params.id;
    const enc = encodeURIComponent(id);
    const tech = can("technician");
    let charger = null; // the live health entry
    let now = null;
    let commands = [];

    const title = el("h1", null, id);
    const headPill = el("span", { class: "head-pill" });
    root.append(el("div", { class: "page-head" },
      el("a", { href: "#/", class: "back" }, "‹ Dashboard"),
      el("div", { class: "title-row" }, title, headPill)));

    // --- identity -----------------------------------------------------------------------
    const identity = el("dl", { class: "facts", "data-testid": "identity" });
    const identityCard = card("Identity", { class: "card" }, identity);
    let registry = null;
    const renderIdentity = () => {
      const boot = (registry && registry.boot) || {};
      const station = boot.chargingStation || {};
      const rows = [
        ["Vendor", charger?.vendor || boot.vendor || station.vendorName],
        ["Model", charger?.model || boot.model || station.model],
        ["Serial number", boot.serial || boot.chargePointSerialNumber || station.serialNumber],
        ["Firmware", charger?.firmware || boot.firmware || station.firmwareVersion],
        ["OCPP version", charger?.ocpp_version],
        ["Last seen", charger?.last_seen ? `${fmt.ago(charger.last_seen, now)} (${fmt.time(charger.last_seen)})` : null],
        ["Registration", registry ? `${registry.registration || "—"}${registry.configured ? " (configured)" : ""}` : null],
        ["Last boot", registry?.boot_at ? fmt.time(registry.boot_at) : null],
      ];
      ui.fill(identity, ...rows.map(([k, v]) => el("div", null, el("dt", null, k), el("dd", null, v || "—"))));
    };
    api.get("chargers/registry").then((list) => {
      registry = itemsOf(list).find((c) => c.id === id) || null;
      renderIdentity();
    }).catch(() => { /* identity from the live snapshot is enough */ });

    // --- command plumbing ---------------------------------------------------------------
    const resultBox = el("div", { class: "result", "data-testid": "command-result", hidden: true });
    const showResult = (label, result) => {
      const ok = result.status === "accepted";
      const word = result.ocpp_status ? `${result.status} (${result.ocpp_status})` : result.status;
      toast(`${label}: ${word}${result.detail ? ` — ${result.detail}` : ""}`, ok ? "ok" : result.status === "rejected" ? "warn" : "bad");
      resultBox.hidden = false;
      ui.fill(resultBox, el("div", { class: "result-head" }, el("strong", null, label), ui.pill(word, ok ? "ok" : "warn")),
        readable(result.payload),
        result.payload && Object.keys(result.payload).length
          ? el("details", null, el("summary", null, "Raw reply"), el("pre", { class: "json" }, JSON.stringify(result.payload, null, 2)))
          : null);
    };
    /** Configuration and variable replies as tables (keys, values, per-item status); null for others. */
    const readable = (payload) => {
      if (!payload) return null;
      if (Array.isArray(payload.configurationKey)) {
        const unknown = payload.unknownKey || [];
        return el("div", null, ui.table([
          { label: "Key", render: (k) => el("span", { class: "mono" }, k.key) },
          { label: "Value", render: (k) => el("span", { class: "mono" }, k.value ?? "—") },
          { label: "Read-only", render: (k) => (k.readonly ? "yes" : "no") },
        ], payload.configurationKey, { emptyText: "No keys returned." }),
        unknown.length ? el("p", { class: "notice notice-warn" }, `Unknown to the charger: ${unknown.join(", ")}`) : null);
      }
      const items = payload.getVariableResult || payload.setVariableResult;
      if (Array.isArray(items)) {
        return ui.table([
          { label: "Component", render: (r) => el("span", { class: "mono" }, r.component?.name) },
          { label: "Variable", render: (r) => el("span", { class: "mono" }, r.variable?.name) },
          { label: "Status", render: (r) => ui.pill(r.attributeStatus, r.attributeStatus === "Accepted" ? "ok" : "warn") },
          ...(payload.getVariableResult ? [{ label: "Value", render: (r) => el("span", { class: "mono" }, r.attributeValue ?? "—") }] : []),
        ], items);
      }
      return null;
    };

    /** Confirm, then send, showing progress on the button and the typed result. */
    const act = async (button, label, text, send, opts = {}) => {
      const yes = await confirmAction(label, text, opts);
      if (!yes) return undefined;
      const result = await ui.busy(button, send, { success: () => null,
        failure: (err) => `${label}: ${err.body && err.body.status ? `${err.body.status} — ` : ""}${ui.errorText(err)}` });
      if (result) showResult(label, result);
      return result;
    };
    const v201 = () => charger?.ocpp_version === "2.0.1";
    const command = (name, payload) => api.post(`chargers/${enc}/commands/${name}`, payload, { timeoutMs: 130000 });

    // --- connectors ---------------------------------------------------------------------
    const tiles = el("div", { class: "tiles tiles-wide", "data-testid": "connectors" });
    const offlineNote = el("p", { class: "notice notice-warn", hidden: true }, "The charger is offline: actions are unavailable until it reconnects.");
    const connectorsCard = card("Connectors", { class: "card" }, offlineNote, tiles);

    const tileActions = (evse) => {
      if (!tech) return null;
      const uid = evse.evse_uid;
      const online = Boolean(charger?.connected);
      const tx = evse.transaction;
      const buttons = [];
      if (tx) {
        const stop = el("button", { type: "button", class: "btn btn-small btn-danger", disabled: !online,
          "data-testid": `action-stop-${uid}` }, "Stop session");
        stop.addEventListener("click", () => act(stop, "Stop session",
          `Stop the session of ${tx.id_tag || "unknown tag"} on ${uid}? The car stops charging.`,
          () => api.post("transactions/stop", { id: tx.id }, { timeoutMs: 130000 }), { confirm: "Stop session", danger: true }));
        buttons.push(stop);
      } else {
        const start = el("button", { type: "button", class: "btn btn-small btn-primary", disabled: !online,
          "data-testid": `action-start-${uid}` }, "Start session");
        start.addEventListener("click", () => {
          const tag = field("ID tag", { name: "id_tag", autocomplete: "off", autocapitalize: "characters",
            spellcheck: "false", "data-testid": "id-tag-input", hint: "The card (or token uid) to start for." });
          act(start, "Start session", `Remote-start a session on ${uid}.`,
            () => api.post(`evses/${encodeURIComponent(uid)}/start`, { id_tag: tag.input.value.trim() }, { timeoutMs: 130000 }),
            { confirm: "Start", content: tag.wrap, validate: () => (tag.input.value.trim() ? null : "Enter an ID tag.") });
        });
        buttons.push(start);
      }
      const unlock = el("button", { type: "button", class: "btn btn-small", disabled: !online,
        "data-testid": `action-unlock-${uid}` }, "Unlock");
      unlock.addEventListener("click", () => act(unlock, "Unlock connector",
        `Unlock the connector of ${uid}? A cable locked in the socket is released.`,
        () => api.post(`evses/${encodeURIComponent(uid)}/unlock`, {}, { timeoutMs: 130000 }), { confirm: "Unlock" }));
      buttons.push(unlock);
      const inoperative = evse.status === "INOPERATIVE";
      const avail = el("button", { type: "button", class: "btn btn-small", disabled: !online,
        "data-testid": `action-availability-${uid}` }, inoperative ? "Make operative" : "Make inoperative");
      avail.addEventListener("click", () => {
        const type = inoperative ? "Operative" : "Inoperative";
        const payload = v201() ? { operationalStatus: type, evse: { id: evse.ocpp_evse } }
          : { connectorId: evse.ocpp_evse, type };
        act(avail, `Make ${type.toLowerCase()}`, inoperative ? `Allow charging on ${uid} again?`
          : `Take ${uid} out of service? Drivers cannot start there until it is made operative.`,
        () => command("ChangeAvailability", payload), { confirm: `Make ${type.toLowerCase()}`, danger: !inoperative });
      });
      buttons.push(avail);
      return el("div", { class: "tile-actions" }, buttons);
    };

    // --- session energy curve -------------------------------------------------------------
    const sessionBox = el("div", { class: "chart-box", "data-testid": "session-chart" });
    const sessionInfo = el("p", { class: "hint" });
    const sessionCard = card("Current session", { class: "card", hidden: true }, sessionInfo, sessionBox);
    let sessionKey = null;
    let curve = [];
    let session = null;
    const drawCurve = () => {
      ui.fill(sessionBox, ui.lineChart(curve, { width: sessionBox.clientWidth || 600, height: 180,
        yLabel: "kWh", unit: "kWh", gapMs: 30 * 60000, title: "Energy delivered" }));
    };
    const loadSession = async (evse) => {
      try {
        const answer = await api.get("sessions?status=ACTIVE&limit=100");
        session = itemsOf(answer).find((s) => s.evse_uid === evse.evse_uid) || null;
      } catch {
        session = null;
      }
      curve = [...sessionCurve(session), ...curve.filter((p) => p.live)].sort((a, b) => a.t - b.t);
      drawCurve();
    };
    const renderSession = () => {
      const evse = (charger?.evses || []).find((e) => e.transaction);
      sessionCard.hidden = !evse;
      if (!evse) {
        sessionKey = null;
        return;
      }
      const tx = evse.transaction;
      if (tx.id !== sessionKey) {
        sessionKey = tx.id;
        curve = [];
        loadSession(evse);
      }
      sessionInfo.textContent = `${evse.evse_uid} · ${tx.id_tag || "unknown tag"} · started ${fmt.time(tx.started)}`
        + ` · ${fmt.kwh(typeof tx.energy_wh === "number" ? tx.energy_wh / 1000 : null)}`;
      if (typeof tx.energy_wh === "number" && now) {
        const t = Date.parse(now);
        const last = curve[curve.length - 1];
        if (!last || t > last.t) curve.push({ t, v: tx.energy_wh / 1000, live: true });
      }
      drawCurve();
    };

    // --- charger actions ----------------------------------------------------------------
    const actionsBody = el("div", { class: "actions-grid" });
    // Outside actionsBody (rebuilt on every live update): a shown password must stay until copied.
    const credentialsBox = el("div", { "aria-live": "polite", "data-testid": "credentials-box" });
    const actionsCard = card("Actions", { class: "card", hidden: !tech }, actionsBody, resultBox, credentialsBox);
    const buildActions = () => {
      const online = Boolean(charger?.connected);
      const has = (name) => commands.includes(name);
      const reset = el("button", { type: "button", class: "btn", disabled: !online || !has("Reset"), "data-testid": "action-reset" }, "Reset…");
      reset.addEventListener("click", () => {
        const kinds = v201() ? [["OnIdle", "When idle (OnIdle)"], ["Immediate", "Immediately (Immediate)"]]
          : [["Soft", "Soft (restart software)"], ["Hard", "Hard (reboot)"]];
        const kind = field("Reset type", { type: "select", name: "reset", options: kinds, "data-testid": "reset-type" });
        act(reset, "Reset charger", `Reset ${id}? Running sessions may stop; it reconnects in a minute or two.`,
          () => command("Reset", { type: kind.input.value }), { confirm: "Reset", danger: true, content: kind.wrap });
      });
      const trigger = el("button", { type: "button", class: "btn", disabled: !online || !has("TriggerMessage"), "data-testid": "action-trigger" }, "Trigger message…");
      trigger.addEventListener("click", () => {
        const what = field("Message", { type: "select", name: "message", options: TRIGGERS.map((t) => [t, t]) });
        const evses = (charger?.evses || []).map((e) => [String(e.ocpp_evse), `${e.evse_uid} (${e.ocpp_evse})`]);
        const which = field("Connector", { type: "select", name: "connector", options: [["", "whole charger"], ...evses] });
        const content = el("div", { class: "form" }, what.wrap, which.wrap);
        act(trigger, "Trigger message", `Ask ${id} to send a message now.`, () => {
          const payload = { requestedMessage: what.input.value };
          if (which.input.value) {
            if (v201()) payload.evse = { id: Number(which.input.value) };
            else payload.connectorId = Number(which.input.value);
          }
          return command("TriggerMessage", payload);
        }, { confirm: "Send", content });
      });
      const getName = v201() ? "GetVariables" : "GetConfiguration";
      const setName = v201() ? "SetVariables" : "ChangeConfiguration";
      const get = el("button", { type: "button", class: "btn", disabled: !online || !has(getName), "data-testid": "action-get-config" },
        v201() ? "Get variable…" : "Get configuration…");
      get.addEventListener("click", () => {
        const comp = field("Component", { name: "component", value: "OCPPCommCtrlr", hint: "e.g. OCPPCommCtrlr, AuthCtrlr" });
        const key = field(v201() ? "Variable" : "Key (empty: all)", { name: "key", value: v201() ? "HeartbeatInterval" : "" });
        const content = el("div", { class: "form" }, v201() ? comp.wrap : null, key.wrap);
        act(get, v201() ? "Get variable" : "Get configuration", null, () => {
          const k = key.input.value.trim();
          const payload = v201()
            ? { getVariableData: [{ component: { name: comp.input.value.trim() }, variable: { name: k } }] }
            : (k ? { key: [k] } : {});
          return command(getName, payload);
        }, { confirm: "Read", content, validate: () => (v201() && !key.input.value.trim() ? "Enter a variable name." : null) });
      });
      const set = el("button", { type: "button", class: "btn", disabled: !online || !has(setName), "data-testid": "action-set-config" },
        v201() ? "Set variable…" : "Set configuration…");
      set.addEventListener("click", () => {
        const comp = field("Component", { name: "component", value: "OCPPCommCtrlr" });
        const key = field(v201() ? "Variable" : "Key", { name: "key", value: v201() ? "HeartbeatInterval" : "HeartbeatInterval" });
        const value = field("Value", { name: "value" });
        const content = el("div", { class: "form" }, v201() ? comp.wrap : null, key.wrap, value.wrap);
        act(set, v201() ? "Set variable" : "Set configuration", `Change a setting on ${id}. Wrong values can take it offline.`, () => {
          const payload = v201()
            ? { setVariableData: [{ component: { name: comp.input.value.trim() }, variable: { name: key.input.value.trim() },
              attributeValue: value.input.value }] }
            : { key: key.input.value.trim(), value: value.input.value };
          return command(setName, payload);
        }, { confirm: "Change", danger: true, content, validate: () => (key.input.value.trim() ? null : "Enter the key.") });
      });
      // Works offline too: the new password is then required from the charger's next connection.
      const credentials = el("button", { type: "button", class: "btn", disabled: !tech, "data-testid": "action-credentials" },
        "Set credentials…");
      credentials.addEventListener("click", () => setCredentials(ctx, id, { button: credentials, resultBox: credentialsBox }));
      ui.fill(actionsBody, reset, trigger, get, set, credentials,
        online ? null : el("p", { class: "hint" }, "Offline: commands need a connected charger."));
    };

    // --- OCPP message log ---------------------------------------------------------------
    const logAction = field("Action", { name: "action", placeholder: "e.g. StatusNotification", list: "ocpp-actions", "data-testid": "log-action" });
    const logDir = field("Direction", { type: "select", name: "direction", "data-testid": "log-direction",
      options: [["", "both"], ["in", "from the charger"], ["out", "to the charger"]] });
    const logBody = el("div", { class: "log", "data-testid": "message-log" });
    const datalist = el("datalist", { id: "ocpp-actions" }, ["BootNotification", "StatusNotification", "Heartbeat", "MeterValues",
      "StartTransaction", "StopTransaction", "TransactionEvent", "Authorize", "RemoteStartTransaction", "RequestStartTransaction",
      "Reset", "TriggerMessage", "ChangeConfiguration", "GetConfiguration", "SetVariables", "GetVariables"].map((a) => el("option", { value: a })));
    let logOffset = 0;
    const loadLog = async (offset = 0) => {
      logOffset = offset;
      const q = new URLSearchParams({ limit: String(LOG_PAGE), offset: String(offset) });
      if (logAction.input.value.trim()) q.set("action", logAction.input.value.trim());
      if (logDir.input.value) q.set("direction", logDir.input.value);
      logBody.setAttribute("aria-busy", "true");
      try {
        const answer = await api.get(`chargers/${enc}/messages?${q}`);
        let rows = itemsOf(answer);
        if (logDir.input.value) rows = rows.filter((r) => r.direction === logDir.input.value);
        const next = Array.isArray(answer) ? null : answer.next_offset ?? null;
        // A compact list, not a table: one line per frame even on a phone, the payload on demand.
        const list = rows.length ? el("ol", { class: "msgs" }, rows.map((r) => el("li", { class: "msg", "data-direction": r.direction },
          el("time", { datetime: r.at, class: "msg-time", title: fmt.time(r.at) }, fmt.seconds(r.at)),
          el("span", { class: `dir dir-${r.direction}`, title: r.direction === "in" ? "from the charger" : "to the charger" },
            r.direction === "in" ? "← in" : "→ out"),
          el("span", { class: "msg-action" }, r.action || "—",
            el("span", { class: "muted small" }, ` ${MESSAGE_TYPES[r.message_type] || r.message_type || ""}`)),
          el("details", { class: "msg-payload" }, el("summary", null, summary(r.payload)),
            el("pre", { class: "json" }, JSON.stringify(r.payload, null, 2))))))
          : ui.empty("No messages match.");
        ui.fill(logBody, list, ui.pager({ offset, limit: LOG_PAGE, nextOffset: next, count: rows.length, onPage: loadLog }));
      } catch (err) {
        ui.fill(logBody, el("p", { class: "notice notice-bad" }, ui.errorText(err)));
      } finally {
        logBody.removeAttribute("aria-busy");
      }
    };
    const summary = (payload) => {
      const text = JSON.stringify(payload ?? null);
      return text.length > 60 ? `${text.slice(0, 60)}…` : text;
    };
    let logTimer = null;
    logAction.input.addEventListener("input", () => { clearTimeout(logTimer); logTimer = setTimeout(() => loadLog(0), 400); });
    logDir.input.addEventListener("change", () => loadLog(0));
    const refreshLog = el("button", { type: "button", class: "btn btn-small", onclick: () => loadLog(logOffset) }, "Refresh");
    const logCard = card(el("div", { class: "card-title-row" }, el("h2", null, "OCPP messages"), refreshLog), { class: "card card-log" },
      el("div", { class: "filters" }, logAction.wrap, logDir.wrap, datalist), logBody);

    // --- recent transactions --------------------------------------------------------------
    const txBody = el("div");
    const txCard = card("Recent transactions", { class: "card" }, txBody);
    const loadTransactions = async () => {
      try {
        const answer = await api.get(`chargers/${enc}/transactions?limit=10`);
        const rows = itemsOf(answer, "transactions");
        ui.fill(txBody, ui.table([
          { label: "Started", render: (r) => fmt.time(r.started) },
          { label: "Connector", key: "ocpp_evse" },
          { label: "ID tag", key: "id_tag" },
          { label: "Energy", num: true, render: (r) => fmt.kwh(typeof r.energy_wh === "number" ? r.energy_wh / 1000 : null) },
          { label: "State", render: (r) => (r.active ? ui.pill("running", "info") : r.stop_reason || "ended") },
        ], rows, { emptyText: "No transactions yet." }));
      } catch (err) {
        ui.fill(txBody, el("p", { class: "notice notice-bad" }, ui.errorText(err)));
      }
    };

    const maintenance = maintenanceCard(ctx, id, { tech, showResult });
    // --- security events (SecurityEventNotification: tamper, firmware updated, failed logins) --------
    const securityBody = el("div", { "data-testid": "security-events" });
    const securityCard = card("Security events", { class: "card" }, securityBody);
    let securitySig = null;
    const renderSecurity = () => {
      const events = charger?.security_events || [];
      const sig = JSON.stringify(events);
      if (sig === securitySig) return;
      securitySig = sig;
      ui.fill(securityBody, events.length
        ? el("ol", { class: "events" }, events.map((e) => el("li", { class: "event" },
          el("strong", { class: "mono" }, e.type), " ",
          el("time", { class: "muted small", datetime: e.at }, fmt.time(e.at)),
          e.tech_info ? el("p", { class: "hint" }, e.tech_info) : null)))
        : ui.empty("None reported since siteedge started (the OCPP log keeps them all)."));
    };
    root.append(el("div", { class: "charger-layout" },
      el("div", { class: "col" }, connectorsCard, sessionCard, actionsCard, maintenance.card),
      el("div", { class: "col" }, identityCard, securityCard, txCard)), logCard);

    // --- live ---------------------------------------------------------------------------
    let lastOnline = null;
    let lastTxSig = "";
    const loadCommands = async () => {
      try {
        commands = itemsOf(await api.get(`chargers/${enc}/commands`), "commands");
      } catch {
        commands = [];
      }
      buildActions();
    };
    const unsubscribe = live.subscribe((h) => {
      now = h.time;
      charger = (h.chargers || []).find((c) => c.id === id) || null;
      maintenance.update(charger, now);
      renderSecurity();
      if (!charger) {
        ui.fill(headPill, ui.pill("unknown", "muted"));
        ui.fill(tiles, ui.empty("This charger is not known to the site (yet)."));
        renderIdentity();
        return;
      }
      ui.fill(headPill, linkPill(charger));
      offlineNote.hidden = charger.connected || !tech;
      const evses = charger.evses || [];
      if (!evses.length) ui.fill(tiles, ui.empty(charger.configured ? "No EVSEs configured." : "No EVSEs until the charger is approved."));
      else {
        reconcile(tiles, evses, (e) => e.evse_uid, (e) => JSON.stringify(e) + charger.connected + (e.transaction ? now : ""),
          (e) => connectorTile(e, now, { actions: tileActions(e) }));
      }
      renderIdentity();
      renderSession();
      if (charger.connected !== lastOnline) {
        lastOnline = charger.connected;
        loadCommands();
      }
      const txSig = evses.map((e) => e.transaction?.id || "").join();
      if (txSig !== lastTxSig) {
        lastTxSig = txSig;
        loadTransactions();
      }
    });
    buildActions();
    loadLog(0);
    const resize = new ResizeObserver(() => { if (!sessionCard.hidden) drawCurve(); });
    resize.observe(sessionBox);
    return () => {
      unsubscribe();
      resize.disconnect();
      clearTimeout(logTimer);
    };
  },
};
