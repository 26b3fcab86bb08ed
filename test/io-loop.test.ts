import test, { type ExecutionContext, type TestFn } from 'ava';
import { closeSync, openSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { deviceSuite } from './helpers/device-suite.js';
import { attachLoop, detachLoop, loopUnavailable } from './helpers/loop-device.js';
import { tempDir } from './helpers/tmp.js';
import { NativeDevice, nativeUnavailableReason, openDevice } from './helpers/io.js';

const why = loopUnavailable() ?? (nativeUnavailableReason() || null);

/** A fresh 64 MiB loop device for one test, detached when it ends. */
function loop(t: ExecutionContext): string {
  const image = join(tempDir(t, 'forestfs-loop-'), 'disk.img');
  closeSync(openSync(image, 'w'));
  truncateSync(image, 64 << 20);
  const dev = attachLoop(image);
  t.teardown(() => detachLoop(dev));
  return dev;
}

if (why) {
  test.skip(`loop device tests skipped: ${why}`, () => {});
} else {
  for (const backend of ['uring', 'psync'] as const) {
    if (!NativeDevice.available(backend)) continue;
    deviceSuite(test.serial as unknown as TestFn, `loop/${backend}`, (t) => NativeDevice.open(backend, loop(t), { queueDepth: 8 }));

    test.serial(`loop/${backend}: geometry comes from the block device`, async (t) => {
      const path = loop(t);
      const dev = NativeDevice.open(backend, path);
      t.teardown(() => dev.close());
      const g = dev.geometry;
      t.true(g.blockDevice);
      t.true(g.direct);
      t.is(g.blockSize, 4096, 'BLKSSZGET of a 4096-byte-sector loop device');
      t.is(g.capacity, 64 << 20, 'BLKGETSIZE64');
      t.true(g.maxTransfer >= 4096 && g.maxTransfer <= 1 << 20, `max transfer ${g.maxTransfer} from max_sectors_kb`);
      t.log(`${path}: ${JSON.stringify(g)}`);
    });

    test.serial(`loop/${backend}: a second writer is refused (O_EXCL), a reader is not`, async (t) => {
      const path = loop(t);
      const dev = NativeDevice.open(backend, path);
      t.teardown(() => dev.close());
      const e = t.throws(() => NativeDevice.open(backend, path));
      t.is((e as { code?: string }).code, 'LOCKED');
      t.regex(e!.message, /in use by another writer/);
      const reader = NativeDevice.open(backend, path, { readOnly: true });
      await reader.close();
    });
  }

  test.serial('loop: auto opens a block device with a native backend; node-fs refuses it clearly', async (t) => {
    const path = loop(t);
    const dev = openDevice(path);
    t.not(dev.backend, 'node-fs');
    await dev.close();
    t.throws(() => openDevice(`node-fs:${path}`), { message: /is a block device/ });
  });

  test.serial('loop: 512-byte I/O is impossible on a 4Kn device, and the layer refuses it before the kernel does', async (t) => {
    const path = loop(t);
    const dev = NativeDevice.open('uring', path);
    t.teardown(() => dev.close());
    const buf = dev.allocBuffer(4096);
    await t.throwsAsync(dev.submit([{ op: 'read', offset: 512, buffer: buf }]), { code: 'UNALIGNED' } as never);
  });
}
