// Pictures of a team's plan and run, drawn as inline SVG by the page (no chart library: a few
// hundred nodes and bars are cheap to build with DOM calls, and the CSP allows no inline style):
// - planGraph: tasks as nodes coloured by status, dependency edges, the critical path highlighted;
// - runTimeline: one bar per task from start to finish, revision rounds, escalations and tool calls
//   marked (a tool call: a dot at its request, coloured by its status, named in its tooltip), the
//   team's wall time beside the sum of task times.
// Both are pure functions of (tasks, run facts, now): the team page redraws them from live events.

import { h, svg } from "../dom.js";

const TERMINAL = new Set(["completed", "failed"]);

/** What the event stream says about each task's run: start, end, revision and escalation times, and
 * its tool calls. The tool calls come from the same events the task page follows (`tool.call_*`, each
 * with its `call_id`; a tool_approval `escalation.created` names its `tool_call_id`), replayed from the
 * team's first event by the live feed's backfill, so no request per task is needed. */
export class RunFacts {
  constructor() {
    this.byTask = new Map();
    this.teamEscalations = [];
  }

  of(taskId) {
    let facts = this.byTask.get(taskId);
    if (!facts) {
      facts = { start: null, end: null, revisions: [], escalations: [], tools: new Map() };
      this.byTask.set(taskId, facts);
    }
    return facts;
  }

  /** Seed from the task rows (started_at, completion_time) before the events arrive. */
  seed(task) {
    const facts = this.of(task.id);
    if (task.started_at && facts.start === null) facts.start = Date.parse(task.started_at);
    if (task.completion_time && facts.end === null) facts.end = Date.parse(task.completion_time);
  }

  /** Apply one team event; true when it changed a fact worth redrawing. Idempotent per event. */
  apply(event) {
    const at = Date.parse(event.at || "");
    if (!Number.isFinite(at)) return false;
    const d = event.data || {};
    if (event.type === "task.status_changed" && event.task_id) {
      const facts = this.of(event.task_id);
      if (d.to === "in_progress" && (facts.start === null || at < facts.start)) facts.start = at;
      if (TERMINAL.has(d.to)) facts.end = Math.max(facts.end ?? at, at);
      else if (d.to === "in_progress" && facts.end !== null && facts.end < at) facts.end = null; // retried
      if (d.to === "revision_requested") return addOnce(facts.revisions, at) || true;
      if (d.to === "escalated") return addOnce(facts.escalations, at) || true;
      return true;
    }
    if (event.type === "escalation.created") {
      const approval = Boolean(d.tool_call_id && event.task_id)
        && this.toolCall(event.task_id, d.tool_call_id, at, { status: "awaiting_approval" });
      if (event.task_id) return addOnce(this.of(event.task_id).escalations, at, 2000) || approval;
      return addOnce(this.teamEscalations, at);
    }
    const status = TOOL_EVENT_STATUS[event.type];
    if (status && event.task_id && d.call_id) {
      const name = d.server ? `${d.server}.${d.tool}` : "";
      return this.toolCall(event.task_id, d.call_id, at, { name, status: status === true ? d.status : status });
    }
    return false;
  }

  /** A tool call's latest state (events are applied in seq order, so the last one wins); it stays
   * placed at its first event, the request. */
  toolCall(taskId, callId, at, { name = "", status }) {
    const calls = this.of(taskId).tools;
    let call = calls.get(callId);
    if (!call) {
      call = { id: callId, at, name: "", status: "requested" };
      calls.set(callId, call);
    }
    if (at < call.at) call.at = at;
    if (name) call.name = name;
    if (status) call.status = status;
    return true;
  }
}

/** The status a tool event gives its call (true: the status the event carries). */
const TOOL_EVENT_STATUS = {
  "tool.call_requested": true,
  "tool.call_approved": "approved",
  "tool.call_started": "running",
  "tool.call_finished": true,
};

