import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaultyDevice, ForestError, MemoryDevice, open } from './helpers/engine.js';
import { memoryOnly, testImage } from './helpers/test-image.js';
import { tempDir } from './helpers/tmp.js';

const code = (c: string) => ({ instanceOf: ForestError, code: c }) as never;

test('bad open options are refused with INVALID_ARGUMENT', async (t) => {
  for (const opts of [{ walThreshold: 0 }, { walThreshold: 1.5 }, { maxValueSize: -1 }, { maxValueSize: 0 }, { maxValueSize: 2.5 }, { maxValueSize: '1' as never }]) {
    const e = await t.throwsAsync(open(new MemoryDevice(16 << 20), opts), code('INVALID_ARGUMENT'));
    t.regex(e?.message ?? '', new RegExp(Object.keys(opts)[0]!), JSON.stringify(opts));
  }
  const db = await open(new MemoryDevice(16 << 20), { maxValueSize: 10 });
  await t.throwsAsync(db.store().put('k', Buffer.alloc(11)), code('VALUE_TOO_LARGE'));
  await db.store().put('k', Buffer.alloc(10));
  await db.close();
});

test('bad input gets a typed error and changes nothing', async (t) => {
  const db = await open(await testImage(16 << 20).open(), { maxValueSize: 1 << 20 });
  const s = db.store('x');
  await s.put('a', 1);
  await t.throwsAsync(s.put('', 1), code('KEY_EMPTY'));
  await t.throwsAsync(s.put(new Uint8Array(0), 1), code('KEY_EMPTY'));
  await t.throwsAsync(s.put('k'.repeat(16385), 1), code('KEY_TOO_LONG'));
  await t.throwsAsync(s.put('a', undefined as never), code('VALUE_NOT_ENCODABLE'));
  await t.throwsAsync(s.put('a', (() => 1) as never), code('VALUE_NOT_ENCODABLE'));
  await t.throwsAsync(s.put('a', 10n as never), code('VALUE_NOT_ENCODABLE'));
  await t.throwsAsync(s.put('a', Buffer.alloc((1 << 20) + 1)), code('VALUE_TOO_LARGE'));
  await t.throwsAsync(s.put(42 as never, 1), code('INVALID_ARGUMENT'));
  t.throws(() => s.get(''), code('KEY_EMPTY'));
  t.throws(() => db.store(''), code('INVALID_ARGUMENT'));
  t.is(s.get('a'), 1);
  t.deepEqual([...s.range()].length, 1);
  // A key of exactly the maximum length works.
  await s.put('k'.repeat(16384), 'max');
  t.is(s.get('k'.repeat(16384)), 'max');
  await db.close();
  t.throws(() => s.get('a'), code('CLOSED'));
  await t.throwsAsync(s.put('a', 2), code('CLOSED'));
});

test('values come back as the type they went in as', async (t) => {
  const db = await open(await testImage(16 << 20).open());
  const s = db.store();
  const cases: [string, unknown][] = [
    ['buf', Buffer.from('bytes')], ['u8', new Uint8Array([1, 2, 3])], ['str', 'héllo'], ['doc', { a: 1, b: { c: [1, 'x'] } }],
    ['arr', [1, 'two', { three: 3 }]], ['num', 3.5], ['bool', false], ['null', null],
  ];
  for (const [k, v] of cases) await s.put(k, v as never);
  for (const [k, v] of cases) {
    const got = s.get(k);
    t.deepEqual(got, v, k);
    t.is(Object.getPrototypeOf(got ?? Object.create(null))?.constructor?.name, Object.getPrototypeOf(v ?? Object.create(null))?.constructor?.name, `${k} keeps its type`);
  }
  await s.put(Buffer.from([0xff, 0]), 'binary key');
  const keys = [...s.range()].map(([k]) => k);
  t.true(Buffer.isBuffer(keys.at(-1)), 'a byte-array key comes back as bytes');
  t.is(typeof keys[0], 'string');
  await db.close();
});

