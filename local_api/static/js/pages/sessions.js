// Sessions: filtered list with CSV export and detail (periods, cost, settlement, CDR correction),
// partner report, NEVI uptime, quarterly export and maintenance windows.

import {
  chargerOf, dayValue, downloadButton, evseOptions, facts, hasEndpoint, hashQuery, localDayEnd, localDayStart,
  money, monthValue, notice, pagedList, price, tabs, withQuery,
} from "./common.js";
import { el } from "../ui.js";

const STATUSES = ["ACTIVE", "COMPLETED", "INVALID", "PENDING"];
const STATUS_TONE = { ACTIVE: "info", COMPLETED: "ok", INVALID: "bad", PENDING: "warn" };

// Survives navigation to a session's detail and back (the module lives as long as the page).
const state = {
  tab: "list",
  filters: { status: "", charger: "", evse_uid: "", partner: "", from: "", to: "" },
  partners: null,
  uptime: null,
};

// An eMSP as country_code-party_id (OCPI: 2 letters, 3 characters); "*" as the CSV writes it works too.
const PARTNER_RE = /^[A-Za-z]{2}[-*][A-Za-z0-9]{3}$/;

function sessionQuery(f) {
  return { status: f.status, charger: f.charger, evse_uid: f.evse_uid, partner: f.partner,
    from: localDayStart(f.from), to: localDayEnd(f.to) };
}

function durationS(s) {
  const a = Date.parse(s.start_date_time);
  const b = s.end_date_time ? Date.parse(s.end_date_time) : NaN;
  return Number.isFinite(a) && Number.isFinite(b) ? (b - a) / 1000 : null;
}

function partnerOf(token) {
  return token && token.country_code ? `${token.country_code}*${token.party_id}` : "—";
}

function quarterOf(date) {
  return `${date.getFullYear()}-Q${Math.floor(date.getMonth() / 3) + 1}`;
}

/** The last n quarters, newest first, the running one included. */
function recentQuarters(n) {
  const out = [];
  const d = new Date();
  d.setDate(1);
  for (let i = 0; i < n; i += 1) {
    out.push(quarterOf(d));
    d.setMonth(d.getMonth() - 3);
  }
  return out;
}

export default {
  route: "#/sessions",
  title: "Sessions",
  role: "viewer",
  render(root, ctx) {
    const id = hashQuery().get("id");
    if (id) return renderDetail(root, ctx, id);
    return renderOverview(root, ctx);
  },
};

// --- overview with tabs ------------------------------------------------------------------------

function renderOverview(root, ctx) {
  const { el } = ctx.ui;
  const cleanups = [];
  const t = tabs([
    { id: "list", label: "Sessions", render: (p) => listTab(p, ctx) },
    { id: "partners", label: "Partner report", render: (p) => partnersTab(p, ctx) },
    { id: "uptime", label: "Uptime", render: (p) => uptimeTab(p, ctx) },
    { id: "quarterly", label: "Quarterly export", render: (p) => quarterlyTab(p, ctx) },
    { id: "maintenance", label: "Maintenance", render: (p) => maintenanceTab(p, ctx) },
  ], { selected: state.tab, onSelect: (tab) => { state.tab = tab; }, label: "Session views" });
  cleanups.push(t.cleanup);
  root.append(el("div", { class: "page-head" }, el("h1", null, "Sessions"),
    el("p", { class: "lead" }, "Charging sessions, their bills and the site's reports.")), t.node);
  return () => cleanups.forEach((fn) => fn());
}

/** Charger options: "any" and every charger of a health snapshot. */
function chargerOptions(health, anyLabel) {
  return [el("option", { value: "" }, anyLabel),
    ...((health && health.chargers) || []).map((c) => el("option", { value: c.id }, c.id))];
}

