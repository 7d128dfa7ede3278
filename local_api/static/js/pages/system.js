// System: the box's status, configuration (check -> diff -> confirm -> apply -> restart), backup and
// restore, logs, and for admins the accounts, API tokens and audit log.

import {
  bytes, downloadButton, every, facts, notice, pagedList, postRaw, problemList, tabs, withQuery,
} from "./common.js";

const state = { tab: "status", logs: { level: "", q: "", auto: false } };
const LEVEL_TONE = { DEBUG: "muted", INFO: "info", WARNING: "warn", ERROR: "bad", CRITICAL: "bad" };
const ROLES = [["viewer", "viewer: sees everything, changes nothing"],
  ["technician", "technician: operates chargers and meters"], ["admin", "admin: also accounts, config, backups"]];

export default {
  route: "#/system",
  title: "System",
  role: "viewer",
  render(root, ctx) {
    const ui = ctx.ui;
    const { el } = ui;
    const admin = ctx.can("admin");
    const items = [
      { id: "status", label: "Status", render: (p) => statusTab(p, ctx) },
      { id: "config", label: "Configuration", render: (p) => configTab(p, ctx) },
      ...(admin ? [{ id: "backup", label: "Backup", render: (p) => backupTab(p, ctx) }] : []),
      { id: "logs", label: "Logs", render: (p) => logsTab(p, ctx) },
      ...(admin ? [
        { id: "users", label: "Users", render: (p) => usersTab(p, ctx) },
        { id: "api-tokens", label: "API tokens", render: (p) => tokensTab(p, ctx) },
        { id: "audit", label: "Audit log", render: (p) => auditTab(p, ctx) },
      ] : []),
    ];
    const t = tabs(items, { selected: state.tab, onSelect: (id) => { state.tab = id; }, label: "System sections" });
    root.append(el("div", { class: "page-head" }, el("h1", null, "System"),
      el("p", { class: "lead" }, "This box: software, clock, uplink, configuration and logs.")), t.node);
    return t.cleanup;
  },
};

// --- restart -------------------------------------------------------------------------------------

