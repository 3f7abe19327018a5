// Live team events: a tiny Azure Web PubSub client (subprotocol json.webpubsub.azure.v1) with
// reconnection, per-team seq tracking and backfill from GET /api/teams/{id}/events?after_seq=N.
// When the API has no negotiate endpoint (404), it polls that same events endpoint instead.
// Frames and messages: ../../shared/protocols/WEB_PUBSUB.md; event shape: ../../shared/API.md.

import { api } from "./api.js";

const PROTOCOL = "json.webpubsub.azure.v1";
const PAGE = 1000;
const HEARTBEAT_MS = 15000;
const SILENCE_MS = 45000;
const MAX_BACKOFF_MS = 10000;

let negotiateMissing = false;

export class LiveFeed {
  /**
   * teams: team ids to follow; backfill: replay missed events per team (else onResync is called);
   * onEvent(event), onStatus(connected), onResync() -> Promise (refetch what the page shows).
   */
  constructor({ teams = [], backfill = true, onEvent, onStatus = () => {}, onResync = async () => {}, pollMs = 1500 }) {
    this.teams = new Set(teams);
    this.backfill = backfill;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onResync = onResync;
    this.pollMs = pollMs;
    this.seq = new Map();
    this.catching = new Map();
    this.connected = null;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.polling = false;
    this.timer = null;
    this.pollTimer = null;
    this.syncTimer = null;
    this.acks = new Map();
    this.nextAck = 1;
    this.lastFrame = 0;
    this.heartbeat = null;
    this.online = () => this.reconnectNow();
    this.offline = () => this.lose();
  }