/** An EVSE (or, with options = chargerOptions, charger) <select> filled from the live snapshot. */
function evseSelect(ctx, label, value, anyLabel, { name = "evse_uid", options = evseOptions } = {}) {
  const f = ctx.ui.field(label, { type: "select", name, options: options(ctx.live.last, anyLabel) });
  const fill = (h) => {
    const keep = f.input.value || value;
    f.input.replaceChildren(...options(h, anyLabel));
    if (keep && ![...f.input.options].some((o) => o.value === keep)) {
      f.input.append(ctx.ui.el("option", { value: keep }, keep)); // an EVSE no longer configured
    }
    f.input.value = keep || "";
  };
  fill(ctx.live.last);
  let filled = Boolean(ctx.live.last);
  const off = ctx.live.subscribe((h) => {
    if (!filled) {
      filled = true;
      fill(h);
    }
  });
  return { ...f, off };
}

function listTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const f = state.filters;
  const status = ui.field("Status", { type: "select", name: "status", value: f.status,
    options: [["", "Any"], ...STATUSES.map((s) => [s, s.toLowerCase()])] });
  const charger = evseSelect(ctx, "Charger", f.charger, "Any", { name: "charger", options: chargerOptions });
  const evse = evseSelect(ctx, "EVSE", f.evse_uid, "Any");
  const partner = ui.field("Partner (eMSP)", { name: "partner", value: f.partner, placeholder: "NL-ABC",
    autocapitalize: "characters", spellcheck: "false", hint: "country code-party id, e.g. NL-ABC" });
  const from = ui.field("Started from", { type: "date", name: "from", value: f.from });
  const to = ui.field("Started until", { type: "date", name: "to", value: f.to });
  const read = () => ({ status: status.input.value, charger: charger.input.value, evse_uid: evse.input.value,
    partner: partner.input.value.trim().toUpperCase(), from: from.input.value, to: to.input.value });
  // The same check before a list or an export: a typo in the partner must not silently show everything.
  const valid = () => {
    const p = partner.input.value.trim();
    if (p && !PARTNER_RE.test(p)) {
      ui.toast("The partner is a country code and party id, e.g. NL-ABC.", "warn");
      partner.input.focus();
      return false;
    }
    if (from.input.value && to.input.value && to.input.value < from.input.value) {
      ui.toast("The end date is before the start date.", "warn");
      return false;
    }
    return true;
  };
  const listBox = el("div", { class: "session-list", "data-testid": "session-list" });
  const list = pagedList(listBox, {
    path: (offset, limit) => withQuery("sessions", { ...sessionQuery(state.filters), limit, offset }),
    renderItems: (items) => sessionTable(items, ctx),
    emptyText: "No sessions match these filters.",
  });
  const form = el("form", { class: "filter-form", "aria-label": "Session filters", onsubmit: (event) => {
    event.preventDefault();
    if (!valid()) return;
    state.filters = read();
    list.load(0);
  } },
  status.wrap, charger.wrap, evse.wrap, partner.wrap, from.wrap, to.wrap,
  el("div", { class: "filter-actions" },
    el("button", { type: "submit", class: "btn btn-primary", "data-testid": "apply-filters" }, "Show"),
    el("button", { type: "button", class: "btn", onclick: () => {
      status.input.value = "";
      charger.input.value = "";
      evse.input.value = "";
      partner.input.value = "";
      from.input.value = "";
      to.input.value = "";
      state.filters = read();
      list.load(0);
    } }, "Clear")));
  const exportBox = downloadButton("Export CSV",
    () => withQuery("sessions", { ...sessionQuery(read()), format: "csv" }), () => "sessions.csv",
    { testid: "export-csv" });
  panel.append(ui.card("Filter", { class: "card" }, form,
    el("div", { class: "export-row" }, exportBox,
      el("p", { class: "hint" }, "The CSV holds every session matching the filters above, not only this page."))),
  listBox);
  list.load(0);
  return () => { evse.off(); charger.off(); };
}