/** A "Restart now" button (admins): asks, restarts, then waits until the box answers again. */
function restartButton(ctx) {
  const ui = ctx.ui;
  const progress = ui.el("span", { class: "restart-progress", role: "status" });
  const button = ui.el("button", { type: "button", class: "btn btn-danger", "data-testid": "restart", onclick: async () => {
    const ok = await ui.confirmAction("Restart siteedge?",
      "Chargers reconnect and meters are polled again within seconds; charging sessions continue. "
      + "The page reconnects by itself.", { confirm: "Restart", danger: true });
    if (!ok) return;
    const done = await ui.busy(button, ctx.api.post("system/restart"), { success: () => null });
    if (done === undefined) return;
    button.disabled = true;
    progress.textContent = "Restarting…";
    const started = Date.now();
    // Wait for the old process to go and the new one to answer (the version may change).
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 120; i += 1) {
      try {
        await ctx.api.get("system", { timeoutMs: 3000 });
        progress.textContent = `Back online after ${Math.round((Date.now() - started) / 1000)} s.`;
        ui.toast("siteedge restarted.", "ok");
        button.disabled = false;
        return;
      } catch (err) {
        if (err.status === 401) return; // sessions survive a restart; if not, the login page takes over
        progress.textContent = `Restarting… waiting for the box (${Math.round((Date.now() - started) / 1000)} s)`;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    progress.textContent = "The box has not come back yet. Check it on site.";
    button.disabled = false;
  } }, "Restart now");
  return ui.el("div", { class: "restart" }, button, progress);
}

/** The outcome of a config write or restore: backup name, restart notice, restart button. */
function appliedNotice(result, ctx, what) {
  const { el } = ctx.ui;
  const lines = [el("strong", null, `${what} saved.`)];
  if (result.backup) lines.push(` The previous configuration is kept as ${result.backup}.`);
  if (typeof result.chargers === "number") lines.push(` ${result.chargers} charger registration(s) restored.`);
  if (result.restart_required) lines.push(" It takes effect after a restart.");
  return el("div", { class: "notice notice-ok", role: "status", "data-testid": "applied" }, ...lines,
    result.restart_required ? el("p", { class: "restart-required", "data-testid": "restart-required" }, "Restart required.") : null,
    result.restart_required && ctx.can("admin") ? restartButton(ctx) : null);
}

// --- status --------------------------------------------------------------------------------------

function statusTab(panel, ctx) {
  const ui = ctx.ui;
  const { el, fmt } = ui;
  const box = el("div", { class: "status-grid", "data-testid": "system-status" }, el("p", { class: "loading" }, "Loading…"));
  panel.append(box);
  let shownRestart = false;

  async function load() {
    let s;
    try {
      s = await ctx.api.get("system");
    } catch (err) {
      box.replaceChildren(notice(`Could not load the status: ${ui.errorText(err)}`, "bad"));
      return;
    }
    const ts = s.time_sync || {};
    const up = s.uplink || {};
    const dd = s.data_dir || {};
    const listeners = Object.entries(s.listeners || {}).filter(([, v]) => v !== null && v !== undefined);
    const restart = s.restart_required
      ? el("div", { class: "notice notice-warn", "data-testid": "restart-required" },
        "The configuration file was changed: it takes effect after a restart.",
        ctx.can("admin") ? restartButton(ctx) : null)
      : null;
    // Keep a running restart's progress on screen: only rebuild the notice when it appears or goes.
    const keep = shownRestart && s.restart_required ? box.querySelector("[data-testid=restart-required]") : null;
    shownRestart = Boolean(s.restart_required);
    box.replaceChildren(
      keep || restart || "",
      ui.card("Software", { class: "card" }, facts([
        ["Version", s.version, { "data-testid": "system-version" }],
        ["Running since", fmt.time(s.started)],
        ["Uptime", fmt.duration(s.uptime_s), { "data-testid": "system-uptime" }],
        ["Process", s.pid ? `pid ${s.pid}, Python ${s.python || "?"}` : null],
        ["Config file", s.config_path || "none (started without a file)"],
      ])),
      ui.card("Clock", { class: "card" }, facts([
        ["Box time", fmt.time(s.time)],
        ["Time sync", ui.pill(ts.synchronized ? "synchronized" : "not synchronized", ts.synchronized ? "ok" : "bad",
          { "data-testid": "time-sync" })],
        ["How known", ts.source],
        ["Detail", ts.detail],
      ])),
      ui.card("Uplink to the backend", { class: "card" }, facts([
        ["State", ui.pill(up.connected ? "connected" : "offline", up.connected ? "ok" : "bad", { "data-testid": "uplink-state" })],
        ["Since", up.since ? fmt.time(up.since) : null],
        ["Queued messages", fmt.num(up.backlog, 0)],
        ["Queue nearly full", up.near_limit ? ui.pill("yes", "bad") : "no"],
        ["Dropped telemetry", fmt.num(up.dropped_telemetry, 0)],
        ["Detail", up.detail],
      ])),
      ui.card("Storage and network", { class: "card" }, facts([
        ["Data directory", dd.path],
        ["Used by siteedge", bytes(dd.siteedge_bytes)],
        ["Disk free", dd.fs_total_bytes ? `${bytes(dd.fs_free_bytes)} of ${bytes(dd.fs_total_bytes)} (${fmt.num(dd.fs_used_percent, 1)} % used)` : null],
        ...listeners.map(([k, v]) => [`Port: ${k.replace(/_/g, " ")}`, String(v)]),
      ])),
    );
  }
  load();
  return every(10000, load);
}

// --- configuration -------------------------------------------------------------------------------

function diffView(diff, el) {
  const lines = diff.split("\n");
  return el("pre", { class: "diff", "data-testid": "config-diff", tabindex: "0", "aria-label": "Changes" },
    lines.map((line) => {
      const cls = line.startsWith("+++") || line.startsWith("---") ? "diff-file"
        : line.startsWith("@@") ? "diff-hunk" : line.startsWith("+") ? "diff-add" : line.startsWith("-") ? "diff-del" : "diff-ctx";
      return el("span", { class: cls }, `${line}\n`);
    }));
}

function configTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const canCheck = ctx.can("technician");
  const canApply = ctx.can("admin");
  const box = el("div", null, el("p", { class: "loading" }, "Loading…"));
  panel.append(box);

  async function load() {
    let text;
    try {
      text = (await ctx.api.get("system/config")).toml;
    } catch (err) {
      box.replaceChildren(notice(`The configuration cannot be shown: ${ui.errorText(err)}`, err.status === 409 ? "warn" : "bad"));
      return;
    }
    if (!canCheck) {
      box.replaceChildren(ui.card("Configuration (read only)", { class: "card" },
        el("p", { class: "hint" }, "Secrets are shown as ********."),
        el("pre", { class: "toml", "data-testid": "config-text", tabindex: "0" }, text)));
      return;
    }
    const area = el("textarea", { id: "config-toml", class: "toml-edit", rows: 24, spellcheck: "false",
      autocapitalize: "off", autocomplete: "off", "data-testid": "config-editor", "aria-describedby": "config-help" });
    area.value = text;
    const result = el("div", { class: "config-result", "aria-live": "polite", "data-testid": "config-result" });
    let checked = null; // the text the last successful check was for
    let lastDiff = "";
    const check = el("button", { type: "button", class: "btn btn-primary", "data-testid": "config-check" }, "Check changes");
    const apply = el("button", { type: "button", class: "btn btn-danger", "data-testid": "config-apply", disabled: true,
      hidden: !canApply }, "Apply…");
    const reset = el("button", { type: "button", class: "btn", onclick: () => {
      area.value = text;
      checked = null;
      apply.disabled = true;
      result.replaceChildren();
    } }, "Undo my edits");
    area.addEventListener("input", () => {
      if (checked !== null && area.value !== checked) {
        apply.disabled = true;
        result.replaceChildren(el("p", { class: "hint" }, "Edited since the last check: check again before applying."));
        checked = null;
      }
    });
    check.addEventListener("click", async () => {
      const proposed = area.value;
      const r = await ui.busy(check, ctx.api.post("system/config/check", { toml: proposed }), { success: () => null });
      if (!r) return;
      lastDiff = r.diff || "";
      if (!r.valid) {
        checked = null;
        apply.disabled = true;
        result.replaceChildren(el("p", { class: "notice notice-bad", "data-testid": "config-invalid" },
          `Not valid: ${r.errors.length} problem${r.errors.length === 1 ? "" : "s"}. Nothing was changed.`),
        problemList(r.errors, { "data-testid": "config-errors" }), lastDiff ? diffView(lastDiff, el) : "");
        ui.toast("The configuration has problems; see the list.", "warn");
        return;
      }
      if (!lastDiff.trim()) {
        checked = null;
        apply.disabled = true;
        result.replaceChildren(notice("Valid, and the same as the running configuration: nothing to apply.", "info",
          { "data-testid": "config-same" }));
        return;
      }
      checked = proposed;
      apply.disabled = !canApply;
      result.replaceChildren(el("p", { class: "notice notice-ok", "data-testid": "config-valid" },
        canApply ? "Valid. These are the changes; apply them to save." : "Valid. These are the changes; an admin can apply them."),
      diffView(lastDiff, el));
      ui.toast("The configuration is valid.", "ok");
    });
    apply.addEventListener("click", async () => {
      if (checked === null) return;
      const ok = await ui.confirmAction("Apply this configuration?",
        "The file is replaced (the current one is kept as a backup). It takes effect after a restart.",
        { confirm: "Apply", danger: true, content: diffView(lastDiff, el) });
      if (!ok) return;
      let failed = null;
      const r = await ui.busy(apply, ctx.api.put("system/config", { toml: checked }), {
        success: () => "Configuration saved.",
        failure: (err) => {
          failed = err;
          return ui.errorText(err);
        },
      });
      if (!r) {
        if (failed && failed.body && Array.isArray(failed.body.errors)) {
          result.replaceChildren(notice(ui.errorText(failed), "bad"), problemList(failed.body.errors, { "data-testid": "config-errors" }));
        }
        return;
      }
      text = checked;
      checked = null;
      apply.disabled = true;
      result.replaceChildren(appliedNotice(r, ctx, "Configuration"));
    });
    box.replaceChildren(ui.card("Configuration", { class: "card" },
      el("p", { class: "hint", id: "config-help" }, "siteedge's TOML configuration. Secrets show as ******** and are kept "
        + "unless you replace them. Check shows every problem with its key, or the changes; nothing is written until you apply."),
      el("label", { for: "config-toml", class: "visually-hidden" }, "Configuration TOML"),
      area,
      el("div", { class: "form-actions" }, check, apply, reset),
      result));
  }
  load();
  return undefined;
}

