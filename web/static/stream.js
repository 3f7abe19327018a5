// Live model output: shows an agent's text as it is written, from `llm.delta` messages (API.md, "Live
// model output"). Deltas carry no seq and are never stored: a call's text is shown as it grows, in
// `index` order, and dropped when the stored result arrives (a seq'd `message.created` or
// `checkpoint.created` of the same task, or of the same member for calls without a task). Only calls
// that ended (their last delta has `final: true`) are dropped then: the next call may already be
// streaming when the previous one's stored event arrives (the outbox publishes after the commit).
// A new call of the same task or member also replaces an ended one. Missing a delta loses nothing
// that is stored.
//
// Used by the team page (every call of the team) and the task page (calls of that task only):
//   const live = liveOutput({ taskId, memberName });  // put live.el on the page
//   feed's onEvent: (event) => { if (live.handle(event)) return; ... }

import { h } from "./dom.js";

const MAX_CALLS = 6; // calls shown at once; the oldest goes first
const MAX_CHARS = 20000; // per call: a runaway stream cannot grow the page without bound

export function liveOutput({ taskId = null, memberName = () => null } = {}) {
  const calls = new Map(); // call_id -> { el, text, pre, next, pending: Map(index -> text), task, member }
  const list = h("div.live-calls", { testid: "live-output-calls" });
  const el = h("section.panel.live-output", { testid: "live-output", "aria-live": "polite", hidden: true },
    h("h2", "Writing now"), list);

  function entry(event) {
    let call = calls.get(event.call_id);
    if (call) return call;
    const who = memberName(event.member_id) || (event.task_id ? "Worker" : "Manager");
    const pre = h("pre.live-text", { testid: "live-text" });
    const box = h("article.live-call", { dataset: { callId: event.call_id } },
      h("header.muted", `${who} is writing…`), pre);
    for (const [id, other] of calls) {
      if (other.done && other.task === event.task_id && other.member === event.member_id) remove(id);
    }
    call = { el: box, pre, text: "", next: 0, pending: new Map(), task: event.task_id, member: event.member_id,
      done: false, last: -1 };
    calls.set(event.call_id, call);
    list.append(box);
    while (calls.size > MAX_CALLS) remove(calls.keys().next().value);
    el.hidden = false;
    return call;
  }

  function remove(callId) {
    const call = calls.get(callId);
    if (!call) return;
    call.el.remove();
    calls.delete(callId);
    el.hidden = calls.size === 0;
  }

  function delta(event) {
    if (taskId && event.task_id !== taskId) return;
    const call = entry(event);
    if (typeof event.index !== "number" || event.index < call.next) return; // a repeat
    if (event.final) call.last = event.index;
    call.pending.set(event.index, String(event.text ?? ""));
    while (call.pending.has(call.next)) { // in index order, whatever the arrival order
      call.text = (call.text + call.pending.get(call.next)).slice(-MAX_CHARS);
      call.pending.delete(call.next);
      call.next += 1;
    }
    call.done = call.last >= 0 && call.next > call.last;
    call.pre.textContent = call.text;
  }

  function settle(event) {
    for (const [callId, call] of calls) {
      const sameTask = event.task_id && call.task === event.task_id;
      const sameMember = !event.task_id && !call.task && call.member && call.member === (event.data || {}).member_id;
      if ((sameTask || sameMember) && call.done) remove(callId);
    }
  }

  /** Feed every live event here; true when it was a delta (nothing else to do with it). */
  function handle(event) {
    if (event.type === "llm.delta") {
      delta(event);
      return true;
    }
    if (event.type === "message.created" || event.type === "checkpoint.created") settle(event);
    return false;
  }

  return { el, handle };
}
