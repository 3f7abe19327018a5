// Connects with the URL from POST /api/realtime/negotiate (team pre-joined), prints READY once
// connected, then one JSON line per team event until the team's final status change, then exits 0.
import { WebPubSubClient } from "@azure/web-pubsub-client";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const url = process.env.PUBSUB_CLIENT_URL;
if (!url) {
  console.error("PUBSUB_CLIENT_URL is not set");
  process.exit(2);
}
const client = new WebPubSubClient(url);
const timer = setTimeout(() => {
  console.error("no final event within 25 s");
  process.exit(3);
}, 25000);

client.on("server-message", (e) => {
  const event = e.message.data;
  if (!event || typeof event.seq !== "number") return;
  process.stdout.write(JSON.stringify(event) + "\n");
  if (event.type === "team.status_changed" && TERMINAL.has(event.data.to)) {
    clearTimeout(timer);
    client.stop();
  }
});
client.on("connected", () => process.stdout.write("READY\n"));
client.on("stopped", () => process.exit(0));
await client.start();
