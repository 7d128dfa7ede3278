// Small DOM toolkit shared by every page: builder, toasts, dialogs, formats, tables, charts, pager.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Build an element. Children are nodes or text (textContent only: charger ids, vendors and errors
 * come from field devices and are never parsed as HTML). attrs: class, dataset via data-*, on* as
 * event listeners (onclick: fn), booleans as present/absent attributes.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** Replace a node's children; null/false/"" children are skipped (replaceChildren would print "null"). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.setAttribute("class", value);
    else if (key === "value" && "value" in node) node.value = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Show a short message; kind: ok | bad | warn | info. Outcome toasts carry role="status". */
export function toast(message, kind = "info", { timeoutMs } = {}) {
  const box = document.getElementById("toasts");
  const close = el("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  // role="status" on every outcome (the UI contract); failures are announced at once all the same.
  const node = el("div", { class: `toast toast-${kind}`, role: "status", "aria-live": kind === "bad" ? "assertive" : "polite",
    "data-testid": "toast", "data-kind": kind }, el("span", { class: "toast-text" }, message), close);
  // Errors stay until dismissed or replaced: a technician may be looking at the charger, not the phone.
  const remove = () => node.remove();
  close.addEventListener("click", remove);
  box.append(node);
  while (box.children.length > 4) box.firstElementChild.remove();
  const ms = timeoutMs ?? (kind === "bad" ? 12000 : 5000);
  setTimeout(remove, ms);
  return node;
}

/**
 * Ask before acting. Resolves true on confirm, false on cancel/Escape. `content` (a node, e.g. a
 * form field) is shown under the text; read its values after a true answer.
 */
export function confirmAction(title, text, { confirm = "Confirm", danger = false, content = null,
  validate = null } = {}) {
  const dialog = document.getElementById("confirm");
  const form = document.getElementById("confirm-form");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  document.getElementById("confirm-title").textContent = title;
  const body = document.getElementById("confirm-body");
  body.replaceChildren(...[text ? el("p", null, text) : null, content].filter(Boolean));
  ok.textContent = confirm;
  ok.className = danger ? "btn btn-danger" : "btn btn-primary";
  const opener = document.activeElement;
  return new Promise((resolve) => {
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      if (opener && opener.isConnected) opener.focus();
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const problem = validate ? validate() : null;
      if (problem) {
        toast(problem, "warn");
        return;
      }
      finish(true);
    };
    const onCancel = () => finish(false);
    const onClose = () => finish(false);
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    const first = body.querySelector("input, select, textarea");
    (first || ok).focus();
  });
}

/**
 * Run an action from a button: disable it, show a spinner, then the outcome as a toast.
 * `success(result)` returns the message (or null for none). Resolves to the result, or undefined
 * after a failure (already reported).
 */
export async function busy(button, promise, { success = () => "Done", failure = null } = {}) {
  const wasDisabled = button ? button.disabled : false;
  if (button) {
    button.disabled = true;
    button.classList.add("is-busy");
    button.setAttribute("aria-busy", "true");
  }
  try {
    const result = await (typeof promise === "function" ? promise() : promise);
    const message = success(result);
    if (message) toast(message, "ok");
    return result;
  } catch (err) {
    const message = failure ? failure(err) : errorText(err);
    toast(message, err && err.code === "network" ? "warn" : "bad");
    return undefined;
  } finally {
    if (button) {
      button.disabled = wasDisabled;
      button.classList.remove("is-busy");
      button.removeAttribute("aria-busy");
    }
  }
}

/** A sentence for any error (ApiError has detail). */
/** Copy an input's text and say so; without the clipboard API (plain HTTP) select it to copy by hand. */
export async function copyField(input, what = "Text") {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // Not a secure context (plain HTTP): no clipboard API, so select the text and try the old way.
    input.select();
    if (!document.execCommand || !document.execCommand("copy")) {
      toast(`Copy it by hand: the ${what.toLowerCase()} is selected.`, "warn");
      return;
    }
  }
  toast(`${what} copied.`, "ok");
}

