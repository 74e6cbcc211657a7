// A realistic app flow through the official PocketBase JS SDK (run by tests/tests/js_sdk.rs):
// superuser login, two related collections, CRUD with file uploads, lists, expand, fields,
// batch and file downloads. Every step asserts; the first mismatch exits non-zero with a message.
// argv: <base url> <path of a PNG image>
import PocketBase, { ClientResponseError } from "pocketbase";
import { readFileSync } from "node:fs";

const [base, pngPath] = process.argv.slice(2);
const png = readFileSync(pngPath);
let step = "start";

function fail(msg) {
  console.error(`FAILED at ${step}: ${msg}`);
  process.exit(1);
}
function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) fail(`${what}: got ${g}, want ${w}`);
}
function ok(cond, what) {
  if (!cond) fail(what);
}
// the SDK's error for a failing call (or a failure when the call succeeds)
async function rejects(promise, what) {
  try {
    await promise;
  } catch (e) {
    if (!(e instanceof ClientResponseError)) fail(`${what}: not a ClientResponseError: ${e}`);
    return e;
  }
  fail(`${what}: succeeded`);
}
async function download(url) {
  const resp = await fetch(url);
  return { status: resp.status, type: resp.headers.get("content-type"), body: Buffer.from(await resp.arrayBuffer()) };
}
const textBlob = (s) => new Blob([s], { type: "text/plain" });
const pngBlob = () => new Blob([png], { type: "image/png" });
const sorted = (a) => [...a].sort();

const pb = new PocketBase(base);
pb.autoCancellation(false);

step = "superuser auth";
const auth = await pb.collection("_superusers").authWithPassword("test@example.com", "1234567890");
ok(pb.authStore.isValid && pb.authStore.isSuperuser, "the auth store holds a superuser");
eq(auth.record.email, "test@example.com", "auth record email");
await rejects(pb.collection("_superusers").authWithPassword("test@example.com", "wrong"), "bad password");

