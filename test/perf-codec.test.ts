/**
 * The fast paths behave exactly like the straightforward code they replace: key encoding
 * (ASCII fast path), record encoding and decoding without DataViews, frames laid out lazily
 * with batched checksums, ranges read across cached and missing blocks, and frames handed to
 * the device without a copy.
 */
import test from 'ava';
import { BlockCache } from '../src/engine/block-cache.js';
import { crc32cJs } from '../src/engine/checksum.js';
import { decodeValue, keyBytes, keyFromRecord, VT_STRING } from '../src/engine/codec.js';
import { decodeFrameHeader, FRAME_HEADER_SIZE, verifyFrameBody } from '../src/engine/format.js';
import { FrameBuilder, recycleFrame } from '../src/engine/frame-builder.js';
import { LogReader } from '../src/engine/log-reader.js';
import { addressOffset, decodeRecord, encodeRecord, peekRecordSize, recordSize, type RecordFields } from '../src/engine/record.js';
import { addressOf, BufferPool, MemoryDevice, Prng, writeBlocks } from '../src/io/index.js';

const add = (b: FrameBuilder, f: RecordFields): number => b.addRecord(f.kind, f.valueType, f.flags, f.storeId, f.seq, f.key, f.value);

test('keyBytes: ASCII and non-ASCII strings and byte keys give UTF-8 bytes and their latin1 form', (t) => {
  for (const key of ['user:000000001', 'a', 'x'.repeat(16384), 'héllo', '\u{1F600}k', '\uFEFFbom', 'a\u0000b', '\u007f\u0080']) {
    const k = keyBytes(key);
    const utf8 = Buffer.from(key, 'utf8');
    t.deepEqual(Buffer.from(k.bytes), utf8);
    t.is(k.str, utf8.toString('latin1'));
    t.true(k.isString);
    t.is(keyFromRecord(k.bytes, 1), Buffer.from(k.bytes).toString('utf8'), 'a string key comes back as it went in (BOM included)');
  }
  const raw = new Uint8Array([0, 200, 255, 65]);
  const k = keyBytes(raw);
  raw[0] = 9;
  t.deepEqual([...k.bytes], [0, 200, 255, 65], 'byte keys are copied');
  t.is(k.str, '\u0000\u00c8\u00ffA');
  t.false(k.isString);
  const back = keyFromRecord(k.bytes, 0);
  t.true(Buffer.isBuffer(back));
  t.not((back as Buffer).buffer, k.bytes.buffer);
  t.throws(() => keyBytes(''), { code: 'KEY_EMPTY' } as never);
  t.throws(() => keyBytes('x'.repeat(16385)), { code: 'KEY_TOO_LONG' } as never);
  t.throws(() => keyBytes('é'.repeat(8193)), { code: 'KEY_TOO_LONG' } as never);
  t.throws(() => keyBytes('abcd', 3), { code: 'KEY_TOO_LONG' } as never);
  t.throws(() => keyBytes(new Uint8Array(0)), { code: 'KEY_EMPTY' } as never);
  // Byte order of the latin1 form is the byte order of the keys.
  const keys = ['b', 'a', 'é', 'z', '\u00ff', 'ab'].map((s) => keyBytes(s));
  const byStr = keys.slice().sort((x, y) => (x.str < y.str ? -1 : 1)).map((x) => x.str);
  const byBytes = keys.slice().sort((x, y) => Buffer.compare(Buffer.from(x.bytes), Buffer.from(y.bytes))).map((x) => x.str);
  t.deepEqual(byStr, byBytes);
});

test('string values keep a leading byte-order mark and decode invalid UTF-8 like Buffer', (t) => {
  for (const s of ['\uFEFFx', 'plain', 'ünïcödé', '']) t.is(decodeValue(VT_STRING, Buffer.from(s, 'utf8')), s);
  const bad = new Uint8Array([0x61, 0xff, 0xc3, 0x62]);
  t.is(decodeValue(VT_STRING, bad), Buffer.from(bad).toString('utf8'));
});