// --- backup and restore --------------------------------------------------------------------------

function backupTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const file = ui.field("Backup file", { type: "file", name: "bundle", accept: ".json,application/json",
    "data-testid": "restore-file" });
  const restore = el("button", { type: "submit", class: "btn btn-danger", "data-testid": "restore" }, "Restore…");
  const result = el("div", { "aria-live": "polite", "data-testid": "restore-result" });
  const form = el("form", { class: "form-stack", onsubmit: async (e) => {
    e.preventDefault();
    result.replaceChildren();
    const f = file.input.files && file.input.files[0];
    if (!f) {
      ui.toast("Choose a backup file first.", "warn");
      return;
    }
    let text;
    try {
      text = await f.text();
      const doc = JSON.parse(text);
      if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a JSON object");
    } catch (err) {
      result.replaceChildren(notice(`${f.name} is not a siteedge backup (JSON): ${err.message}`, "bad", { role: "alert" }));
      return;
    }
    const ok = await ui.confirmAction("Restore this backup?",
      `${f.name} replaces the configuration and the charger registrations (after checking all of it; nothing changes `
      + "if any part is invalid). The current configuration is kept as a backup file. Takes effect after a restart.",
      { confirm: "Restore", danger: true });
    if (!ok) return;
    let failed = null;
    const r = await ui.busy(restore, postRaw("system/restore", text), {
      success: () => "Backup restored.",
      failure: (err) => {
        failed = err;
        return ui.errorText(err);
      },
    });
    if (r) result.replaceChildren(appliedNotice(r, ctx, "Backup"));
    else if (failed) {
      const errs = failed.body && Array.isArray(failed.body.errors) ? failed.body.errors : [];
      result.replaceChildren(notice(`Not restored: ${ui.errorText(failed)}`, "bad", { role: "alert" }),
        errs.length ? problemList(errs, { "data-testid": "restore-errors" }) : "");
    }
  } }, file.wrap, el("div", { class: "form-actions" }, restore), result);
  panel.append(
    ui.card("Download a backup", { class: "card" },
      el("p", null, "The configuration (with its secrets) and the charger registrations as one JSON file. "
        + "User accounts are not included. Keep the file safe."),
      downloadButton("Download backup", () => "system/backup", () => "siteedge-backup.json", { testid: "backup-download" })),
    ui.card("Restore a backup", { class: "card" }, form),
  );
  return undefined;
}

