// Meters: every Modbus device with live values, freshness, bus health counters and power charts.

import { every, facts, notice } from "./common.js";

const HISTORY_MS = 60 * 60 * 1000; // what the page keeps of each meter's power while it is open
const DEVICES_EVERY_MS = 10000;
const MIN_SPAN_MS = 10 * 60 * 1000;
const SITE_POWER_EVERY_MS = 10000;

// Value names of the device library (drivers/devices/*.toml) -> label, unit, scale, digits.
const UNITS = [
  [/^power(_l\d)?$/, "kW", 0.001, 2],
  [/^reactive_power/, "kvar", 0.001, 2],
  [/^apparent_power/, "kVA", 0.001, 2],
  [/^energy/, "kWh", 0.001, 1],
  [/^voltage/, "V", 1, 1],
  [/^current/, "A", 1, 2],
  [/^frequency/, "Hz", 1, 2],
  [/^power_factor/, "", 1, 3],
  [/^temperature/, "°C", 1, 1],
];
// Shown first and large; the rest follow in the device library's order.
const MAIN = ["power", "energy_import", "energy_export"];
const COUNTERS = [
  ["polls", "Polls"], ["good_polls", "Good polls"], ["failed_polls", "Failed polls"], ["requests", "Requests"],
  ["retries", "Retries"], ["timeouts", "Timeouts"], ["crc_errors", "CRC errors"], ["exceptions", "Exception replies"],
  ["bad_replies", "Bad replies"], ["late_replies", "Late replies"], ["connection_errors", "Connection errors"],
  ["rejected_values", "Rejected values"], ["consecutive_failures", "Failures in a row"],
];

function valueText(name, v, ui) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "—";
  const unit = UNITS.find(([re]) => re.test(name));
  if (!unit) return ui.fmt.num(v, Number.isInteger(v) ? 0 : 2);
  const [, u, scale, digits] = unit;
  return `${ui.fmt.num(v * scale, digits)}${u ? ` ${u}` : ""}`;
}

function label(name) {
  return name.replace(/_/g, " ").replace(/\bl(\d)\b/, "L$1").replace(/^./, (c) => c.toUpperCase());
}

/** The meter's freshness as [text, tone]. */
function stateOf(m) {
  if (m.ok) {
    if (m.state === "degraded") return ["degraded", "warn"];
    return ["ok", "ok"];
  }
  if (m.state === "offline") return ["offline", "bad"];
  if (m.last_reading_age_s === null || m.last_reading_age_s === undefined) return ["no reading yet", "bad"];
  return ["stale", "warn"];
}

function ageText(m, ui) {
  const age = m.last_reading_age_s;
  if (typeof age !== "number") return "never read";
  return age < 60 ? `read ${ui.fmt.num(age, 1)} s ago` : `read ${ui.fmt.duration(age)} ago`;
}

