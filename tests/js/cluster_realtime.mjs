// Realtime across nodes through the official PocketBase JS SDK (run by
// tests/tests/cluster_realtime.rs): SSE clients on two read replicas get the events of writes
// made on the primary, with each replica's own rule checks and expand.
// argv: <primary url> <replica 1 url> <replica 2 url> <user token> <user id> <samples>;
// prints one JSON line of observations.
//
// `posts` may be listed and viewed by its author only (`author = @request.auth.id`); `pings`
// by anyone. On each replica a user and a guest subscribe to `posts/*` (expand=author) and to
// `pings/*`. The user then creates, updates and deletes a post on the primary and creates a
// ping: events reach one client in order, so once a client has that ping it has everything it
// was ever going to get about the post. Last, `samples` pings are created one at a time and
// the time from each create's answer to its event on each replica's user client is recorded.
import PocketBase from "pocketbase";
import { EventSource } from "eventsource";

globalThis.EventSource = EventSource;
process.on("unhandledRejection", (e) => {
  console.error("failed:", e?.url, e?.status, JSON.stringify(e?.response ?? e?.message));
  process.exit(1);
});

const [primary, r1, r2, userToken, userId, samplesArg] = process.argv.slice(2);
const samples = Number(samplesArg);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(5);
  }
  return cond();
}

const seen = {};
for (const [node, url] of [["r1", r1], ["r2", r2]]) {
  const user = new PocketBase(url);
  user.authStore.save(userToken, null);
  const guest = new PocketBase(url);
  seen[node] = {};
  for (const [who, pb] of [["user", user], ["guest", guest]]) {
    const mine = { posts: [], pings: [] };
    seen[node][who] = mine;
    await pb.collection("posts").subscribe(
      "*",
      (e) => mine.posts.push({ action: e.action, record: e.record }),
      { expand: "author" },
    );
    await pb.collection("pings").subscribe("*", (e) =>
      mine.pings.push({ action: e.action, id: e.record.id, at: performance.now() }),
    );
  }
}
const clients = () => Object.values(seen).flatMap((n) => Object.values(n));
const has = (c, id) => c.pings.some((p) => p.id === id);

const writer = new PocketBase(primary);
writer.authStore.save(userToken, null);
const post = await writer.collection("posts").create({ title: "first", author: userId });
await writer.collection("posts").update(post.id, { title: "second" });
await writer.collection("posts").delete(post.id);
const sentinel = await writer.collection("pings").create({ n: 0 });
const complete = await waitFor(() => clients().every((c) => has(c, sentinel.id)), 30000);

const latencies = { r1: [], r2: [] };
for (let i = 1; i <= samples && complete; i++) {
  const ping = await writer.collection("pings").create({ n: i });
  const answered = performance.now();
  await waitFor(() => clients().every((c) => has(c, ping.id)), 15000);
  for (const node of ["r1", "r2"]) {
    const got = seen[node].user.pings.find((p) => p.id === ping.id);
    latencies[node].push(got ? Math.round(got.at - answered) : null);
  }
}

const out = { complete, postId: post.id, latencies, seen: {} };
for (const [node, who] of Object.entries(seen)) {
  out.seen[node] = {};
  for (const [name, c] of Object.entries(who)) {
    out.seen[node][name] = { posts: c.posts, pings: c.pings.length };
  }
}
console.log(JSON.stringify(out));
process.exit(0);