function sessionTable(items, ctx) {
  const { el, fmt, table } = ctx.ui;
  const h = ctx.live.last;
  return table([
    { label: "Started", rowHeader: true, render: (s) => el("a", { href: `#/sessions?id=${encodeURIComponent(s.id)}`,
      "data-testid": "session-link" }, fmt.time(s.start_date_time)) },
    { label: "EVSE", render: (s) => {
      const charger = chargerOf(h, s.evse_uid);
      return el("span", null, s.evse_uid || "—", charger ? el("span", { class: "sub" }, ` ${charger}`) : null);
    } },
    { label: "Status", render: (s) => ctx.ui.pill(s.status.toLowerCase(), STATUS_TONE[s.status] || "muted",
      { "data-status": s.status }) },
    { label: "Energy", num: true, render: (s) => fmt.kwh(s.kwh) },
    { label: "Duration", num: true, render: (s) => (s.end_date_time ? fmt.duration(durationS(s)) : "running") },
    { label: "Cost", num: true, render: (s) => money(s.total_cost && s.total_cost.excl_vat, s.currency) },
    { label: "Card / partner", render: (s) => el("span", null, (s.cdr_token && s.cdr_token.uid) || "—",
      el("span", { class: "sub" }, ` ${partnerOf(s.cdr_token)}`)) },
  ], items, { rowAttrs: (s) => ({ "data-testid": `session-row-${s.id}`, "data-session-id": s.id }) });
}

// --- one session -------------------------------------------------------------------------------

async function renderDetail(root, ctx, id) {
  const ui = ctx.ui;
  const { el, fmt } = ui;
  const head = el("div", { class: "page-head" },
    el("a", { href: "#/sessions", class: "back", "data-testid": "back" }, "← All sessions"),
    el("h1", null, "Session"), el("p", { class: "lead mono" }, id));
  const body = el("div", { class: "session-detail", "data-testid": "session-detail" }, el("p", { class: "loading" }, "Loading…"));
  const refresh = el("button", { type: "button", class: "btn btn-small", onclick: () => ui.busy(refresh, load(),
    { success: () => null }) }, "Refresh");
  head.append(el("div", { class: "form-actions" }, refresh));
  root.append(head, body);

  async function load() {
    let s;
    try {
      s = await ctx.api.get(`sessions/${encodeURIComponent(id)}`);
    } catch (err) {
      body.replaceChildren(notice(err.status === 404 ? "There is no session with this id." : `Could not load: ${ui.errorText(err)}`,
        "bad", { role: "alert" }));
      return;
    }
    const [hasSettlement, hasCorrect] = await Promise.all([
      hasEndpoint("get", "/api/v1/sessions/{}/settlement"), hasEndpoint("post", "/api/v1/sessions/{}/correct"),
    ]);
    let settlement = null;
    let settlementError = null;
    if (hasSettlement) {
      try {
        settlement = await ctx.api.get(`sessions/${encodeURIComponent(id)}/settlement`);
      } catch (err) {
        settlementError = ui.errorText(err);
      }
    }
    const token = s.cdr_token || {};
    const cost = s.total_cost || null;
    const parts = [
      ui.card("Summary", { class: "card" }, facts([
        ["Status", ui.pill(s.status.toLowerCase(), STATUS_TONE[s.status] || "muted", { "data-status": s.status,
          "data-testid": "session-status" })],
        ["Started", fmt.time(s.start_date_time)],
        ["Ended", s.end_date_time ? fmt.time(s.end_date_time) : "still running"],
        ["Duration", s.end_date_time ? fmt.duration(durationS(s)) : null],
        ["Energy", fmt.kwh(s.kwh), { "data-testid": "session-kwh" }],
        ["Cost", cost ? price(cost, s.currency) : "not priced"],
        ["EVSE", `${s.evse_uid || "—"}${chargerOf(ctx.live.last, s.evse_uid) ? ` (charger ${chargerOf(ctx.live.last, s.evse_uid)})` : ""}`],
        ["Connector", s.connector_id],
        ["Location", s.location_id],
        ["Card", token.uid],
        ["Card type", token.type],
        ["Contract", token.contract_id],
        ["Partner (eMSP)", partnerOf(token)],
        ["Authorized by", s.auth_method],
        ["Authorization ref.", s.authorization_reference],
        ["Meter", s.meter_id],
        ["Last updated", fmt.time(s.last_updated)],
      ], { class: "facts facts-grid" })),
      ui.card("Charging periods", { class: "card" }, periodsTable(s, ctx)),
    ];
    if (settlement) parts.push(settlementCard(settlement, s, ctx, hasCorrect, load));
    else if (settlementError) parts.push(notice(`Settlement details are not available: ${settlementError}`, "warn"));
    parts.push(el("details", { class: "raw" }, el("summary", null, "OCPI Session (raw)"),
      el("pre", { class: "json" }, JSON.stringify(s, null, 2))));
    body.replaceChildren(...parts);
  }
  await load();
  return undefined;
}

