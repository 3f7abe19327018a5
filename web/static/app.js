// The shell: client-side routing (History API, so deep links and reloads land on the same page),
// the top bar with its user menu, and the login guard.

import { api, session, whenUnauthorized } from "./api.js";
import { clear, errorText, h } from "./dom.js";

const routes = [
  { path: /^\/login\/?$/, page: () => import("./pages/auth.js").then((m) => m.login), public: true },
  { path: /^\/register\/?$/, page: () => import("./pages/auth.js").then((m) => m.register), public: true },
  { path: /^\/dashboard\/?$/, page: () => import("./pages/dashboard.js").then((m) => m.dashboard) },
  { path: /^\/teams\/?$/, page: () => import("./pages/teams.js").then((m) => m.teams) },
  { path: /^\/teams\/([^/]+)\/?$/, page: () => import("./pages/team.js").then((m) => m.team) },
  { path: /^\/tasks\/([^/]+)\/?$/, page: () => import("./pages/task.js").then((m) => m.task) },
  { path: /^\/escalations\/?$/, page: () => import("./pages/escalations.js").then((m) => m.escalations) },
];

const NAV = [["/dashboard", "Dashboard"], ["/teams", "Teams"], ["/escalations", "Escalations"]];

let cleanup = null;
let generation = 0;
let closeMenu = () => {};
document.addEventListener("click", (e) => closeMenu(e));

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

function topbar(user) {
  const bar = document.getElementById("topbar");
  clear(bar);
  bar.hidden = !user;
  if (!user) return;
  const here = location.pathname;
  const menu = h("div.menu", { role: "menu", hidden: true, id: "user-menu-items" },
    h("p.menu-who", user.email),
    h("button.menu-item", { type: "button", role: "menuitem", onclick: logout }, "Logout"));
  const toggle = h("button.user-toggle", {
    type: "button", "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": "user-menu-items",
    onclick: () => setMenu(menu.hidden),
  }, h("span.avatar", { "aria-hidden": "true" }, (user.full_name || user.email || "?").slice(0, 1).toUpperCase()),
  h("span", user.full_name || user.email));
  function setMenu(open) {
    menu.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("button").focus();
  }
  const box = h("div.user-menu", { testid: "user-menu", onkeydown: (e) => {
    if (e.key === "Escape") { setMenu(false); toggle.focus(); }
  } }, toggle, menu);
  closeMenu = (e) => { if (!box.contains(e.target)) setMenu(false); };
  bar.append(
    h("a.brand", { href: "/dashboard" }, h("img", { src: document.querySelector("link[rel=icon]").href, alt: "", width: 24, height: 24 }), "Ghost Pirates"),
    h("nav", { "aria-label": "Main" }, h("ul", NAV.map(([href, text]) => h("li", h("a", {
      href, "aria-current": here === href || here.startsWith(`${href}/`) || (href === "/teams" && here.startsWith("/tasks/")) ? "page" : null,
    }, text))))),
    box,
  );
}

function logout() {
  api.logout();
  navigate("/login");
}

async function render() {
  const mine = ++generation;
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
    cleanup = null;
  }
  const main = document.getElementById("main");
  let path = location.pathname;
  const user = session.get()?.user;
  if (path === "/" || path === "") {
    return navigate(user ? "/dashboard" : "/login", { replace: true });
  }
  const route = routes.find((r) => r.path.test(path));
  if (route && !route.public && !user) {
    const next = encodeURIComponent(location.pathname + location.search);
    return navigate(`/login?next=${next}`, { replace: true });
  }
  if (route && route.public && user) return navigate("/dashboard", { replace: true });
  topbar(route && !route.public ? user : null);
  if (!route) {
    clear(main).append(h("section.page",
      h("h1", "Page not found"), h("p", "There is nothing at ", h("code", path), "."),
      h("p", h("a", { href: "/dashboard" }, "Back to the dashboard"))));
    return;
  }
  performance.mark("gp:route-start");
  let result;
  try {
    const page = await route.page();
    if (mine !== generation) return;
    const params = path.match(route.path).slice(1).map(decodeURIComponent);
    clear(main);
    result = await page(main, { params, user, navigate, query: new URLSearchParams(location.search) });
  } catch (err) {
    console.error(err);
    if (mine !== generation) return;
    clear(main).append(h("section.page", h("h1", "Something went wrong"),
      h("p.form-error", { role: "alert" }, errorText(err)),
      h("p", h("button", { type: "button", onclick: () => render() }, "Try again"))));
    return;
  }
  if (mine !== generation) {
    if (typeof result === "function") result();
    return;
  }
  cleanup = typeof result === "function" ? result : null;
  performance.mark("gp:page-ready");
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · Ghost Pirates`;
}

// Same-origin links route in the page; modified clicks (new tab etc.) keep browser behaviour.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
    || event.altKey || link.target || link.origin !== location.origin || link.hasAttribute("download")) return;
  if (link.pathname + link.search === location.pathname + location.search && link.hash) return; // in-page anchor
  event.preventDefault();
  if (link.href !== location.href) navigate(link.pathname + link.search + link.hash);
});

addEventListener("popstate", render);
whenUnauthorized(() => navigate(`/login?next=${encodeURIComponent(location.pathname)}`, { replace: true }));
render();
