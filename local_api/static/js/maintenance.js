// Charger maintenance: firmware update and log upload, each with the stages the charger reports (live).

const STEP_LABELS = { download: "Download", verify: "Verify", install: "Install", installed: "Installed",
  upload: "Upload", uploaded: "Uploaded" };
const STATE_KIND = { done: "ok", failed: "bad", running: "info", requested: "info", idle: "muted" };
const URL_HINT = "An http(s), ftp(s) or sftp address the charger can reach; the version is usually in the file name.";
const URL_RE = /^(https?|ftps?|sftp):\/\/[^/\s]+/i;

/** The stages of one operation as a list: done ✓, the current one with the charger's own word, failed ✗. */
function stepper(ui, progress, now, testid) {
  const { el, fmt } = ui;
  if (!progress) return el("p", { class: "hint", "data-testid": testid }, "Nothing requested since siteedge started.");
  if (progress.state === "requested") {
    return el("p", { class: "hint", "data-testid": testid, "data-state": "requested" },
      ui.pill("Requested", "info"), ` ${fmt.ago(progress.at, now)}: the charger accepted; waiting for its first report `
      + "(nothing comes before a scheduled fetch time).");
  }
  const items = progress.steps.map((step, i) => {
    let state = i < progress.step ? "done" : i === progress.step ? progress.state : "todo";
    if (state === "idle") state = "todo";
    const mark = state === "done" ? "✓" : state === "failed" ? "✗" : state === "running" ? "…" : "";
    return el("li", { class: `step step-${state}`, "aria-current": i === progress.step ? "step" : null },
      el("span", { class: "step-mark", "aria-hidden": "true" }, mark || String(i + 1)),
      el("span", { class: "step-label" }, STEP_LABELS[step] || step));
  });
  return el("div", { class: "progress-box", "data-testid": testid, "data-state": progress.state },
    el("ol", { class: "steps" }, items),
    el("p", { class: "hint" }, ui.pill(progress.status, STATE_KIND[progress.state] || "muted"),
      ` ${fmt.ago(progress.at, now)} (${fmt.time(progress.at)})`,
      progress.request_id != null ? ` · request ${progress.request_id}` : ""));
}

/**
 * The Maintenance card of a charger page. Returns {card, update(charger, now)}; the page calls update
 * on every live snapshot, so the stages appear as the charger reports them.
 */
export function maintenanceCard(ctx, chargerId, { tech, showResult }) {
  const { ui, api } = ctx;
  const { el, field, card } = ui;
  const enc = encodeURIComponent(chargerId);
  let charger = null;
  let now = null;
  let busy = false; // a request is on its way: one at a time
  let shown = null; // what the card shows, to rebuild it only when that changes

  const version = el("p", { class: "hint", "data-testid": "firmware-version" });
  const firmwareBox = el("div", { "aria-live": "polite" });
  const logBox = el("div", { "aria-live": "polite" });
  const updateButton = el("button", { type: "button", class: "btn", "data-testid": "action-firmware" }, "Update firmware…");
  const logsButton = el("button", { type: "button", class: "btn", "data-testid": "action-logs" }, "Upload logs…");

  const send = async (button, label, path, body) => {
    busy = true;
    render();
    try {
      const result = await ui.busy(button, () => api.post(`chargers/${enc}/${path}`, body, { timeoutMs: 130000 }), {
        success: () => null,
        failure: (err) => `${label}: ${ui.errorText(err)}`,
      });
      if (result) showResult(label, result);
    } finally {
      busy = false;
      render();
    }
  };

  /** An address field for the charger to fetch from or upload to, and its check for confirmAction. */
  const addressField = (label, testid, hint) => {
    const f = field(label, { name: "location", inputmode: "url", autocomplete: "off", spellcheck: "false",
      autocapitalize: "none", "data-testid": testid, hint });
    const check = () => (URL_RE.test(f.input.value.trim()) ? null : "Enter an http(s), ftp(s) or sftp URL.");
    return { ...f, check };
  };

  updateButton.addEventListener("click", async () => {
    const url = addressField("Firmware URL", "firmware-url", URL_HINT);
    const at = field("Fetch at (optional)", { name: "retrieve_at", type: "datetime-local", "data-testid": "firmware-at",
      hint: "Empty: now. Your browser's time zone." });
    const retries = field("Retries (optional)", { name: "retries", type: "number", min: 0, max: 100, inputmode: "numeric" });
    const content = el("div", { class: "form" }, url.wrap, at.wrap, retries.wrap);
    const ok = await ui.confirmAction(`Update firmware of ${chargerId}`,
      "The charger downloads and installs the image, then reboots: running sessions end. Each stage shows here as it reports it.",
      { confirm: "Update", danger: true, content, validate: url.check });
    if (!ok) return;
    const body = { location: url.input.value.trim() };
    if (at.input.value) body.retrieve_at = new Date(at.input.value).toISOString();
    if (retries.input.value !== "") body.retries = Number(retries.input.value);
    await send(updateButton, "Update firmware", "firmware", body);
  });

  logsButton.addEventListener("click", async () => {
    const url = addressField("Upload to", "logs-url",
      "Where the charger uploads its diagnostics log (ftp(s), http(s) or sftp).");
    const ok = await ui.confirmAction(`Upload logs of ${chargerId}`, "The charger uploads its diagnostics log to this address.",
      { confirm: "Upload", content: url.wrap, validate: url.check });
    if (!ok) return;
    await send(logsButton, "Upload logs", "logs", { location: url.input.value.trim() });
  });

  const body = el("div", { class: "maintenance" },
    el("h3", null, "Firmware"), version, firmwareBox, tech ? el("div", { class: "row-actions" }, updateButton) : null,
    el("h3", null, "Diagnostics log"), logBox, tech ? el("div", { class: "row-actions" }, logsButton) : null);
  const maintenance = card("Maintenance", { class: "card", "data-testid": "maintenance" }, body);

  const render = () => {
    const online = Boolean(charger?.connected);
    updateButton.disabled = !online || busy;
    logsButton.disabled = !online || busy;
    const fw = charger?.firmware_update || null;
    const logs = charger?.log_upload || null;
    // Rebuilt only on a change (live snapshots come every 0.25 s): screen readers hear each stage once.
    const sig = JSON.stringify([charger?.firmware, fw, logs]);
    if (sig === shown) return;
    shown = sig;
    version.textContent = `Installed version: ${charger?.firmware || "unknown"}`;
    ui.fill(firmwareBox, stepper(ui, fw, now, "firmware-progress"));
    ui.fill(logBox, stepper(ui, logs, now, "log-progress"));
  };
  const update = (next, at) => {
    charger = next;
    now = at;
    render();
  };
  return { card: maintenance, update };
}