// --- logs ----------------------------------------------------------------------------------------

function logsTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const s = state.logs;
  const level = ui.field("Level", { type: "select", name: "level", value: s.level, options: [["", "All"],
    ["DEBUG", "Debug and above"], ["INFO", "Info and above"], ["WARNING", "Warnings and errors"], ["ERROR", "Errors only"]] });
  const q = ui.field("Search", { type: "search", name: "q", value: s.q, maxlength: 200, placeholder: "text or logger",
    "data-testid": "log-search" });
  const auto = el("input", { type: "checkbox", id: "logs-auto", "data-testid": "log-auto", checked: s.auto });
  const listBox = el("div", { "data-testid": "log-list", class: "log-list" });
  const list = pagedList(listBox, {
    path: (offset, limit) => withQuery("system/logs", { level: s.level, q: s.q, limit, offset }),
    emptyText: "No log records match.",
    renderItems: (items) => el("ol", { class: "logs" }, items.map((r) => el("li", { class: `log log-${String(r.level).toLowerCase()}`,
      "data-testid": "log-record", "data-level": r.level },
    el("div", { class: "log-meta" }, ui.pill(r.level, LEVEL_TONE[r.level] || "muted"), " ",
      el("time", { datetime: r.time }, ui.fmt.time(r.time)), " ", el("span", { class: "log-logger" }, r.logger)),
    el("pre", { class: "log-message" }, r.message)))),
  });
  const apply = () => {
    s.level = level.input.value;
    s.q = q.input.value.trim();
    list.load(0);
  };
  level.input.addEventListener("change", apply);
  const form = el("form", { class: "filter-form", role: "search", "aria-label": "Log filter", onsubmit: (e) => {
    e.preventDefault();
    apply();
  } }, level.wrap, q.wrap, el("div", { class: "filter-actions" },
    el("button", { type: "submit", class: "btn btn-primary" }, "Search"),
    el("button", { type: "button", class: "btn", onclick: () => list.reload() }, "Refresh"),
    el("label", { class: "check", for: "logs-auto" }, auto, " Refresh every 5 s")));
  auto.addEventListener("change", () => { s.auto = auto.checked; });
  panel.append(ui.card("Log records (newest first)", { class: "card" }, form, listBox));
  list.load(0);
  return every(5000, async () => {
    // Only on the newest page: a technician reading older records must not be moved.
    if (s.auto && list.offset() === 0) await list.reload({ quiet: true });
  });
}

// --- users ---------------------------------------------------------------------------------------

function usersTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const me = ctx.user && ctx.user.username;
  const listBox = el("div", { "data-testid": "user-list" });
  const list = pagedList(listBox, {
    path: (offset, limit) => withQuery("auth/users", { limit, offset }),
    emptyText: "No accounts.",
    renderItems: (items) => ui.table([
      { label: "User", rowHeader: true, render: (u) => el("span", null, u.username,
        u.username === me ? el("span", { class: "sub" }, " (you)") : null) },
      { label: "Role", render: (u) => roleSelect(u) },
      { label: "Created", render: (u) => ui.fmt.time(u.created) },
      { label: "Actions", render: (u) => el("div", { class: "row-actions" },
        el("button", { type: "button", class: "btn btn-small", onclick: (e) => setPassword(e.currentTarget, u) }, "Set password…"),
        el("button", { type: "button", class: "btn btn-small btn-danger", "data-testid": `delete-user-${u.username}`,
          onclick: (e) => remove(e.currentTarget, u) }, "Delete…")) },
    ], items, { rowAttrs: (u) => ({ "data-testid": `user-${u.username}` }) }),
  });

  function roleSelect(u) {
    const select = el("select", { "aria-label": `Role of ${u.username}`, "data-testid": `role-${u.username}` },
      ROLES.map(([r]) => el("option", { value: r }, r)));
    select.value = u.role;
    select.addEventListener("change", async () => {
      const to = select.value;
      const ok = await ui.confirmAction(`Make ${u.username} ${to}?`, ROLES.find(([r]) => r === to)[1],
        { confirm: "Change role" });
      if (!ok) {
        select.value = u.role;
        return;
      }
      const r = await ui.busy(select, ctx.api.patch(`auth/users/${encodeURIComponent(u.username)}`, { role: to }),
        { success: () => `${u.username} is now ${to}.` });
      if (r === undefined) select.value = u.role;
      else u.role = to;
    });
    return select;
  }

  async function setPassword(button, u) {
    const pw = ui.field("New password", { type: "password", name: "new-password", autocomplete: "new-password", minlength: 10,
      hint: "At least 10 characters." });
    const ok = await ui.confirmAction(`New password for ${u.username}`, null, { confirm: "Set password", content: pw.wrap,
      validate: () => (pw.input.value.length < 10 ? "The password needs at least 10 characters." : null) });
    if (!ok) return;
    await ui.busy(button, ctx.api.patch(`auth/users/${encodeURIComponent(u.username)}`, { password: pw.input.value }),
      { success: () => `Password of ${u.username} changed.` });
  }

  async function remove(button, u) {
    const ok = await ui.confirmAction(`Delete ${u.username}?`, "The account and its sessions end at once.",
      { confirm: "Delete", danger: true });
    if (!ok) return;
    const r = await ui.busy(button, ctx.api.del(`auth/users/${encodeURIComponent(u.username)}`), {
      success: () => `${u.username} deleted.`,
    });
    if (r !== undefined) list.reload();
  }

  const name = ui.field("Username", { name: "username", required: true, autocomplete: "off", maxlength: 64,
    autocapitalize: "off", "data-testid": "new-username" });
  const pw = ui.field("Password", { type: "password", name: "password", required: true, minlength: 10,
    autocomplete: "new-password", hint: "At least 10 characters.", "data-testid": "new-password" });
  const role = ui.field("Role", { type: "select", name: "role", value: "technician", options: ROLES, "data-testid": "new-role" });
  const add = el("button", { type: "submit", class: "btn btn-primary", "data-testid": "add-user" }, "Add user");
  const form = el("form", { class: "filter-form", "aria-label": "New user", onsubmit: async (e) => {
    e.preventDefault();
    if (pw.input.value.length < 10) {
      ui.toast("The password needs at least 10 characters.", "warn");
      return;
    }
    const r = await ui.busy(add, ctx.api.post("auth/users", { username: name.input.value.trim(), password: pw.input.value,
      role: role.input.value }), { success: (u) => `${u.username} added as ${u.role}.` });
    if (r) {
      name.input.value = "";
      pw.input.value = "";
      list.reload();
    }
  } }, name.wrap, pw.wrap, role.wrap, el("div", { class: "filter-actions" }, add));
  panel.append(ui.card("Add a user", { class: "card" }, form), ui.card("Users", { class: "card" }, listBox));
  list.load(0);
  return undefined;
}

// --- API tokens ----------------------------------------------------------------------------------

function tokensTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const created = el("div", { "aria-live": "polite" });
  const listBox = el("div", { "data-testid": "token-list" });
  const list = pagedList(listBox, {
    path: (offset, limit) => withQuery("auth/api-tokens", { limit, offset }),
    emptyText: "No API tokens.",
    renderItems: (items) => ui.table([
      { label: "Name", rowHeader: true, key: "name" },
      { label: "Role", key: "role" },
      { label: "Created", render: (t) => ui.fmt.time(t.created) },
      { label: "Id", render: (t) => el("span", { class: "mono" }, t.id) },
      { label: "Actions", render: (t) => el("button", { type: "button", class: "btn btn-small btn-danger",
        "data-testid": `revoke-${t.id}`, onclick: (e) => revoke(e.currentTarget, t) }, "Revoke…") },
    ], items, { rowAttrs: (t) => ({ "data-testid": `api-token-${t.name}` }) }),
  });

  async function revoke(button, t) {
    const ok = await ui.confirmAction(`Revoke "${t.name}"?`, "Anything using this token (e.g. Prometheus) loses access at once.",
      { confirm: "Revoke", danger: true });
    if (!ok) return;
    const r = await ui.busy(button, ctx.api.del(`auth/api-tokens/${encodeURIComponent(t.id)}`), { success: () => `"${t.name}" revoked.` });
    if (r !== undefined) list.reload();
  }

  const name = ui.field("Name", { name: "name", required: true, maxlength: 64, placeholder: "e.g. prometheus",
    "data-testid": "token-name" });
  const role = ui.field("Role", { type: "select", name: "role", value: "viewer", options: ROLES, "data-testid": "token-role" });
  const create = el("button", { type: "submit", class: "btn btn-primary", "data-testid": "create-token" }, "Create token");
  const form = el("form", { class: "filter-form", "aria-label": "New API token", onsubmit: async (e) => {
    e.preventDefault();
    created.replaceChildren();
    const r = await ui.busy(create, ctx.api.post("auth/api-tokens", { name: name.input.value.trim(), role: role.input.value }),
      { success: (t) => `Token "${t.name}" created.` });
    if (!r) return;
    name.input.value = "";
    const secret = el("input", { type: "text", readonly: true, value: r.token, class: "mono secret", id: "new-token-value",
      "data-testid": "new-token", "aria-label": "The new token" });
    created.replaceChildren(el("div", { class: "notice notice-warn token-once" },
      el("p", null, el("strong", null, `Token "${r.name}" (${r.role}).`), " Copy it now: it is shown only once and cannot be read again."),
      el("div", { class: "copy-row" }, secret,
        el("button", { type: "button", class: "btn", "data-testid": "copy-token", onclick: () => ui.copyField(secret, "Token") }, "Copy")),
      el("p", { class: "hint" }, "Use it as: Authorization: Bearer <token>")));
    secret.focus();
    secret.select();
    list.reload();
  } }, name.wrap, role.wrap, el("div", { class: "filter-actions" }, create));
  panel.append(ui.card("Create an API token", { class: "card" }, form, created), ui.card("API tokens", { class: "card" }, listBox));
  list.load(0);
  return undefined;
}

// --- audit log -----------------------------------------------------------------------------------

function auditTab(panel, ctx) {
  const ui = ctx.ui;
  const { el } = ui;
  const listBox = el("div", { "data-testid": "audit-list" });
  const list = pagedList(listBox, {
    path: (offset, limit) => withQuery("audit", { limit, offset }),
    emptyText: "Nothing has been changed through the API yet.",
    renderItems: (items) => ui.table([
      { label: "Time", rowHeader: true, render: (a) => ui.fmt.time(a.time) },
      { label: "Who", render: (a) => el("span", null, a.user || "—", a.role ? el("span", { class: "sub" }, ` ${a.role}`) : null) },
      { label: "Request", render: (a) => el("span", { class: "mono" }, `${a.method} ${a.path}`) },
      { label: "Outcome", render: (a) => ui.pill(String(a.status), a.status < 300 ? "ok" : a.status < 500 ? "warn" : "bad") },
      { label: "From", key: "client" },
      { label: "Summary", key: "summary" },
    ], items, { rowAttrs: () => ({ "data-testid": "audit-row" }) }),
  });
  panel.append(ui.card(el("div", { class: "card-title-row" }, el("h2", null, "Audit log (newest first)"),
    el("button", { type: "button", class: "btn btn-small", onclick: () => list.reload() }, "Refresh")), { class: "card" }, listBox));
  list.load(0);
  return undefined;
}