function periodsTable(s, ctx) {
  const periods = s.charging_periods || [];
  const labels = { ENERGY: "kWh", TIME: "h", PARKING_TIME: "h parking", FLAT: "flat", MAX_CURRENT: "A max",
    MIN_CURRENT: "A min", MAX_POWER: "kW max", MIN_POWER: "kW min", RESERVATION_TIME: "h reserved", CURRENT: "A",
    POWER: "kW", STATE_OF_CHARGE: "% SoC" };
  return ctx.ui.table([
    { label: "From", rowHeader: true, render: (p) => ctx.ui.fmt.time(p.start_date_time) },
    { label: "Measured", render: (p) => (p.dimensions || []).map((d) => `${ctx.ui.fmt.num(d.volume, 3)} ${labels[d.type] || d.type}`)
      .join(", ") },
    { label: "Tariff", key: "tariff_id" },
  ], periods, { emptyText: "No charging periods yet." });
}

function settlementCard(st, s, ctx, hasCorrect, reload) {
  const ui = ctx.ui;
  const { el, fmt } = ui;
  const flags = st.flags || [];
  const children = [
    facts([
      ["Billed from", st.energy_source],
      ["Billed energy", fmt.kwh(st.billed_kwh)],
      ["Charger's energy", fmt.kwh(st.charger_kwh)],
      ["Meter's energy", st.meter_kwh === null || st.meter_kwh === undefined ? "no meter record" : fmt.kwh(st.meter_kwh)],
      ["Meter", st.meter_id],
      ["Duration", `${fmt.duration(st.duration_s)}${st.duration_source ? ` (${st.duration_source})` : ""}`],
    ]),
    el("h3", null, "Alarms and flags"),
    flags.length
      ? el("ul", { class: "flags", "data-testid": "session-flags" }, flags.map((f) => el("li", { class: "flag" },
        ui.pill(f.kind.replace(/_/g, " "), "warn"), " ", f.detail || "",
        f.at ? el("span", { class: "sub" }, ` ${fmt.time(f.at)}${f.until ? ` – ${fmt.time(f.until)}` : ""}`) : null)))
      : ui.empty("No alarms: energy and clock checks passed."),
    el("h3", null, "CDRs"),
    ui.table([
      { label: "CDR", rowHeader: true, render: (c) => el("span", { class: "mono" }, c.id) },
      { label: "Kind", render: (c) => (c.credit ? ui.pill(`credit of ${c.credit_reference_id}`, "warn") : "charge") },
      { label: "Energy", num: true, render: (c) => fmt.kwh(c.total_energy) },
      { label: "Cost", num: true, render: (c) => price(c.total_cost, s.currency) },
      { label: "Remark", key: "remark" },
    ], st.cdrs || [], { emptyText: "No CDR yet (a CDR is made when the session ends).",
      rowAttrs: (c) => ({ "data-testid": `cdr-${c.id}` }) }),
  ];
  const hasCdr = (st.cdrs || []).some((c) => !c.credit);
  if (hasCorrect && ctx.can("technician") && hasCdr) {
    children.push(el("div", { class: "form-actions" }, el("button", { type: "button", class: "btn", "data-testid": "correct-cdr",
      onclick: (event) => correctCdr(event.currentTarget, s, st, ctx, reload) }, "Correct CDR…")));
  }
  return ui.card("Energy and CDRs", { class: "card", "data-testid": "settlement" }, ...children);
}

