// Teams: cards with live status badges, and the "Create Team" form.

import { api } from "../api.js";
import { badge, clear, debounce, errorText, h, money, pending, toast, when } from "../dom.js";
import { LiveFeed } from "../live.js";
import { connectionBadge } from "./parts.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** The whole card opens the team: its title link is stretched over the card (keyboard: the link). */
function card(team) {
  return h("article.team-card", { dataset: { teamId: team.id } },
    h("header.card-head", h("h2", h("a", { href: `/teams/${team.id}` }, team.name || "Untitled team")), badge(team.status)),
    h("p.goal", team.goal),
    h("footer.card-foot",
      h("span", h("span.muted", "Spent "), h("span.spent", money(team.spent_usd)),
        team.budget_usd != null ? h("span.muted", ` of ${money(team.budget_usd)}`) : null),
      when(team.created_at)));
}

function createForm(onCreated, onCancel) {
  const form = h("form.panel.stack", { "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New team"),
    h("div.field", h("label", { for: "goal" }, "Goal"),
      h("textarea", { id: "goal", name: "goal", rows: 3, required: true, maxlength: 10000,
        placeholder: "What should the team achieve? e.g. Build a web scraper for product prices" })),
    h("div.grid3",
      h("div.field", h("label", { for: "team-name" }, "Name (optional)"), h("input", { id: "team-name", name: "name", maxlength: 200 })),
      h("div.field", h("label", { for: "budget" }, "Budget in USD (optional)"),
        h("input", { id: "budget", name: "budget_usd", type: "number", min: "0", step: "0.01", inputmode: "decimal" })),
      h("div.field", h("label", { for: "workers" }, "Workers"),
        h("input", { id: "workers", name: "workers", type: "number", min: "1", max: "12", value: "3" }))),
    h("label.check", h("input", { type: "checkbox", name: "auto_start" }), "Start right away"),
    h("p.form-error", { role: "alert" }),
    h("div.actions", h("button.primary", { type: "submit" }, "Create Team"),
      h("button", { type: "button", onclick: onCancel }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const goal = String(data.get("goal") || "").trim();
    const error = form.querySelector(".form-error");
    if (!goal) {
      error.textContent = "Describe the goal of the team.";
      form.goal.focus();
      return;
    }
    const body = { goal, workers: Number(data.get("workers") || 3), auto_start: data.get("auto_start") === "on" };
    if (String(data.get("name") || "").trim()) body.name = String(data.get("name")).trim();
    if (String(data.get("budget_usd") || "").trim()) body.budget_usd = Number(data.get("budget_usd"));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.textContent = "";
    try {
      const team = await api.post("/api/teams", body);
      form.reset();
      onCreated(team);
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function teams(main, { query }) {
  const list = h("div.cards", { "aria-live": "polite" }, pending());
  const status = connectionBadge();
  const formSlot = h("div");
  const createButton = h("button.primary", { type: "button", onclick: () => toggleForm(true) }, "Create Team");
  const tools = h("div.head-tools", status.el, createButton);
  main.append(h("section.page", h("header.page-head", h("h1", "Teams"), tools), formSlot, list));

  const cards = new Map();
  let feed = null;

  // While the form is open its submit is the one "Create Team" button: the header one leaves the DOM.
  function toggleForm(open) {
    clear(formSlot);
    if (!open) {
      tools.append(createButton);
      return createButton.focus();
    }
    createButton.remove();
    const form = createForm((team) => {
      toast("Team created successfully");
      show([team, ...[...cards.values()].map((c) => c.team)]);
      toggleForm(false);
      if (location.search) history.replaceState(null, "", "/teams");
    }, () => toggleForm(false));
    formSlot.append(form);
    form.querySelector("textarea").focus();
  }

  function show(all) {
    clear(list);
    cards.clear();
    if (!all.length) list.append(h("p.empty", "No teams yet. Create one to get started."));
    for (const team of all) {
      const el = card(team);
      cards.set(team.id, { team, el });
      list.append(el);
      if (feed && !TERMINAL.has(team.status)) feed.watch(team.id);
    }
  }

  async function load() {
    const all = await api.get("/api/teams?limit=100");
    show(all);
  }
  const reload = debounce(() => load().catch(() => {}), 300);

  function apply(event) {
    const entry = cards.get(event.team_id);
    if (!entry) return reload();
    if (event.type === "team.status_changed" && event.data?.to) {
      entry.team.status = event.data.to;
      entry.el.querySelector("[data-testid=status-badge]").replaceWith(badge(event.data.to));
    } else if (event.type === "cost.recorded" && event.data?.spent_usd) {
      entry.team.spent_usd = event.data.spent_usd;
      entry.el.querySelector(".spent").textContent = money(event.data.spent_usd);
    }
  }

  try {
    await load();
  } catch (err) {
    clear(list).append(h("p.form-error", { role: "alert" }, errorText(err)));
  }
  if (query.get("create")) toggleForm(true);
  feed = new LiveFeed({
    teams: [...cards.values()].filter((c) => !TERMINAL.has(c.team.status)).map((c) => c.team.id),
    backfill: false, onEvent: apply, onStatus: status.set, onResync: load, pollMs: 2000,
  }).start();
  return () => feed.stop();
}
