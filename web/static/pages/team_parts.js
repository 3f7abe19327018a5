// Rendering pieces of the team page: a task card, an agent message, the cost chart.

import { badge, h, money, svg, when } from "../dom.js";

export function taskCard(task, members) {
  const member = task.assigned_to ? members.get(task.assigned_to) : null;
  return h("li.task-card", { dataset: { taskId: task.id, status: task.status } },
    h("div.card-head", h("a.task-title", { href: `/tasks/${task.id}` }, task.title), badge(task.status, "status")),
    h("p.muted.task-meta",
      member ? `${member.name} (${member.specialization})` : "unassigned",
      task.revision_count ? ` · ${task.revision_count} revision${task.revision_count > 1 ? "s" : ""}` : ""));
}

export function messageItem(message, tasks) {
  const task = message.task_id ? tasks.get(message.task_id) : null;
  return h("li.message", { class: `k-${message.kind || "note"}` },
    h("div.message-head", h("strong", message.sender || "agent"), h("span.chip.small", message.kind || "note"),
      when(message.created_at)),
    task ? h("a.muted.small", { href: `/tasks/${task.id}` }, task.title) : null,
    h("p.prose", message.content));
}

/** Horizontal bars of spend per member, scaled to the largest; a table-free SVG with text labels. */
export function costChart(costs) {
  const rows = costs.by_member || [];
  if (!rows.length) return h("p.muted", "No LLM calls yet.");
  const top = Math.max(...rows.map((r) => Number(r.total_usd)), 1e-9);
  const rowHeight = 22;
  const width = 320;
  const labelWidth = 90;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * rowHeight}`, role: "img",
    "aria-label": `Spend by member: ${rows.map((r) => `${r.key} ${money(r.total_usd)}`).join(", ")}` });
  rows.forEach((row, i) => {
    const y = i * rowHeight;
    const barWidth = Math.max(2, ((width - labelWidth - 70) * Number(row.total_usd)) / top);
    chart.append(
      svg("text", { x: 0, y: y + 15, class: "chart-label" }, row.key),
      svg("rect", { x: labelWidth, y: y + 4, width: barWidth.toFixed(1), height: 14, rx: 3, class: "chart-bar" }),
      svg("text", { x: labelWidth + barWidth + 6, y: y + 15, class: "chart-value" }, money(row.total_usd)),
    );
  });
  return chart;
}