async function correctCdr(button, s, st, ctx, reload) {
  const ui = ctx.ui;
  const { el } = ui;
  const reason = ui.field("Reason (kept with the CDR)", { name: "reason", required: true, maxlength: 200 });
  const what = ui.field("Correct", { type: "select", name: "what", options: [
    ["energy_wh", "the energy (kWh)"], ["meter", "bill from the meter"], ["charger", "bill from the charger"],
    ["tariff", "the tariff only"]] });
  const kwh = ui.field("Correct energy (kWh)", { type: "number", name: "kwh", step: "0.001", min: "0",
    value: st.billed_kwh ?? s.kwh ?? "" });
  const tariff = ui.field("Tariff id (optional)", { name: "tariff_id", maxlength: 36 });
  const toggle = () => { kwh.wrap.hidden = what.input.value !== "energy_wh"; };
  what.input.addEventListener("change", toggle);
  const content = el("div", { class: "form-stack" }, reason.wrap, what.wrap, kwh.wrap, tariff.wrap);
  const ok = await ui.confirmAction("Correct this session's CDR",
    "The current CDR is credited (a credit CDR with the negated cost) and a new CDR is issued. Neither can be undone.",
    { confirm: "Issue credit and new CDR", danger: true, content, validate: () => {
      if (!reason.input.value.trim()) return "Give a reason.";
      if (what.input.value === "energy_wh" && !(Number(kwh.input.value) >= 0 && kwh.input.value !== "")) return "Enter the energy in kWh.";
      if (what.input.value === "tariff" && !tariff.input.value.trim()) return "Enter the tariff id.";
      return null;
    } });
  if (!ok) return;
  const body = { reason: reason.input.value.trim() };
  if (what.input.value === "energy_wh") body.energy_wh = Math.round(Number(kwh.input.value) * 1000 * 1000) / 1000;
  if (what.input.value === "meter" || what.input.value === "charger") body.energy_source = what.input.value;
  if (tariff.input.value.trim()) body.tariff_id = tariff.input.value.trim();
  const done = await ui.busy(button, ctx.api.post(`sessions/${encodeURIComponent(s.id)}/correct`, body), {
    success: () => "CDR corrected: credit and new CDR issued.",
  });
  if (done !== undefined) reload();
}

// --- partner report ----------------------------------------------------------------------------

function partnersTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const now = new Date();
  const saved = state.partners || { from: dayValue(new Date(now.getFullYear(), now.getMonth(), 1)), to: dayValue(now) };
  const from = ui.field("From", { type: "date", name: "from", value: saved.from, required: true });
  const to = ui.field("Until (inclusive)", { type: "date", name: "to", value: saved.to, required: true });
  const out = el("div", { "data-testid": "partner-report", "aria-live": "polite" });
  const query = () => ({ from: localDayStart(from.input.value), to: localDayEnd(to.input.value) });
  const show = el("button", { type: "submit", class: "btn btn-primary" }, "Show report");
  const quick = (label, a, b) => el("button", { type: "button", class: "btn btn-small", onclick: () => {
    from.input.value = dayValue(a);
    to.input.value = dayValue(b);
    load();
  } }, label);
  const y = now.getFullYear();
  const m = now.getMonth();

  async function load() {
    if (!from.input.value || !to.input.value || to.input.value < from.input.value) {
      ui.toast("Choose a start date and an end date on or after it.", "warn");
      return;
    }
    state.partners = { from: from.input.value, to: to.input.value };
    out.replaceChildren(el("p", { class: "loading" }, "Loading…"));
    const r = await ui.busy(show, ctx.api.get(withQuery("reports/partners", query())), { success: () => null });
    if (!r) {
      out.replaceChildren(notice("The report could not be loaded.", "bad"));
      return;
    }
    const rows = r.partners || [];
    out.replaceChildren(
      ui.table([
        { label: "Partner", rowHeader: true, render: (p) => `${p.country_code}*${p.party_id}` },
        { label: "Sessions", num: true, key: "sessions" },
        { label: "Completed", num: true, key: "completed" },
        { label: "Energy", num: true, render: (p) => ui.fmt.kwh(p.kwh) },
        { label: "Revenue excl. VAT", num: true, render: (p) => money(p.revenue_excl_vat, (p.currencies || [])[0]) },
        { label: "Revenue incl. VAT", num: true, render: (p) => money(p.revenue_incl_vat, (p.currencies || [])[0]) },
        { label: "Avg. energy", num: true, render: (p) => ui.fmt.kwh(p.average_kwh) },
        { label: "Avg. duration", num: true, render: (p) => ui.fmt.duration(p.average_duration_s) },
        { label: "Avg. revenue", num: true, render: (p) => money(p.average_revenue_excl_vat, (p.currencies || [])[0]) },
        { label: "Failed sessions", num: true, render: (p) => {
          const codes = Object.entries(p.failed_session_codes || {}).map(([c, n]) => `${c} ${n}`).join(", ");
          return el("span", { title: codes || null }, String(p.failed_sessions ?? 0), codes ? el("span", { class: "sub" }, ` (${codes})`) : null);
        } },
        { label: "Refused cards", num: true, render: (p) => String(p.failed_authorizations ?? 0) },
      ], rows, { emptyText: "No sessions or refused cards in this period.",
        rowAttrs: (p) => ({ "data-testid": `partner-${p.country_code}-${p.party_id}` }) }),
      r.unknown_token_failed_authorizations
        ? el("p", { class: "hint" }, `Refused unknown cards (no partner): ${r.unknown_token_failed_authorizations}.`) : "",
    );
  }
  panel.append(ui.card("Per partner (eMSP)", { class: "card" },
    el("form", { class: "filter-form", onsubmit: (e) => { e.preventDefault(); load(); } }, from.wrap, to.wrap,
      el("div", { class: "filter-actions" }, show)),
    el("div", { class: "quick" }, quick("This month", new Date(y, m, 1), now),
      quick("Last month", new Date(y, m - 1, 1), new Date(y, m, 0)), quick("This year", new Date(y, 0, 1), now)),
    el("div", { class: "export-row" }, downloadButton("Download CSV",
      () => withQuery("reports/partners", { ...query(), format: "csv" }), () => "partners.csv", { testid: "partners-csv" }))),
  out);
  load();
  return undefined;
}

// --- uptime ------------------------------------------------------------------------------------

function uptimeTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const saved = state.uptime || { mode: "month", month: monthValue(new Date()) };
  const mode = ui.field("Period", { type: "select", name: "mode", value: saved.mode,
    options: [["month", "One month"], ["trailing", "Trailing 12 months"]] });
  const month = ui.field("Month (the last one, for trailing)", { type: "month", name: "month", value: saved.month,
    required: true, pattern: "\\d{4}-\\d{2}", placeholder: "YYYY-MM" });
  const out = el("div", { "data-testid": "uptime-report", "aria-live": "polite" });
  const show = el("button", { type: "submit", class: "btn btn-primary" }, "Show uptime");
  const query = () => (mode.input.value === "trailing" ? { trailing: 12, month: month.input.value } : { month: month.input.value });

  async function load() {
    if (!/^\d{4}-\d{2}$/.test(month.input.value)) {
      ui.toast("Choose a month (YYYY-MM).", "warn");
      return;
    }
    state.uptime = { mode: mode.input.value, month: month.input.value };
    out.replaceChildren(el("p", { class: "loading" }, "Loading…"));
    const r = await ui.busy(show, ctx.api.get(withQuery("reports/uptime", query())), { success: () => null });
    if (!r) {
      out.replaceChildren(notice("The uptime report could not be loaded.", "bad"));
      return;
    }
    const rows = [];
    for (const p of r.ports || []) {
      for (const m of p.months || []) rows.push({ ...m, evse_uid: p.evse_uid, kind: "month" });
      if (p.trailing) rows.push({ ...p.trailing, evse_uid: p.evse_uid, month: `${(r.months || []).length} months`, kind: "total" });
    }
    out.replaceChildren(
      el("p", { class: "hint" }, `${r.months && r.months.length > 1 ? `${r.months[0]} to ${r.months[r.months.length - 1]}` : (r.months || [])[0] || ""}`
        + `${r.complete === false ? " (still running: counted up to now)" : ""}. ${r.formula || ""}`),
      ui.table([
        { label: "Port (EVSE)", rowHeader: true, render: (x) => el("span", { class: "mono" }, x.evse_uid) },
        { label: "Month", render: (x) => (x.kind === "total" ? el("strong", null, `Trailing ${x.month}`) : x.month) },
        { label: "Uptime", num: true, render: (x) => uptimeCell(x, ui) },
        { label: "Period min", num: true, render: (x) => ui.fmt.num(x.period_minutes, 0) },
        { label: "Outage min", num: true, render: (x) => ui.fmt.num(x.outage_minutes, 1) },
        { label: "Excluded min", num: true, render: (x) => ui.fmt.num(x.excluded_minutes, 1) },
        { label: "Outages", render: (x) => outagesCell(x, ui) },
      ], rows, { emptyText: "No port has a status history in this period.",
        rowAttrs: (x) => ({ "data-testid": `uptime-${x.evse_uid}-${x.kind}`, class: x.kind === "total" ? "row-total" : null }) }),
    );
  }
  panel.append(ui.card("NEVI uptime per charging port", { class: "card" },
    el("form", { class: "filter-form", onsubmit: (e) => { e.preventDefault(); load(); } }, mode.wrap, month.wrap,
      el("div", { class: "filter-actions" }, show)),
    el("div", { class: "export-row" }, downloadButton("Download CSV",
      () => withQuery("reports/uptime", { ...query(), format: "csv" }), () => "uptime.csv", { testid: "uptime-csv" }))),
  out);
  load();
  return undefined;
}

function uptimeCell(x, ui) {
  const v = x.uptime_percent;
  if (typeof v !== "number") return "—";
  const tone = v >= 97 ? "ok" : v >= 90 ? "warn" : "bad"; // NEVI asks for > 97 %
  return ui.pill(`${ui.fmt.num(v, 2)} %`, tone);
}

function outagesCell(x, ui) {
  const list = x.outages || [];
  if (!list.length) return x.kind === "total" ? "" : "none";
  return ui.el("details", null, ui.el("summary", null, `${list.length} outage${list.length === 1 ? "" : "s"}`),
    ui.el("ul", { class: "outages" }, list.map((o) => ui.el("li", null,
      `${ui.fmt.time(o.start)} – ${ui.fmt.time(o.end)}: ${ui.fmt.num(o.minutes, 1)} min`
      + (o.excluded_minutes ? ` (${ui.fmt.num(o.excluded_minutes, 1)} excluded)` : "")))));
}

// --- quarterly export --------------------------------------------------------------------------

function quarterlyTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const quarters = recentQuarters(8);
  const q = ui.field("Quarter", { type: "select", name: "quarter", value: quarters[1],
    options: quarters.map((x, i) => [x, i === 0 ? `${x} (running)` : x]) });
  panel.append(ui.card("NEVI quarterly data", { class: "card" },
    el("p", null, "Every session started in the quarter as one CSV row (station, port, times, energy, peak power, "
      + "success or error, payment method), as 23 CFR 680.112 asks for."),
    el("div", { class: "filter-form" }, q.wrap),
    el("div", { class: "export-row" }, downloadButton("Download quarterly CSV",
      () => withQuery("reports/quarterly", { quarter: q.input.value, format: "csv" }),
      () => `sessions-${q.input.value}.csv`, { testid: "quarterly-csv" }))));
  return undefined;
}