memoryOnly(test)('a file that is not ForestFS is refused, and so is a second writer', async (t) => {
  const dir = tempDir(t);
  const junk = join(dir, 'junk.img');
  writeFileSync(junk, Buffer.alloc(1 << 20, 0x41));
  await t.throwsAsync(open(junk), code('NOT_FORESTFS'));
  const path = join(dir, 'db.forest');
  const db = await open(path, { size: '16MiB' });
  await t.throwsAsync(open(path), code('LOCKED'));
  const ro = await open(path, { readOnly: true });
  await t.throwsAsync(ro.store().put('a', 1), code('READ_ONLY'));
  await ro.close();
  await db.close();
});

test('device full: a clear error, nothing committed lost, reads and deletes still work', async (t) => {
  const image = testImage(2 << 20);
  const db = await open(await image.open(), { walThreshold: 64 });
  const s = db.store();
  const value = 'v'.repeat(3000);
  let written = 0;
  let error: unknown;
  for (; written < 10_000; written++) {
    try {
      await s.put(`key:${written}`, value);
    } catch (e) {
      error = e;
      break;
    }
  }
  t.is((error as ForestError).code, 'DEVICE_FULL');
  t.regex((error as Error).message, /device is full/);
  t.true(written > 100);
  for (let i = 0; i < written; i++) t.is(s.get(`key:${i}`), value);
  await s.del('key:0');
  await s.del('key:1');
  t.is(s.get('key:0'), undefined);
  await t.throwsAsync(s.put('more', value), code('DEVICE_FULL'));
  await db.close();
  const again = await open(await image.open());
  t.is(again.store().get('key:0'), undefined);
  t.is(again.store().get(`key:${written - 1}`), value);
  await again.close();
});

memoryOnly(test)('an I/O error during a commit rejects it, refuses later writes, and reopening recovers', async (t) => {
  // A small commit is one FUA write (its write fails); a commit over 64 KiB is writes and a
  // flush (its flush fails).
  for (const [op, value] of [['write', 2], ['flush', 'x'.repeat(100_000)]] as const) {
    const dev = new FaultyDevice(8 << 20);
    const db = await open(dev, { prepareLog: false });
    const s = db.store();
    await s.put('a', 1);
    dev.failOn({ op });
    await t.throwsAsync(s.put('b', value), code('IO'), `a failed ${op}`);
    await t.throwsAsync(s.put('c', 3), code('IO'));
    t.is(s.get('a'), 1, 'reads still work');
    t.is(s.get('b'), undefined, 'the failed write is not visible');
    await db.close();
    const again = await open(new FaultyDevice(dev.crash({ keep: 'none' })));
    t.is(again.store().get('a'), 1);
    t.is(again.store().get('b'), undefined);
    await again.close();
  }
});

/** Finds the first occurrence of `needle` in the image at or after `from`. */
function find(image: Uint8Array, needle: string, from = 0): number {
  return Buffer.from(image.buffer, image.byteOffset, image.length).indexOf(Buffer.from(needle), from);
}

memoryOnly(test)('a flipped bit in a record is detected, never returned as data', async (t) => {
  const image = new Uint8Array(8 << 20);
  let db = await open(new MemoryDevice(image));
  await db.store().put('victim', 'precious-value');
  await db.store().put('other', 'fine');
  await db.close(); // checkpoint: the records are now reached through the index
  const at = find(image, 'precious-value');
  t.true(at > 0);
  image[at + 3]! ^= 0x10;
  db = await open(new MemoryDevice(image));
  t.throws(() => db.store().get('victim'), code('CORRUPT'));
  await t.throwsAsync(db.store().getAsync('victim'), code('CORRUPT'));
  t.is(db.store().get('other'), 'fine');
  await db.close();
});