/** Add a time unless one within `near` ms is there (a status change and its escalation row). */
function addOnce(list, at, near = 0) {
  if (list.some((t) => Math.abs(t - at) <= near)) return false;
  list.push(at);
  list.sort((a, b) => a - b);
  return true;
}

function short(text, max) {
  const s = String(text || "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function seconds(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Depth (longest dependency chain to the task) and the critical path weighted by task time. */
export function analysePlan(tasks, facts, now) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const deps = new Map(tasks.map((t) => [t.id, (t.dependencies || []).filter((d) => byId.has(d) && d !== t.id)]));
  const depth = new Map();
  const visiting = new Set();
  function depthOf(id) {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0; // a cycle cannot be persisted; never loop on one anyway
    visiting.add(id);
    const value = deps.get(id).reduce((max, d) => Math.max(max, depthOf(d) + 1), 0);
    visiting.delete(id);
    depth.set(id, value);
    return value;
  }
  tasks.forEach((t) => depthOf(t.id));

  const measured = [];
  const duration = new Map();
  for (const t of tasks) {
    const f = facts.byTask.get(t.id);
    if (f && f.start !== null) {
      const ms = Math.max(1, (f.end ?? now) - f.start);
      duration.set(t.id, ms);
      if (f.end !== null) measured.push(ms);
    }
  }
  const typical = measured.length ? measured.reduce((a, b) => a + b, 0) / measured.length : 1;
  const weight = (id) => duration.get(id) ?? typical;

  // Longest weighted path: tasks in depth order are in a dependency-respecting order.
  const order = [...tasks].sort((a, b) => depth.get(a.id) - depth.get(b.id));
  const finish = new Map();
  const via = new Map();
  for (const t of order) {
    let best = 0;
    let from = null;
    for (const d of deps.get(t.id)) {
      if (finish.get(d) > best) {
        best = finish.get(d);
        from = d;
      }
    }
    finish.set(t.id, best + weight(t.id));
    via.set(t.id, from);
  }
  let end = null;
  for (const t of tasks) if (end === null || finish.get(t.id) > finish.get(end)) end = t.id;
  const path = [];
  for (let id = end; id !== null && id !== undefined; id = via.get(id)) path.unshift(id);
  return { deps, depth, path, length: end === null ? 0 : finish.get(end), estimated: duration.size < tasks.length };
}

const NODE_W = 196;
const NODE_H = 34;
const GAP_X = 44;
const GAP_Y = 10;
const PAD = 8;

/** The plan as a layered graph: one column per dependency depth, edges from a task to its dependents. */
export function planGraph(tasks, facts, now = Date.now()) {
  if (!tasks.length) return h("p.muted", "The plan appears here once the manager has planned the tasks.");
  const { deps, depth, path, length, estimated } = analysePlan(tasks, facts, now);
  const critical = new Set(path);
  const criticalEdges = new Set(path.slice(1).map((id, i) => `${path[i]}>${id}`));
  const columns = [];
  for (const t of tasks) (columns[depth.get(t.id)] ||= []).push(t);
  const place = new Map();
  columns.forEach((column, c) => column.forEach((t, r) => place.set(t.id, {
    x: PAD + c * (NODE_W + GAP_X), y: PAD + r * (NODE_H + GAP_Y),
  })));
  const rows = Math.max(...columns.map((c) => c.length));
  const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * GAP_X;
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  const edgeCount = [...deps.values()].reduce((n, d) => n + d.length, 0);
  const titles = new Map(tasks.map((t) => [t.id, t.title]));
  const chart = svg("svg", {
    class: "plan-graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `Plan: ${tasks.length} tasks, ${edgeCount} dependencies. Critical path: ${
      path.map((id) => titles.get(id)).join(" → ")}`,
  });
  const edges = svg("g", { class: "edges" });
  const nodes = svg("g", { class: "nodes" });
  for (const t of tasks) {
    const to = place.get(t.id);
    for (const d of deps.get(t.id)) {
      const from = place.get(d);
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_H / 2;
      const bend = GAP_X / 2;
      const hot = criticalEdges.has(`${d}>${t.id}`);
      edges.append(svg("path", {
        class: hot ? "edge critical" : "edge", "data-from": d, "data-to": t.id,
        d: `M${x1} ${y1}C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}`,
      }));
    }
    const hot = critical.has(t.id);
    nodes.append(svg("g", {
      class: `node s-${t.status}${hot ? " critical" : ""}`, transform: `translate(${to.x} ${to.y})`,
      "data-task-id": t.id, "data-status": t.status, "data-critical": String(hot),
    },
    svg("title", `${t.title} (${t.status})`),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 7 }),
    svg("circle", { cx: 12, cy: NODE_H / 2, r: 4.5, class: "dot" }),
    svg("text", { x: 23, y: NODE_H / 2 + 4 }, short(t.title, 27))));
  }
  chart.append(edges, nodes);
  // Critical edges on top of the others, so the highlighted route reads as one line.
  for (const edge of [...edges.querySelectorAll(".critical")]) edges.append(edge);
  const caption = `Critical path: ${path.length} task${path.length === 1 ? "" : "s"}, ${estimated ? "about " : ""}${
    seconds(length)}${path.length > 1 ? ` (${path.map((id) => titles.get(id)).join(" → ")})` : ""}`;
  return h("div.graph-view",
    h("div.scroll", chart),
    h("p.muted.small", { testid: "critical-path", title: caption },
      h("span.key.key-critical", { "aria-hidden": "true" }), caption));
}

const ROW_H = 18;
const BAR_H = 11;
const AXIS_H = 22;

const pct = (fraction) => `${(Math.min(1, Math.max(0, fraction)) * 100).toFixed(3)}%`;

function tickLabel(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function niceStep(span) {
  const target = span / 6;
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]) {
    if (step * 1000 >= target) return step * 1000;
  }
  return 3_600_000 * Math.ceil(target / 3_600_000);
}

/** One bar per task that has started, on a shared time axis from the team's start. The plot is laid
 * out in percentages of its own width, so it spans its panel without measuring it (no forced layout). */
export function runTimeline(tasks, facts, team, now = Date.now()) {
  const started = tasks.map((t) => ({ task: t, f: facts.byTask.get(t.id) }))
    .filter((r) => r.f && r.f.start !== null)
    .sort((a, b) => a.f.start - b.f.start);
  const waiting = tasks.length - started.length;
  const teamStart = team.started_at ? Date.parse(team.started_at) : null;
  const teamEnd = team.completed_at ? Date.parse(team.completed_at) : null;
  if (!started.length) {
    return h("p.muted", { testid: "run-summary" },
      tasks.length ? `No task has started yet (${waiting} waiting).` : "The run shows here once tasks start.");
  }
  const over = TERMINAL.has(team.status) || team.status === "cancelled";
  const t0 = Math.min(teamStart ?? Infinity, ...started.map((r) => r.f.start));
  const lastEnd = Math.max(...started.map((r) => r.f.end ?? now));
  const t1 = Math.max(teamEnd ?? (over ? lastEnd : now), lastEnd, t0 + 1000);
  const span = t1 - t0;
  const x = (t) => pct((t - t0) / span);
  const height = AXIS_H + started.length * ROW_H + 4;
  const sum = started.reduce((total, r) => total + ((r.f.end ?? now) - r.f.start), 0);
  const wall = (teamEnd ?? (teamStart !== null && !over ? now : lastEnd)) - (teamStart ?? t0);
  const labels = svg("svg", { class: "run-labels", width: 170, height, "aria-hidden": "true" });
  const chart = svg("svg", { class: "run-timeline", width: "100%", height, "aria-hidden": "true" });
  const axis = svg("g", { class: "axis" });
  const step = niceStep(span);
  for (let t = 0; t <= span; t += step) {
    const px = x(t0 + t);
    axis.append(svg("line", { x1: px, x2: px, y1: AXIS_H - 4, y2: height, class: "tick" }),
      svg("text", { x: px, y: AXIS_H - 8, class: "tick-label" }, tickLabel(t)));
  }
  for (const at of facts.teamEscalations) {
    if (at >= t0 && at <= t1) axis.append(svg("line", { x1: x(at), x2: x(at), y1: AXIS_H - 4, y2: height, class: "team-escalation" }));
  }
  const rows = svg("g", { class: "rows" });
  started.forEach(({ task, f }, i) => {
    const y = AXIS_H + i * ROW_H;
    const running = f.end === null && !TERMINAL.has(task.status);
    const end = f.end ?? (running ? now : t1); // a finished task whose end no event told: up to what is known
    labels.append(svg("text", { x: 0, y: y + BAR_H, class: "row-label" }, short(task.title, 24)));
    const calls = [...f.tools.values()].sort((a, b) => a.at - b.at);
    const bar = svg("g", { class: `bar s-${task.status}${running ? " running" : ""}`, "data-task-id": task.id },
      svg("title", `${task.title}: ${task.status}, ${seconds(end - f.start)}${
        f.revisions.length ? `, ${f.revisions.length} revision round${f.revisions.length > 1 ? "s" : ""}` : ""}${
        f.escalations.length ? `, escalated ${f.escalations.length}×` : ""}${
        calls.length ? `, tool calls: ${calls.map((c) => `${c.name || "tool"} ${c.status}`).join(", ")}` : ""}`),
      svg("rect", { x: x(f.start), y: y + 2, width: pct(Math.max((end - f.start) / span, 0.002)), height: BAR_H, rx: 3 }));
    // A mark is a small shape at a time: a nested svg placed in percent, the shape drawn around its origin.
    for (const at of f.revisions) {
      bar.append(svg("svg", { x: x(at), y, overflow: "visible" },
        svg("path", { class: "mark revision", d: "M0 0l4 7.5l-4 7.5l-4 -7.5z" })));
    }
    for (const at of f.escalations) {
      bar.append(svg("svg", { x: x(at), y, overflow: "visible" },
        svg("path", { class: "mark escalation", d: `M-5 0h10l-5 ${ROW_H - 3}z` })));
    }
    for (const call of calls) {
      bar.append(svg("svg", { x: x(call.at), y, overflow: "visible" },
        svg("circle", { class: `mark tool t-${call.status}`, cx: 0, cy: 2 + BAR_H / 2, r: 3.5,
          "data-call-id": call.id, "data-tool": call.name, "data-status": call.status },
        svg("title", `${call.name || "tool call"}: ${call.status.replace("_", " ")}`))));
    }
    rows.append(bar);
  });
  chart.append(axis, rows);
  const revisions = started.reduce((n, r) => n + r.f.revisions.length, 0);
  const escalations = started.reduce((n, r) => n + r.f.escalations.length, 0) + facts.teamEscalations.length;
  const toolCalls = started.reduce((n, r) => n + r.f.tools.size, 0);
  return h("div.timeline-view",
    h("p.run-summary", { testid: "run-summary" },
      h("span", h("span.muted", "Wall time "), h("strong", { testid: "wall-time" }, seconds(wall))),
      h("span", h("span.muted", "Sum of task times "), h("strong", { testid: "task-time" }, seconds(sum))),
      h("span", h("span.muted", "Parallelism "), h("strong", wall > 0 ? `${(sum / wall).toFixed(1)}×` : "—")),
      h("span.muted", `${revisions} revision round${revisions === 1 ? "" : "s"} ◆ · ${escalations} escalation${
        escalations === 1 ? "" : "s"} ▼${toolCalls ? ` · ${toolCalls} tool call${toolCalls === 1 ? "" : "s"} ●` : ""}${
        waiting ? ` · ${waiting} not started` : ""}`)),
    h("div.scroll", h("div.timeline-grid", {
      role: "img",
      "aria-label": `Run timeline: ${started.length} tasks started, wall time ${seconds(wall)}, sum of task times ${
        seconds(sum)}, ${revisions} revision rounds, ${escalations} escalations, ${toolCalls} tool calls`,
    }, labels, chart)));
}