// --- maintenance windows -----------------------------------------------------------------------

function maintenanceTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const tech = ctx.can("technician");
  const listBox = el("div", { "data-testid": "maintenance-list" });
  const list = pagedList(listBox, {
    path: (offset, limit) => withQuery("maintenance", { limit, offset }),
    emptyText: "No maintenance windows or utility outages declared.",
    renderItems: (items) => ui.table([
      { label: "Port", rowHeader: true, render: (w) => w.evse_uid || "whole site" },
      { label: "Kind", render: (w) => (w.kind === "utility_outage" ? "utility outage" : "maintenance") },
      { label: "From", render: (w) => ui.fmt.time(w.start) },
      { label: "Until", render: (w) => ui.fmt.time(w.end) },
      { label: "Note", key: "note" },
      ...(tech ? [{ label: "Actions", render: (w) => el("button", { type: "button", class: "btn btn-small btn-danger",
        "data-testid": `delete-window-${w.id}`, onclick: (e) => remove(e.currentTarget, w) }, "Delete") }] : []),
    ], items, { rowAttrs: (w) => ({ "data-testid": `window-${w.id}` }) }),
  });

  async function remove(button, w) {
    const ok = await ui.confirmAction("Delete this window?",
      `${w.evse_uid || "Whole site"}, ${ui.fmt.time(w.start)} – ${ui.fmt.time(w.end)}. Uptime figures are recomputed without it.`,
      { confirm: "Delete", danger: true });
    if (!ok) return;
    const done = await ui.busy(button, ctx.api.del(`maintenance/${encodeURIComponent(w.id)}`), { success: () => "Window deleted." });
    if (done !== undefined) list.reload();
  }

  const cleanups = [];
  if (tech) {
    const evse = evseSelect(ctx, "Port", "", "Whole site");
    cleanups.push(evse.off);
    const kind = ui.field("Kind", { type: "select", name: "kind", options: [["maintenance", "Planned maintenance"],
      ["utility_outage", "Utility outage"]] });
    const start = ui.field("From", { type: "datetime-local", name: "start", required: true });
    const end = ui.field("Until", { type: "datetime-local", name: "end", required: true });
    const note = ui.field("Note", { name: "note", maxlength: 200, placeholder: "e.g. contactor replaced" });
    const add = el("button", { type: "submit", class: "btn btn-primary", "data-testid": "add-window" }, "Add window");
    const errors = el("div");
    const form = el("form", { class: "filter-form", "aria-label": "New maintenance window", onsubmit: async (e) => {
      e.preventDefault();
      errors.replaceChildren();
      const a = Date.parse(start.input.value);
      const b = Date.parse(end.input.value);
      if (!Number.isFinite(a) || !Number.isFinite(b) || b <= a) {
        ui.toast("Give a start and an end after it.", "warn");
        return;
      }
      const body = { evse_uid: evse.input.value || null, start: new Date(a).toISOString(), end: new Date(b).toISOString(),
        kind: kind.input.value, note: note.input.value.trim() };
      const done = await ui.busy(add, ctx.api.post("maintenance", body), { success: () => "Window added." });
      if (done !== undefined) {
        note.input.value = "";
        list.reload();
      }
    } }, evse.wrap, kind.wrap, start.wrap, end.wrap, note.wrap, el("div", { class: "filter-actions" }, add), errors);
    panel.append(ui.card("Declare a window", { class: "card" },
      el("p", { class: "hint" }, "Outage minutes inside a declared window are excluded from uptime (at most 31 days each)."),
      form));
  }
  panel.append(ui.card("Declared windows", { class: "card" }, listBox));
  list.load(0);
  return () => cleanups.forEach((fn) => fn());
}
