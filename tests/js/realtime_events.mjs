// Record events through the official PocketBase JS SDK, filtered by the collection's rules
// (run by tests/tests/realtime.rs against PocketBun and, when available, PocketBase).
// argv: <base url> <owner user token> <superuser token>; prints one JSON line of observations.
//
// A fresh collection `rt_notes` has list rule `@request.auth.id != ""` and view rule
// `owner = @request.auth.id`, a hidden field and a relation to users. Three clients subscribe
// to `rt_notes/*` and to one record id: its owner (both rules pass), another user (only the
// list rule passes) and a guest (neither). A superuser then creates, updates and deletes that
// record, and finally creates a record in the public `demo2`, which every client also
// subscribes to: events reach one client in order, so once a client has the demo2 event it
// has everything it was ever going to get about the note.
import PocketBase from "pocketbase";
import { EventSource } from "eventsource";

globalThis.EventSource = EventSource;
process.on("unhandledRejection", (e) => {
  console.error("failed:", e?.url, e?.status, JSON.stringify(e?.response));
  process.exit(1);
});

const [base, ownerToken, superToken] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

const su = new PocketBase(base);
su.authStore.save(superToken, null);
await su.collections.create({
  name: "rt_notes",
  type: "base",
  listRule: '@request.auth.id != ""',
  viewRule: "owner = @request.auth.id",
  createRule: null,
  updateRule: null,
  deleteRule: null,
  fields: [
    { name: "title", type: "text" },
    { name: "secret", type: "text", hidden: true },
    { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
  ],
});
await su.collection("users").create({
  id: "rtotheruser0001",
  email: "rt-other@example.com",
  password: "12345678aA",
  passwordConfirm: "12345678aA",
});

const owner = new PocketBase(base);
owner.authStore.save(ownerToken, null);
// the fixture's users collection has MFA on, so the other user's token comes from impersonation
const other = await su.collection("users").impersonate("rtotheruser0001", 3600);
const guest = new PocketBase(base);

const noteId = "rtnote000000001";
const clients = { owner, other, guest };
const seen = {};
for (const [name, pb] of Object.entries(clients)) {
  const got = (seen[name] = { all: [], one: [], demo2: [] });
  const keep = (list) => (e) => list.push({ action: e.action, record: e.record });
  await pb.collection("rt_notes").subscribe("*", keep(got.all), { expand: "owner" });
  await pb.collection("rt_notes").subscribe(noteId, keep(got.one), { fields: "id,title,secret,owner" });
  await pb.collection("demo2").subscribe("*", keep(got.demo2));
}

await su.collection("rt_notes").create({ id: noteId, title: "first", secret: "s1", owner: "4q1xlclmfloku33" });
await su.collection("rt_notes").update(noteId, { title: "second" });
await su.collection("rt_notes").delete(noteId);
await su.collection("demo2").create({ id: "rtsentinel00001", title: "sentinel" });

const out = { complete: {} };
for (const name of Object.keys(clients)) {
  out.complete[name] = await waitFor(() => seen[name].demo2.length > 0, 10000);
}
out.seen = seen;
for (const pb of Object.values(clients)) {
  pb.realtime.unsubscribe();
}
console.log(JSON.stringify(out));
process.exit(0);
