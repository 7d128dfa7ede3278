// The shell: hash router, auth gate, role-aware navigation, live indicator and user menu.

import { api, ApiError } from "./api.js";
import { live } from "./live.js";
import * as ui from "./ui.js";
import pages from "./pages/index.js";
import { changePassword, loginPage, setupPage } from "./account.js";

const { el, fmt, ROLE_RANK } = ui;
const byId = (id) => document.getElementById(id);

const session = {
  user: null, // {username, role}
  authEnabled: true, // false on a box without accounts (older API): everyone acts as admin
  setupRequired: false,
  wanted: "#/", // where to go after login
};

let cleanup = null;
let renderToken = 0;

/** Compile "#/chargers/:id" into a matcher. */
function compile(route) {
  const parts = route.replace(/^#\/?/, "").split("/").filter(Boolean);
  return (hash) => {
    const have = hash.replace(/^#\/?/, "").split("?")[0].split("/").filter(Boolean);
    if (have.length !== parts.length) return null;
    const params = {};
    for (let i = 0; i < parts.length; i += 1) {
      if (parts[i].startsWith(":")) params[parts[i].slice(1)] = decodeURIComponent(have[i]);
      else if (parts[i] !== have[i]) return null;
    }
    return params;
  };
}

const routes = pages.map((page) => ({ page, match: compile(page.route) }));
const special = [
  { page: loginPage, match: compile("#/login") },
  { page: setupPage, match: compile("#/setup") },
];

function can(role) {
  if (!session.user) return false;
  return (ROLE_RANK[session.user.role] || 0) >= (ROLE_RANK[role] || 0);
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function loadAuthState() {
  try {
    const state = await api.get("auth/state", { quiet401: true });
    session.authEnabled = true;
    session.setupRequired = Boolean(state.setup_required);
    session.user = state.user || null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      // A box without the accounts API: no login exists to protect anything.
      session.authEnabled = false;
      session.setupRequired = false;
      session.user = { username: null, role: "admin" };
    } else {
      throw err;
    }
  }
}

function renderNav(activeRoute) {
  const nav = byId("nav");
  const list = byId("nav-list");
  const signedIn = Boolean(session.user);
  nav.hidden = !signedIn;
  document.body.dataset.auth = signedIn ? "in" : "out";
  if (!signedIn) {
    list.replaceChildren();
    return;
  }
  const items = pages.filter((p) => p.nav !== false && !p.route.includes(":") && can(p.role || "viewer"));
  ui.fill(list, ...items.map((p) => {
    const current = p.route === activeRoute || (p.route === "#/chargers" && activeRoute.startsWith("#/chargers"));
    return el("li", null, el("a", { href: p.route, "aria-current": current ? "page" : null,
      "data-testid": `nav-${p.route.replace(/^#\/?/, "") || "dashboard"}` }, p.navTitle || p.title));
  }));
}

function renderUser() {
  const box = byId("user");
  const u = session.user;
  box.hidden = !u || !session.authEnabled;
  if (!u) return;
  byId("user-name").textContent = u.username || "";
  byId("user-menu-name").textContent = u.username || "";
  byId("user-initial").textContent = (u.username || "?").slice(0, 1).toUpperCase();
  byId("user-role").textContent = u.role;
  document.body.dataset.role = u.role;
}

function closeUserMenu() {
  byId("user-menu").hidden = true;
  byId("user-button").setAttribute("aria-expanded", "false");
}

function setupUserMenu() {
  const button = byId("user-button");
  const menu = byId("user-menu");
  button.addEventListener("click", () => {
    const open = menu.hidden;
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("button").focus();
  });
  document.addEventListener("click", (event) => {
    if (!byId("user").contains(event.target)) closeUserMenu();
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      closeUserMenu();
      button.focus();
    }
  });
  byId("logout").addEventListener("click", async () => {
    closeUserMenu();
    try {
      await api.post("auth/logout", undefined, { quiet401: true });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        ui.toast(ui.errorText(err), "bad");
        return;
      }
    }
    session.user = null;
    live.stop();
    ui.toast("Logged out.", "info");
    navigate("#/login");
  });
  byId("change-password").addEventListener("click", () => {
    closeUserMenu();
    changePassword(api, ui);
  });
}

