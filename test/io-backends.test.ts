import test from 'ava';
import { statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deviceSuite } from './helpers/device-suite.js';
import { tempDir } from './helpers/tmp.js';
import { FaultyDevice, MemoryDevice, NativeDevice, NodeFsDevice, nativeUnavailableReason, openDevice, resolveAuto } from './helpers/io.js';

const MiB = 1 << 20;
const SIZE = 32 * MiB;

deviceSuite(test, 'memory', () => new MemoryDevice(SIZE, { queueDepth: 8 }));
deviceSuite(test, 'faulty', () => new FaultyDevice(SIZE, { seed: 7 }));
deviceSuite(test, 'node-fs', (t) => NodeFsDevice.open(join(tempDir(t), 'a.img'), { createSize: SIZE }));

for (const backend of ['psync', 'uring'] as const) {
  if (!NativeDevice.available(backend)) {
    test.skip(`${backend}: skipped — ${nativeUnavailableReason() || `the kernel refuses ${backend}`}`, () => {});
    continue;
  }
  deviceSuite(test, backend, (t) => NativeDevice.open(backend, join(tempDir(t), 'a.img'), { createSize: SIZE, queueDepth: 8 }));

  test(`${backend}: a second writer on the same image is refused; a read-only opener is not`, async (t) => {
    const path = join(tempDir(t), 'lock.img');
    const first = NativeDevice.open(backend, path, { createSize: SIZE });
    t.teardown(() => first.close());
    const e = t.throws(() => NativeDevice.open(backend, path, {}));
    t.is((e as { code?: string }).code, 'LOCKED');
    t.regex(e!.message, /locked by another writer/);
    const reader = NativeDevice.open(backend, path, { readOnly: true });
    t.true(reader.geometry.readOnly);
    const buf = reader.allocBuffer(4096);
    await t.throwsAsync(reader.submit([{ op: 'write', offset: 0, buffer: buf }]), { code: 'READ_ONLY' } as never);
    await reader.close();
    await first.close();
    const again = NativeDevice.open(backend, path, {});
    await again.close();
    t.pass('the lock is released at close');
  });

  test(`${backend}: a new image is sparse, mode 0600, and reports direct I/O`, async (t) => {
    const path = join(tempDir(t), 'new.img');
    const dev = NativeDevice.open(backend, path, { createSize: 1 << 30 });
    t.teardown(() => dev.close());
    const st = statSync(path);
    t.is(st.mode & 0o777, 0o600);
    t.is(st.size, 1 << 30);
    t.true(st.blocks * 512 < MiB, 'sparse');
    t.true(dev.geometry.created);
    t.true(dev.geometry.direct, 'O_DIRECT on this file system');
    t.is(dev.geometry.blockSize, 4096);
  });

  test(`${backend}: a failing command comes back as an error naming the command and errno`, async (t) => {
    const path = join(tempDir(t), 'shrink.img');
    const dev = NativeDevice.open(backend, path, { createSize: 8 * MiB });
    t.teardown(() => dev.close());
    truncateSync(path, 4 * MiB); // the file shrinks under the device: reads past its end come up short
    const buf = dev.allocBuffer(8192);
    const e = await t.throwsAsync(dev.submit([{ op: 'read', offset: 0, buffer: buf.subarray(0, 4096) }, { op: 'read', offset: 6 * MiB, buffer: buf.subarray(4096) }]));
    t.is((e as { code?: string }).code, 'IO');
    t.regex(e!.message, /read of 4096 bytes at offset 6291456 failed: EIO/);
    t.throws(() => dev.readSync(6 * MiB, buf.subarray(0, 4096)), { message: /failed: EIO/ });
    t.is(dev.outstanding, 0);
  });

  test(`${backend}: opening a missing path without a size, or a directory, is a clear error`, (t) => {
    const dir = tempDir(t);
    t.throws(() => NativeDevice.open(backend, join(dir, 'missing.img')), { code: 'NOT_FOUND' } as never);
    t.throws(() => NativeDevice.open(backend, dir), { message: /not a regular file or block device/ });
  });
}

test('node-fs: a second writer is refused', async (t) => {
  const path = join(tempDir(t), 'lock.img');
  const first = NodeFsDevice.open(path, { createSize: SIZE });
  t.teardown(() => first.close());
  t.throws(() => NodeFsDevice.open(path), { code: 'LOCKED' } as never);
  const reader = NodeFsDevice.open(path, { readOnly: true });
  await reader.close();
  t.pass();
});

test('openDevice: backend prefixes, auto, memory, bad input', async (t) => {
  const dir = tempDir(t);
  const auto = openDevice(join(dir, 'a.img'), { size: '16MiB' });
  t.is(auto.backend, resolveAuto().backend);
  t.is(auto.geometry.capacity, 16 * MiB);
  await auto.close();
  const fsd = openDevice(`node-fs:${join(dir, 'a.img')}`);
  t.is(fsd.backend, 'node-fs');
  await fsd.close();
  const mem = openDevice('memory:', { size: '8MiB' });
  t.is(mem.geometry.capacity, 8 * MiB);
  await mem.close();
  t.throws(() => openDevice(join(dir, 'b.img'), { size: 'lots' }), { code: 'INVALID_ARGUMENT', message: /not a size/ } as never);
  t.throws(() => openDevice(join(dir, 'b.img'), { size: 100 }), { message: /smaller than one/ });
  t.throws(() => openDevice(join(dir, 'b.img'), { backend: 'floppy' as never }), { message: /unknown backend 'floppy'/ });
  writeFileSync(join(dir, 'tiny.img'), 'x');
  t.throws(() => openDevice(`node-fs:${join(dir, 'tiny.img')}`), { message: /smaller than one block/ });
});

test('auto picks uring on this machine when the native library is built', (t) => {
  const r = resolveAuto();
  t.log(`auto → ${r.backend} (${r.reason})`);
  if (nativeUnavailableReason()) t.is(r.backend, 'node-fs');
  else t.not(r.backend, 'node-fs');
});
