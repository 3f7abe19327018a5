// The public API, as the dashboard uses it. The session (token + user) lives in sessionStorage:
// it survives reloads and deep links in this tab, and is gone when the tab closes. While the page
// is open the token is renewed (POST /api/auth/refresh) before it expires, so an open dashboard
// never drops an active session; a revoked or too old session answers 401 and goes to the login.

const KEY = "gp.session";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || `HTTP ${status}`;
    this.detail = problem.detail || "";
    this.errors = problem.errors || [];
  }
}

export const session = {
  get() {
    try {
      const data = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (data && data.expires_at && Date.parse(data.expires_at) <= Date.now()) return null;
      return data;
    } catch {
      return null;
    }
  },
  set(data) {
    sessionStorage.setItem(KEY, JSON.stringify(data));
    scheduleRenewal(data);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    clearTimeout(renewal);
  },
};

// Renew when a fifth of the token's remaining life (at most 5 minutes) is left; a failed renewal
// other than a 401 (offline, 5xx) tries again in 30 s while the token lasts.
const RENEW_MARGIN_MS = 5 * 60_000;
const RETRY_MS = 30_000;
let renewal = 0;

function scheduleRenewal(data, delay) {
  clearTimeout(renewal);
  if (!data || !data.expires_at) return;
  const left = Date.parse(data.expires_at) - Date.now();
  const wait = delay ?? left - Math.min(RENEW_MARGIN_MS, left / 5);
  if (left > 0) renewal = setTimeout(renew, Math.max(1000, wait));
}

async function renew() {
  const current = session.get();
  if (!current) return;
  try {
    session.set(await request("POST", "/api/auth/refresh", {}));
  } catch (error) {
    if (error.status !== 401) scheduleRenewal(current, RETRY_MS);
  }
}

// A tab coming back from the background (timers there are throttled) renews at once if it is late.
document.addEventListener("visibilitychange", () => {
  const current = session.get();
  if (document.visibilityState !== "visible" || !current) return;
  if (Date.parse(current.expires_at) - Date.now() < RENEW_MARGIN_MS) renew();
});

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export async function request(method, path, body, { signal, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  const current = session.get();
  if (auth && current) headers.Authorization = `Bearer ${current.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, signal, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { title: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data || {});
    if (response.status === 401 && auth && current) {
      session.clear();
      onUnauthorized();
    }
    throw error;
  }
  return data;
}

export const api = {
  get: (path, opts) => request("GET", path, undefined, opts),
  post: (path, body = {}, opts) => request("POST", path, body, opts),

  async login(email, password) {
    const data = await request("POST", "/api/auth/login", { email, password }, { auth: false });
    session.set(data);
    return data.user;
  },
  async register(fields) {
    const data = await request("POST", "/api/auth/register", fields, { auth: false });
    session.set(data);
    return data.user;
  },
  logout() {
    session.clear();
  },
};

scheduleRenewal(session.get()); // a reload keeps renewing the session it found
