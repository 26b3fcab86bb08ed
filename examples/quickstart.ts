/**
 * The first thing to run: opens (or creates) an image file in the working directory,
 * writes, reads, scans, reopens, and prints what the store reports about itself.
 *
 *   npm run demo                      # ./quickstart.forest, 256 MiB sparse
 *   npx tsx examples/quickstart.ts /dev/loop0
 */
import { open } from '../src/index.js';

const path = process.argv[2] ?? 'quickstart.forest';
const t0 = performance.now();
let db = await open(path, { size: '256MiB' });
console.log(`opened ${path} with the ${db.stats().backend} backend`);

const users = db.store('users');
await users.put('alice', { name: 'Alice', age: 31, tags: ['admin'] });
await users.put('bob', { name: 'Bob', age: 27 });
console.log('get alice  →', users.get('alice'));

// Writes issued in one event-loop turn share one durable commit.
const t1 = performance.now();
const writes = [];
for (let i = 0; i < 10_000; i++) writes.push(users.put(`user:${String(i).padStart(9, '0')}`, { i, joined: 2026 }));
await Promise.all(writes);
console.log(`10,000 puts in one commit: ${(performance.now() - t1).toFixed(1)} ms`);

const files = db.store('files');
await files.put('/docs/readme.txt', 'ForestFS keeps long, shared-prefix keys compact.');
await files.put('/docs/logo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));

console.log('scan user:000000100 … (5 entries):');
for (const [key, value] of users.range({ gte: 'user:000000100', limit: 5 })) console.log('  ', key, value);
console.log('prefix /docs/ in reverse:', [...files.range({ prefix: '/docs/', reverse: true })].map(([k]) => k));

await users.del('bob');
await db.close();

db = await open(path);
const again = db.store('users');
console.log('after reopen: alice →', again.get('alice'), '| bob →', again.get('bob'), '| user:000009999 →', await again.getAsync('user:000009999'));
const s = db.stats();
console.log(`stats: ${s.records} records in ${s.stores} stores, ${s.usedBytes} of ${s.deviceBytes} device bytes used, live ${s.liveBytes} / stale ${s.staleBytes}, ${s.checkpoints} checkpoints this session`);
await db.close();
console.log(`done in ${(performance.now() - t0).toFixed(0)} ms; run again to see it reopen the same image (delete ${path} to start over)`);