function fields(prng: Prng, i: number): RecordFields {
  const key = new Uint8Array(1 + prng.int(40)).map(() => prng.int(256));
  const value = new Uint8Array(prng.int(i % 7 === 0 ? 70_000 : 300)).map(() => prng.int(256));
  return { kind: 1 + (i % 3), valueType: 1 + (i % 6), flags: i & 1, storeId: 1 + prng.int(1000), seq: i * 4294967291 + 17, key, value };
}

test('records round-trip (sequence numbers above 2^32 included) and damage is detected', (t) => {
  const prng = new Prng(3);
  for (let i = 0; i < 200; i++) {
    const f = fields(prng, i);
    const buf = new Uint8Array(recordSize(f.key.length, f.value.length) + 16);
    const size = encodeRecord(buf, 8, f);
    t.is(size, recordSize(f.key.length, f.value.length));
    t.is(peekRecordSize(buf, 8), size);
    t.is(crc32cJs(buf, 8, 8 + size - 4), Buffer.from(buf.buffer, 8 + size - 4, 4).readUInt32LE(0));
    const d = decodeRecord(buf, 8, 'here');
    t.like(d, { kind: f.kind, valueType: f.valueType, flags: f.flags, storeId: f.storeId, seq: f.seq, size });
    t.deepEqual([...d.key], [...f.key]);
    t.deepEqual(Buffer.from(d.value), Buffer.from(f.value));
    buf[8 + 24 + prng.int(size - 28)]! ^= 1 << prng.int(8);
    t.throws(() => decodeRecord(buf, 8, 'here'), { code: 'CORRUPT' } as never);
  }
  t.throws(() => decodeRecord(new Uint8Array(30), 0, 'x'), { message: /header is damaged/ });
});

test('a frame laid out lazily equals one encoded eagerly, and is block-aligned in memory', (t) => {
  const prng = new Prng(5);
  const bs = 4096;
  const header = { flags: 0, commit: 9, prevOffset: 8192, nextOffset: 0, lastSeq: 77, checkpointOffset: 8192, uuid: new Uint8Array(16).fill(3), timestamp: 1234 };
  for (const count of [0, 1, 5, 300]) {
    const b = new FrameBuilder(3 * bs, bs);
    const expect = new Uint8Array(64 << 20);
    let at = FRAME_HEADER_SIZE;
    const recs: RecordFields[] = [];
    for (let i = 0; i < count; i++) {
      const f = fields(prng, i);
      recs.push(f);
      at = Math.ceil(at / 8) * 8;
      const addr = add(b, f);
      const size = recordSize(f.key.length, f.value.length);
      t.is(size, encodeRecord(expect, at, f));
      t.is(Math.floor(addr / 8192) * 8, 3 * bs + at);
      at += size;
      // Reading the frame being built mid-way sees every record so far, checksummed.
      if (i === 2) t.notThrows(() => decodeRecord(b.bytes, FRAME_HEADER_SIZE, 'pending'));
    }
    const frame = b.seal(header);
    t.is(frame.length, Math.ceil(at / bs) * bs);
    t.is(Number(addressOf(frame)! % 4096n), 0);
    t.deepEqual(Buffer.from(frame.subarray(FRAME_HEADER_SIZE, at)), Buffer.from(expect.subarray(FRAME_HEADER_SIZE, at)));
    t.true(frame.subarray(at).every((x) => x === 0), 'padding is zero');
    const h = decodeFrameHeader(frame, header.uuid, bs);
    t.truthy(h);
    t.true(verifyFrameBody(frame, h!));
    t.is(h!.recordCount, count);
  }
});