export function errorText(err) {
  if (!err) return "Something went wrong.";
  if (err.status === 403) return `Not allowed: ${err.detail || "your role cannot do this"}`;
  return err.detail || err.message || String(err);
}

const nf = (min, max) => new Intl.NumberFormat(undefined, { minimumFractionDigits: min, maximumFractionDigits: max });
const NF1 = nf(1, 1);
const NF2 = nf(2, 2);
const NF0 = nf(0, 0);
const finite = (v) => typeof v === "number" && Number.isFinite(v);

/** Formats: every one shows "—" for a missing value (null, NaN, Infinity). */
export const fmt = {
  num: (v, digits = 1) => (finite(v) ? nf(digits, digits).format(v) : "—"),
  kw: (v) => (finite(v) ? `${(Math.abs(v) < 10 ? NF2 : NF1).format(v)} kW` : "—"),
  kwh: (v) => (finite(v) ? `${(Math.abs(v) < 100 ? NF2 : NF1).format(v)} kWh` : "—"),
  w: (v) => (finite(v) ? `${NF0.format(v)} W` : "—"),
  time(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleString();
  },
  clock(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? "—" : t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  },
  /** "14:03:07" (local time with seconds), for logs. */
  seconds(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? "—" : t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  },
  /** "3 s ago"; relative to `now` (the box's snapshot time, so a phone's wrong clock does not matter). */
  ago(iso, now) {
    if (!iso) return "never";
    const then = Date.parse(iso);
    const ref = now ? Date.parse(now) : Date.now();
    if (Number.isNaN(then) || Number.isNaN(ref)) return fmt.time(iso);
    const s = Math.max(0, Math.round((ref - then) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
    return fmt.time(iso);
  },
  /** 3725 -> "1 h 02 min". */
  duration(seconds) {
    if (!finite(seconds) || seconds < 0) return "—";
    const s = Math.floor(seconds);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  },
};

/** OCPI EVSE status: label and tone (the text always says it; colour only helps scanning). */
export const STATUS = {
  AVAILABLE: ["Available", "available"],
  CHARGING: ["Charging", "charging"],
  RESERVED: ["Reserved", "reserved"],
  BLOCKED: ["Blocked", "blocked"],
  INOPERATIVE: ["Inoperative", "inoperative"],
  OUTOFORDER: ["Out of order", "outoforder"],
  PLANNED: ["Planned", "unknown"],
  REMOVED: ["Removed", "unknown"],
  UNKNOWN: ["Unknown", "unknown"],
};

export function statusBadge(status, attrs = {}) {
  const [label, tone] = STATUS[status] || STATUS.UNKNOWN;
  return el("span", { class: `badge st-${tone}`, "data-status": status || "UNKNOWN", ...attrs }, label);
}

/** A small coloured pill: tone ok | bad | warn | muted | info. */
export function pill(text, tone = "muted", attrs = {}) {
  return el("span", { class: `pill pill-${tone}`, ...attrs }, text);
}

/** A titled card section. */
export function card(title, attrs, ...children) {
  const head = title ? el("div", { class: "card-head" }, typeof title === "string" ? el("h2", null, title) : title)
    : null;
  return el("section", { class: "card", ...attrs }, head, ...children);
}

/** An empty-state line. */
export function empty(text) {
  return el("p", { class: "empty" }, text);
}

/** A labelled form field; returns {wrap, input}. type "select" takes options [[value, label]]. */
export function field(label, { type = "text", name, value = "", options = [], hint = "", ...attrs } = {}) {
  const id = `f-${name || label}`.replace(/[^A-Za-z0-9_-]/g, "-") + `-${++fieldCounter}`;
  let input;
  if (type === "select") {
    input = el("select", { id, name, ...attrs },
      options.map((o) => (o instanceof Node ? o : el("option", { value: o[0] }, o[1] ?? o[0]))));
    if (value !== "") input.value = value;
  } else if (type === "textarea") {
    input = el("textarea", { id, name, ...attrs });
    input.value = value;
  } else {
    input = el("input", { id, name, type, ...attrs });
    if (value !== "") input.value = value;
  }
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  const wrap = el("div", { class: "field" }, el("label", { for: id }, label), input,
    hint ? el("p", { class: "hint", id: hintId }, hint) : null);
  return { wrap, input };
}
let fieldCounter = 0;

/**
 * A table: columns [{label, key?, num?, render?(row) -> node|text, class?}]. On phones each row
 * becomes a card; cells carry their column name (data-label) for that layout.
 */
export function table(columns, rows, { caption = null, rowAttrs = null, emptyText = "Nothing to show." } = {}) {
  if (!rows.length) return empty(emptyText);
  const head = el("tr", null, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null }, c.label)));
  const body = rows.map((row) => el("tr", rowAttrs ? rowAttrs(row) : null, columns.map((c, i) => {
    const value = c.render ? c.render(row) : row[c.key];
    const cls = [c.num ? "num" : "", c.class || ""].join(" ").trim() || null;
    const tag = i === 0 && c.rowHeader ? "th" : "td";
    return el(tag, { class: cls, "data-label": c.label, scope: tag === "th" ? "row" : null },
      value === null || value === undefined || value === "" ? "—" : value);
  })));
  return el("div", { class: "table-wrap" },
    el("table", { class: "table" }, caption ? el("caption", null, caption) : null,
      el("thead", null, head), el("tbody", null, body)));
}

