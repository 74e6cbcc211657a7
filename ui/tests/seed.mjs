// Seeds a collection for tests/measure.mjs, the same way on PocketBun and PocketBase:
//   node tests/seed.mjs API_URL EMAIL PASSWORD COLLECTION COUNT
// Creates COLLECTION (title, body, score, published, created, updated) through the collections
// API and fills it with COUNT rows in one INSERT through the SQL runner (POST /api/sql, a
// recursive CTE), so both servers get byte-identical rows without COUNT HTTP requests.
import PocketBase from 'pocketbase';

const [api, email, password, name, count] = process.argv.slice(2);
const n = Number(count);
if (!api || !email || !password || !name || !(n > 0)) {
  console.error('usage: node tests/seed.mjs API_URL EMAIL PASSWORD COLLECTION COUNT');
  process.exit(2);
}
const pb = new PocketBase(api);
await pb.collection('_superusers').authWithPassword(email, password);
await pb.collections.create({
  name,
  type: 'base',
  listRule: '',
  fields: [
    { name: 'title', type: 'text' },
    { name: 'body', type: 'editor' },
    { name: 'score', type: 'number' },
    { name: 'published', type: 'bool' },
    { name: 'created', type: 'autodate', onCreate: true },
    { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
  ],
});
// ids: 'r' + 14 digits (PocketBase's 15 characters of [a-z0-9]); dates one minute apart
const query = `INSERT INTO \`${name}\` (id, title, body, score, published, created, updated)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n})
  SELECT printf('r%014d', i), 'Post number ' || i, '<p>Body of post ' || i || '</p>', i % 1000, i % 2,
    strftime('%Y-%m-%d %H:%M:%fZ', '2025-01-01', '+' || i || ' minutes'),
    strftime('%Y-%m-%d %H:%M:%fZ', '2025-01-01', '+' || i || ' minutes')
  FROM n`;
const r = await pb.send('/api/sql', { method: 'POST', body: { query } });
const list = await pb.collection(name).getList(1, 1);
if (list.totalItems !== n) throw new Error(`seeded ${list.totalItems} of ${n} (sql said ${JSON.stringify(r)})`);
console.log(`${name}: ${list.totalItems} records`);
