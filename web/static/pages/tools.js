// Tools over MCP in the dashboard: a task's tool calls grouped by step (name, arguments, result,
// time), the approve / deny form of a tool_approval escalation, and how tool events read in a timeline.

import { api } from "../api.js";
import { badge, errorText, h, when } from "../dom.js";

function duration(call) {
  if (call.duration_ms !== null && call.duration_ms !== undefined) return `${call.duration_ms} ms`;
  return call.started_at ? "running" : "";
}

function callItem(call) {
  const text = call.status === "succeeded" ? call.result : (call.error || call.result);
  return h("li.tool-call", { testid: "tool-call", dataset: { callId: call.id, status: call.status } },
    h("div.card-head", h("strong", `${call.server}.${call.tool}`), badge(call.status, "tool-call-status")),
    h("pre.tool-arguments", { testid: "tool-arguments" }, JSON.stringify(call.arguments, null, 2)),
    text ? h("pre.output.tool-result", { testid: "tool-result" }, text) : null,
    h("p.muted.small", duration(call),
      call.attempts > 1 ? ` · ${call.attempts} attempts (same call id)` : "",
      Number(call.cost_usd) > 0 ? ` · $${call.cost_usd}` : "",
      call.started_at ? [" · started ", when(call.started_at)] : "",
      call.finished_at ? [" · finished ", when(call.finished_at)] : "",
      call.escalation_id ? [" · ", h("a", { href: `/escalations#${call.escalation_id}` }, "approval")] : ""));
}

/** The task's tool calls, one group per worker step. */
export function toolCallList(calls) {
  if (!calls.length) return h("p.muted", "No tool calls.");
  const steps = new Map();
  for (const call of calls) {
    if (!steps.has(call.step_number)) steps.set(call.step_number, []);
    steps.get(call.step_number).push(call);
  }
  return h("div.stack", [...steps].map(([step, items]) => h("section.tool-step",
    h("h3", `Step ${step}`), h("ol.tool-calls", items.map(callItem)))));
}

/** Loads GET /api/tasks/{id}/tool-calls into `box` (called again on every tool event of the task). */
export async function loadToolCalls(box, taskId) {
  try {
    box.replaceChildren(toolCallList(await api.get(`/api/tasks/${taskId}/tool-calls`)));
  } catch (err) {
    box.replaceChildren(h("p.form-error", { role: "alert" }, errorText(err)));
  }
}

/** The decision on a tool call that waits for a person: its tool and arguments, Approve and Deny. */
export function approvalForm(escalation, onResolved) {
  const call = escalation.tool_call || {};
  const id = escalation.id;
  const error = h("p.form-error", { role: "alert" });
  const note = h("textarea", { id: `note-${id}`, name: "note", rows: 2, maxlength: 5000, placeholder: "Optional: why" });
  async function decide(action, button) {
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    error.textContent = "";
    const body = { action };
    if (note.value.trim()) body.note = note.value.trim();
    try {
      onResolved(await api.post(`/api/escalations/${id}/resolve`, body));
    } catch (err) {
      error.textContent = errorText(err);
      for (const b of form.querySelectorAll("button")) b.disabled = false;
      button.focus();
    }
  }
  const form = h("form.stack.resolve.approval", { "aria-label": `Approve or deny the tool call of escalation ${id}`,
    onsubmit: (event) => event.preventDefault() },
    h("p", "Tool ", h("strong", { testid: "approval-tool" }, `${call.server}.${call.tool}`)),
    h("pre.tool-arguments", { testid: "approval-arguments" }, JSON.stringify(call.arguments || {}, null, 2)),
    h("div.field", h("label", { for: `note-${id}` }, "Note"), note),
    error,
    h("div.actions",
      h("button.primary", { type: "button", onclick: (e) => decide("approve", e.currentTarget) }, "Approve"),
      h("button.danger", { type: "button", onclick: (e) => decide("deny", e.currentTarget) }, "Deny")));
  return form;
}

/** A timeline line for tool events (audit rows and stream events alike), else null. */
export function describeToolEvent(type, data) {
  const name = data && data.server ? `${data.server}.${data.tool}` : "";
  if (type === "tool.call_requested") return `${name} requested (step ${data.step_number})`;
  if (type === "tool.call_started") return `${name} started (attempt ${data.attempt})`;
  if (type === "tool.call_finished") return `${name} ${data.status}${data.duration_ms ? ` in ${data.duration_ms} ms` : ""}`;
  if (type === "tool.call_approved") return "approved by a person";
  return null;
}
