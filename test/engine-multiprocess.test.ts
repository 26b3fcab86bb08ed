import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ForestError, open, type Database } from './helpers/engine.js';
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
