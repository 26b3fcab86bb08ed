// Small helpers shared by adapters.

let sinkValue = 0;
/** Keep a result observable so the JIT cannot drop a read loop. */
export function sink(x: number): void {
  sinkValue = (sinkValue + x) | 0;
}
export function sunk(): number {
  return sinkValue;
}
