import { randomBytes } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import { BufferPool, ForestErrorCodes, openDevice, writeBlocks, type BackendChoice, type BlockDevice, type IoCommand } from './io.js';

/**
 * A real device to test, named by the environment: FORESTFS_TEST_DEVICE (a path such as
 * /dev/nvmed0, /dev/ng0n1, /dev/nvme0n1, /dev/loop0) and FORESTFS_TEST_BACKEND (nvmed,
 * uring-cmd, uring, psync; default auto). null when FORESTFS_TEST_DEVICE is unset. The QEMU
 * NVMe harness (test/nvme/run.sh) sets them for each backend; its contents are overwritten.
 */
export function testDeviceFromEnv(): { device: string; backend: BackendChoice } | null {
  const device = process.env.FORESTFS_TEST_DEVICE;
  if (!device) return null;
  return { device, backend: (process.env.FORESTFS_TEST_BACKEND || 'auto') as BackendChoice };
}

/**
 * Registers the suite against the device named by the environment (see testDeviceFromEnv),
 * serially (run ava with -c 1 too: other files may use the same device): every test opens
 * the same device and writes its first blocks; the first 2 MiB are zeroed before each test.
 * Registers one skipped test when the variables are unset.
 */
export function envDeviceSuite(test: TestFn): void {
  const target = testDeviceFromEnv();
  if (!target) {
    test.skip('device from FORESTFS_TEST_DEVICE: unset (e.g. FORESTFS_TEST_DEVICE=/dev/nvmed0 FORESTFS_TEST_BACKEND=nvmed)', () => {});
    return;
  }
  // The suite expects a fresh device: zero the blocks its tests read without writing first.
  deviceSuite(test.serial as unknown as TestFn, `${target.backend}:${target.device}`, async () => {
    const dev = openDevice(target.device, { backend: target.backend, queueDepth: 8 });
    const chunk = Math.min(dev.geometry.maxTransfer, 1 << 20);
    const zero = dev.allocBuffer(chunk);
    zero.bytes.fill(0);
    const cmds: IoCommand[] = [];
    for (let off = 0; off < 2 << 20; off += chunk) cmds.push({ op: 'write', offset: off, buffer: zero });
    await dev.submit([...cmds, { op: 'flush', barrier: true }]);
    dev.freeBuffer(zero);
    return dev;
  });
}

/**
 * The behaviour every BlockDevice must show, registered once per backend. `make` opens a
 * fresh device of at least 16 MiB with a queue depth of 8 where the backend has one.
 */
