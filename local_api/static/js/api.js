// REST client for /api/v1: JSON in and out, CSRF header on changes, typed errors, offline-aware.

const PREFIX = "/api/v1/";
// A phone in a car park may sit on one bar of signal: generous, but never hang forever.
const DEFAULT_TIMEOUT_MS = 30000;

/** An error answer of the API (or no answer at all: status 0, code "network"). */
export class ApiError extends Error {
  constructor(status, code, detail, body = null, retryAfterS = null) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
    this.retryAfterS = retryAfterS;
  }
}

const CODE_OF_STATUS = {
  400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict",
  422: "invalid", 429: "locked_out", 503: "unavailable",
};

function url(path) {
  if (path.startsWith("/")) return path;
  return PREFIX + path;
}

/** The value of a cookie readable by scripts (the CSRF token), "" if absent. */
export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** A readable sentence from a FastAPI/contract error body. */
function detailOf(body, status, statusText) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  }
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  return `${status} ${statusText || "error"}`;
}

async function request(method, path, body, { timeoutMs = DEFAULT_TIMEOUT_MS, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("siteedge_csrf");
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  init.signal = abort.signal;
  let res;
  try {
    res = await fetch(url(path), init);
  } catch (err) {
    const why = abort.signal.aborted
      ? "The box did not answer in time. Check the connection and try again."
      : "Cannot reach the box. Check the Wi-Fi or network connection.";
    throw new ApiError(0, "network", why);
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  let data = null;
  try {
    data = type.includes("json") ? await res.json() : await res.text();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const code = (data && data.code) || CODE_OF_STATUS[res.status] || "error";
    const retry = (data && data.retry_after_s) ?? Number(res.headers.get("retry-after") || NaN);
    const error = new ApiError(res.status, code, detailOf(data, res.status, res.statusText), data,
      Number.isFinite(retry) ? retry : null);
    if (res.status === 401 && !quiet401 && api.onUnauthenticated) api.onUnauthenticated(error);
    throw error;
  }
  return data;
}

/** Items of a list answer, whether paginated ({items, next_offset}) or a bare array. */
export function itemsOf(answer, key) {
  if (Array.isArray(answer)) return answer;
  if (answer && Array.isArray(answer.items)) return answer.items;
  if (answer && key && Array.isArray(answer[key])) return answer[key];
  return [];
}

export const api = {
  /** Called once per 401 (session expired or logged out elsewhere); main.js sends the user to #/login. */
  onUnauthenticated: null,
  get: (path, opts) => request("GET", path, undefined, opts),
  post: (path, body, opts) => request("POST", path, body === undefined ? {} : body, opts),
  put: (path, body, opts) => request("PUT", path, body, opts),
  patch: (path, body, opts) => request("PATCH", path, body, opts),
  del: (path, opts) => request("DELETE", path, undefined, opts),
  /** Fetch a file with the session and hand it to the browser as a download. */
  async download(path, filename) {
    const res = await fetch(url(path), { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch { data = null; }
      if (res.status === 401 && api.onUnauthenticated) api.onUnauthenticated();
      throw new ApiError(res.status, (data && data.code) || CODE_OF_STATUS[res.status] || "error",
        detailOf(data, res.status, res.statusText), data);
    }
    const blob = await res.blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  },
};
