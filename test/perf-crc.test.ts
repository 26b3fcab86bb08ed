/**
 * The engine's CRC32C: the native implementation (SSE4.2 or tables, through koffi) and the
 * JavaScript one agree on random buffers, offsets and lengths; the batched record checksums
 * agree with one-by-one ones; and without the native library (as after an install without a
 * compiler) everything still works and gives the same answers.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c, crc32cJs, crc32cRecords, crcImplementation, NATIVE_MIN } from '../src/engine/checksum.js';
import { Prng } from '../src/io/index.js';
import { tempDir } from './helpers/tmp.js';

function randomBytes(prng: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = prng.int(256);
  return b;
}

test('the check value of "123456789" is 0xE3069283 in both implementations', (t) => {
  const b = Buffer.from('123456789');
  t.is(crc32c(b), 0xe3069283);
  t.is(crc32cJs(b), 0xe3069283);
  const long = Buffer.alloc(4096, '123456789');
  t.is(crc32c(long), crc32cJs(long));
});

test('native and JavaScript CRC32C agree on random buffers, offsets and lengths', (t) => {
  t.log(`implementation in use: ${crcImplementation}`);
  const prng = new Prng(7);
  const big = randomBytes(prng, 300_000);
  const lengths = [0, 1, 7, 8, 9, NATIVE_MIN - 1, NATIVE_MIN, NATIVE_MIN + 1, 1023, 3071, 3072, 3073, 4096, 9215, 65536, 200_000];
  for (const len of lengths) {
    for (let k = 0; k < 6; k++) {
      const start = prng.int(big.length - len + 1);
      t.is(crc32c(big, start, start + len), crc32cJs(big, start, start + len), `length ${len} at ${start}`);
    }
  }
  for (let k = 0; k < 2000; k++) {
    const len = prng.int(k < 100 ? 100_000 : 5000);
    const start = prng.int(big.length - len + 1);
    t.is(crc32c(big, start, start + len), crc32cJs(big, start, start + len));
  }
  // A view with a byte offset into its buffer.
  const view = big.subarray(12_345, 112_345);
  t.is(crc32c(view, 3, 90_003), crc32cJs(view, 3, 90_003));
  t.is(crc32c(view), crc32cJs(view));
});

test('batched record checksums equal one-by-one checksums, and touch nothing else', (t) => {
  const prng = new Prng(11);
  for (const size of [64, 4096, 65536, 1 << 20]) {
    const buf = randomBytes(prng, size);
    const spans: number[] = [];
    let at = prng.int(16);
    while (at + 4 < size) {
      const len = Math.min(1 + prng.int(size > 4096 ? 3000 : 200), size - at - 4);
      spans.push(at, len);
      at += len + 4 + prng.int(9);
    }
    const before = buf.slice();
    const s = Uint32Array.from(spans);
    crc32cRecords(buf, s, s.length / 2);
    const covered = new Uint8Array(size);
    for (let i = 0; i < s.length; i += 2) {
      const start = s[i]!;
      const end = start + s[i + 1]!;
      const c = crc32cJs(before, start, end);
      t.is((buf[end]! | (buf[end + 1]! << 8) | (buf[end + 2]! << 16) | (buf[end + 3]! << 24)) >>> 0, c);
      covered.fill(1, end, end + 4);
    }
    for (let i = 0; i < size; i++) if (!covered[i] && buf[i] !== before[i]) t.fail(`byte ${i} changed`);
  }
  t.pass();
});

test('without the native library (or without SSE4.2) the fallbacks are used and agree', (t) => {
  const dir = tempDir(t);
  const script = join(dir, 'crc.ts');
  const src = new URL('../src/engine/checksum.ts', import.meta.url).pathname;
  writeFileSync(script, `
    import { crc32c, crc32cRecords, crcImplementation } from ${JSON.stringify(src)};
    const b = new Uint8Array(70000);
    for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
    const spans = Uint32Array.from([0, 100, 200, 5000, 6000, 60000]);
    crc32cRecords(b, spans, 3);
    console.log(JSON.stringify({ impl: crcImplementation, all: crc32c(b), part: crc32c(b, 17, 65017), tiny: crc32c(b, 5, 9) }));
  `);
  const run = (env: Record<string, string>): { impl: string; all: number; part: number; tiny: number } =>
    JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, encoding: 'utf8' }));
  const missing = run({ FORESTFS_NATIVE_LIB: join(dir, 'no-such-lib.so') });
  const off = run({ FORESTFS_NATIVE_CRC: '0' });
  const tables = run({ FORESTFS_NATIVE_CRC_TABLES: '1' });
  const here = run({});
  t.is(missing.impl, 'javascript');
  t.is(off.impl, 'javascript');
  if (here.impl !== 'javascript') t.is(tables.impl, 'native-tables');
  t.deepEqual({ ...tables, impl: '' }, { ...here, impl: '' });
  t.deepEqual({ ...missing, impl: '' }, { ...here, impl: '' });
  t.deepEqual({ ...off, impl: '' }, { ...here, impl: '' });
});
