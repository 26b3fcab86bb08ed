/**
 * Keys and values as users give them, and as bytes in records. A value comes back as the
 * type it went in as: Buffer, Uint8Array, string, a plain object or array (BSON), or a
 * number, boolean or null (BSON, wrapped).
 */
import { BSON } from 'bson';
import { ForestError } from '../errors.js';
import { FLAG_STRING_KEY } from './record.js';
import { allocBytes, copyBytes } from './slab.js';

export type Key = string | Uint8Array;
export type Value = Buffer | Uint8Array | string | number | boolean | null | Record<string, unknown> | unknown[];

export const VT_BUFFER = 1;
export const VT_UINT8ARRAY = 2;
export const VT_STRING = 3;
export const VT_DOCUMENT = 4;
export const VT_ARRAY = 5;
export const VT_SCALAR = 6;

/** The trie's limit is 65535; ForestFS promises 16 KiB and keeps headroom for prefixes. */
export const MAX_KEY_LENGTH = 16384;

export interface KeyBytes {
  bytes: Uint8Array;
  /** The key as a latin1 string: one char per byte, so `<` compares in byte order. */
  str: string;
  isString: boolean;
}

export function keyBytes(key: Key, maxLength = MAX_KEY_LENGTH): KeyBytes {
  if (typeof key === 'string') {
    // ASCII (the common case): one pass copies the bytes, and the key is its own latin1 form.
    const n = key.length;
    if (n > 0 && n <= maxLength) {
      const bytes = allocBytes(n);
      // A string of our own, not the caller's: a key built by concatenation (`user:${id}`,
      // 13 chars or more) is a rope in V8, read through its parts on every char, and the
      // caller's strings lie wherever they were made. The WAL reads its keys' strings again
      // and again (sorted, merged, compared); made here, they are flat and lie in the order
      // they were written. Sorting the 43,000 out-of-order keys left by the suite's random
      // load: 15 → 5–7 ms. A put of a 14-byte key measured no slower.
      if (copyAscii(key, bytes)) return { bytes, str: latin1(bytes), isString: true };
    }
    return utf8Key(key, maxLength);
  }
  if (key instanceof Uint8Array) return checked(copyBytes(key), false, maxLength);
  throw new ForestError('INVALID_ARGUMENT', `a key must be a string or a Uint8Array, got ${describe(key)}`);
}

/**
 * Views of one reused buffer, one per key length seen, for lookupKey: every view aliases the
 * same bytes, which is safe because a lookup is done with them before the next one starts.
 */
const lookupMemory = new Uint8Array(MAX_KEY_LENGTH);
const lookupScratch: Uint8Array[] = [];

/**
 * keyBytes for a lookup that is done with the key before it returns (a synchronous get or
 * has): an ASCII string key is written into a reused array of its length, and a byte-array
 * key is used as it is, not copied. A new array per get was about 120 ns of a 2 µs get. The
 * bytes must not be kept: the next lookup overwrites them.
 */
export function lookupKey(key: Key): KeyBytes {
  if (typeof key === 'string') {
    const n = key.length;
    if (n > 0 && n <= MAX_KEY_LENGTH) {
      const bytes = (lookupScratch[n] ??= lookupMemory.subarray(0, n));
      if (copyAscii(key, bytes)) return { bytes, str: key, isString: true };
    }
    return utf8Key(key, MAX_KEY_LENGTH);
  }
  if (key instanceof Uint8Array) return checked(key, false, MAX_KEY_LENGTH);
  return keyBytes(key);
}

/** A string key that is not (all) ASCII, or empty, or too long: its UTF-8 bytes, checked. */
function utf8Key(key: string, maxLength: number): KeyBytes {
  return checked(Buffer.from(key, 'utf8'), true, maxLength);
}

/** Copies the string's char codes into `bytes` (its length); true if all were ASCII. */
function copyAscii(key: string, bytes: Uint8Array): boolean {
  let high = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = key.charCodeAt(i);
    high |= c;
    bytes[i] = c;
  }
  return high < 0x80;
}

function checked(bytes: Uint8Array, isString: boolean, maxLength: number): KeyBytes {
  if (bytes.length === 0) throw new ForestError('KEY_EMPTY', 'a key must not be empty');
  if (bytes.length > maxLength) {
    throw new ForestError('KEY_TOO_LONG', `a key of ${bytes.length} bytes is longer than the maximum of ${maxLength}`);
  }
  return { bytes, str: latin1(bytes), isString };
}

/** The bytes as a latin1 string (one char per byte), without copying them first. */
export function latin1(bytes: Uint8Array): string {
  return latin1Slice.call(bytes, 0, bytes.length);
}

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

