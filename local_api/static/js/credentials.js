// "Set credentials" for a charger (HTTP Basic password, security profile 1/2): generate or enter, confirm,
// then show the outcome; a generated (or to-be-entered) password is shown once with a copy button.

const RULES = "OCPP 1.6: 32 to 40 hexadecimal characters (the AuthorizationKey, 16 to 20 bytes). "
  + "OCPP 2.0.1: 16 to 40 characters (letters, digits and * - _ = : + | @ .).";

/**
 * Ask how to set the charger's password, send it, and put the outcome into `resultBox`.
 * Resolves to the API's answer, or undefined if cancelled or refused (already reported).
 */
export async function setCredentials(ctx, chargerId, { button, resultBox }) {
  const { ui, api } = ctx;
  const { el, field } = ui;
  const mode = field("Password", { type: "select", name: "mode", value: "generate", "data-testid": "credentials-mode",
    options: [["generate", "Generate a strong password"], ["enter", "Enter a password"]] });
  const given = field("New password", { name: "password", autocomplete: "off", spellcheck: "false", autocapitalize: "none",
    maxlength: 40, class: "mono", "data-testid": "credentials-password", hint: RULES });
  given.wrap.hidden = true;
  mode.input.addEventListener("change", () => { given.wrap.hidden = mode.input.value !== "enter"; });
  const content = el("div", { class: "form" }, mode.wrap, given.wrap);
  const ok = await ui.confirmAction(`Set credentials of ${chargerId}`,
    "If the charger is connected it gets the new password first (and its old one works until it reconnects with "
    + "the new one); otherwise siteedge requires the new password from its next connection.",
    { confirm: "Set credentials", danger: true, content,
      validate: () => (mode.input.value === "enter" && given.input.value.length < 16 ? "Enter at least 16 characters." : null) });
  if (!ok) return undefined;
  const body = mode.input.value === "generate" ? { generate: true } : { password: given.input.value };
  given.input.value = ""; // not kept in the page
  resultBox.replaceChildren();
  const r = await ui.busy(button, () => api.post(`chargers/${encodeURIComponent(chargerId)}/credentials`, body), {
    success: (res) => (res.path === "pushed" ? `${chargerId} accepted its new password.`
      : `${chargerId}: new password stored; enter it on the charger.`),
  });
  if (!r) return undefined;
  const facts = el("p", null, el("strong", null, r.path === "pushed" ? "Sent to the charger and accepted. " : "Stored, not sent: the charger is not connected. "),
    r.detail || "", ` Security profile ${r.security_profile}.`);
  if (!r.password) {
    resultBox.replaceChildren(el("div", { class: "notice notice-ok", "data-testid": "credentials-result" }, facts));
    return r;
  }
  const secret = el("input", { type: "text", readonly: true, value: r.password, class: "mono secret",
    "data-testid": "new-charger-password", "aria-label": `New password of ${chargerId}` });
  resultBox.replaceChildren(el("div", { class: "notice notice-warn token-once", "data-testid": "credentials-result" }, facts,
    el("p", null, "Copy it now: it is shown only once, siteedge keeps only its hash."),
    el("div", { class: "copy-row" }, secret,
      el("button", { type: "button", class: "btn", "data-testid": "copy-charger-password", onclick: () => ui.copyField(secret, "Password") }, "Copy")),
    el("p", { class: "hint" }, `HTTP Basic user name: ${chargerId}`)));
  secret.focus();
  secret.select();
  return r;
}