  start() {
    addEventListener("online", this.online);
    addEventListener("offline", this.offline);
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.online);
    removeEventListener("offline", this.offline);
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    clearTimeout(this.syncTimer);
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(1000, "page left");
    this.ws = null;
  }

  /** Follow one more team (the list page adds teams as they appear). */
  watch(teamId) {
    if (this.teams.has(teamId)) return;
    this.teams.add(teamId);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.join(`team_${teamId}`);
  }

  setStatus(connected) {
    if (this.connected === connected) return;
    this.connected = connected;
    this.onStatus(connected);
  }

  async connect() {
    if (this.stopped) return;
    if (!navigator.onLine) return this.setStatus(false); // the "online" event brings us back
    if (negotiateMissing) return this.startPolling();
    let info;
    try {
      const only = this.teams.size === 1 ? { team_id: [...this.teams][0] } : {};
      info = await api.post("/api/realtime/negotiate", only);
    } catch (err) {
      if (err.status === 404 || err.status === 405) {
        negotiateMissing = true;
        return this.startPolling();
      }
      this.setStatus(false);
      return this.retryLater();
    }
    if (this.stopped) return;
    try {
      this.open(info);
    } catch (err) {
      console.warn("cannot open the real-time socket", err);
      this.startPolling();
    }
  }

  open(info) {
    const ws = new WebSocket(info.url, PROTOCOL);
    this.ws = ws;
    const groups = new Set([...(info.groups || []), ...[...this.teams].map((id) => `team_${id}`)]);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.lastFrame = Date.now();
      this.setStatus(true);
      this.attempt = 0;
      for (const group of groups) this.join(group);
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.beat(ws), HEARTBEAT_MS);
    };
    ws.onmessage = (frame) => {
      if (this.ws !== ws) return;
      this.lastFrame = Date.now();
      this.frame(frame.data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      this.setStatus(false);
      this.retryLater();
    };
  }

  join(group) {
    const ackId = this.nextAck++;
    this.acks.set(ackId, group);
    this.ws.send(JSON.stringify({ type: "joinGroup", group, ackId }));
  }

  beat(ws) {
    // A socket can die silently (sleep, network change): no frame for a while means it is gone.
    if (Date.now() - this.lastFrame > SILENCE_MS) return ws.close(4000, "silent");
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
  }

  frame(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === "ack") return this.acked(msg);
    if (msg.type !== "message") return;
    let data = msg.data;
    if (msg.dataType !== "json" && typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch {
        return;
      }
    }
    if (data && typeof data === "object") this.receive(data);
  }

  acked(msg) {
    const group = this.acks.get(msg.ackId);
    if (group === undefined) return;
    this.acks.delete(msg.ackId);
    const team = group.startsWith("team_") ? group.slice(5) : null;
    if (!msg.success && !(msg.error && msg.error.name === "Duplicate")) {
      // Not allowed to join (or the service failed): keep this page current by polling instead.
      console.warn("joinGroup failed", group, msg.error);
      return this.startPolling();
    }
    // Joined: whatever happened before the join comes from the API, after it from the socket.
    if (team && this.backfill) this.quietly(this.catchUp(team));
    else if (!this.backfill && [...this.acks.values()].every((g) => !g.startsWith("team_"))) this.quietly(this.resync());
  }

  receive(event) {
    const team = event.team_id;
    if (!this.backfill || typeof event.seq !== "number" || !team) return this.onEvent(event);
    const last = this.seq.get(team);
    if (last !== undefined) {
      if (event.seq <= last) return; // already seen (live and backfill overlap)
      if (event.seq > last + 1) return this.quietly(this.catchUp(team)); // a gap: fetch it in order
      this.seq.set(team, event.seq);
    }
    // Before the first catch-up the baseline is unknown: apply (events are idempotent) and let it set seq.
    this.onEvent(event);
  }

  /** Replay what a team's stream has after the last seq seen (one catch-up at a time per team). */
  catchUp(team) {
    const running = this.catching.get(team);
    if (running) {
      running.again = true;
      return running.promise;
    }
    const state = { again: false };
    state.promise = (async () => {
      try {
        do {
          state.again = false;
          for (;;) {
            const after = this.seq.get(team) ?? 0;
            const events = await api.get(`/api/teams/${team}/events?after_seq=${after}&limit=${PAGE}`);
            for (const event of events) {
              if (event.seq <= (this.seq.get(team) ?? 0)) continue;
              this.seq.set(team, event.seq);
              this.onEvent(event);
            }
            if (events.length < PAGE) break;
          }
        } while (state.again && !this.stopped);
      } finally {
        this.catching.delete(team);
      }
    })();
    this.catching.set(team, state);
    return state.promise;
  }

  /** A catch-up nobody awaits: if it fails (network, 5xx), try again shortly rather than lose events. */
  quietly(work) {
    work.catch((err) => {
      if (this.stopped || err.status === 401) return;
      clearTimeout(this.syncTimer);
      this.syncTimer = setTimeout(() => this.quietly(this.resync()), this.backoff());
    });
  }

  async resync() {
    if (this.backfill) await Promise.all([...this.teams].map((team) => this.catchUp(team)));
    else await this.onResync();
  }

  startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    this.poll();
  }

  async poll() {
    if (this.stopped) return;
    clearTimeout(this.pollTimer);
    let delay = this.pollMs;
    if (!navigator.onLine) {
      this.setStatus(false);
      return; // the "online" event polls again
    }
    try {
      await this.resync();
      if (!this.ws) this.setStatus(true);
      this.attempt = 0;
    } catch (err) {
      if (err.status === 401) return;
      if (!this.ws) this.setStatus(false);
      delay = this.backoff();
    }
    if (!this.stopped) this.pollTimer = setTimeout(() => this.poll(), delay);
  }

  backoff() {
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt++);
    return base / 2 + Math.random() * (base / 2);
  }

  retryLater() {
    if (this.stopped || !navigator.onLine) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.backoff());
  }

  /** The browser says the network is gone: an open socket is not to be trusted any more. */
  lose() {
    this.setStatus(false);
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    if (this.ws) this.ws.close(4001, "offline");
  }

  reconnectNow() {
    if (this.stopped) return;
    this.attempt = 0;
    clearTimeout(this.timer);
    if (this.polling) this.poll();
    if (!this.ws && !negotiateMissing) this.connect();
  }
}
