export * from '../../src/io/index.js';
export { ForestError } from '../../src/errors.js';

export const ForestErrorCodes = {
  UNALIGNED: 'UNALIGNED',
  OUT_OF_RANGE: 'OUT_OF_RANGE',
  CLOSED: 'CLOSED',
  LOCKED: 'LOCKED',
  READ_ONLY: 'READ_ONLY',
  IO: 'IO',
} as const;
