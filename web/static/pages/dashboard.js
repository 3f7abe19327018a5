// The landing page after login: a greeting and a summary of teams, open escalations and spend.

import { api } from "../api.js";
import { badge, clear, errorText, h, money, pending, when } from "../dom.js";

const OPEN = new Set(["pending", "planning", "active", "paused"]);

function stat(title, value, note, href) {
  return h("a.stat", { href }, h("span.stat-title", title), h("strong.stat-value", value), h("span.stat-note", note));
}

export async function dashboard(main, { user }) {
  const body = h("div", pending());
  main.append(h("section.page",
    h("header.page-head", h("h1", `Welcome, ${user.full_name || user.email}`),
      h("a.button.primary", { href: "/teams?create=1" }, "Create Team")),
    body));
  let teams;
  let escalations;
  try {
    [teams, escalations] = await Promise.all([api.get("/api/teams?limit=200"), api.get("/api/escalations")]);
  } catch (err) {
    clear(body).append(h("p.form-error", { role: "alert" }, errorText(err)));
    return;
  }
  const running = teams.filter((t) => OPEN.has(t.status)).length;
  const completed = teams.filter((t) => t.status === "completed").length;
  const spent = teams.reduce((sum, t) => sum + Number(t.spent_usd || 0), 0);
  const budget = teams.reduce((sum, t) => sum + Number(t.budget_usd || 0), 0);
  clear(body).append(
    h("div.stats", { "aria-label": "Summary" },
      stat("Teams", String(teams.length), `${running} running · ${completed} completed`, "/teams"),
      stat("Open escalations", String(escalations.length),
        escalations.length ? "waiting for your decision" : "nothing waits for you", "/escalations"),
      stat("Spend", money(spent), budget ? `of ${money(budget)} budgeted` : "no budgets set", "/teams")),
    h("h2", "Recent teams"),
    teams.length
      ? h("ul.rows", teams.slice(0, 8).map((t) => h("li.row",
        h("a", { href: `/teams/${t.id}` }, t.name || t.goal), badge(t.status), h("span.muted", money(t.spent_usd)),
        when(t.created_at))))
      : h("p.empty", "No teams yet. ", h("a", { href: "/teams?create=1" }, "Create your first team"), "."),
  );
}
