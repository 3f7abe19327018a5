// Drives the emulator with the official JS client. Input: PUBSUB_CLIENT_URL (roles allow team_js only).
// Protocol on stdout: "READY" once joined (the Python side then sends a REST message), then
// "RESULT <json>" and exit 0; any failure or the 20 s deadline exits non-zero.
import { WebPubSubClient } from "@azure/web-pubsub-client";

const deadline = setTimeout(() => {
  console.error("deadline exceeded");
  process.exit(2);
}, 20000);

const client = new WebPubSubClient(process.env.PUBSUB_CLIENT_URL, {
  messageRetryOptions: { maxRetries: 0 },
});
const groupMessages = [];
let resolveServerMessage;
const serverMessage = new Promise((resolve) => (resolveServerMessage = resolve));
let resolveConnected;
const connected = new Promise((resolve) => (resolveConnected = resolve));

client.on("connected", (e) => resolveConnected(e));
client.on("group-message", (e) => groupMessages.push(e.message));
client.on("server-message", (e) => resolveServerMessage(e.message));

await client.start();
const connectedEvent = await connected;
await client.joinGroup("team_js");
await client.sendToGroup("team_js", { hello: "js" }, "json");

let forbidden = null;
try {
  await client.joinGroup("team_other");
} catch (err) {
  forbidden = err?.errorDetail?.name ?? String(err);
}

console.log("READY");
const fromServer = await serverMessage;
while (groupMessages.length < 1) await new Promise((r) => setTimeout(r, 20));
client.stop();
clearTimeout(deadline);
console.log(
  "RESULT " +
    JSON.stringify({
      connectionId: connectedEvent.connectionId,
      userId: connectedEvent.userId,
      echoed: groupMessages.map((m) => ({ group: m.group, data: m.data, fromUserId: m.fromUserId })),
      fromServer: { dataType: fromServer.dataType, data: fromServer.data },
      forbidden,
    }),
);
process.exit(0);
