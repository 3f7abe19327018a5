// Building DOM without innerHTML (every string is text, so nothing from the API can inject markup),
// and the few formatters every page shares.

const SVG_NS = "http://www.w3.org/2000/svg";

function assign(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "testid") el.setAttribute("data-testid", value);
    else if (key in el && !(el instanceof SVGElement) && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("a.link", {href}, "text", child...): an element with props and children. */
export function h(tag, props, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (props && (props instanceof Node || typeof props !== "object" || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  assign(el, props);
  if (classes.length && props && props.class) el.className = `${classes.join(" ")} ${props.class}`;
  append(el, children);
  return el;
}

/** svg("rect", {attrs}, child...), or svg("title", "text") (as h(), props may be left out). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs && (attrs instanceof Node || typeof attrs !== "object" || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function money(value) {
  const n = Number(value || 0);
  if (!Number.isFinite(n)) return "—";
  return `$${n.toFixed(n !== 0 && Math.abs(n) < 1 ? 4 : 2)}`;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toISOString() }, date.toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }));
}

export function label(status) {
  return String(status || "").replaceAll("_", " ");
}

/** The raw status, as tests and API users know it; colour comes from the class. */
export function badge(status, testid = "status-badge") {
  return h("span.badge", { class: `s-${status}`, testid }, status);
}

export function toast(message, kind = "ok") {
  const host = document.getElementById("toasts");
  const item = h("div.toast", { class: kind, role: kind === "error" ? "alert" : null }, message);
  host.append(item);
  setTimeout(() => item.remove(), 6000);
}

export function errorText(err) {
  if (!err) return "Something went wrong";
  if (err.errors && err.errors.length) {
    return `${err.title}: ${err.errors.map((e) => `${(e.loc || []).slice(-1)[0] ?? ""} ${e.msg}`.trim()).join("; ")}`;
  }
  if (err instanceof TypeError) return "The server cannot be reached; check your connection";
  if (err.detail && err.title && err.status !== 401) return `${err.title}: ${err.detail}`;
  return err.title || err.message || String(err);
}

/** A "loading / failed" placeholder the page replaces once data arrives. */
export function pending(text = "Loading…") {
  return h("p.loading", { role: "status" }, text);
}

export function debounce(fn, ms) {
  let timer = null;
  const run = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}
