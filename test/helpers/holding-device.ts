import type { BlockDevice, IoCommand } from './io.js';

/**
 * `dev` with the first submit after arm() that `matches` held back until release(): for tests
 * that need an engine stopped between two of its device operations.
 */
export function holdingNext(
  dev: BlockDevice,
  matches: (cmds: readonly IoCommand[]) => boolean,
): { device: BlockDevice; arm(): void; release(): void; readonly held: number } {
  let armed = false;
  let held = 0;
  let release = (): void => {};
  const device = new Proxy(dev, {
    get(target, prop) {
      if (prop === 'submit') {
        return (cmds: readonly IoCommand[]): Promise<void> => {
          if (!armed || !matches(cmds)) return target.submit(cmds);
          armed = false;
          held++;
          return new Promise<void>((r) => { release = r; }).then(() => target.submit(cmds));
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { device, arm: () => { armed = true; }, release: () => release(), get held() { return held; } };
}
