import test from 'ava';
import { FaultyDevice, SECTOR, type DeviceBuffer, type IoCommand } from './helpers/io.js';

const BS = 4096;
const BLOCKS = 8;

/** A scripted workload: writes of whole blocks with a fill value, and flushes. */
type Step = { write: number; value: number } | { flush: true };
const script: Step[] = [
  { write: 0, value: 1 }, { write: 1, value: 2 }, { flush: true },
  { write: 0, value: 3 }, { write: 2, value: 4 }, { write: 0, value: 5 }, { flush: true },
  { write: 3, value: 6 }, { write: 1, value: 7 }, { write: 3, value: 8 }, { write: 4, value: 9 },
];

function block(dev: FaultyDevice, value: number): DeviceBuffer {
  const b = dev.allocBuffer(BS);
  b.bytes.fill(value);
  return b;
}

async function run(dev: FaultyDevice, steps: Step[]): Promise<void> {
  for (const s of steps) {
    const cmd: IoCommand = 'flush' in s ? { op: 'flush' } : { op: 'write', offset: s.write * BS, buffer: block(dev, s.value) };
    await dev.submit([cmd]);
  }
}

/** The model: per block, the flushed value and the values written since, in order. */
function model(steps: Step[]): { durable: number[]; since: { block: number; value: number }[] } {
  const durable = new Array<number>(BLOCKS).fill(0);
  let since: { block: number; value: number }[] = [];
  for (const s of steps) {
    if ('flush' in s) {
      for (const w of since) durable[w.block] = w.value;
      since = [];
    } else {
      since.push({ block: s.write, value: s.value });
    }
  }
  return { durable, since };
}

function subsets(n: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) out.push([...Array(n).keys()].filter((i) => mask & (1 << i)));
  return out;
}

test('a crash at every point of a script keeps exactly the flushed state plus the chosen unflushed writes', async (t) => {
  let checked = 0;
  for (let k = 0; k <= script.length; k++) {
    const dev = new FaultyDevice(BLOCKS * BS, { seed: k });
    await run(dev, script.slice(0, k));
    const m = model(script.slice(0, k));
    t.is(dev.unflushedWrites().length, m.since.length, `after ${k} steps`);
    for (const keep of subsets(m.since.length)) {
      const image = dev.crash({ keep });
      const expected = [...m.durable];
      for (const i of keep) expected[m.since[i]!.block] = m.since[i]!.value; // later writes win, in order
      for (let b = 0; b < BLOCKS; b++) {
        const bytes = image.subarray(b * BS, (b + 1) * BS);
        if (!bytes.every((x) => x === expected[b])) {
          t.fail(`after ${k} steps keeping ${JSON.stringify(keep)}: block ${b} is not ${expected[b]}`);
          return;
        }
      }
      checked++;
    }
  }
  t.log(`${checked} crash states checked`);
  t.true(checked > 20);
});

test('torn writes: every 512-byte sector holds a value the model allows, and flushed data survives', async (t) => {
  for (let k = 0; k <= script.length; k++) {
    const steps = script.slice(0, k);
    const m = model(steps);
    for (let seed = 0; seed < 20; seed++) {
      const dev = new FaultyDevice(BLOCKS * BS, { seed });
      await run(dev, steps);
      for (const tear of ['random', 'prefix'] as const) {
        const image = dev.crash({ keep: 'random', tear });
        for (let b = 0; b < BLOCKS; b++) {
          const allowed = new Set([m.durable[b], ...m.since.filter((w) => w.block === b).map((w) => w.value)]);
          for (let s = 0; s < BS / SECTOR; s++) {
            const sector = image.subarray(b * BS + s * SECTOR, b * BS + (s + 1) * SECTOR);
            if (!allowed.has(sector[0]!) || !sector.every((x) => x === sector[0])) {
              t.fail(`k=${k} seed=${seed} ${tear}: block ${b} sector ${s} holds ${sector[0]}, allowed ${[...allowed]}`);
              return;
            }
          }
        }
      }
    }
  }
  t.pass();
});

test('tearing really happens: a torn 4 KiB write can leave a mix of old and new sectors', async (t) => {
  const dev = new FaultyDevice(BLOCKS * BS, { seed: 3 });
  await run(dev, [{ write: 0, value: 9 }]);
  let mixed = false;
  for (let seed = 0; seed < 50 && !mixed; seed++) {
    const image = dev.crash({ keep: 'all', tear: 'random', seed });
    const first = image.subarray(0, BS);
    mixed = first.some((x) => x === 9) && first.some((x) => x === 0);
  }
  t.true(mixed);
});

