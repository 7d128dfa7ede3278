// Tokens: "why was this card refused?" — the decision siteedge would make now, and recent decisions.

import { facts, hashQuery, notice, pagedList, withQuery } from "./common.js";

const state = { uid: "" };
const WORDS = { ACCEPT: "Accepted", REJECT: "Refused", ASK: "Asks the eMSP" };

function tone(outcome) {
  const o = String(outcome || "").toUpperCase();
  if (o.startsWith("ACCEPT") || o === "ALLOWED") return "ok";
  if (o === "ASK") return "info";
  return "bad";
}

export default {
  route: "#/tokens",
  title: "Tokens",
  role: "viewer",
  render(root, ctx) {
    const ui = ctx.ui;
    const { el } = ui;
    const uid = ui.field("Card UID", { name: "uid", value: hashQuery().get("uid") || state.uid, required: true,
      autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: 255,
      hint: "As the charger reports it (e.g. 04A2B3C4D5E6F7). Upper or lower case does not matter; separators do.",
      "data-testid": "token-uid" });
    const button = el("button", { type: "submit", class: "btn btn-primary", "data-testid": "token-lookup" }, "Look up");
    const result = el("div", { class: "token-result", "aria-live": "polite" });

    async function lookUp(value) {
      const v = value.trim();
      if (!v) {
        ui.toast("Enter a card UID.", "warn");
        uid.input.focus();
        return;
      }
      state.uid = v;
      result.replaceChildren(el("p", { class: "loading" }, "Looking up…"));
      const r = await ui.busy(button, ctx.api.get(`tokens/${encodeURIComponent(v)}`), { success: () => null });
      if (!r) {
        result.replaceChildren(notice("The look-up failed; see the message above.", "bad"));
        return;
      }
      result.replaceChildren(decisionCard(r, ui));
    }

    const form = el("form", { class: "lookup", role: "search", "aria-label": "Card look-up", onsubmit: (e) => {
      e.preventDefault();
      lookUp(uid.input.value);
    } }, uid.wrap, el("div", { class: "filter-actions" }, button));

    const listBox = el("div", { "data-testid": "authorizations" });
    const list = pagedList(listBox, {
      path: (offset, limit) => withQuery("authorizations", { limit, offset }),
      key: "decisions",
      emptyText: "No card has been presented since siteedge started.",
      renderItems: (items) => ui.table([
        { label: "Time", rowHeader: true, render: (d) => ui.fmt.time(d.at) },
        { label: "Card", render: (d) => el("button", { type: "button", class: "link-button mono",
          title: "Look this card up now", onclick: () => {
            uid.input.value = d.uid;
            lookUp(d.uid);
            uid.input.scrollIntoView({ block: "center" });
          } }, d.uid) },
        { label: "Where", render: (d) => el("span", null, d.evse_uid || d.charger_id || "—",
          d.evse_uid && d.charger_id ? el("span", { class: "sub" }, ` ${d.charger_id}`) : null) },
        { label: "Decision", render: (d) => ui.pill(WORDS[d.outcome] || String(d.outcome).toLowerCase(), tone(d.outcome),
          { "data-outcome": d.outcome }) },
        { label: "Why", key: "reason" },
        { label: "Token", render: (d) => (d.token ? el("span", { class: "mono" }, d.token) : "not in the list") },
      ], items, { rowAttrs: (d) => ({ "data-testid": "decision-row", "data-uid": d.uid }) }),
    });
    const refresh = el("button", { type: "button", class: "btn btn-small", onclick: () => list.reload() }, "Refresh");

    root.append(
      el("div", { class: "page-head" }, el("h1", null, "Tokens"),
        el("p", { class: "lead" }, "Why would a card be accepted or refused here right now?")),
      ui.card("Look up a card", { class: "card" }, form, result),
      ui.card(el("div", { class: "card-title-row" }, el("h2", null, "Recent decisions"), refresh), { class: "card" }, listBox),
    );
    list.load(0);
    if (uid.input.value) lookUp(uid.input.value);
    return undefined;
  },
};

function decisionCard(r, ui) {
  const { el } = ui;
  const t = r.token || null;
  const parts = [
    el("div", { class: "decision", "data-testid": "token-decision", "data-decision": r.decision },
      ui.pill(WORDS[r.decision] || r.decision, tone(r.decision)),
      el("span", { class: "decision-uid mono" }, r.uid)),
    el("p", { class: "decision-reason", "data-testid": "token-reason" }, r.reason),
  ];
  if (r.if_emsp_silent) {
    parts.push(el("p", { class: "notice notice-info", "data-testid": "token-if-silent" },
      `siteedge asks the card's eMSP in real time. If it does not answer in time: `,
      el("strong", null, WORDS[r.if_emsp_silent.decision] || r.if_emsp_silent.decision), ` — ${r.if_emsp_silent.reason}`));
  }
  parts.push(t ? el("details", { class: "token-facts", open: true }, el("summary", null, "The card in the whitelist"), facts([
    ["Partner (eMSP)", t.country_code ? `${t.country_code}*${t.party_id}` : null],
    ["Type", t.type],
    ["Contract", t.contract_id],
    ["Printed number", t.visual_number],
    ["Issuer", t.issuer],
    ["Group", t.group_id],
    ["Valid", t.valid === undefined ? null : t.valid ? "yes" : "no"],
    ["Whitelist", t.whitelist],
    ["Updated", ui.fmt.time(t.last_updated)],
  ])) : el("p", { class: "hint" }, "This card is not in the whitelist siteedge holds."));
  return el("div", { class: `card-inner decision-box decision-${tone(r.decision)}` }, ...parts);
}
