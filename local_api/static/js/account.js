// Account pages outside the app's navigation: first-run setup, login, and the change-password dialog.

import { api, ApiError } from "./api.js";
import { el, field, toast, errorText, confirmAction } from "./ui.js";

const MIN_PASSWORD = 10;

function passwordProblem(password, repeat) {
  if (password.length < MIN_PASSWORD) return `The password needs at least ${MIN_PASSWORD} characters.`;
  if (repeat !== undefined && password !== repeat) return "The two passwords differ.";
  return null;
}

function formError() {
  return el("p", { class: "form-error", role: "alert", "data-testid": "form-error", hidden: true });
}

function showError(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

function when(seconds) {
  const at = new Date(Date.now() + seconds * 1000);
  const mins = Math.ceil(seconds / 60);
  const clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return mins <= 1 ? `in under a minute (${clock})` : `in ${mins} minutes (at ${clock})`;
}

function authShell(root, title, intro, form) {
  root.classList.add("auth-page");
  root.append(el("div", { class: "auth-card" },
    el("div", { class: "auth-logo", "aria-hidden": "true" }, "⚡"),
    el("h1", null, title),
    intro ? el("p", { class: "muted" }, intro) : null,
    form));
}

export const loginPage = {
  route: "#/login",
  title: "Log in",
  role: null,
  nav: false,
  render(root, ctx) {
    const user = field("Username", { name: "username", autocomplete: "username", required: true,
      autocapitalize: "none", spellcheck: "false", "data-testid": "login-username" });
    const pass = field("Password", { name: "password", type: "password", autocomplete: "current-password",
      required: true, "data-testid": "login-password" });
    const error = formError();
    const submit = el("button", { type: "submit", class: "btn btn-primary btn-block", "data-testid": "login-submit" },
      "Log in");
    let lockTimer = null;
    const form = el("form", { class: "form", novalidate: true }, user.wrap, pass.wrap, error, submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(error, "");
      if (!user.input.value.trim() || !pass.input.value) {
        showError(error, "Enter your username and password.");
        return;
      }
      submit.disabled = true;
      submit.classList.add("is-busy");
      try {
        const me = await api.post("auth/login", { username: user.input.value.trim(), password: pass.input.value },
          { quiet401: true });
        toast(`Welcome, ${me.username}.`, "ok");
        await ctx.onLogin(me);
      } catch (err) {
        pass.input.value = "";
        if (err instanceof ApiError && err.status === 429) {
          const seconds = err.retryAfterS ?? 900;
          showError(error, `Too many failed attempts. Login is locked; try again ${when(seconds)}.`);
          error.dataset.kind = "locked";
          clearTimeout(lockTimer);
          submit.disabled = true;
          lockTimer = setTimeout(() => { submit.disabled = false; }, Math.min(seconds, 900) * 1000);
          return;
        }
        error.dataset.kind = "error";
        showError(error, err instanceof ApiError && err.status === 401
          ? "Wrong username or password." : errorText(err));
        pass.input.focus();
      } finally {
        submit.classList.remove("is-busy");
        if (error.dataset.kind !== "locked") submit.disabled = false;
      }
    });
    authShell(root, "Log in", "Sign in to manage this site's chargers and meters.", form);
    user.input.focus();
    return () => clearTimeout(lockTimer);
  },
};

export const setupPage = {
  route: "#/setup",
  title: "First-time setup",
  role: null,
  nav: false,
  render(root, ctx) {
    const code = field("Setup code", { name: "setup_code", autocomplete: "one-time-code", required: true,
      autocapitalize: "characters", spellcheck: "false", placeholder: "XXXX-XXXX-XXXX", "data-testid": "setup-code",
      hint: "Printed in the siteedge log at start and stored in setup-code.txt in the data directory." });
    const user = field("Admin username", { name: "username", autocomplete: "username", required: true,
      autocapitalize: "none", spellcheck: "false", "data-testid": "setup-username" });
    const pass = field("Password", { name: "password", type: "password", autocomplete: "new-password",
      required: true, minlength: MIN_PASSWORD, "data-testid": "setup-password", hint: `At least ${MIN_PASSWORD} characters.` });
    const repeat = field("Password again", { name: "password2", type: "password", autocomplete: "new-password",
      required: true, "data-testid": "setup-password2" });
    const error = formError();
    const submit = el("button", { type: "submit", class: "btn btn-primary btn-block", "data-testid": "setup-submit" },
      "Create admin account");
    const form = el("form", { class: "form", novalidate: true }, code.wrap, user.wrap, pass.wrap, repeat.wrap, error, submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const checks = [
        [code.input, !code.input.value.trim() ? "Enter the setup code." : null],
        [user.input, !user.input.value.trim() ? "Choose a username." : null],
        [pass.input, passwordProblem(pass.input.value)],
        [repeat.input, passwordProblem(pass.input.value, repeat.input.value)],
      ];
      const failed = checks.find(([, why]) => why);
      showError(error, failed ? failed[1] : "");
      if (failed) {
        failed[0].focus(); // straight to the field to fix
        return;
      }
      submit.disabled = true;
      submit.classList.add("is-busy");
      try {
        const me = await api.post("auth/setup", { setup_code: code.input.value.trim(),
          username: user.input.value.trim(), password: pass.input.value }, { quiet401: true });
        toast(`Admin account ${me.username} created.`, "ok");
        await ctx.onLogin(me);
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          // Someone finished setup meanwhile: the normal login applies now.
          ctx.session.setupRequired = false;
          toast("Setup is already complete; please log in.", "info");
          ctx.navigate("#/login");
          return;
        }
        showError(error, errorText(err));
      } finally {
        submit.disabled = false;
        submit.classList.remove("is-busy");
      }
    });
    authShell(root, "Welcome to siteedge",
      "No account exists yet. Create the first administrator with the one-time setup code.", form);
    code.input.focus();
  },
};

/** The change-password dialog (any logged-in user). */
export async function changePassword() {
  const current = field("Current password", { name: "current", type: "password", autocomplete: "current-password" });
  const next = field("New password", { name: "new", type: "password", autocomplete: "new-password",
    hint: `At least ${MIN_PASSWORD} characters.` });
  const again = field("New password again", { name: "again", type: "password", autocomplete: "new-password" });
  const content = el("div", { class: "form" }, current.wrap, next.wrap, again.wrap);
  for (;;) {
    const ok = await confirmAction("Change password", null, { confirm: "Change password", content,
      validate: () => (!current.input.value ? "Enter your current password."
        : passwordProblem(next.input.value, again.input.value)) });
    if (!ok) return;
    try {
      await api.post("auth/password", { current_password: current.input.value, new_password: next.input.value },
        { quiet401: true });
      toast("Password changed.", "ok");
      return;
    } catch (err) {
      toast(err instanceof ApiError && err.status === 401 ? "The current password is wrong." : errorText(err), "bad");
    }
  }
}