test('a checkpoint frame: records, index blocks written in place, meta', (t) => {
  const prng = new Prng(6);
  const bs = 4096;
  const b = new FrameBuilder(10 * bs, bs, bs);
  for (let i = 0; i < 50; i++) add(b, fields(prng, i));
  const blocks = b.allocateBlocks(3);
  t.is(blocks[0]! % bs, 0);
  blocks.forEach((addr, i) => b.writeBlock(addr, new Uint8Array(bs).fill(i + 1)));
  for (let i = 50; i < 60; i++) add(b, fields(prng, i));
  b.addMeta(new Uint8Array(100).fill(0xee));
  const frame = b.seal({ flags: 1, commit: 2, prevOffset: 0, nextOffset: 0, lastSeq: 1, checkpointOffset: 0, uuid: new Uint8Array(16), timestamp: 0 });
  blocks.forEach((addr, i) => t.true(frame.subarray(addr - 10 * bs, addr - 10 * bs + bs).every((x) => x === i + 1)));
  t.true(frame.subarray(b.metaOffset, b.metaOffset + 100).every((x) => x === 0xee));
  const h = decodeFrameHeader(frame, new Uint8Array(16), bs)!;
  t.true(verifyFrameBody(frame, h));
  let at = FRAME_HEADER_SIZE;
  for (let i = 0; i < 50; i++) {
    at = Math.ceil(at / 8) * 8;
    at += decodeRecord(frame, at, 'x').size;
  }
});

test('LogReader: ranges across cached, missing and pending blocks read back the device bytes', async (t) => {
  const bs = 4096;
  const prng = new Prng(8);
  const image = new Uint8Array(256 * bs).map(() => prng.int(256));
  const dev = new MemoryDevice(image.slice());
  const cache = new BlockCache(64 * bs, bs);
  const reader = new LogReader(dev, cache, new BufferPool(dev));
  for (let k = 0; k < 400; k++) {
    const offset = prng.int(250 * bs);
    const length = 1 + prng.int(k % 10 === 0 ? 5 * bs : 300);
    const got = k % 2 ? reader.readSync(offset, length) : await reader.read(offset, length);
    t.deepEqual(Buffer.from(got), Buffer.from(image.subarray(offset, offset + length)));
    if (k % 50 === 0) cache.clear();
  }
  const b = new FrameBuilder(200 * bs, bs);
  b.addRecord(1, 1, 0, 1, 1, new Uint8Array([1]), new Uint8Array(10));
  reader.pending = b;
  t.is(decodeRecord(reader.readSync(200 * bs + FRAME_HEADER_SIZE, 39), 0, 'pending').seq, 1);
});

test('writeBlocks writes an aligned frame without copying it, and other data as before', async (t) => {
  const bs = 4096;
  const dev = new MemoryDevice(2048 * bs, { maxTransfer: 64 * bs });
  const pool = new BufferPool(dev);
  const b = new FrameBuilder(2 * bs, bs);
  const prng = new Prng(9);
  for (let i = 0; i < 40; i++) add(b, fields(prng, i * 7));
  const frame = b.seal({ flags: 0, commit: 1, prevOffset: 0, nextOffset: 0, lastSeq: 1, checkpointOffset: 0, uuid: new Uint8Array(16), timestamp: 0 });
  t.true(frame.length > 64 * bs, 'larger than one transfer: split');
  const small = new Uint8Array(bs).fill(7);
  await writeBlocks(dev, pool, [{ offset: 2 * bs, data: frame }, { offset: 0, data: small }], { flush: true });
  t.deepEqual(Buffer.from(dev.image.subarray(2 * bs, 2 * bs + frame.length)), Buffer.from(frame));
  t.true(dev.image.subarray(0, bs).every((x) => x === 7));
});

