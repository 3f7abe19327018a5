// One task: what was asked (description, acceptance criteria), what came back (output, feedback,
// checkpoints) and, in the History tab, its audit timeline. Refreshes when its team's feed mentions it.

import { api } from "../api.js";
import { badge, clear, debounce, errorText, h, label, pending, toast, when } from "../dom.js";
import { LiveFeed } from "../live.js";
import { connectionBadge, tabs } from "./parts.js";
import { describeToolEvent, loadToolCalls } from "./tools.js";

function describeEvent(event) {
  const p = event.payload || {};
  const tool = describeToolEvent(event.event_type, p);
  if (tool) return tool;
  if (p.from && p.to) return `${label(p.from)} → ${label(p.to)}`;
  if (event.event_type === "llm.call") return `${p.purpose || "call"} on ${p.model} (${p.input_tokens}+${p.output_tokens} tokens)`;
  if (event.event_type === "checkpoint.created") return `step ${p.step_number ?? ""}`.trim();
  if (p.title) return p.title;
  return "";
}

function timeline(events) {
  if (!events.length) return h("p.empty", "No history yet.");
  return h("ol.timeline", events.map((e) => h("li.timeline-item",
    h("span.dot", { "aria-hidden": "true" }),
    h("div", h("strong", e.event_type), " ", h("span", describeEvent(e)),
      h("div.muted.small", `${e.actor_type}${e.actor_type === "agent" ? "" : ` · ${e.actor_id}`} · `, when(e.created_at))))));
}

function checkpointList(items) {
  if (!items.length) return h("p.muted", "No checkpoints yet.");
  return h("ol.checkpoints", items.map((c) => h("li",
    h("details", h("summary", `Step ${c.step_number} · ${c.checkpoint_type}`,
      c.step_output && c.step_output.title ? ` · ${c.step_output.title}` : "", " · ", when(c.created_at)),
    h("pre.output", typeof c.step_output?.content === "string" ? c.step_output.content : JSON.stringify(c.step_output, null, 2))))));
}

export async function task(main, { params }) {
  const taskId = params[0];
  main.append(pending());
  let item;
  try {
    item = await api.get(`/api/tasks/${taskId}`);
  } catch (err) {
    clear(main).append(h("section.page", h("h1", err.status === 404 ? "Task not found" : "Could not load the task"),
      h("p", errorText(err)), h("p", h("a", { href: "/teams" }, "Back to teams"))));
    return;
  }
  const conn = connectionBadge();
  const head = h("div");
  const details = h("div", { id: "panel-details", role: "tabpanel", "aria-labelledby": "tab-details" });
  const history = h("div", { id: "panel-history", role: "tabpanel", "aria-labelledby": "tab-history", hidden: true },
    h("div", { testid: "audit-timeline" }, pending()));
  const crumbTeam = h("a", { href: `/teams/${item.team_id}` }, "Team");
  let current = "details";

  clear(main).append(h("section.page.task-page",
    h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "/teams" }, "Teams"), " / ", crumbTeam, " / task"),
    head,
    tabs([["details", "Details"], ["history", "History"]], (id) => {
      current = id;
      details.hidden = id !== "details";
      history.hidden = id !== "history";
      if (id === "history") loadHistory();
    }),
    details, history));

  function render() {
    head.replaceChildren(h("header.page-head",
      h("div", h("h1", { testid: "task-title" }, item.title),
        h("p.muted", `Revisions ${item.revision_count} of ${item.max_revisions} · started `, when(item.started_at) || "not yet",
          item.completion_time ? [" · completed ", when(item.completion_time)] : "")),
      h("div.head-tools", conn.el, badge(item.status, "status"),
        ["failed", "escalated"].includes(item.status)
          ? h("button.primary", { type: "button", onclick: retry }, "Retry") : null)));
    details.replaceChildren(
      h("section.panel", h("h2", "Description"), h("p.prose", { testid: "task-description" }, item.description || "—")),
      h("section.panel", h("h2", "Acceptance criteria"),
        h("ul.criteria", { testid: "acceptance-criteria" }, (item.acceptance_criteria || []).map((c) => h("li", c)))),
      h("section.panel", h("h2", "Output"),
        item.output ? h("pre.output", { testid: "task-output" }, item.output)
          : h("p.muted", { testid: "task-output" }, "No output yet.")),
      h("section.panel", h("h2", "Revision feedback"),
        h("p.prose", { testid: "task-feedback" }, item.feedback || "No feedback: the reviewer has not asked for changes.")),
      h("section.panel", h("h2", "Tool calls"), h("div", { testid: "tool-calls" }, pending())),
      h("section.panel", h("h2", "Checkpoints"), h("div", { testid: "checkpoints" }, pending())));
    loadToolCalls(details.querySelector("[data-testid=tool-calls]"), taskId);
    api.get(`/api/tasks/${taskId}/checkpoints`).then((list) => {
      details.querySelector("[data-testid=checkpoints]").replaceChildren(checkpointList(list));
    }).catch(() => {});
  }

  async function loadHistory() {
    const box = history.querySelector("[data-testid=audit-timeline]");
    try {
      box.replaceChildren(timeline(await api.get(`/api/tasks/${taskId}/history`)));
    } catch (err) {
      box.replaceChildren(h("p.form-error", { role: "alert" }, errorText(err)));
    }
  }

  async function retry(event) {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await api.post(`/api/tasks/${taskId}/retry`);
      toast("Task sent back to work");
      refresh();
    } catch (err) {
      toast(errorText(err), "error");
      button.disabled = false;
    }
  }

  const refresh = debounce(async () => {
    try {
      item = await api.get(`/api/tasks/${taskId}`);
      render();
      if (current === "history") loadHistory();
    } catch { /* kept as is until the next event */ }
  }, 300);

  render();
  api.get(`/api/teams/${item.team_id}`).then((t) => { crumbTeam.textContent = t.name; }).catch(() => {});
  const feed = new LiveFeed({
    teams: [item.team_id], onStatus: conn.set, onEvent: (e) => { if (e.task_id === taskId) refresh(); },
  }).start();
  return () => {
    feed.stop();
    refresh.cancel();
  };
}
