// Helpers shared by the meters, sessions, tokens and system pages (on top of ui.js and api.js).

import { api, ApiError, cookie } from "../api.js";
import { busy, el, empty, errorText, fmt, pager } from "../ui.js";

/** The query part of the current hash ("#/sessions?id=x" -> URLSearchParams{id: x}). */
export function hashQuery() {
  const hash = location.hash || "";
  const at = hash.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
}

/** "#/sessions" + {id: "x"} -> "#/sessions?id=x" (empty values dropped). */
export function hashWith(route, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${route}?${s}` : route;
}

/** An API path with a query string from an object (empty values dropped). */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}${path.includes("?") ? "&" : "?"}${s}` : path;
}

/** "2026-11-27" (a date input's value, local time) -> RFC 3339 of that local midnight, or "" if empty. */
export function localDayStart(day) {
  if (!day) return "";
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).toISOString();
}

/** The local midnight after `day` (an exclusive "to" bound that includes the whole day). */
export function localDayEnd(day) {
  if (!day) return "";
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + 1).toISOString();
}

/** A Date as a date input's value (local). */
export function dayValue(date) {
  const p = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
}

/** A Date as a month input's value (local), "2026-11". */
export function monthValue(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}`;
}

/** A money amount: 12.3 -> "12.30 EUR" ("—" if missing). */
export function money(value, currency) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return `${fmt.num(value, 2)}${currency ? ` ${currency}` : ""}`;
}

/** An OCPI Price {excl_vat, incl_vat} as text. */
export function price(p, currency) {
  if (!p || typeof p !== "object") return "—";
  const incl = typeof p.incl_vat === "number" ? ` (${money(p.incl_vat, currency)} incl. VAT)` : "";
  return `${money(p.excl_vat, currency)}${incl}`;
}

/** Bytes as "1.2 MB". */
export function bytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${fmt.num(v, v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A definition list from [label, value, attrs?] rows (missing values shown as "—"). */
export function facts(rows, attrs = {}) {
  return el("dl", { class: "facts", ...attrs }, rows.filter(Boolean).map(([label, value, dd]) => el("div", null,
    el("dt", null, label),
    el("dd", dd || null, value === null || value === undefined || value === "" ? "—" : value))));
}

/** A notice paragraph; tone: info | ok | warn | bad. */
export function notice(text, tone = "info", attrs = {}) {
  return el("p", { class: `notice notice-${tone}`, ...attrs }, text);
}

/**
 * In-page tabs (ARIA tablist, arrow keys move between tabs). tabs: [{id, label, render(panel) -> cleanup?}].
 * Returns {node, select(id), cleanup()}; onSelect(id) is told the chosen tab (to remember it).
 */
export function tabs(items, { selected, onSelect, label = "Sections" } = {}) {
  const list = el("div", { class: "tabs", role: "tablist", "aria-label": label });
  const panel = el("div", { class: "tab-panel", role: "tabpanel", tabindex: "-1" });
  let current = null;
  let cleanup = null;
  const buttons = items.map((t) => el("button", {
    type: "button", role: "tab", id: `tab-${t.id}`, class: "tab", "data-testid": `tab-${t.id}`,
    "aria-selected": "false", tabindex: "-1", onclick: () => select(t.id),
    onkeydown: (event) => {
      const i = items.indexOf(t);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: items.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = items[(to + items.length) % items.length];
      select(next.id);
      buttons[items.indexOf(next)].focus();
    },
  }, t.label));
  list.append(...buttons);

  function select(id) {
    const tab = items.find((t) => t.id === id) || items[0];
    if (current === tab.id) return;
    if (cleanup) cleanup();
    cleanup = null;
    current = tab.id;
    buttons.forEach((b, i) => {
      const on = items[i].id === tab.id;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    });
    panel.setAttribute("aria-labelledby", `tab-${tab.id}`);
    panel.dataset.tab = tab.id;
    panel.replaceChildren();
    const result = tab.render(panel);
    cleanup = typeof result === "function" ? result : null;
    if (onSelect) onSelect(tab.id);
  }
  select(selected || items[0].id);
  return {
    node: el("div", { class: "tabbed" }, list, panel),
    select,
    cleanup: () => {
      if (cleanup) cleanup();
      cleanup = null;
    },
  };
}

/**
 * A paginated list bound to a container: load(offset) fetches `path(offset)` and renders
 * `renderItems(items)` plus a pager. Shows loading and errors in place; returns {reload, load}.
 */
export function pagedList(container, { path, renderItems, limit = 50, key = null, emptyText = "Nothing found." }) {
  let offset = 0;
  let seq = 0;
  const status = el("p", { class: "list-status", role: "status", "aria-live": "polite" });
  const body = el("div", { class: "list-body" });
  const nav = el("div", { class: "list-pager" });
  container.replaceChildren(status, body, nav);

  async function load(to = 0, { quiet = false } = {}) {
    const mine = ++seq;
    offset = to;
    if (!quiet) {
      status.textContent = "Loading…";
      container.setAttribute("aria-busy", "true");
    }
    try {
      const answer = await api.get(path(offset, limit));
      if (mine !== seq) return;
      const items = Array.isArray(answer) ? answer : (answer.items || (key ? answer[key] : null) || []);
      const next = Array.isArray(answer) ? null : (answer.next_offset ?? null);
      status.textContent = "";
      status.className = "list-status";
      body.replaceChildren(items.length ? renderItems(items) : empty(emptyText));
      nav.replaceChildren(items.length || offset ? pager({ offset, limit, nextOffset: next, count: items.length,
        onPage: (o) => load(o) }) : "");
    } catch (err) {
      if (mine !== seq) return;
      status.className = "list-status notice notice-bad";
      status.textContent = `Could not load: ${errorText(err)}`;
      if (!quiet) body.replaceChildren();
    } finally {
      if (mine === seq) container.removeAttribute("aria-busy");
    }
  }
  return { load, reload: (opts) => load(offset, opts), offset: () => offset };
}

/**
 * Download a file with visible progress (large exports over a weak link). progress: a <progress>
 * or null; label: an element told "123 kB received". Throws ApiError like api.js does.
 */
export async function downloadWithProgress(path, fallbackName, { progress = null, label = null } = {}) {
  let res;
  try {
    res = await fetch(path.startsWith("/") ? path : `/api/v1/${path}`, { credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the box. Check the Wi-Fi or network connection.");
  }
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (res.status === 401 && api.onUnauthenticated) api.onUnauthenticated();
    throw new ApiError(res.status, (data && data.code) || "error",
      (data && typeof data.detail === "string" && data.detail) || `${res.status} ${res.statusText}`, data);
  }
  const total = Number(res.headers.get("content-length")) || 0;
  const name = fileNameOf(res.headers.get("content-disposition")) || fallbackName;
  const chunks = [];
  let received = 0;
  if (progress) {
    progress.hidden = false;
    if (total) progress.max = total;
    else progress.removeAttribute("value"); // indeterminate: the size is not known in advance
  }
  const reader = res.body ? res.body.getReader() : null;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      if (progress && total) progress.value = received;
      if (label) label.textContent = total ? `${bytes(received)} of ${bytes(total)}` : `${bytes(received)} received`;
    }
  } else {
    chunks.push(new Uint8Array(await res.arrayBuffer()));
  }
  const blob = new Blob(chunks, { type: res.headers.get("content-type") || "application/octet-stream" });
  const link = el("a", { href: URL.createObjectURL(blob), download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 30000);
  if (label) label.textContent = `${name} · ${bytes(blob.size)}`;
  return { name, size: blob.size };
}

function fileNameOf(disposition) {
  if (!disposition) return null;
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  return m ? decodeURIComponent(m[1]) : null;
}

/**
 * A download button with a progress bar and a result line. path() is called at click time (so it
 * sees the current filters). Returns the wrapping element.
 */
export function downloadButton(text, path, fallbackName, { testid = null } = {}) {
  const bar = el("progress", { class: "dl-progress", hidden: true, "aria-label": `${text} progress` });
  const label = el("span", { class: "dl-label", "aria-live": "polite" });
  const button = el("button", { type: "button", class: "btn", "data-testid": testid, onclick: () =>
    busy(button, () => downloadWithProgress(path(), fallbackName(), { progress: bar, label }), {
      success: (r) => `Downloaded ${r.name}`,
    }).finally(() => { bar.hidden = true; }) }, text);
  return el("div", { class: "dl" }, button, bar, label);
}

/** POST raw text (e.g. a backup bundle) with the CSRF header; JSON answer or ApiError. */
export async function postRaw(path, text, contentType = "application/json") {
  let res;
  try {
    res = await fetch(`/api/v1/${path}`, {
      method: "POST", credentials: "same-origin", cache: "no-store", body: text,
      headers: { "Content-Type": contentType, Accept: "application/json", "X-CSRF-Token": cookie("siteedge_csrf") },
    });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the box. Check the Wi-Fi or network connection.");
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    if (res.status === 401 && api.onUnauthenticated) api.onUnauthenticated();
    throw new ApiError(res.status, (data && data.code) || "error",
      (data && typeof data.detail === "string" && data.detail) || `${res.status} ${res.statusText}`, data);
  }
  return data;
}

/** Run fn every ms while the page is visible (a phone in a pocket polls nothing); returns stop(). */
export function every(ms, fn) {
  let timer = null;
  const tick = async () => {
    timer = null;
    if (document.visibilityState === "visible") {
      try { await fn(); } catch (err) { console.warn("siteedge: refresh failed", err); }
    }
    if (timer !== false) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => {
    if (timer) clearTimeout(timer);
    timer = false;
  };
}

/** A list of {key, reason} problems (config validation) as an alert list. */
export function problemList(errors, attrs = {}) {
  return el("ul", { class: "problems", role: "alert", ...attrs }, errors.map((e) => el("li", { "data-key": e.key || e.loc || "" },
    el("code", { class: "problem-key" }, e.key || e.loc || "?"), " ", el("span", null, e.reason || e.msg || ""))));
}

let openapi = null;

/**
 * Whether the box serves `method path` (e.g. "post", "/api/v1/sessions/{}/correct"), read once from
 * its OpenAPI document: pages offer an action only where this version of siteedge has it.
 */
export async function hasEndpoint(method, path) {
  if (!openapi) {
    openapi = api.get("/api/v1/openapi.json").then((doc) => {
      const found = new Set();
      for (const [p, ops] of Object.entries(doc.paths || {})) {
        for (const m of Object.keys(ops)) found.add(`${m.toLowerCase()} ${p.replace(/\{[^}]*\}/g, "{}")}`);
      }
      return found;
    }).catch(() => {
      openapi = null; // try again next time: the box may have been unreachable for a moment
      return new Set();
    });
  }
  return (await openapi).has(`${method.toLowerCase()} ${path}`);
}

/** <option>s of every EVSE in a health snapshot, grouped by charger; first an "any" option. */
export function evseOptions(health, anyLabel = "Any") {
  const groups = ((health && health.chargers) || []).filter((c) => (c.evses || []).length).map((c) =>
    el("optgroup", { label: c.id }, c.evses.map((e) => el("option", { value: e.evse_uid }, e.evse_uid))));
  return [el("option", { value: "" }, anyLabel), ...groups];
}

/** The charger id of an EVSE uid in a health snapshot, or null. */
export function chargerOf(health, evseUid) {
  for (const c of (health && health.chargers) || []) {
    if ((c.evses || []).some((e) => e.evse_uid === evseUid)) return c.id;
  }
  return null;
}