test('frame memory handed back with recycleFrame is reused, zeroed, and never while in use', (t) => {
  const bs = 4096;
  const header = { flags: 0, commit: 1, prevOffset: 0, nextOffset: 0, lastSeq: 1, checkpointOffset: 0, uuid: new Uint8Array(16), timestamp: 0 };
  const big = (fill: number, n: number): Uint8Array => {
    const b = new FrameBuilder(2 * bs, bs);
    for (let i = 0; i < n; i++) b.addRecord(1, 1, 0, 1, i + 1, new Uint8Array([i & 0xff, i >> 8]), new Uint8Array(65_531).fill(fill));
    return b.seal(header);
  };
  const first = big(0xaa, 20);
  recycleFrame(first);
  recycleFrame(first); // a second call is ignored
  const second = big(0xbb, 17); // smaller: reuses the first's memory
  t.is(second.buffer, first.buffer);
  const third = big(0xcc, 17); // the second is still in use: fresh memory
  t.not(third.buffer, second.buffer);
  recycleFrame(first); // stale: ignored, the memory belongs to `second` now
  const fourth = big(0xdd, 17);
  t.not(fourth.buffer, second.buffer);
  const h = decodeFrameHeader(second, header.uuid, bs)!;
  t.true(verifyFrameBody(second, h));
  let at = FRAME_HEADER_SIZE;
  for (let i = 0; i < 17; i++) {
    at = Math.ceil(at / 8) * 8;
    const r = decodeRecord(second, at, 'x');
    t.true(r.value.every((x) => x === 0xbb));
    at += r.size;
  }
  t.true(second.subarray(at).every((x) => x === 0), 'what the first frame left beyond the second is zeroed');
});

test('LogReader.recordSync/record decode by packed address; bytes read from the device are always verified', async (t) => {
  const bs = 4096;
  const dev = new MemoryDevice(64 * bs);
  const cache = new BlockCache(32 * bs, bs);
  const reader = new LogReader(dev, cache, new BufferPool(dev));
  const b = new FrameBuilder(2 * bs, bs);
  const prng = new Prng(12);
  const addrs: number[] = [];
  const recs: RecordFields[] = [];
  for (let i = 0; i < 60; i++) {
    const f = fields(prng, i % 7 === 0 ? i + 1 : i);
    recs.push(f);
    addrs.push(b.addRecord(f.kind, f.valueType, f.flags, f.storeId, f.seq, f.key, f.value));
  }
  const frame = b.seal({ flags: 0, commit: 1, prevOffset: 0, nextOffset: 0, lastSeq: 1, checkpointOffset: 0, uuid: new Uint8Array(16), timestamp: 0 });
  await writeBlocks(dev, new BufferPool(dev), [{ offset: 2 * bs, data: frame }]);
  let straddling = 0;
  for (let i = 0; i < recs.length; i++) {
    const at = addressOffset(addrs[i]!) % bs;
    if (at + recordSize(recs[i]!.key.length, recs[i]!.value.length) > bs) straddling++;
  }
  t.true(straddling >= 2, `${straddling} records lie across two blocks`);
  for (const round of ['device', 'cached-written', 'cached-frame', 'cached-read']) {
    if (round === 'cached-written') for (let i = 0; i < frame.length; i += bs) cache.set(2 + i / bs, frame.slice(i, i + bs), true);
    // The blocks as adjacent views of one copy: records across two blocks decode in place.
    // The device's copy is zeroed meanwhile: any read that went to the device would fail.
    if (round === 'cached-frame') {
      cache.setWritten(2, frame);
      dev.image.fill(0, 2 * bs, 2 * bs + frame.length);
    }
    for (let i = 0; i < recs.length; i++) {
      const a = reader.recordSync(addrs[i]!, 'img');
      // (The async read of a record across blocks goes to the device, zeroed in that round.)
      const c = round === 'cached-frame' ? a : await reader.record(addrs[i]!, 'img');
      for (const d of [a, c]) {
        t.is(d.seq, recs[i]!.seq);
        t.deepEqual(Buffer.from(d.value), Buffer.from(recs[i]!.value));
      }
    }
    if (round === 'cached-written' || round === 'cached-frame') cache.clear();
    if (round === 'cached-frame') dev.image.set(frame, 2 * bs);
  }
  // A damaged record read from the device is refused, naming where it is.
  const victim = 2 * bs + FRAME_HEADER_SIZE + 30;
  dev.image[victim]! ^= 0xff;
  cache.clear();
  t.throws(() => reader.recordSync(addrs[0]!, 'img'), { message: /record at img offset \d+ is corrupt/ });
});
