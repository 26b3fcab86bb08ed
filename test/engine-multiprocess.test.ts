import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { RangeLocks } from '../src/io/range-lock.js';
import { Database, ForestError, open } from './helpers/engine.js';
import { holdingNext } from './helpers/holding-device.js';
import { openDevice } from './helpers/io.js';
import { tempDir } from './helpers/tmp.js';

/** The kill-writer child (commit N puts n:N = N and last = N), with its acknowledgements. */
function startWriter(path: string): { child: ChildProcess; acked: () => number; waitFor: (n: number) => Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'kill-writer.ts'), path, '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let acked = 0;
  let buf = '';
  let err = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      const m = /^ack (\d+)$/.exec(l);
      if (m) acked = Number(m[1]);
    }
    for (const w of waiters.splice(0)) {
      if (acked >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  return {
    child,
    acked: () => acked,
    waitFor: (n) => new Promise((resolve, reject) => {
      if (acked >= n) return resolve();
      waiters.push({ n, resolve });
      child.once('exit', (code) => reject(new Error(`writer exited (${code}): ${err}`)));
    }),
  };
}

/** Every commit up to `last` is there, and nothing after it: a whole-commit state. */
function checkState(db: Database, atLeast: number): number {
  const s = db.store('kill');
  const last = s.get('last') as number;
  if (!(last >= atLeast)) throw new Error(`last = ${last}, expected at least ${atLeast}`);
  for (let n = 1; n <= last; n++) if (s.get(`n:${n}`) !== n) throw new Error(`commit ${n} missing (last ${last})`);
  if (s.get(`n:${last + 1}`) !== undefined) throw new Error(`commit ${last + 1} visible past last`);
  return last;
}

test('a writer and a read-only reader at once; a second writer is refused; a reader opens cleanly after the writer is SIGKILLed', async (t) => {
  const path = join(tempDir(t), 'shared.forest');
  const w = startWriter(path);
  try {
    await w.waitFor(40);
    const ackedAtOpen = w.acked();
    const reader = await open(path, { readOnly: true });
    const seen = checkState(reader, ackedAtOpen);
    // The reader's view is as of its open, until it refreshes.
    await w.waitFor(seen + 60);
    t.is(reader.store('kill').get('last'), seen);
    const snap = reader.snapshot();
    const ackedBefore = w.acked();
    const fresh = await reader.refresh();
    t.true(fresh > 0, 'refresh found the commits written since');
    const seen2 = checkState(reader, ackedBefore);
    t.true(seen2 > seen);
    t.is(snap.store('kill').get('last'), seen, 'a snapshot taken before refresh keeps its view');
    snap.close();
    // Writes from a reader are refused.
    await t.throwsAsync(reader.store('kill').put('x', 1), { instanceOf: ForestError, code: 'READ_ONLY' });
    // One writer per device.
    await t.throwsAsync(open(path), { instanceOf: ForestError, code: 'LOCKED' });

    w.child.kill('SIGKILL');
    await new Promise((r) => w.child.once('exit', r));
    const ackedAtKill = w.acked();
    // A reader needs no lock: it opens at once, whatever the dead writer left half-written.
    const after = await open(path, { readOnly: true });
    const last = checkState(after, ackedAtKill);
    await reader.refresh();
    t.is(checkState(reader, ackedAtKill), last);
    t.log(`reader opened at commit ${seen}, refreshed to ${seen2}; writer killed after ${ackedAtKill} acknowledged, ${last} recovered`);
    await after.close();
    await reader.close();
  } finally {
    w.child.kill('SIGKILL');
  }
});

/** Puts k0..k(n-1) = { i, v } in batches; the writer's view of the data set. */
async function fill(db: Database, n: number, v: number): Promise<void> {
  const s = db.store();
  for (let i = 0; i < n; i += 100) {
    const p: Promise<number>[] = [];
    for (let j = i; j < Math.min(n, i + 100); j++) p.push(s.put(`k${j}`, { j, v, pad: 'x'.repeat(200) }));
    await Promise.all(p);
  }
}

/** Rounds of fill (values v, v + 1, ...) until the device is full: true if it became full within 60. */
async function fillUntilFull(db: Database, v: number): Promise<boolean> {
  for (let r = 0; r < 60; r++) {
    try {
      await fill(db, 2000, v + r);
    } catch (e) {
      if ((e as ForestError).code === 'DEVICE_FULL') return true;
      throw e;
    }
  }
  return false;
}

test('a read-only reader holds the writer back from reusing the space of the commit it reads, until it refreshes or closes', async (t) => {
  const path = join(tempDir(t), 'held.forest');
  const writer = await open(path, { size: 8 << 20, walThreshold: 64 });
  await fill(writer, 2000, 1);
  const reader = await open(path, { readOnly: true });
  await fill(writer, 2000, 2);
  t.false((await writer.compact()).reclaimed, 'the reader reads the commit before the compaction');
  // The writer goes on until the device is full: it does not wrap round over the space the
  // reader's view is in (without the hold it would, and the reader would find other bytes).
  t.true(await fillUntilFull(writer, 3), 'the writer stops at the held space');
  for (let i = 0; i < 2000; i += 97) t.deepEqual(reader.store().get(`k${i}`), { j: i, v: 1, pad: 'x'.repeat(200) });
  t.is([...reader.store().range()].length, 2000);
  const snap = reader.snapshot();
  await reader.refresh();
  t.is((reader.store().get('k5') as { v: number }).v, (writer.store().get('k5') as { v: number }).v);
  await t.throwsAsync(fill(writer, 2000, 90), { code: 'DEVICE_FULL' }, 'a snapshot in the reader still holds the old commit');
  t.deepEqual(snap.store().get('k5'), { j: 5, v: 1, pad: 'x'.repeat(200) });
  snap.close();
  await reader.refresh();
  // Released once the reader has moved on: the next commit reclaims the space first.
  await fill(writer, 2000, 91);
  // A compaction after the reader's last refresh waits for the next one.
  t.false((await writer.compact()).reclaimed);
  const used = writer.stats().usedBytes;
  await reader.refresh();
  await writer.store().put('next', 1);
  t.true(writer.stats().usedBytes < used, 'the next commit after the refresh reclaims');
  await fill(writer, 2000, 92);
  await reader.refresh();
  t.deepEqual(reader.store().get('k5'), { j: 5, v: 92, pad: 'x'.repeat(200) });
  await reader.close();
  await writer.close();
});

test('a reader opening while a compaction ends cannot come to read space that a restarted writer takes as free', async (t) => {
  const path = join(tempDir(t), 'gate.forest');
  const first = await open(path, { size: 8 << 20, walThreshold: 64 });
  await fill(first, 2000, 1);
  await first.close();
  const base = openDevice(path);
  const dev = holdingNext(base, (cmds) => cmds.some((c) => c.op === 'flush'));
  const writer = await open(dev.device, { walThreshold: 64 });
  await fill(writer, 2000, 2);
  // The compaction's checkpoint write (the first flush once its index is being built) is held
  // back: the compaction has decided to reclaim at once (no reader), and the checkpoint that
  // says so is on its way.
  const compaction = writer.compact({ onProgress: (p) => { if (p.phase === 'index') dev.arm(); } });
  for (let i = 0; i < 2000 && dev.held === 0; i++) await new Promise((r) => setTimeout(r, 1));
  t.is(dev.held, 1, 'the checkpoint write is held');
  let opened = false;
  const opening = open(path, { readOnly: true }).then((r) => { opened = true; return r; });
  await new Promise((r) => setTimeout(r, 100));
  t.false(opened, 'the reader waits for the compaction to end');
  dev.release();
  await compaction;
  const reader = await opening;
  // The writer dies (its device closed, nothing more written); a new one recovers the tail
  // from the compaction's checkpoint and writes until the device is full.
  await base.close();
  const again = await open(path, { walThreshold: 64 });
  t.true(await fillUntilFull(again, 3));
  // The reader's view is the compacted state, which the new writer has not overwritten.
  for (let i = 0; i < 2000; i += 7) t.deepEqual(reader.store().get(`k${i}`), { j: i, v: 2, pad: 'x'.repeat(200) });
  t.is([...reader.store().range()].length, 2000);
  await reader.close();
  await again.close();
});

// Serial: ava runs serial tests before the concurrent ones, so the shortened wait is over
// before the other gate test starts.
test.serial('a reader opening while the gate stays held gives up with LOCKED after the wait, and opens once it is free', async (t) => {
  const path = join(tempDir(t), 'gate-wait.forest');
  const db = await open(path, { size: 8 << 20 });
  await db.store().put('k', 1);
  await db.close();
  // Another open file description holds the gate as a writer ending a compaction would
  // (docs/FORMAT.md: an exclusive lock on byte 2^52 - 1).
  const gate = RangeLocks.open(path, true)!;
  t.true(gate.lock(2 ** 52 - 1, 1));
  const saved = Database.gateWaitMs;
  Database.gateWaitMs = 300;
  try {
    const t0 = performance.now();
    const e = await t.throwsAsync(open(path, { readOnly: true }), { instanceOf: ForestError });
    t.is(e?.code, 'LOCKED');
    t.regex(e?.message ?? '', /ending a compaction/);
    t.true(performance.now() - t0 >= 300, 'it waited first');
    gate.unlock(2 ** 52 - 1, 1);
    const reader = await open(path, { readOnly: true });
    t.is(reader.store().get('k'), 1);
    await reader.close();
  } finally {
    Database.gateWaitMs = saved;
    gate.close();
  }
});

test('a reader process killed while it holds a commit releases it', async (t) => {
  const path = join(tempDir(t), 'killed.forest');
  const writer = await open(path, { size: 16 << 20, walThreshold: 64 });
  await fill(writer, 500, 1);
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'hold-reader.ts'), path], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`reader exited (${code}): ${err}`)));
    });
    t.is(line, `open ${JSON.stringify({ j: 0, v: 1, pad: 'x'.repeat(200) })}`);
    await fill(writer, 500, 2);
    t.false((await writer.compact()).reclaimed, 'the reader in the other process holds its commit');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await writer.store().put('next', 1);
    t.true((await writer.compact()).reclaimed, 'its lock went with it');
  } finally {
    child.kill('SIGKILL');
    await writer.close();
  }
});
