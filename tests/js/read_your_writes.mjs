// Read-your-writes through a read replica with the official JS SDK (run by
// tests/tests/replica.rs): a guest creates a record through the replica and reads it back at
// once, `count` times; every read must find the record just written. Node's fetch keeps no
// cookies, so this relies on the replica remembering its caller's last forwarded write.
// argv: <replica base url> <count>. Prints "ok <ms per round>" or exits non-zero.
import PocketBase from "pocketbase";

const [base, countArg] = process.argv.slice(2);
const count = Number(countArg);
const pb = new PocketBase(base);
pb.autoCancellation(false);

const started = Date.now();
for (let i = 0; i < count; i++) {
  const created = await pb.collection("notes").create({ n: i });
  let got;
  try {
    got = await pb.collection("notes").getOne(created.id);
  } catch (e) {
    console.error(`FAILED at round ${i}: reading ${created.id} back: ${e.status} ${e.message}`);
    process.exit(1);
  }
  if (got.n !== i) {
    console.error(`FAILED at round ${i}: read n=${got.n}`);
    process.exit(1);
  }
}
console.log(`ok ${((Date.now() - started) / count).toFixed(1)}`);