/**
 * Pagination controls for {limit, offset, next_offset} answers. onPage(offset) loads a page.
 */
export function pager({ offset = 0, limit = 50, nextOffset = null, count = 0, onPage }) {
  const prev = el("button", { type: "button", class: "btn btn-small", disabled: offset <= 0,
    onclick: () => onPage(Math.max(0, offset - limit)) }, "‹ Newer");
  const next = el("button", { type: "button", class: "btn btn-small", disabled: nextOffset === null || nextOffset === undefined,
    onclick: () => onPage(nextOffset) }, "Older ›");
  const range = count ? `${offset + 1}–${offset + count}` : "none";
  return el("nav", { class: "pager", "aria-label": "Pages" }, prev, el("span", { class: "pager-range" }, range), next);
}

/**
 * A line chart as inline SVG (no library). points: [{t: ms, v: number}] sorted by t.
 * opts: {width, height, yLabel, unit, limit, spanMs, endMs, gapMs, title}.
 * Gaps longer than gapMs break the line: a time nobody measured is not drawn as data.
 */
export function lineChart(points, { width = 640, height = 220, yLabel = "", unit = "", limit = null,
  spanMs = null, endMs = null, gapMs = 90000, title = "" } = {}) {
  const pad = { l: 44, r: 12, t: 14, b: 26 };
  const w = Math.max(240, Math.round(width));
  const h = height;
  const pts = points.filter((p) => finite(p.v) && finite(p.t));
  const end = endMs ?? (pts.length ? pts[pts.length - 1].t : Date.now());
  const start = spanMs ? end - spanMs : (pts.length ? pts[0].t : end - 3600000);
  const shown = pts.filter((p) => p.t >= start && p.t <= end);
  const maxV = Math.max(1, ...shown.map((p) => p.v), finite(limit) ? limit : 0);
  // Four grid steps of a round size (1, 2, 2.5 or 5 × 10^n), so every label is a round number.
  const minV = Math.min(0, ...shown.map((p) => p.v));
  const step = niceStep(((maxV - minV) * 1.08) / 4);
  const bottom = minV < 0 ? -Math.ceil(-minV / step) * step : 0;
  const top = bottom + 4 * step < maxV * 1.02 ? bottom + 5 * step : bottom + 4 * step;
  const x = (t) => pad.l + ((t - start) / Math.max(1, end - start)) * (w - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - bottom) / (top - bottom)) * (h - pad.t - pad.b);

  const peak = shown.reduce((m, p) => Math.max(m, p.v), -Infinity);
  const last = shown[shown.length - 1];
  const summary = shown.length
    ? `${title || yLabel}: now ${fmt.num(last.v, 1)} ${unit}, peak ${fmt.num(peak, 1)} ${unit}`
      + (finite(limit) ? `, limit ${fmt.num(limit, 1)} ${unit}` : "")
    : `${title || yLabel}: no data yet`;
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img",
    "aria-label": summary, "data-testid": "chart", "data-points": shown.length });
  root.append(svg("title", null, summary));

  const grid = svg("g", { class: "chart-grid" });
  for (let v = bottom; v <= top + step / 2; v += step) {
    const yy = y(v);
    grid.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: yy, y2: yy }));
    grid.append(svg("text", { x: pad.l - 6, y: yy + 4, "text-anchor": "end", class: "chart-label" },
      fmt.num(v, step < 1 ? (step < 0.1 ? 2 : 1) : 0)));
  }
  const ticks = w < 420 ? 2 : 4; // clock labels need ~70 px each
  for (let i = 0; i <= ticks; i += 1) {
    const t = start + ((end - start) * i) / ticks;
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    grid.append(svg("text", { x: x(t), y: h - 6, "text-anchor": anchor, class: "chart-label" },
      new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  }
  if (yLabel) grid.append(svg("text", { x: pad.l, y: 10, class: "chart-label chart-unit" }, yLabel));
  root.append(grid);

  // Runs of points without long gaps: one area + one line each.
  const runs = [];
  let run = [];
  for (const p of shown) {
    if (run.length && p.t - run[run.length - 1].t > gapMs) {
      runs.push(run);
      run = [];
    }
    run.push(p);
  }
  if (run.length) runs.push(run);
  for (const r of runs) {
    const line = r.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
    if (r.length > 1) {
      const area = `${line}L${x(r[r.length - 1].t).toFixed(1)},${y(Math.max(bottom, 0)).toFixed(1)}`
        + `L${x(r[0].t).toFixed(1)},${y(Math.max(bottom, 0)).toFixed(1)}Z`;
      root.append(svg("path", { d: area, class: "chart-area" }));
      root.append(svg("path", { d: line, class: "chart-line" }));
    } else {
      root.append(svg("circle", { cx: x(r[0].t), cy: y(r[0].v), r: 2.5, class: "chart-dot" }));
    }
  }
  if (finite(limit)) {
    const yy = y(limit);
    root.append(svg("line", { x1: pad.l, x2: w - pad.r, y1: yy, y2: yy, class: "chart-limit" }));
    root.append(svg("text", { x: w - pad.r - 2, y: yy - 5, "text-anchor": "end", class: "chart-limit-label" },
      `limit ${fmt.num(limit, 0)} ${unit}`));
  }
  if (last) root.append(svg("circle", { cx: x(last.t), cy: y(last.v), r: 4, class: "chart-now" }));
  if (!shown.length) {
    root.append(svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "chart-empty" },
      "No data yet"));
  }
  return root;
}

