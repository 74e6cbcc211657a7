// Realtime through the official PocketBase JS SDK (run by tests/tests/realtime.rs).
// argv: <base url> <user token> <superuser token>; prints one JSON line of observations.
import PocketBase from "pocketbase";
import { EventSource } from "eventsource";

globalThis.EventSource = EventSource;

const [base, userToken, superToken] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = {};

async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

// a guest subscribes to a collection and a record topic
const guest = new PocketBase(base);
const unsub = await guest.collection("demo2").subscribe("*", () => {});
await guest.collection("demo2").subscribe("achvryl401bhse3", () => {}, { fields: "id,title" });
out.guestConnected = guest.realtime.isConnected;
out.guestClientId = guest.realtime.clientId;

// the idle timeout ends the stream: the SDK reconnects with a new client id and resubscribes
const first = guest.realtime.clientId;
out.reconnected = await waitFor(() => guest.realtime.clientId && guest.realtime.clientId !== first, 6000);
out.reconnectedClientId = guest.realtime.clientId;
await unsub();
await guest.collection("demo2").unsubscribe();
out.guestAfterUnsubscribe = guest.realtime.isConnected;

// an authenticated user: the subscription request carries its token
const user = new PocketBase(base);
user.authStore.save(userToken, null);
await user.collection("users").subscribe("4q1xlclmfloku33", () => {});
out.userClientId = user.realtime.clientId;

// the same client id re-bound with another identity is refused (403)
try {
  const su = new PocketBase(base);
  su.authStore.save(superToken, null);
  await su.send("/api/realtime", {
    method: "POST",
    body: { clientId: user.realtime.clientId, subscriptions: ["demo1/*"] },
  });
  out.mismatch = 204;
} catch (e) {
  out.mismatch = e.status;
  out.mismatchMessage = e.response?.message;
}
user.realtime.unsubscribe();
console.log(JSON.stringify(out));
process.exit(0);