test('crash choices are deterministic from the seed', async (t) => {
  const a = new FaultyDevice(BLOCKS * BS, { seed: 42 });
  const b = new FaultyDevice(BLOCKS * BS, { seed: 42 });
  await run(a, script);
  await run(b, script);
  t.deepEqual(a.crash({ keep: 'random', tear: 'random' }), b.crash({ keep: 'random', tear: 'random' }));
});

test('FUA writes are durable without a flush', async (t) => {
  const dev = new FaultyDevice(BLOCKS * BS);
  await dev.submit([{ op: 'write', offset: BS, buffer: block(dev, 7), fua: true }]);
  t.is(dev.crash({ keep: 'none' })[BS], 7);
});

test('a FUA write supersedes what earlier unflushed writes left in its range, and only there', async (t) => {
  for (const keep of ['all', 'random', 'none'] as const) {
    for (let seed = 0; seed < 20; seed++) {
      const dev = new FaultyDevice(BLOCKS * BS, { seed });
      const three = dev.allocBuffer(3 * BS);
      three.bytes.fill(1);
      await dev.submit([{ op: 'write', offset: BS, buffer: three }]); // blocks 1-3, unflushed
      await dev.submit([{ op: 'write', offset: 2 * BS, buffer: block(dev, 9), fua: true }]); // block 2, durable
      const img = dev.crash({ keep, tear: 'random', seed });
      t.true(img.subarray(2 * BS, 3 * BS).every((x) => x === 9), `${keep}/${seed}: the FUA block holds its data`);
      for (const b of [1, 3]) {
        const got = img.subarray(b * BS, (b + 1) * BS);
        t.true(got.every((x) => x === 0 || x === 1), `${keep}/${seed}: block ${b} is old or new per sector`);
        if (keep === 'none') t.true(got.every((x) => x === 0));
      }
    }
  }
  const dev = new FaultyDevice(BLOCKS * BS);
  const three = dev.allocBuffer(3 * BS);
  three.bytes.fill(1);
  await dev.submit([{ op: 'write', offset: BS, buffer: three }]);
  await dev.submit([{ op: 'write', offset: 2 * BS, buffer: block(dev, 9), fua: true }]);
  const all = dev.crash({ keep: 'all' });
  t.deepEqual([all[BS], all[2 * BS], all[3 * BS]], [1, 9, 1], 'kept unflushed data around the FUA block');
});

test('a chosen operation fails with EIO, names itself, and changes nothing', async (t) => {
  const dev = new FaultyDevice(BLOCKS * BS);
  await run(dev, [{ write: 0, value: 1 }]);
  dev.failOn({ op: 'write', offset: 2 * BS });
  const e = await t.throwsAsync(dev.submit([{ op: 'write', offset: 2 * BS, buffer: block(dev, 5) }]));
  t.is((e as { code?: string }).code, 'IO');
  t.regex(e!.message, /write of 4096 bytes at offset 8192 failed: EIO/);
  const back = dev.allocBuffer(BS);
  dev.readSync(2 * BS, back);
  t.is(back.bytes[0], 0);
  await dev.submit([{ op: 'write', offset: 2 * BS, buffer: block(dev, 5) }]);
  dev.readSync(2 * BS, back);
  t.is(back.bytes[0], 5, 'the rule fires once by default');
  dev.failOn({ op: 'flush', errno: 'EIO' });
  await t.throwsAsync(dev.submit([{ op: 'flush' }]), { message: /flush failed: EIO/ });
  t.is(dev.unflushedWrites().length, 2, 'a failed flush made nothing durable');
  dev.failOn({ at: dev.operations, errno: 'ENOSPC' });
  t.throws(() => dev.readSync(0, back), { message: /ENOSPC/ });
});

test('power failure at an operation: that and every later operation fail, and nothing of them lands', async (t) => {
  const dev = new FaultyDevice(BLOCKS * BS);
  await run(dev, [{ write: 0, value: 1 }, { flush: true }]);
  dev.powerFailAt(dev.operations + 1);
  await dev.submit([{ op: 'write', offset: BS, buffer: block(dev, 2) }]);
  await t.throwsAsync(dev.submit([{ op: 'write', offset: 2 * BS, buffer: block(dev, 3) }]), { message: /power failed/ });
  await t.throwsAsync(dev.submit([{ op: 'flush' }]));
  t.true(dev.powerFailed);
  const all = dev.crash({ keep: 'all' });
  t.is(all[0], 1);
  t.is(all[BS], 2);
  t.is(all[2 * BS], 0);
  t.is(dev.crash({ keep: 'none' })[BS], 0);
});