export function deviceSuite(test: TestFn, name: string, make: (t: ExecutionContext) => BlockDevice | Promise<BlockDevice>): void {
  const open = async (t: ExecutionContext): Promise<BlockDevice> => {
    const dev = await make(t);
    t.teardown(() => dev.close());
    return dev;
  };

  test(`${name}: geometry is sane`, async (t) => {
    const dev = await open(t);
    const g = dev.geometry;
    t.true(g.blockSize >= 512 && (g.blockSize & (g.blockSize - 1)) === 0);
    t.true(g.capacity >= 16 << 20);
    t.is(g.capacity % g.blockSize, 0);
    t.true(g.maxTransfer >= g.blockSize);
    t.true(g.queueDepth >= 1);
  });

  test(`${name}: write, read back and verify patterns`, async (t) => {
    const dev = await open(t);
    const bs = dev.geometry.blockSize;
    const pool = new BufferPool(dev);
    // Single blocks scattered, a multi-block run, a run at the very end of the device.
    const layout = [0, 7 * bs, 100 * bs, dev.geometry.capacity - 4 * bs];
    const data = layout.map((_, i) => randomBytes((i + 1) * bs));
    layout[3] = dev.geometry.capacity - data[3]!.length;
    await writeBlocks(dev, pool, layout.map((offset, i) => ({ offset, data: data[i]! })), { flush: true });
    for (let i = 0; i < layout.length; i++) {
      const buf = dev.allocBuffer(data[i]!.length);
      await dev.submit([{ op: 'read', offset: layout[i]!, buffer: buf }]);
      t.deepEqual(Buffer.from(buf.bytes), data[i]);
      buf.bytes.fill(0);
      dev.readSync(layout[i]!, buf);
      t.deepEqual(Buffer.from(buf.bytes), data[i], 'readSync sees the same bytes');
      dev.freeBuffer(buf);
    }
  });

  test(`${name}: a batch far larger than the queue depth completes`, async (t) => {
    const dev = await open(t);
    const bs = dev.geometry.blockSize;
    const n = dev.geometry.queueDepth * 8 + 3;
    const bufs = Array.from({ length: n }, (_, i) => {
      const b = dev.allocBuffer(bs);
      b.bytes.fill(i & 0xff);
      b.bytes[0] = i >> 8;
      return b;
    });
    await dev.submit(bufs.map((buffer, i): IoCommand => ({ op: 'write', offset: i * bs, buffer })));
    await dev.submit([{ op: 'flush' }]);
    const reads = Array.from({ length: n }, () => dev.allocBuffer(bs));
    await dev.submit(reads.map((buffer, i): IoCommand => ({ op: 'read', offset: i * bs, buffer })));
    for (let i = 0; i < n; i++) {
      t.is(reads[i]!.bytes[0], i >> 8);
      t.is(reads[i]!.bytes[bs - 1], i & 0xff);
    }
    t.is(dev.outstanding, 0);
  });

  test(`${name}: concurrent batches and sync reads interleave correctly`, async (t) => {
    const dev = await open(t);
    const bs = dev.geometry.blockSize;
    const pool = new BufferPool(dev);
    const batches = Array.from({ length: 10 }, (_, b) =>
      Array.from({ length: 20 }, (_, i) => ({ offset: (b * 20 + i) * bs, data: new Uint8Array(bs).fill((b * 20 + i) % 251) })));
    const pending = batches.map((blocks) => writeBlocks(dev, pool, blocks));
    await Promise.all(pending);
    const buf = dev.allocBuffer(bs);
    for (let i = 0; i < 200; i += 17) {
      dev.readSync(i * bs, buf);
      t.is(buf.bytes[bs >> 1], i % 251);
    }
  });

  test(`${name}: unaligned offsets, lengths and buffers are refused before anything is written`, async (t) => {
    const dev = await open(t);
    const bs = dev.geometry.blockSize;
    const good = dev.allocBuffer(2 * bs);
    good.bytes.fill(0xaa);
    const e1 = await t.throwsAsync(dev.submit([{ op: 'write', offset: 0, buffer: good }, { op: 'write', offset: 100, buffer: good }]));
    t.is((e1 as { code?: string }).code, ForestErrorCodes.UNALIGNED);
    t.regex(e1!.message, /command 1 .*offset is not a multiple/);
    const check = dev.allocBuffer(bs);
    await dev.submit([{ op: 'read', offset: 0, buffer: check }]);
    t.not(check.bytes[0], 0xaa, 'the valid command of the refused batch was not written either');
    const e2 = await t.throwsAsync(dev.submit([{ op: 'write', offset: 0, buffer: good.subarray(0, bs + 512) }]));
    t.is((e2 as { code?: string }).code, ForestErrorCodes.UNALIGNED);
    t.throws(() => dev.readSync(bs + 1, check), { code: ForestErrorCodes.UNALIGNED } as never);
    if (dev.backend !== 'memory' && dev.backend !== 'node-fs' && dev.backend !== 'faulty') {
      const e3 = await t.throwsAsync(dev.submit([{ op: 'write', offset: 0, buffer: good.subarray(512, 512 + bs) }]));
      t.is((e3 as { code?: string }).code, ForestErrorCodes.UNALIGNED, 'a buffer off its alignment');
      t.regex(e3!.message, /buffer is not aligned/);
      const heap = { bytes: new Uint8Array(bs), address: 0n, length: bs, subarray: () => heap } as never;
      const e4 = await t.throwsAsync(dev.submit([{ op: 'write', offset: 0, buffer: heap }]));
      t.regex(e4!.message, /not native memory/, 'a JS-heap buffer is never handed to the native side');
    }
  });

  test(`${name}: reads and writes beyond the capacity are refused`, async (t) => {
    const dev = await open(t);
    const { blockSize: bs, capacity } = dev.geometry;
    const buf = dev.allocBuffer(2 * bs);
    for (const cmd of [
      { op: 'read', offset: capacity, buffer: buf.subarray(0, bs) },
      { op: 'write', offset: capacity - bs, buffer: buf },
      { op: 'trim', offset: capacity - bs, length: 2 * bs },
    ] as IoCommand[]) {
      const e = await t.throwsAsync(dev.submit([cmd]));
      t.is((e as { code?: string }).code, ForestErrorCodes.OUT_OF_RANGE);
      t.regex(e!.message, /beyond the capacity/);
    }
  });

  test(`${name}: flush and trim`, async (t) => {
    const dev = await open(t);
    const bs = dev.geometry.blockSize;
    const buf = dev.allocBuffer(4 * bs);
    buf.bytes.fill(0x5a);
    await dev.submit([{ op: 'write', offset: 8 * bs, buffer: buf }, { op: 'flush', barrier: true }]);
    await dev.submit([{ op: 'flush' }]);
    if (!dev.geometry.trim) {
      const e = await t.throwsAsync(dev.submit([{ op: 'trim', offset: 8 * bs, length: bs }]));
      t.regex(e!.message, /EOPNOTSUPP|ENOTSUP|cannot trim/);
      return;
    }
    await dev.submit([{ op: 'trim', offset: 9 * bs, length: 2 * bs }, { op: 'flush', barrier: true }]);
    const back = dev.allocBuffer(4 * bs);
    await dev.submit([{ op: 'read', offset: 8 * bs, buffer: back }]);
    t.is(back.bytes[0], 0x5a);
    t.is(back.bytes[3 * bs], 0x5a);
    if (!dev.geometry.blockDevice) {
      // Hole punching in a file reads back zeroes; a block device may keep old data.
      t.is(back.bytes[bs], 0);
      t.is(back.bytes[3 * bs - 1], 0);
    }
  });

  test(`${name}: a closed device refuses commands`, async (t) => {
    const dev = await make(t);
    await dev.close();
    await t.throwsAsync(dev.submit([{ op: 'flush' }]), { code: ForestErrorCodes.CLOSED } as never);
    await dev.close();
    t.pass();
  });

  test(`${name}: write batches randomly, verify against a model`, async (t) => {
    const dev = await open(t);
    const bs = dev.geometry.blockSize;
    const pool = new BufferPool(dev);
    const blocks = 256;
    const model = new Uint8Array(blocks);
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let round = 0; round < 30; round++) {
      const touched = new Map<number, number>();
      const count = 1 + rnd(40);
      for (let i = 0; i < count; i++) touched.set(rnd(blocks), 1 + rnd(250));
      await writeBlocks(dev, pool, [...touched].map(([b, v]) => ({ offset: b * bs, data: new Uint8Array(bs).fill(v) })), { flush: rnd(2) === 0 });
      for (const [b, v] of touched) model[b] = v;
    }
    const all = dev.allocBuffer(blocks * bs > dev.geometry.maxTransfer ? dev.geometry.maxTransfer : blocks * bs);
    const per = all.length / bs;
    for (let start = 0; start < blocks; start += per) {
      await dev.submit([{ op: 'read', offset: start * bs, buffer: all }]);
      for (let i = 0; i < per; i++) {
        if (all.bytes[i * bs] !== model[start + i]) {
          t.fail(`block ${start + i}: ${all.bytes[i * bs]} != ${model[start + i]}`);
          return;
        }
      }
    }
    t.pass();
  });
}