export default {
  route: "#/meters",
  title: "Meters",
  role: "viewer",
  render(root, { api, live, ui }) {
    const { el } = ui;
    const history = new Map(); // meter id -> [{t, v}] (kW) seen since the page opened
    const cards = new Map(); // meter id -> {node, update}
    let devices = new Map(); // meter id -> GET /modbus/devices entry (model, unit, transport)
    let devicesNote = "";
    let last = null;

    const summary = el("p", { class: "lead", "data-testid": "meters-summary" }, "Waiting for the first live update…");
    const sitePowerBox = el("div", { class: "chart-box", "data-testid": "site-power" }, ui.empty("Loading site power…"));
    const siteInfo = el("p", { class: "hint" });
    const grid = el("div", { class: "meter-grid", "data-testid": "meter-list" });
    const chargersBox = el("div", { "data-testid": "modbus-chargers" });
    const devicesStatus = el("p", { class: "hint devices-status", role: "status" });
    root.append(
      el("div", { class: "page-head" }, el("h1", null, "Meters"), summary),
      ui.card("Site power, last hour", { class: "card site-power" }, sitePowerBox, siteInfo),
      el("h2", { class: "section-title" }, "Modbus meters"),
      devicesStatus,
      grid,
      chargersBox,
    );

    async function loadSitePower() {
      try {
        const p = await api.get("site/power?minutes=60");
        const pts = (p.points || []).map((x) => ({ t: Date.parse(x.t), v: x.kw }));
        sitePowerBox.replaceChildren(ui.lineChart(pts, {
          yLabel: "kW", unit: "kW", limit: p.limit_kw, spanMs: 3600000, endMs: pts.length ? undefined : Date.now(),
          gapMs: 60000, title: "Site power", width: Math.max(320, sitePowerBox.clientWidth || 640),
        }));
        const src = p.source === "grid" ? "from the grid meter" : "as the sum of the chargers' power";
        siteInfo.textContent = `Site power ${src}, 10-second averages`
          + (typeof p.limit_kw === "number" ? `; site limit ${ui.fmt.kw(p.limit_kw)}.` : "; no site limit configured.");
      } catch (err) {
        sitePowerBox.replaceChildren(notice(`Site power is not available: ${ui.errorText(err)}`, "warn"));
      }
    }

    async function loadDevices() {
      try {
        const d = await api.get("modbus/devices");
        const next = new Map();
        for (const bus of d.buses || []) {
          for (const dev of bus.devices || []) next.set(dev.id, { ...dev, transport: bus.transport, kind: bus.kind });
        }
        devices = next;
        devicesNote = "";
      } catch (err) {
        devicesNote = err.status === 404 ? "No Modbus buses are configured on this box."
          : `Bus details are not available: ${ui.errorText(err)}`;
      }
      devicesStatus.textContent = devicesNote;
      if (last) update(last);
    }

    function remember(m, at) {
      const kw = m.values && typeof m.values.power === "number" ? m.values.power / 1000 : null;
      let pts = history.get(m.id);
      if (!pts) history.set(m.id, (pts = []));
      if (pts.length && pts[pts.length - 1].t === at) return;
      // A missing value is remembered as a gap (not drawn), never as zero.
      if (kw !== null) pts.push({ t: at, v: kw });
      while (pts.length && pts[0].t < at - HISTORY_MS) pts.shift();
    }

    function buildCard(id) {
      const titleId = `meter-h-${id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      const title = el("h3", { class: "meter-title", id: titleId }, id);
      const roleTag = el("span", { class: "tag" });
      const statePill = el("span", { class: "pill", "data-testid": "meter-state" });
      const age = el("span", { class: "meter-age", "data-testid": "meter-age" });
      const mainVals = el("div", { class: "meter-main" });
      const problems = el("div", { class: "meter-problems" });
      const chart = el("div", { class: "chart-box", "data-testid": "meter-chart" });
      const otherVals = el("div");
      const counters = el("div");
      const ident = el("div");
      const more = el("details", { class: "meter-more" }, el("summary", null, "All values and bus health"),
        otherVals, counters, ident);
      const node = el("article", { class: "card meter-card", "data-testid": `meter-${id}`, "data-meter-id": id,
        "aria-labelledby": titleId },
        el("div", { class: "meter-head" }, title, roleTag, statePill), age, mainVals, problems, chart, more);

      function update(m, at, now) {
        roleTag.textContent = m.role || "meter";
        const [stateText, tone] = stateOf(m);
        statePill.className = `pill pill-${tone}`;
        statePill.textContent = stateText;
        statePill.dataset.state = stateText;
        node.dataset.state = stateText;
        age.textContent = ageText(m, ui);
        const vals = m.values || {};
        mainVals.replaceChildren(...MAIN.map((k) => el("div", { class: "big-value", "data-field": k },
          el("span", { class: "big-label" }, label(k)),
          el("span", { class: "big-number", "data-testid": `meter-${k}` }, valueText(k, vals[k], ui)))));
        const errs = [];
        if (m.last_error) errs.push(el("p", { class: "notice notice-bad", "data-testid": "meter-error" }, m.last_error));
        for (const [name, why] of Object.entries(m.problems || {})) {
          errs.push(el("p", { class: "notice notice-warn" }, `${label(name)}: ${why}`));
        }
        if (!m.ok && m.last_reading_age_s !== null && m.last_reading_age_s !== undefined && !m.last_error) {
          errs.push(el("p", { class: "notice notice-warn" }, "No fresh reading: the values are hidden until the meter answers again."));
        }
        problems.replaceChildren(...errs);
        const pts = history.get(m.id) || [];
        chart.replaceChildren(ui.lineChart(pts, { yLabel: "kW", unit: "kW", title: `${m.id} power`,
          // At least 10 minutes wide, so the minute labels of the time axis stay distinct.
          width: Math.max(280, chart.clientWidth || 480), height: 160, endMs: at, spanMs: Math.max(MIN_SPAN_MS,
            pts.length ? at - pts[0].t : 0) }),
        el("p", { class: "hint" }, pts.length ? `Power seen since this page opened (${pts.length} readings).`
          : "No power reading since this page opened."));
        const others = Object.entries(vals).filter(([k]) => !MAIN.includes(k));
        otherVals.replaceChildren(others.length
          ? facts(others.map(([k, v]) => {
            const ageS = m.value_ages_s && m.value_ages_s[k];
            return [label(k), `${valueText(k, v, ui)}${typeof ageS === "number" && ageS > 0 ? ` (${ui.fmt.num(ageS, 0)} s old)` : ""}`];
          }), { class: "facts facts-grid" })
          : ui.empty("No other values."));
        const dev = devices.get(m.id) || {};
        const h = m.modbus || dev;
        counters.replaceChildren(el("h4", null, "Modbus health"), h && h.state ? facts([
          ["State", h.state],
          ...COUNTERS.filter(([k]) => typeof h[k] === "number").map(([k, l]) => [l, ui.fmt.num(h[k], 0)]),
          ["Last good read", h.last_good_at ? ui.fmt.ago(h.last_good_at, now) : "never"],
          ["Last error", h.last_error ? `${h.last_error}${h.last_error_at ? ` (${ui.fmt.ago(h.last_error_at, now)})` : ""}` : "none"],
        ], { class: "facts facts-grid", "data-testid": "meter-counters" }) : ui.empty("Not polled yet."));
        ident.replaceChildren(dev.model ? facts([
          ["Model", dev.model],
          ["Bus", dev.transport],
          ["Unit id", dev.unit],
          ["Poll intervals", dev.intervals ? Object.entries(dev.intervals).map(([k, v]) => `${k} ${v} s`).join(", ") : null],
          ["Requests per poll", dev.requests_per_poll ? `${dev.requests_per_poll.fast} fast, ${dev.requests_per_poll.all} all` : null],
          ...Object.entries(dev.identity || {}).map(([k, v]) => [label(k), String(v)]),
        ], { class: "facts facts-grid" }) : "");
      }
      return { node, update };
    }

    function update(h) {
      last = h;
      const at = Date.parse(h.time) || Date.now();
      const meters = h.meters || [];
      for (const m of meters) remember(m, at);
      const ids = new Set(meters.map((m) => m.id));
      for (const id of [...cards.keys()]) {
        if (!ids.has(id)) {
          cards.get(id).node.remove();
          cards.delete(id);
        }
      }
      meters.forEach((m, i) => {
        let c = cards.get(m.id);
        if (!c) {
          c = buildCard(m.id);
          cards.set(m.id, c);
        }
        if (grid.children[i] !== c.node) grid.insertBefore(c.node, grid.children[i] || null);
        c.update(m, at, h.time);
      });
      if (!meters.length) grid.replaceChildren(ui.empty("No meters are configured on this site."));
      else if (grid.querySelector(":scope > .empty")) grid.querySelector(":scope > .empty").remove();
      const bad = meters.filter((m) => !m.ok).length;
      summary.textContent = meters.length
        ? `${meters.length} meter${meters.length === 1 ? "" : "s"}; ${bad ? `${bad} without a fresh reading` : "all reading"}.`
          + ` Updated ${ui.fmt.clock(h.time)}.`
        : "No meters are configured on this site.";
      summary.dataset.bad = String(bad);
      renderChargers(h.modbus_chargers || []);
    }

    function renderChargers(list) {
      if (!list.length) {
        chargersBox.replaceChildren();
        return;
      }
      chargersBox.replaceChildren(el("h2", { class: "section-title" }, "Modbus chargers"), ui.table([
        { label: "Charger", key: "id", rowHeader: true },
        { label: "EVSE", key: "evse_uid" },
        { label: "State", render: (c) => ui.pill(c.ok ? (c.state || "ok") : (c.health || "no reading"), c.ok ? "ok" : "bad") },
        { label: "Setpoint A", num: true, render: (c) => ui.fmt.num(c.setpoint_a, 1) },
        { label: "Applied A", num: true, render: (c) => ui.fmt.num(c.current_applied_a, 1) },
        { label: "Failsafe A", num: true, render: (c) => ui.fmt.num(c.failsafe_current_a, 1) },
        { label: "Last error", render: (c) => c.last_error || (c.watchdog_ok === false ? "watchdog not kept alive" : "") },
      ], list, { rowAttrs: (c) => ({ "data-testid": `modbus-charger-${c.id}` }) }));
    }

    const unsubscribe = live.subscribe(update);
    loadSitePower();
    loadDevices();
    const stopPower = every(SITE_POWER_EVERY_MS, loadSitePower);
    const stopDevices = every(DEVICES_EVERY_MS, loadDevices);
    return () => {
      unsubscribe();
      stopPower();
      stopDevices();
    };
  },
};
