// Escalations: what waits for a human decision, and the form to make it (retry / skip / fail /
// provide input). A budget escalation takes the new budget as its input.

import { api } from "../api.js";
import { badge, clear, errorText, h, label, pending, toast, when } from "../dom.js";
import { approvalForm } from "./tools.js";

const ACTIONS = [
  ["retry", "Retry", "Run it again (for a budget stop, give the new budget as input)"],
  ["skip", "Skip", "Carry on without it"],
  ["fail", "Fail", "Stop here and mark it failed"],
  ["provide_input", "Provide input", "Answer what the agent needs, then continue"],
];

function resolveForm(escalation, onResolved) {
  const id = escalation.id;
  const form = h("form.stack.resolve", { "aria-label": `Resolve escalation ${id}` },
    h("fieldset", h("legend", "Decision"), h("div.radios", ACTIONS.map(([value, text, hint], i) =>
      h("div.radio",
        h("input", { type: "radio", name: "action", value, checked: i === 0, required: true, id: `${value}-${id}`,
          "aria-describedby": `${value}-${id}-hint` }),
        h("label", { for: `${value}-${id}` }, h("strong", text)),
        h("span.muted.small", { id: `${value}-${id}-hint` }, hint))))),
    h("div.field", h("label", { for: `input-${id}` }, "Input"),
      h("input", { id: `input-${id}`, name: "input", maxlength: 50000,
        placeholder: escalation.failure_type === "budget_exceeded" ? "New budget in USD, e.g. 50" : "Optional" })),
    h("div.field", h("label", { for: `note-${id}` }, "Note"),
      h("textarea", { id: `note-${id}`, name: "note", rows: 2, maxlength: 5000, placeholder: "Optional: why" })),
    h("p.form-error", { role: "alert" }),
    h("div.actions", h("button.primary", { type: "submit" }, "Resolve")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { action: data.get("action") };
    for (const key of ["input", "note"]) if (String(data.get(key) || "").trim()) body[key] = String(data.get(key)).trim();
    const error = form.querySelector(".form-error");
    if (body.action === "provide_input" && !body.input) {
      error.textContent = "Give the input the agent needs.";
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.textContent = "";
    try {
      onResolved(await api.post(`/api/escalations/${id}/resolve`, body));
    } catch (err) {
      error.textContent = errorText(err);
      button.disabled = false;
    }
  });
  return form;
}

function item(escalation, { open, onResolved }) {
  return h("article.escalation.panel", { id: escalation.id, testid: "escalation", dataset: { escalationId: escalation.id } },
    h("header.card-head", h("h2", label(escalation.failure_type)), badge(escalation.status)),
    h("p", escalation.reason),
    h("p.muted.small", "Team ", h("a", { href: `/teams/${escalation.team_id}` }, "open team"),
      escalation.task_id ? [" · task ", h("a", { href: `/tasks/${escalation.task_id}` }, "open task")] : "",
      " · raised ", when(escalation.created_at),
      escalation.action ? ` · decided: ${label(escalation.action)}` : ""),
    open ? (escalation.failure_type === "tool_approval" ? approvalForm : resolveForm)(escalation, onResolved) : null);
}

export async function escalations(main) {
  const list = h("div.stack", pending());
  const show = h("select", { id: "esc-status", onchange: () => load() },
    h("option", { value: "open" }, "Open"), h("option", { value: "resolved" }, "Resolved"), h("option", { value: "all" }, "All"));
  main.append(h("section.page",
    h("header.page-head", h("h1", "Escalations"),
      h("div.head-tools", h("label", { for: "esc-status" }, "Show "), show)),
    h("p.muted", "Tasks and teams that stopped and wait for a human decision."),
    list));

  async function load() {
    clear(list).append(pending());
    try {
      const all = await api.get(`/api/escalations?status=${show.value}`);
      clear(list);
      if (!all.length) list.append(h("p.empty", show.value === "open" ? "Nothing waits for you." : "No escalations."));
      for (const escalation of all) {
        const el = item(escalation, {
          open: escalation.status === "open",
          onResolved: () => {
            toast("Escalation resolved");
            el.remove();
            if (!list.children.length) list.append(h("p.empty", "Nothing waits for you."));
          },
        });
        list.append(el);
      }
      if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
    } catch (err) {
      clear(list).append(h("p.form-error", { role: "alert" }, errorText(err)));
    }
  }
  await load();
}
