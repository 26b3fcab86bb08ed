// An engine smoke test on the device named by FORESTFS_TEST_DEVICE / FORESTFS_TEST_BACKEND
// (run by test/nvme/run.sh in the QEMU guest for each backend; skipped when they are unset):
// format the device, write 10,000 keys in 100 commits, close, reopen, verify, add 1,000 more,
// close, reopen read-only, verify all. Destroys the device's contents.
import test from 'ava';
import { testDeviceFromEnv } from '../helpers/device-suite.js';
import { open, type Database } from '../helpers/engine.js';
import { openDevice } from '../helpers/io.js';

const target = testDeviceFromEnv();
/** FORESTFS_TEST_QUEUE_DEPTH: the device's queue depth (default 64, as openDevice). */
const queueDepth = Number(process.env.FORESTFS_TEST_QUEUE_DEPTH) || 64;
const KEYS = 10_000;
const PER_COMMIT = 100;

const value = (i: number) => ({ i, name: `key-${i}`, pad: 'x'.repeat(i % 200) });

function verify(t: import('ava').ExecutionContext, db: Database, n: number): void {
  const s = db.store('smoke');
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const v = s.get(`k${String(i).padStart(6, '0')}`) as { i: number; pad: string } | undefined;
    if (!v || v.i !== i || v.pad.length !== i % 200) bad++;
  }
  t.is(bad, 0, `${bad} of ${n} keys missing or wrong`);
  t.is([...s.range({ gte: 'k', lt: 'l' })].length, n, 'a range over the store sees every key');
}

if (!target) {
  test.skip('engine on FORESTFS_TEST_DEVICE: unset', () => {});
} else {
  const { device, backend } = target;
  test.serial(`engine on ${backend}:${device}: ${KEYS} keys in ${KEYS / PER_COMMIT} commits, close, reopen, verify`, async (t) => {
    // Blank the superblocks (earlier tests left data there): a blank device is formatted.
    const raw = openDevice(device, { backend, queueDepth });
    const zero = raw.allocBuffer(64 * raw.geometry.blockSize);
    zero.bytes.fill(0);
    await raw.submit([{ op: 'write', offset: 0, buffer: zero }, { op: 'flush', barrier: true }]);
    await raw.close();

    let db = await open(openDevice(device, { backend, queueDepth }));
    t.is(db.stats().backend, backend === 'auto' ? db.stats().backend : backend);
    let s = db.store('smoke');
    for (let c = 0; c < KEYS / PER_COMMIT; c++) {
      const writes: Promise<number>[] = [];
      for (let k = 0; k < PER_COMMIT; k++) {
        const i = c * PER_COMMIT + k;
        writes.push(s.put(`k${String(i).padStart(6, '0')}`, value(i)));
      }
      await Promise.all(writes); // one commit: the writes of one event-loop turn share it
    }
    verify(t, db, KEYS);
    await db.close();

    db = await open(openDevice(device, { backend, queueDepth }));
    verify(t, db, KEYS);
    s = db.store('smoke');
    const more: Promise<number>[] = [];
    for (let i = KEYS; i < KEYS + 1000; i++) more.push(s.put(`k${String(i).padStart(6, '0')}`, value(i)));
    await Promise.all(more);
    await db.close();

    db = await open(openDevice(device, { backend, queueDepth, readOnly: true }), { readOnly: true });
    verify(t, db, KEYS + 1000);
    t.log(`backend ${db.stats().backend}: ${db.stats().records} records`);
    await db.close();
  });
}