function niceStep(v) {
  if (!(v > 0)) return 0.25;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (m * mag >= v) return m * mag;
  }
  return 10 * mag;
}

/**
 * Keyed update of a container's children: build(item) runs only for new or changed items
 * (compared by sig(item)), so focus and scroll survive a live update that changed nothing there.
 */
export function reconcile(container, items, key, sig, build) {
  const old = new Map();
  for (const child of container.children) if (child.dataset.key) old.set(child.dataset.key, child);
  const next = items.map((item) => {
    const k = String(key(item));
    const s = sig(item);
    const prev = old.get(k);
    if (prev && prev.dataset.sig === s) return prev;
    const node = build(item);
    node.dataset.key = k;
    node.dataset.sig = s;
    if (prev && prev.contains(document.activeElement)) {
      // Keep the keyboard where it was: refocus the element with the same test id, if any.
      const id = document.activeElement.getAttribute("data-testid");
      queueMicrotask(() => {
        const again = id && node.querySelector(`[data-testid="${CSS.escape(id)}"]`);
        if (again) again.focus();
      });
    }
    return node;
  });
  const same = next.length === container.children.length && next.every((n, i) => container.children[i] === n);
  if (!same) container.replaceChildren(...next);
}

/** Rank of a role; higher can do more. */
export const ROLE_RANK = { viewer: 1, technician: 2, admin: 3 };
