import test from 'ava';
import { BufferPool, MemoryDevice, writeBlocks, type IoCommand } from './helpers/io.js';

const BS = 4096;

/** A memory device that records the batches it is given. */
class RecordingDevice extends MemoryDevice {
  batches: IoCommand[][] = [];
  override submit(commands: readonly IoCommand[]): Promise<void> {
    this.batches.push([...commands]);
    return super.submit(commands);
  }
}

test('adjacent blocks coalesce into commands no larger than the maximum transfer, in one batch with one flush', async (t) => {
  const dev = new RecordingDevice(4 << 20, { maxTransfer: 16 * BS });
  const pool = new BufferPool(dev);
  // blocks 0..39 (in shuffled order), then 100, 101, then 200
  const offsets = [...Array(40).keys(), 100, 101, 200].map((b) => b * BS).sort(() => Math.random() - 0.5);
  await writeBlocks(dev, pool, offsets.map((offset) => ({ offset, data: new Uint8Array(BS).fill((offset / BS) % 256) })), { flush: true });
  t.is(dev.batches.length, 1);
  const cmds = dev.batches[0]!;
  const writes = cmds.filter((c) => c.op === 'write');
  t.deepEqual(writes.map((c) => [c.offset / BS, c.op === 'write' ? c.buffer.length / BS : 0]), [[0, 16], [16, 16], [32, 8], [100, 2], [200, 1]]);
  t.deepEqual(cmds.at(-1), { op: 'flush', barrier: true });
  for (const b of [0, 17, 39, 100, 101, 200]) t.is(dev.image[b * BS + 5], b % 256);
});

test('multi-block pieces and a piece larger than the maximum transfer', async (t) => {
  const dev = new RecordingDevice(4 << 20, { maxTransfer: 8 * BS });
  const pool = new BufferPool(dev);
  const big = new Uint8Array(20 * BS).map((_, i) => i % 253);
  await writeBlocks(dev, pool, [{ offset: 40 * BS, data: big }, { offset: 60 * BS, data: new Uint8Array(2 * BS).fill(1) }]);
  const writes = dev.batches[0]!.filter((c) => c.op === 'write');
  t.true(writes.every((c) => c.op === 'write' && c.buffer.length <= 8 * BS));
  t.deepEqual(dev.image.subarray(40 * BS, 60 * BS), big);
  t.is(dev.image[61 * BS], 1);
});

test('FUA blocks are written by FUA commands, coalesced only with each other', async (t) => {
  const dev = new RecordingDevice(4 << 20, { maxTransfer: 16 * BS });
  const pool = new BufferPool(dev);
  const block = (b: number, fua?: boolean): { offset: number; data: Uint8Array; fua?: boolean } =>
    ({ offset: b * BS, data: new Uint8Array(BS).fill(b), ...(fua ? { fua } : {}) });
  // 10-11 FUA, then 12-13 adjacent without; 0 FUA; 20 FUA (larger than one transfer is split).
  const big = { offset: 20 * BS, data: new Uint8Array(20 * BS).fill(20), fua: true };
  await writeBlocks(dev, pool, [block(12), block(10, true), block(13), block(11, true), block(0, true), big]);
  const writes = dev.batches[0]!.filter((c) => c.op === 'write');
  t.deepEqual(
    writes.map((c) => [c.offset / BS, c.op === 'write' ? c.buffer.length / BS : 0, c.op === 'write' && c.fua === true]),
    [[0, 1, true], [10, 2, true], [12, 2, false], [20, 16, true], [36, 4, true]],
  );
  t.false(dev.batches[0]!.some((c) => c.op === 'flush'));
  for (const b of [0, 10, 11, 12, 13, 20, 39]) t.is(dev.image[b * BS], b < 20 ? b : 20);
});

test('overlapping or unaligned dirty blocks are refused', async (t) => {
  const dev = new MemoryDevice(1 << 20);
  const pool = new BufferPool(dev);
  await t.throwsAsync(writeBlocks(dev, pool, [{ offset: 0, data: new Uint8Array(2 * BS) }, { offset: BS, data: new Uint8Array(BS) }]), { message: /overlap/ });
  await t.throwsAsync(writeBlocks(dev, pool, [{ offset: 10, data: new Uint8Array(BS) }]), { code: 'UNALIGNED' } as never);
  await t.throwsAsync(writeBlocks(dev, pool, [{ offset: 0, data: new Uint8Array(100) }]), { code: 'UNALIGNED' } as never);
});

test('the pool reuses buffers by size class and bounds what it keeps', (t) => {
  const dev = new MemoryDevice(1 << 20);
  const pool = new BufferPool(dev, 3 * BS);
  const a = pool.acquire(3000);
  t.is(a.length, BS);
  pool.release(a);
  t.is(pool.acquire(BS), a, 'same buffer back');
  const b = pool.acquire(3 * BS);
  t.is(b.length, 4 * BS, 'rounded to a power-of-two number of blocks');
  pool.release(a);
  pool.release(b); // over the retain limit: freed, not kept
  t.not(pool.acquire(4 * BS), b);
});