export function keyFromRecord(bytes: Uint8Array, flags: number): Key {
  return keyAt(bytes, 0, bytes.length, flags);
}

/**
 * keyFromRecord over buf[start, end), without a view of it first: a string key is decoded
 * where it lies (Buffer's own UTF-8 decoder, as Buffer#toString: the byte-order mark is kept
 * and the engine's string keys are valid UTF-8), a raw key is copied into a fresh Buffer.
 */
export function keyAt(buf: Uint8Array, start: number, end: number, flags: number): Key {
  return flags & FLAG_STRING_KEY ? utf8Slice.call(buf, start, end) : bufferCopy(buf, start, end);
}

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice(this: Uint8Array, start: number, end: number): string }).utf8Slice;

/*
 * Small Buffers for values and keys read back, carved from shared pools as Buffer.from does
 * for small copies (Node's own pool is also 8 KiB, and used below half its size): a returned
 * Buffer may share its ArrayBuffer with others, exactly as one from Buffer.from(bytes) does.
 * Buffer.from(view) cost ~0.19 µs per 100-byte value (the view, then generic array-like
 * handling); this costs the copy and the Buffer object.
 */
const POOL = 8192;
let pool = new ArrayBuffer(POOL);
let poolBytes = new Uint8Array(pool);
let poolUsed = 0;

/** A copy of buf[start, end) as a fresh Buffer (pooled when small). */
export function bufferCopy(buf: Uint8Array, start: number, end: number): Buffer {
  const n = end - start;
  if (n >= POOL >>> 1) return Buffer.from(buf.subarray(start, end));
  if (poolUsed + n > POOL) {
    pool = new ArrayBuffer(POOL);
    poolBytes = new Uint8Array(pool);
    poolUsed = 0;
  }
  const at = poolUsed;
  if (n <= 16) {
    for (let i = 0; i < n; i++) poolBytes[at + i] = buf[start + i]!;
  } else {
    poolBytes.set(buf.subarray(start, end), at);
  }
  poolUsed = (at + n + 7) & ~7;
  return Buffer.from(pool, at, n);
}

/** decodeValue over buf[start, end), without a view of it first where the type allows. */
export function decodeValueAt(type: number, buf: Uint8Array, start: number, end: number): Value {
  switch (type) {
    case VT_BUFFER: return bufferCopy(buf, start, end);
    case VT_UINT8ARRAY: return Uint8Array.prototype.slice.call(buf, start, end);
    case VT_STRING: return utf8Slice.call(buf, start, end);
    default: return decodeValue(type, buf.subarray(start, end));
  }
}

export function encodeValue(value: Value): { type: number; bytes: Uint8Array } {
  if (Buffer.isBuffer(value)) return { type: VT_BUFFER, bytes: value };
  if (value instanceof Uint8Array) return { type: VT_UINT8ARRAY, bytes: value };
  if (typeof value === 'string') return { type: VT_STRING, bytes: Buffer.from(value, 'utf8') };
  try {
    if (Array.isArray(value)) return { type: VT_ARRAY, bytes: BSON.serialize({ v: value }) };
    if (value === null || typeof value === 'number' || typeof value === 'boolean') {
      return { type: VT_SCALAR, bytes: BSON.serialize({ v: value }) };
    }
    if (typeof value === 'object' && !ArrayBuffer.isView(value)) {
      return { type: VT_DOCUMENT, bytes: BSON.serialize(value as Record<string, unknown>) };
    }
  } catch (e) {
    throw new ForestError('VALUE_NOT_ENCODABLE', `the value cannot be encoded as BSON: ${(e as Error).message}`, { cause: e });
  }
  throw new ForestError('VALUE_NOT_ENCODABLE', `a value must be a Buffer, Uint8Array, string, number, boolean, null, array or plain object; got ${describe(value)}`);
}

export function decodeValue(type: number, bytes: Uint8Array): Value {
  switch (type) {
    case VT_BUFFER: return bufferCopy(bytes, 0, bytes.length);
    case VT_UINT8ARRAY: return Uint8Array.prototype.slice.call(bytes);
    case VT_STRING: return utf8Slice.call(bytes, 0, bytes.length);
    case VT_DOCUMENT: return BSON.deserialize(bytes) as Record<string, unknown>;
    case VT_ARRAY:
    case VT_SCALAR: return (BSON.deserialize(bytes) as { v: Value }).v;
    default: throw new ForestError('CORRUPT', `unknown value type ${type}`);
  }
}

function describe(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (typeof x === 'object') return x === null ? 'null' : `an object of class ${(x as object).constructor?.name ?? 'none'}`;
  return typeof x;
}