step = "collections";
const users = await pb.collections.getOne("users");
const posts = await pb.collections.create({
  name: "sdk_posts",
  type: "base",
  listRule: "",
  viewRule: "",
  fields: [
    { name: "title", type: "text", required: true, max: 100 },
    { name: "views", type: "number", onlyInt: true },
    { name: "published", type: "bool" },
    { name: "status", type: "select", maxSelect: 1, values: ["draft", "live"] },
    { name: "labels", type: "select", maxSelect: 3, values: ["a", "b", "c", "d"] },
    { name: "cover", type: "file", maxSelect: 1, maxSize: 1 << 20, mimeTypes: ["image/png"], thumbs: ["20x20"] },
    { name: "attachments", type: "file", maxSelect: 5, maxSize: 1 << 20 },
    { name: "author", type: "relation", collectionId: users.id, maxSelect: 1 },
    { name: "created", type: "autodate", onCreate: true },
    { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
  ],
});
eq(posts.name, "sdk_posts", "created collection name");
const comments = await pb.collections.create({
  name: "sdk_comments",
  type: "base",
  listRule: "",
  viewRule: "",
  fields: [
    { name: "body", type: "text", required: true },
    { name: "post", type: "relation", collectionId: posts.id, maxSelect: 1, cascadeDelete: true, required: true },
    { name: "created", type: "autodate", onCreate: true },
  ],
});
eq(comments.fields.find((f) => f.name === "post").collectionId, posts.id, "relation target");
const list = await pb.collections.getFullList({ filter: "name ~ 'sdk_'", sort: "name" });
eq(list.map((c) => c.name), ["sdk_comments", "sdk_posts"], "collections list");

step = "create with files (FormData)";
const form = new FormData();
form.append("title", "First post");
form.append("views", "12");
form.append("published", "true");
form.append("status", "live");
form.append("labels", "a");
form.append("labels", "c");
form.append("cover", pngBlob(), "Cover Image.png");
form.append("attachments", textBlob("hello one"), "one.txt");
form.append("attachments", textBlob("hello two"), "two.txt");
form.append("author", "4q1xlclmfloku33");
const p1 = await pb.collection("sdk_posts").create(form);
eq([p1.title, p1.views, p1.published, p1.status, p1.labels, p1.author],
  ["First post", 12, true, "live", ["a", "c"], "4q1xlclmfloku33"], "created record");
eq(p1.id.length, 15, "generated id length");
ok(/^cover_image_[a-z0-9]{10}\.png$/.test(p1.cover), `cover file name ${p1.cover}`);
eq(p1.attachments.length, 2, "attachments");
ok(/^one_[a-z0-9]{10}\.txt$/.test(p1.attachments[0]), `attachment name ${p1.attachments[0]}`);
ok(/^two_[a-z0-9]{10}\.txt$/.test(p1.attachments[1]), `attachment name ${p1.attachments[1]}`);
eq([p1.collectionName, p1.collectionId], ["sdk_posts", posts.id], "collection of the record");

step = "file downloads";
let got = await download(pb.files.getURL(p1, p1.cover));
eq([got.status, got.type], [200, "image/png"], "cover download");
ok(got.body.equals(png), "cover bytes are the uploaded ones");
got = await download(pb.files.getURL(p1, p1.attachments[1], { download: true }));
eq([got.status, got.body.toString()], [200, "hello two"], "attachment download");
got = await download(pb.files.getURL(p1, p1.cover, { thumb: "20x20" }));
eq([got.status, got.type], [200, "image/png"], "thumb download");
ok(!got.body.equals(png) && got.body.readUInt32BE(16) === 20 && got.body.readUInt32BE(20) === 20, "a 20x20 thumb");

step = "validation errors";
let err = await rejects(pb.collection("sdk_posts").create({ views: 1.5, status: "gone" }), "invalid create");
eq(err.status, 400, "status");
eq(Object.keys(err.response.data).sort(), ["status", "title", "views"], "invalid fields");
eq(err.response.data.title.code, "validation_required", "title code");
eq(err.response.data.status.code, "validation_invalid_value", "select code");
const badCover = new FormData();
badCover.append("title", "x");
badCover.append("cover", textBlob("not an image"), "fake.png");
err = await rejects(pb.collection("sdk_posts").create(badCover), "text file as an image");
eq(err.response.data.cover.code, "validation_invalid_mime_type", "mime type code");

step = "update: replace and delete files";
const replace = new FormData();
replace.append("cover", pngBlob(), "second.png");
replace.append("attachments+", textBlob("hello three"), "three.txt");
replace.append("views+", "3");
replace.append("labels-", "a");
const p1b = await pb.collection("sdk_posts").update(p1.id, replace);
ok(/^second_[a-z0-9]{10}\.png$/.test(p1b.cover), `replaced cover ${p1b.cover}`);
eq(p1b.attachments.length, 3, "appended attachment");
eq(p1b.attachments.slice(0, 2), p1.attachments, "kept attachments");
eq([p1b.views, p1b.labels], [15, ["c"]], "number and select modifiers");
eq((await download(pb.files.getURL(p1, p1.cover))).status, 404, "the replaced cover is gone");
eq((await download(pb.files.getURL(p1b, p1b.cover))).status, 200, "the new cover");
const p1c = await pb.collection("sdk_posts").update(p1.id, { "attachments-": [p1.attachments[0]] });
eq(p1c.attachments, p1b.attachments.slice(1), "attachments- removed one");
eq((await download(pb.files.getURL(p1, p1.attachments[0]))).status, 404, "the removed attachment is gone");
const p1d = await pb.collection("sdk_posts").update(p1.id, { "cover-": p1b.cover, title: "First post!" });
eq([p1d.cover, p1d.title], ["", "First post!"], "cover- cleared the single file");
eq((await download(pb.files.getURL(p1b, p1b.cover))).status, 404, "the cleared cover is gone");

step = "more records (JSON)";
const made = [];
for (const [title, views, published, status] of [
  ["Alpha", 5, true, "live"],
  ["Beta", 40, true, "live"],
  ["Gamma", 25, false, "draft"],
  ["Delta", 10, true, "draft"],
  ["O'Hara", 30, true, "live"],
]) {
  made.push(await pb.collection("sdk_posts").create({ title, views, published, status, author: "oap640cot4yru2s" }));
}
eq(made.map((r) => r.views), [5, 40, 25, 10, 30], "created views");

step = "getList with filter and sort";
let page = await pb.collection("sdk_posts").getList(1, 2, { filter: "views >= 10 && published = true", sort: "-views" });
eq([page.page, page.perPage, page.totalItems, page.totalPages], [1, 2, 4, 2], "list envelope");
eq(page.items.map((r) => r.title), ["Beta", "O'Hara"], "first page");
page = await pb.collection("sdk_posts").getList(2, 2, { filter: "views >= 10 && published = true", sort: "-views" });
eq(page.items.map((r) => r.title), ["First post!", "Delta"], "second page");
page = await pb.collection("sdk_posts").getList(1, 10, { filter: "status = 'draft' || labels ~ 'c'", sort: "title", skipTotal: true });
eq([page.totalItems, page.totalPages], [-1, -1], "skipTotal");
eq(page.items.map((r) => r.title), ["Delta", "First post!", "Gamma"], "or filter");
page = await pb.collection("sdk_posts").getList(1, 10, { filter: pb.filter("title = {:t} || views > {:v}", { t: "O'Hara", v: 35 }), sort: "views" });
eq(page.items.map((r) => r.title), ["O'Hara", "Beta"], "bound filter params");
err = await rejects(pb.collection("sdk_posts").getList(1, 10, { filter: "missing = 1" }), "filter on a missing field");
eq(err.status, 400, "bad filter status");

step = "getFullList and getFirstListItem";
const all = await pb.collection("sdk_posts").getFullList({ sort: "views", batch: 2 });
eq(all.map((r) => r.views), [5, 10, 15, 25, 30, 40], "full list across pages");
const gamma = await pb.collection("sdk_posts").getFirstListItem(pb.filter("title = {:t}", { t: "Gamma" }));
eq(gamma.id, made[2].id, "first list item");
err = await rejects(pb.collection("sdk_posts").getFirstListItem("title = 'nope'"), "no first item");
eq(err.status, 404, "no first item status");

step = "relations and expand";
const c = [];
for (const [body, post] of [["nice", p1.id], ["great", p1.id], ["meh", made[1].id]]) {
  c.push(await pb.collection("sdk_comments").create({ body, post }));
}
err = await rejects(pb.collection("sdk_comments").create({ body: "x", post: "missing_post_id" }), "relation to a missing record");
eq(err.response.data.post.code, "validation_missing_rel_records", "missing relation code");
const one = await pb.collection("sdk_posts").getOne(p1.id, { expand: "author,sdk_comments_via_post" });
eq(one.expand.author.id, "4q1xlclmfloku33", "expanded author");
eq(sorted(one.expand.sdk_comments_via_post.map((x) => x.body)), ["great", "nice"], "back-relation expand");
const cl = await pb.collection("sdk_comments").getList(1, 10, { sort: "body", expand: "post.author" });
eq(cl.items.map((x) => [x.body, x.expand.post.title, x.expand.post.expand.author.id]), [
  ["great", "First post!", "4q1xlclmfloku33"],
  ["meh", "Beta", "oap640cot4yru2s"],
  ["nice", "First post!", "4q1xlclmfloku33"],
], "nested expand");
page = await pb.collection("sdk_posts").getList(1, 10, { filter: "sdk_comments_via_post.body ?= 'meh'" });
eq(page.items.map((r) => r.id), [made[1].id], "filter over a back-relation");

step = "fields";
const slim = await pb.collection("sdk_posts").getOne(p1.id, { expand: "author", fields: "id,title,expand.author.email" });
eq(Object.keys(slim).sort(), ["expand", "id", "title"], "top-level fields");
eq(Object.keys(slim.expand.author), ["email"], "expanded fields");
page = await pb.collection("sdk_posts").getList(1, 1, { sort: "-views", fields: "title:excerpt(3,true)" });
eq(page.items, [{ title: "Bet..." }], "excerpt modifier");

step = "batch";
await pb.settings.update({ batch: { enabled: true, maxRequests: 10, timeout: 5, maxBodySize: 0 } });
const batch = pb.createBatch();
batch.collection("sdk_posts").create({ title: "From batch", views: 1, attachments: [textBlob("batched")] }, { fields: "id,title,attachments" });
batch.collection("sdk_posts").update(made[0].id, { "views+": 100 });
batch.collection("sdk_comments").delete(c[2].id);
batch.collection("sdk_posts").upsert({ id: "sdkupsert000001", title: "Upserted" });
const res = await batch.send();
eq(res.map((r) => r.status), [200, 200, 204, 200], "batch statuses");
eq(res[0].body.title, "From batch", "batch create body");
eq(Object.keys(res[0].body).sort(), ["attachments", "id", "title"], "batch fields");
eq(res[0].body.attachments.length, 1, "batch file upload");
eq(res[1].body.views, 105, "batch update");
eq(res[3].body.id, "sdkupsert000001", "batch upsert");
got = await download(`${base}/api/files/sdk_posts/${res[0].body.id}/${res[0].body.attachments[0]}`);
eq([got.status, got.body.toString()], [200, "batched"], "batch-uploaded file");
await rejects(pb.collection("sdk_comments").getOne(c[2].id), "deleted in batch");
// a failing batch changes nothing
const bad = pb.createBatch();
bad.collection("sdk_posts").update(made[0].id, { title: "changed" });
bad.collection("sdk_posts").create({ views: 1 });
err = await rejects(bad.send(), "failing batch");
eq(err.status, 400, "failing batch status");
eq(err.response.data.requests["1"].code, "batch_request_failed", "failing request index");
eq((await pb.collection("sdk_posts").getOne(made[0].id)).title, "Alpha", "rolled back update");

step = "delete";
await pb.collection("sdk_posts").delete(p1.id);
err = await rejects(pb.collection("sdk_posts").getOne(p1.id), "deleted record");
eq(err.status, 404, "deleted record status");
eq((await pb.collection("sdk_comments").getFullList({ filter: pb.filter("post = {:p}", { p: p1.id }) })).length, 0, "cascade-deleted comments");
eq((await download(pb.files.getURL(p1c, p1c.attachments[0]))).status, 404, "files of the deleted record are gone");
eq((await pb.collection("sdk_posts").getList(1, 1)).totalItems, 7, "remaining posts");
err = await rejects(pb.collection("sdk_posts").delete(p1.id), "deleting twice");
eq(err.status, 404, "second delete status");

// the guest view: public list, no writes
step = "guest";
const guest = new PocketBase(base);
page = await guest.collection("sdk_posts").getList(1, 3, { sort: "views" });
eq(page.items.map((r) => r.title), ["Upserted", "From batch", "Delta"], "guest list");
err = await rejects(guest.collection("sdk_posts").create({ title: "nope" }), "guest create");
eq(err.status, 403, "guest create status");

console.log("ok");