memoryOnly(test)('a flipped bit in an index node is detected', async (t) => {
  const image = new Uint8Array(8 << 20);
  let db = await open(new MemoryDevice(image), { walThreshold: 10 });
  const s = db.store();
  for (let i = 0; i < 200; i++) await s.put(`key:${String(i).padStart(4, '0')}`, i);
  await db.close();
  // Index node blocks start with their checksum (4 bytes), then the node magic 0xb7 and a
  // node type (1 leaf, 2 internal).
  const nodes: number[] = [];
  for (let off = 0; off < image.length; off += 4096) if (image[off + 4] === 0xb7 && (image[off + 5] === 1 || image[off + 5] === 2)) nodes.push(off);
  t.true(nodes.length > 0, 'the index wrote node blocks');
  // Damage one node at a time. The newest checkpoint's frame is checked whole at open; a node
  // of an older checkpoint that the index still uses is checked when a read reaches it.
  let atOpen = 0;
  let atRead = 0;
  for (const off of nodes) {
    const copy = image.slice();
    copy[off + 40]! ^= 0x01;
    try {
      db = await open(new MemoryDevice(copy));
    } catch (e) {
      t.is((e as ForestError).code, 'CORRUPT');
      atOpen++;
      continue;
    }
    for (let i = 0; i < 200; i++) {
      try {
        const v = db.store().get(`key:${String(i).padStart(4, '0')}`);
        t.is(v, i, 'a damaged index never returns wrong data');
      } catch (e) {
        t.is((e as ForestError).code, 'CORRUPT');
        atRead++;
        break;
      }
    }
    await db.close();
  }
  t.log(`${nodes.length} node blocks damaged one at a time: ${atOpen} caught at open, ${atRead} by a read`);
  t.true(atRead > 0, 'some damaged node was caught by its own checksum on a read');
});

memoryOnly(test)('a flipped bit in the newest commit header falls back to the previous commit', async (t) => {
  const image = new Uint8Array(8 << 20);
  const dev = new MemoryDevice(image);
  const db = await open(dev, { walThreshold: 1000 });
  await db.store().put('first', 1);
  await db.store().put('second', 2);
  // Do not close (close would checkpoint): take the image as a crash would leave it.
  const snapshot = image.slice();
  await db.close();
  let last = -1;
  for (let at = find(snapshot, 'FFRM'); at >= 0; at = find(snapshot, 'FFRM', at + 1)) last = at;
  // Every frame header starts with the magic; the last one written before close belongs to 'second'.
  const frames: number[] = [];
  for (let at = find(snapshot, 'FFRM'); at >= 0; at = find(snapshot, 'FFRM', at + 1)) if (at % 4096 === 0) frames.push(at);
  const newest = frames.at(-1)!;
  t.true(last >= newest);
  snapshot[newest + 9]! ^= 0x04;
  const again = await open(new MemoryDevice(snapshot));
  t.is(again.store().get('first'), 1);
  t.is(again.store().get('second'), undefined);
  await again.close();
});

memoryOnly(test)('a flipped bit in a checkpoint named by the newest superblock is a CORRUPT error, not silent loss', async (t) => {
  const image = new Uint8Array(8 << 20);
  let db = await open(new MemoryDevice(image), { walThreshold: 5 });
  for (let i = 0; i < 40; i++) await db.store().put(`k${i}`, i);
  await db.close();
  // The superblock with the highest generation names the newest checkpoint at bytes 48..56.
  const gen = (b: number) => Number(Buffer.from(image.buffer).readBigUInt64LE(b * 4096 + 16));
  const sb = gen(0) > gen(1) ? 0 : 1;
  const cp = Number(Buffer.from(image.buffer).readBigUInt64LE(sb * 4096 + 48));
  image[cp + 200]! ^= 0x01;
  await t.throwsAsync(open(new MemoryDevice(image)), code('CORRUPT'));
  void db;
  db = undefined as never;
});
