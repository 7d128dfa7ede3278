// Dashboard: site power against the limit (last hour, live), every connector, uplink and alarms.

import { alarmsOf, connectorTile, linkPill } from "../tiles.js";

const HOUR_MS = 3600 * 1000;
const LIVE_STEP_MS = 10000; // the server's ring step: one live point per 10 s keeps both alike
const REDRAW_MS = 2000;

export default {
  route: "#/",
  title: "Dashboard",
  role: "viewer",
  render(root, { api, live, ui, can }) {
    const { el, fmt, card, reconcile } = ui;

    const nowValue = el("span", { class: "big-number", "data-testid": "site-power" }, "—");
    const limitText = el("span", { class: "muted", "data-testid": "site-limit" }, "");
    const meterBar = el("div", { class: "bar", "aria-hidden": "true" }, el("div", { class: "bar-fill" }));
    const sourceText = el("p", { class: "hint" }, "");
    const chartBox = el("div", { class: "chart-box" });
    const powerCard = card(el("h2", null, "Site power"), { class: "card card-power", "aria-live": "off" },
      el("div", { class: "power-now" }, nowValue, limitText), meterBar, chartBox, sourceText);

    const alarmList = el("ul", { class: "alarms", "data-testid": "alarms" });
    const alarmCount = el("span", { class: "count" }, "");
    const alarmsCard = card(el("h2", null, "Alarms ", alarmCount), { class: "card card-alarms" }, alarmList);

    const uplinkBody = el("div", { class: "uplink", "data-testid": "uplink" });
    const uplinkCard = card("Uplink", { class: "card card-uplink" }, uplinkBody);

    const chargerGrid = el("div", { class: "chargers", "data-testid": "chargers" });
    const chargerCount = el("span", { class: "count" }, "");

    root.append(
      el("div", { class: "page-head" }, el("h1", null, "Dashboard")),
      el("div", { class: "dash-top" }, powerCard, el("div", { class: "dash-side" }, alarmsCard, uplinkCard)),
      el("div", { class: "section-head" }, el("h2", null, "Chargers ", chargerCount)),
      chargerGrid,
    );

    // --- power chart ---------------------------------------------------------------------
    let points = []; // {t: ms, v: kW}
    let limit = null;
    let endMs = null;
    let lastDraw = 0;
    let drawTimer = null;
    const draw = () => {
      lastDraw = Date.now();
      drawTimer = null;
      const end = endMs ?? Date.now();
      points = points.filter((p) => p.t >= end - HOUR_MS);
      ui.fill(chartBox, ui.lineChart(points, { width: chartBox.clientWidth || 600, height: 200,
        yLabel: "kW", unit: "kW", limit, spanMs: HOUR_MS, endMs: end, gapMs: 60000, title: "Site power, last hour" }));
    };
    const scheduleDraw = () => {
      if (drawTimer) return;
      drawTimer = setTimeout(draw, Math.max(0, REDRAW_MS - (Date.now() - lastDraw)));
    };
    const resize = new ResizeObserver(() => scheduleDraw());
    resize.observe(chartBox);

    api.get("site/power?minutes=60").then((history) => {
      limit = history.limit_kw ?? limit;
      const loaded = (history.points || []).map((p) => ({ t: Date.parse(p.t), v: p.kw }));
      // Live points that arrived while the request was under way stay after the history.
      const newest = loaded.length ? loaded[loaded.length - 1].t : -Infinity;
      points = [...loaded, ...points.filter((p) => p.t > newest)];
      sourceText.textContent = history.source === "grid" ? "Measured at the grid meter."
        : "Sum of the EVSEs' power (no grid meter configured).";
      draw();
    }).catch((err) => {
      ui.fill(chartBox, el("p", { class: "notice notice-warn" }, `No power history: ${ui.errorText(err)}`));
    });

    // --- live snapshot rendering ---------------------------------------------------------
    const renderPower = (h) => {
      const p = h.power || {};
      limit = p.limit_kw ?? limit;
      endMs = Date.parse(h.time) || Date.now();
      nowValue.textContent = fmt.kw(p.kw);
      limitText.textContent = typeof limit === "number" ? `of ${fmt.kw(limit)} limit` : "no site limit configured";
      const share = typeof p.kw === "number" && typeof limit === "number" && limit > 0 ? p.kw / limit : null;
      const fill = meterBar.firstElementChild;
      meterBar.hidden = share === null;
      if (share !== null) {
        fill.style.width = `${Math.min(100, Math.max(0, share * 100)).toFixed(1)}%`;
        meterBar.dataset.level = share > 1 ? "bad" : share > 0.9 ? "warn" : "ok";
      }
      if (typeof p.kw === "number") {
        // One live point per 10 s like the server's ring; within a step the newest value wins.
        const last = points[points.length - 1];
        if (last && last.live && endMs - last.since < LIVE_STEP_MS) Object.assign(last, { t: endMs, v: p.kw });
        else if (!last || endMs > last.t) points.push({ t: endMs, v: p.kw, live: true, since: endMs });
      }
      scheduleDraw();
    };

    const renderAlarms = (h) => {
      const alarms = alarmsOf(h);
      alarmCount.textContent = alarms.length ? `(${alarms.length})` : "";
      alarmsCard.dataset.level = alarms.some((a) => a.level === "bad") ? "bad" : alarms.length ? "warn" : "ok";
      if (!alarms.length) {
        ui.fill(alarmList, el("li", { class: "alarm alarm-ok" }, "All clear: chargers, meters and uplink are fine."));
        return;
      }
      reconcile(alarmList, alarms, (a) => a.text, (a) => a.level, (a) => el("li", { class: `alarm alarm-${a.level}` },
        el("span", { class: "alarm-icon", "aria-hidden": "true" }, a.level === "bad" ? "!" : "i"),
        el("span", { class: "visually-hidden" }, a.level === "bad" ? "Problem: " : "Warning: "),
        a.href ? el("a", { href: a.href }, a.text) : el("span", null, a.text)));
    };

    const renderUplink = (h) => {
      const up = h.uplink || {};
      ui.fill(uplinkBody, 
        el("div", { class: "kv" }, el("span", null, "State"),
          ui.pill(up.connected ? "connected" : "offline", up.connected ? "ok" : "bad", { "data-testid": "uplink-state" })),
        el("div", { class: "kv" }, el("span", null, "Backlog"),
          el("strong", { "data-testid": "uplink-backlog" }, `${up.backlog ?? 0} message${up.backlog === 1 ? "" : "s"}`)),
        up.since ? el("div", { class: "kv" }, el("span", null, up.connected ? "Connected since" : "Offline since"),
          el("span", null, fmt.time(up.since))) : null,
        up.detail ? el("p", { class: "hint" }, up.detail) : null);
    };

    const chargerCard = (ch, now) => {
      const product = [ch.vendor, ch.model].filter(Boolean).join(" ");
      const href = `#/chargers/${encodeURIComponent(ch.id)}`;
      return el("section", { class: "charger-card", "data-testid": `charger-${ch.id}`, "aria-label": `Charger ${ch.id}` },
        el("div", { class: "charger-head" },
          el("div", { class: "charger-title" },
            el("a", { href, class: "charger-link" }, ch.id),
            el("span", { class: "muted small" }, [product, ch.ocpp_version ? `OCPP ${ch.ocpp_version}` : ""].filter(Boolean).join(" · ") || "no boot data yet")),
          linkPill(ch)),
        (ch.evses || []).length
          ? el("div", { class: "tiles" }, ch.evses.map((e) => connectorTile(e, now)))
          : el("p", { class: "muted small" }, ch.configured ? "No EVSEs configured."
            : can("technician") ? el("a", { href: "#/commissioning" }, "Waiting for approval in Commissioning")
              : "Not configured."));
    };

    const renderChargers = (h) => {
      const chargers = h.chargers || [];
      chargerCount.textContent = `(${chargers.length})`;
      if (!chargers.length) {
        ui.fill(chargerGrid, ui.empty("No chargers known yet. Chargers appear here when they connect."));
        return;
      }
      // Durations tick with the snapshot time; the rest only changes with the data.
      reconcile(chargerGrid, chargers, (c) => c.id, (c) => JSON.stringify(c) + (c.evses.some((e) => e.transaction) ? h.time : ""),
        (c) => chargerCard(c, h.time));
    };

    const unsubscribe = live.subscribe((h) => {
      renderPower(h);
      renderAlarms(h);
      renderUplink(h);
      renderChargers(h);
    });
    return () => {
      unsubscribe();
      resize.disconnect();
      clearTimeout(drawTimer);
    };
  },
};