function setupLiveIndicator() {
  const box = byId("live");
  const text = box.querySelector(".live-text");
  const labels = { idle: "offline", connecting: "connecting", live: "live", reconnecting: "reconnecting" };
  live.onState((state) => {
    box.dataset.state = state;
    text.textContent = labels[state] || state;
    box.title = state === "live" ? "Receiving live updates" : "Not receiving live updates: values may be old";
    document.body.dataset.live = state;
  });
  live.subscribe((h) => {
    const site = h.site || {};
    byId("site-name").textContent = site.name || site.location_id || "";
    byId("version").textContent = h.version ? `siteedge ${h.version}` : "";
    byId("snapshot-time").textContent = h.time ? `updated ${fmt.clock(h.time)}` : "";
  });
}

async function route() {
  const token = ++renderToken;
  const hash = location.hash || "#/";
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
    cleanup = null;
  }
  const view = byId("view");

  // Auth gate.
  if (session.setupRequired && hash !== "#/setup") return navigate("#/setup");
  if (!session.setupRequired && hash === "#/setup") return navigate(session.user ? "#/" : "#/login");
  if (!session.user && !session.setupRequired && hash !== "#/login") {
    session.wanted = hash;
    return navigate("#/login");
  }
  if (session.user && hash === "#/login") return navigate("#/");

  let found = null;
  for (const r of [...special, ...routes]) {
    const params = r.match(hash);
    if (params) {
      found = { page: r.page, params };
      break;
    }
  }
  renderNav(found ? found.page.route : hash);
  renderUser();
  if (session.user) live.start();

  view.setAttribute("aria-busy", "true");
  view.replaceChildren();
  if (!found) {
    document.title = "Not found · siteedge";
    view.append(el("div", { class: "page" }, el("h1", null, "Page not found"),
      el("p", null, "There is no page at ", el("code", null, hash), ". "), el("a", { href: "#/" }, "Go to the dashboard")));
    view.removeAttribute("aria-busy");
    return undefined;
  }
  const { page, params } = found;
  if (page.role && !can(page.role)) {
    view.append(el("div", { class: "page" }, el("h1", null, page.title),
      el("p", { class: "notice notice-warn" }, `This page needs the ${page.role} role; you are ${session.user.role}.`)));
    view.removeAttribute("aria-busy");
    return undefined;
  }
  document.title = `${page.title} · siteedge`;
  const root = el("div", { class: `page page-${(page.route.replace(/^#\/?/, "").split("/")[0]) || "dashboard"}` });
  view.append(root);
  const ctx = {
    api, live, ui, user: session.user, params, can, navigate,
    session,
    onLogin: async (user) => {
      session.user = user;
      session.setupRequired = false;
      const wanted = session.wanted && !["#/login", "#/setup"].includes(session.wanted) ? session.wanted : "#/";
      session.wanted = "#/";
      navigate(wanted);
    },
  };
  try {
    const result = await page.render(root, ctx);
    if (token !== renderToken) {
      if (typeof result === "function") result();
      return undefined;
    }
    cleanup = typeof result === "function" ? result : null;
  } catch (err) {
    console.error(err);
    if (token === renderToken) {
      ui.fill(root, el("h1", null, page.title),
        el("p", { class: "notice notice-bad", role: "alert" }, `This page could not load: ${ui.errorText(err)}`),
        el("button", { type: "button", class: "btn", onclick: () => route() }, "Try again"));
    }
  }
  view.removeAttribute("aria-busy");
  // Keyboard and screen-reader users land on the new page, not on the link they pressed.
  if (document.activeElement === document.body || !view.contains(document.activeElement)) {
    const heading = root.querySelector("h1");
    if (heading && !page.noFocus) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }
  return undefined;
}

async function boot() {
  // The skip link must not change the hash: that is the router's.
  byId("skip").addEventListener("click", (event) => {
    event.preventDefault();
    byId("view").focus();
  });
  setupUserMenu();
  setupLiveIndicator();
  api.onUnauthenticated = () => {
    if (!session.authEnabled || !session.user) return;
    session.user = null;
    live.stop();
    ui.toast("Your session ended. Please log in again.", "warn");
    session.wanted = location.hash;
    navigate("#/login");
  };
  live.onRefused = async () => {
    // The stream only says "closed"; the auth state says whether it was the session that ended.
    if (!session.authEnabled || !session.user) return;
    try {
      const state = await api.get("auth/state", { quiet401: true });
      if (!state.user) api.onUnauthenticated();
    } catch {
      // The box is unreachable: the live indicator already says so.
    }
  };
  window.addEventListener("hashchange", () => route());
  for (;;) {
    try {
      await loadAuthState();
      break;
    } catch (err) {
      byId("view").replaceChildren(el("div", { class: "page" }, el("h1", null, "Cannot reach the box"),
        el("p", { class: "notice notice-bad" }, ui.errorText(err)), el("p", null, "Retrying…")));
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
  await route();
}

boot();
