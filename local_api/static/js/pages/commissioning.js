// Commissioning: approve chargers waiting at the door; find and test-read Modbus devices.

import { itemsOf } from "../api.js";
import { setCredentials } from "../credentials.js";

const SCAN_POLL_MS = 500;

const ID_RE = /^[A-Za-z0-9._-]{1,36}$/;

/** A TOML [[meters]] block for the configuration file. */
function meterToml({ id, role, transport, unit, model }) {
  const q = (s) => `"${String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return ["[[meters]]", `id = ${q(id)}`, `model = ${q(model)}`, `transport = ${q(transport)}`, `unit = ${unit}`,
    `role = ${q(role)}`, ""].join("\n");
}

export default {
  route: "#/commissioning",
  title: "Commissioning",
  role: "viewer",
  render(root, ctx) {
    const { api, live, ui, can } = ctx;
    const { el, fmt, card, field, confirmAction, toast } = ui;
    const tech = can("technician");
    const timers = new Set();

    root.append(el("div", { class: "page-head" }, el("h1", null, "Commissioning"),
      el("p", { class: "muted" }, "Bring new chargers and meters into service.")));
    if (!tech) {
      root.append(el("p", { class: "notice" }, "You can look, but approving chargers and reading meters needs the technician role."));
    }

    // --- chargers waiting for approval ----------------------------------------------------
    const pendingBody = el("div", { "data-testid": "pending" });
    // Outside pendingBody (rebuilt by polling): the just-approved chargers and a credentials outcome stay put.
    const approvedBox = el("div", { class: "row-actions", "data-testid": "just-approved" });
    const credentialsBox = el("div", { "aria-live": "polite", "data-testid": "credentials-box" });
    const credentialsButton = (id, label = "Set credentials…", testid = `credentials-${id}`) => {
      const b = el("button", { type: "button", class: "btn btn-small", disabled: !tech, "data-testid": testid }, label);
      b.addEventListener("click", () => setCredentials(ctx, id, { button: b, resultBox: credentialsBox }));
      return b;
    };
    const pendingCount = el("span", { class: "count" });
    const refreshPending = el("button", { type: "button", class: "btn btn-small" }, "Refresh");
    root.append(card(el("div", { class: "card-title-row" }, el("h2", null, "Chargers waiting for approval ", pendingCount), refreshPending),
      { class: "card" },
      pendingBody,
      approvedBox,
      credentialsBox,
      el("p", { class: "hint" }, "A charger that is not in the configuration and connects is told to wait (Pending). ",
        "Approve it to accept its next boot; its EVSEs then appear as <id>-1, <id>-2 … ",
        "Then set its credentials (HTTP Basic password, security profile 1/2): a connected charger gets the new ",
        "password pushed, otherwise enter the shown password on the charger. siteedge keeps only its hash; ",
        "a charger's own page has the same action.")));

    let pendingSig = null;
    const loadPending = async () => {
      try {
        const list = itemsOf(await api.get("chargers/registry"));
        const waiting = list.filter((c) => c.waiting_for_approval);
        const others = list.filter((c) => !c.configured && !c.waiting_for_approval);
        // The list is polled: rebuild only on a change, so focus stays on the button a user is on.
        const sig = JSON.stringify([waiting, others]);
        if (sig === pendingSig) return;
        pendingSig = sig;
        pendingCount.textContent = `(${waiting.length})`;
        const row = (c) => {
          const boot = c.boot || {};
          const station = boot.chargingStation || {};
          const vendor = boot.vendor || boot.chargePointVendor || station.vendorName;
          const model = boot.model || boot.chargePointModel || station.model;
          const serial = boot.serial || boot.chargePointSerialNumber || station.serialNumber;
          const fw = boot.firmware || boot.firmwareVersion || station.firmwareVersion;
          const approve = el("button", { type: "button", class: "btn btn-primary btn-small", disabled: !tech,
            "data-testid": `approve-${c.id}` }, "Approve");
          const reject = el("button", { type: "button", class: "btn btn-danger btn-small", disabled: !tech,
            "data-testid": `reject-${c.id}` }, "Reject");
          approve.addEventListener("click", async () => {
            const ok = await confirmAction("Approve charger", `Approve ${c.id} (${[vendor, model].filter(Boolean).join(" ") || "unknown model"}`
              + `${serial ? `, serial ${serial}` : ""})? Its next boot is accepted and it can serve drivers.`, { confirm: "Approve" });
            if (!ok) return;
            const done = await ui.busy(approve, () => api.post(`chargers/${encodeURIComponent(c.id)}/approve`, {}),
              { success: () => `${c.id} approved: it is accepted at its next boot.` });
            if (done) {
              approvedBox.replaceChildren(el("span", null, `${c.id} approved.`), credentialsButton(c.id, `Set credentials of ${c.id}…`,
                `credentials-now-${c.id}`));
              loadPending();
            }
          });
          reject.addEventListener("click", async () => {
            const ok = await confirmAction("Reject charger", `Reject ${c.id}? Its boots are refused until someone approves it.`,
              { confirm: "Reject", danger: true });
            if (!ok) return;
            const done = await ui.busy(reject, () => api.post(`chargers/${encodeURIComponent(c.id)}/reject`, {}),
              { success: () => `${c.id} rejected.` });
            if (done) loadPending();
          });
          return el("article", { class: "pending-card", "data-testid": `pending-${c.id}` },
            el("div", { class: "pending-head" }, el("strong", { class: "mono" }, c.id), ui.pill(c.registration || "waiting", "warn")),
            el("dl", { class: "facts facts-compact" },
              el("div", null, el("dt", null, "Vendor / model"), el("dd", null, [vendor, model].filter(Boolean).join(" ") || "—")),
              el("div", null, el("dt", null, "Serial"), el("dd", null, serial || "—")),
              el("div", null, el("dt", null, "Firmware"), el("dd", null, fw || "—")),
              el("div", null, el("dt", null, "First seen"), el("dd", null, fmt.time(c.first_seen))),
              el("div", null, el("dt", null, "Last boot"), el("dd", null, fmt.time(c.boot_at)))),
            el("div", { class: "row-actions" }, approve, reject));
        };
        ui.fill(pendingBody, 
          waiting.length ? el("div", { class: "pending-list" }, waiting.map(row)) : ui.empty("No charger is waiting."),
          others.length ? el("details", { class: "others" }, el("summary", null, `Decided before (${others.length})`),
            ui.table([{ label: "Charger", key: "id" }, { label: "Registration", key: "registration" },
              { label: "Last boot", render: (c) => fmt.time(c.boot_at) },
              { label: "Credentials", render: (c) => credentialsButton(c.id) }], others)) : null);
      } catch (err) {
        pendingSig = null;
        ui.fill(pendingBody, el("p", { class: "notice notice-bad" }, ui.errorText(err)));
      }
    };
    refreshPending.addEventListener("click", loadPending);
    loadPending();
    const pendingTimer = setInterval(loadPending, 10000); // a new charger can knock at any time
    timers.add(pendingTimer);

    // --- Modbus -------------------------------------------------------------------------
    const busField = field("Bus (transport)", { type: "select", name: "bus", "data-testid": "bus-select" });
    const otherBus = field("Other transport", { name: "transport", placeholder: "tcp://192.168.1.50:502 or rtu:///dev/ttyUSB0?baud=9600",
      autocapitalize: "none", spellcheck: "false", "data-testid": "bus-other" });
    otherBus.wrap.hidden = true;
    const modelField = field("Device model", { type: "select", name: "model", "data-testid": "model-select" });
    const unitField = field("Unit id", { type: "number", name: "unit", value: "1", min: 1, max: 247, inputmode: "numeric",
      "data-testid": "unit-input" });
    const firstField = field("Scan from", { type: "number", name: "first", value: "1", min: 1, max: 247, inputmode: "numeric" });
    const lastField = field("to", { type: "number", name: "last", value: "20", min: 1, max: 247, inputmode: "numeric" });
    const scanButton = el("button", { type: "button", class: "btn", disabled: !tech, "data-testid": "scan" }, "Scan bus");
    const readButton = el("button", { type: "button", class: "btn btn-primary", disabled: !tech, "data-testid": "test-read" }, "Test read");
    const scanBox = el("div", { class: "scan", "data-testid": "scan-result" });
    const readBox = el("div", { class: "read", "data-testid": "read-result" });
    const devicesBox = el("div", { "data-testid": "modbus-devices" });

    busField.input.addEventListener("change", () => { otherBus.wrap.hidden = busField.input.value !== "__other"; });
    const transport = () => (busField.input.value === "__other" ? otherBus.input.value.trim() : busField.input.value);
    const unitValue = () => Number(unitField.input.value);

    root.append(card("Modbus devices", { class: "card" },
      el("div", { class: "form form-grid" }, busField.wrap, otherBus.wrap, modelField.wrap, unitField.wrap),
      el("div", { class: "scan-row" }, firstField.wrap, lastField.wrap, scanButton),
      scanBox,
      el("div", { class: "row-actions" }, readButton),
      readBox),
    card("Configured Modbus devices", { class: "card" }, devicesBox));

    const loadModbus = async () => {
      try {
        const devices = await api.get("modbus/devices");
        const buses = devices.buses || [];
        ui.fill(busField.input, 
          ...buses.map((b) => el("option", { value: b.transport }, `${b.transport} (${(b.devices || []).length} device${(b.devices || []).length === 1 ? "" : "s"})`)),
          el("option", { value: "__other" }, "Other bus…"));
        if (!buses.length) {
          busField.input.value = "__other";
          otherBus.wrap.hidden = false;
        }
        const rows = buses.flatMap((b) => (b.devices || []).map((d) => ({ ...d, transport: b.transport })));
        ui.fill(devicesBox, ui.table([
          { label: "Device", key: "id" },
          { label: "Model", key: "model" },
          { label: "Bus", render: (d) => el("span", { class: "mono small" }, d.transport) },
          { label: "Unit", key: "unit", num: true },
          { label: "State", render: (d) => ui.pill(d.state || "—", d.state === "ok" ? "ok" : d.state === "offline" ? "bad" : "warn") },
          { label: "Last error", render: (d) => d.last_error || "—" },
        ], rows, { emptyText: "No Modbus devices configured." }));
      } catch (err) {
        ui.fill(devicesBox, el("p", { class: "notice notice-bad" }, ui.errorText(err)));
        ui.fill(busField.input, el("option", { value: "__other" }, "Other bus…"));
        otherBus.wrap.hidden = false;
      }
    };
    const loadModels = async () => {
      try {
        const models = itemsOf(await api.get("modbus/models"), "models");
        const group = (kind, label) => el("optgroup", { label },
          models.filter((m) => m.kind === kind).map((m) => el("option", { value: m.name }, `${m.vendor} ${m.model} (${m.name})`)));
        ui.fill(modelField.input, group("meter", "Meters"), group("charger", "Chargers"));
        modelField.input.value = models.some((m) => m.name === "eastron_sdm630") ? "eastron_sdm630" : (models[0]?.name || "");
      } catch (err) {
        ui.fill(modelField.input, el("option", { value: "" }, "device library unavailable"));
        toast(`Device library: ${ui.errorText(err)}`, "warn");
      }
    };
    loadModbus();
    loadModels();

    scanButton.addEventListener("click", async () => {
      const first = Number(firstField.input.value);
      const last = Number(lastField.input.value);
      if (!transport()) return toast("Choose a bus first.", "warn");
      if (!(first >= 1 && last <= 247 && first <= last)) return toast("Unit ids go from 1 to 247, first ≤ last.", "warn");
      const ok = await confirmAction("Scan bus", `Ask unit ids ${first}–${last} on ${transport()} who is there? `
        + "Polling of configured meters on this bus slows down while the scan runs.", { confirm: "Scan" });
      if (!ok) return undefined;
      const job = await ui.busy(scanButton, () => api.post("modbus/scan", { transport: transport(), first, last }), { success: () => null });
      if (!job) return undefined;
      scanButton.disabled = true;
      const progress = el("progress", { max: job.total, value: job.done, "aria-label": "Scan progress" });
      const status = el("p", { class: "hint", role: "status" });
      const found = el("ul", { class: "found" });
      ui.fill(scanBox, progress, status, found);
      const poll = async () => {
        let state;
        try {
          state = await api.get(`modbus/scan/${encodeURIComponent(job.id)}`);
        } catch (err) {
          status.textContent = `Lost track of the scan: ${ui.errorText(err)}`;
          scanButton.disabled = !tech;
          return;
        }
        progress.value = state.done;
        status.textContent = `${state.done} of ${state.total} unit ids asked · ${state.found.length} answered`
          + (state.state === "running" ? "…" : ` · ${state.state}${state.error ? `: ${state.error}` : ""}`);
        ui.fill(found, ...state.found.map((f) => el("li", null,
          el("button", { type: "button", class: "btn btn-small", "data-testid": `use-unit-${f.unit}`,
            onclick: () => { unitField.input.value = String(f.unit); unitField.input.focus(); } }, `Use unit ${f.unit}`),
          el("span", { class: "muted small" }, ` ${f.reply}`))));
        if (state.state === "running") {
          const t = setTimeout(poll, SCAN_POLL_MS);
          timers.add(t);
        } else {
          scanButton.disabled = !tech;
          toast(`Scan ${state.state}: ${state.found.length} device${state.found.length === 1 ? "" : "s"} answered.`,
            state.state === "done" ? "ok" : "warn");
        }
      };
      poll();
      return undefined;
    });

    readButton.addEventListener("click", async () => {
      const unit = unitValue();
      if (!transport()) return toast("Choose a bus first.", "warn");
      if (!(unit >= 1 && unit <= 247)) return toast("The unit id must be 1–247.", "warn");
      if (!modelField.input.value) return toast("Choose a device model.", "warn");
      const body = { transport: transport(), unit, model: modelField.input.value };
      const result = await ui.busy(readButton, () => api.post("modbus/test-read", body, { timeoutMs: 60000 }), {
        success: () => null,
      });
      if (!result) return undefined;
      toast(result.ok ? "Test read: all values plausible." : "Test read finished with problems; see the hints.", result.ok ? "ok" : "warn");
      const values = Object.entries(result.values || {}).map(([name, v]) => ({ name, ...v }));
      const saveBox = saveDevice(body);
      ui.fill(readBox, 
        el("div", { class: "read-head" }, ui.pill(result.ok ? "plausible" : "check hints", result.ok ? "ok" : "warn", { "data-testid": "read-verdict" }),
          el("span", { class: "muted small" }, `${result.model} · unit ${result.unit} · ${result.requests} request${result.requests === 1 ? "" : "s"}`)),
        (result.hints || []).length ? el("ul", { class: "hints" }, result.hints.map((h) => el("li", { class: "notice notice-warn" }, h))) : null,
        (result.errors || []).length ? el("ul", { class: "hints" }, result.errors.map((e) => el("li", { class: "notice notice-bad" }, e))) : null,
        ui.table([
          { label: "Value", render: (v) => el("span", { class: "mono" }, v.name) },
          { label: "Reading", num: true, render: (v) => (typeof v.value === "number" ? `${fmt.num(v.value, Math.abs(v.value) < 100 ? 2 : 1)} ${v.unit || ""}` : "—") },
          { label: "Raw", render: (v) => el("span", { class: "mono small" }, (v.raw || []).join(" ")) },
          { label: "Check", render: (v) => (v.problem ? el("span", { class: "bad-text" }, v.problem, v.hint ? el("span", { class: "hint" }, ` — ${v.hint}`) : null) : ui.pill("ok", "ok")) },
        ], values, { rowAttrs: (v) => ({ "data-value": v.name, class: v.problem ? "row-bad" : null }), emptyText: "No values read." }),
        saveBox);
      return undefined;
    });

    /**
     * Save a test-read device as a [[meters]] entry: POST /api/v1/modbus/devices (technician) appends it
     * to the configuration file (checked, previous file kept as a backup) and the running site polls it at
     * once (`active`); `restart_required` only when other edits of the file still wait for a restart.
     */
    function saveDevice(device) {
      const evses = (live.last?.chargers || []).flatMap((c) => (c.evses || []).map((e) => e.evse_uid));
      const idField = field("Meter id", { name: "meter_id", value: `meter-${device.unit}`, autocapitalize: "none",
        spellcheck: "false", "data-testid": "save-id", hint: "1–36 letters, digits, '.', '_' or '-'." });
      const roleField = field("Measures", { type: "select", name: "role", "data-testid": "save-role",
        options: [["grid", "the grid connection"], ["pv", "solar (PV)"], ["building", "the building"],
          ...evses.map((uid) => [`evse:${uid}`, `EVSE ${uid}`])] });
      const snippet = el("pre", { class: "json", "data-testid": "meter-toml" });
      const entry = () => ({ id: idField.input.value.trim(), model: device.model, transport: device.transport,
        unit: device.unit, role: roleField.input.value });
      const update = () => { snippet.textContent = meterToml(entry()); };
      idField.input.addEventListener("input", update);
      roleField.input.addEventListener("change", update);
      update();
      const saveButton = el("button", { type: "button", class: "btn btn-primary", "data-testid": "save-device", disabled: !tech },
        "Add to configuration");
      const outcome = el("div", { class: "save-outcome" });
      saveButton.addEventListener("click", async () => {
        const meter = entry();
        if (!ID_RE.test(meter.id)) return toast("The meter id must be 1–36 letters, digits, '.', '_' or '-'.", "warn");
        const yes = await confirmAction("Add to configuration", `Add meter ${meter.id} to the configuration file? `
          + "The previous file is kept as a backup. siteedge starts polling the meter at once.",
        { confirm: "Save", content: el("pre", { class: "json" }, meterToml(meter)) });
        if (!yes) return undefined;
        ui.fill(outcome);
        let failed = null;
        const saved = await ui.busy(saveButton, () => api.post("modbus/devices", meter), {
          success: () => `Meter ${meter.id} saved to the configuration.`,
          failure: (err) => { failed = err; return `Meter ${meter.id} not saved: ${ui.errorText(err)}`; },
        });
        const problems = failed?.body?.errors || [];
        if (problems.length) { // every problem with its key, next to the fields it is about
          ui.fill(outcome, el("p", { class: "notice notice-bad", role: "alert", "data-testid": "save-problems" },
            failed.code === "conflict" ? `Not saved: the id ${meter.id} is already taken.` : "Not saved:"),
          el("ul", { class: "hints" }, problems.map((e) => el("li", null, `${e.key}: ${e.reason}`))));
        }
        if (!saved) return undefined;
        saveButton.disabled = true;
        const restart = el("button", { type: "button", class: "btn", "data-testid": "restart" }, "Restart siteedge now");
        restart.addEventListener("click", async () => {
          const ok = await confirmAction("Restart siteedge", "Restart now? Chargers reconnect and the page reloads its data "
            + "within a minute; running sessions continue on the chargers.", { confirm: "Restart", danger: true });
          if (ok) await ui.busy(restart, () => api.post("system/restart", {}), { success: () => "Restarting…" });
        });
        const now = saved.active
          ? `Saved; siteedge polls ${meter.id} now: its values appear on the Meters page within a poll.`
          : `Saved. siteedge starts polling ${meter.id} after a restart.`;
        // A restart is still due when the meter could not start live (a scan holds its line) or
        // when the file holds other edits.
        const who = can("admin") ? "" : ", which an admin does (System page)";
        const later = !saved.restart_required ? ""
          : saved.active ? ` Other configuration changes wait for a restart${who}.`
            : ` A restart is due${who}.`;
        ui.fill(outcome, el("p", { class: "notice", role: "status", "data-testid": "save-done" }, now + later),
          saved.restart_required && can("admin") ? el("div", { class: "row-actions" }, restart) : null);
        return undefined;
      });
      return el("div", { class: "save-box", "data-testid": "save-box" },
        el("h3", null, "Save this device"),
        el("div", { class: "form form-grid" }, idField.wrap, roleField.wrap),
        snippet,
        el("div", { class: "row-actions" }, saveButton),
        outcome);
    }

    return () => {
      for (const t of timers) {
        clearTimeout(t);
        clearInterval(t);
      }
    };
  },
};
