// The public API, as the dashboard uses it. The session (token + user) lives in sessionStorage:
// it survives reloads and deep links in this tab, and is gone when the tab closes.

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
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

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
