import { HttpStatus } from '@nestjs/common';
import { SessionDataError } from '../ez-session.errors.js';

/** A flash value waiting for the next request that reads it; `id` tells a re-set value from a read one. */
export interface FlashEntry {
  id: string;
  value: unknown;
}

/** What the store holds for one session. */
export interface SessionDocument {
  data: Record<string, unknown>;
  flash: Record<string, FlashEntry>;
}

export interface EncodedDocument {
  data: string;
  flash: string;
  bytes: number;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 64;

export function emptyDocument(): SessionDocument {
  return { data: {}, flash: {} };
}

export function isEmptyDocument(doc: SessionDocument): boolean {
  return Object.keys(doc.data).length === 0 && Object.keys(doc.flash).length === 0;
}

/** Serializes a document, refusing anything JSON would not give back exactly, or a document over the size limit. */
export function encodeDocument(doc: SessionDocument, maxBytes: number): EncodedDocument {
  assertJsonSafe(doc.data, 'session');
  for (const [key, entry] of Object.entries(doc.flash)) assertJsonSafe(entry.value, `flash.${key}`);
  const data = asciiJson(JSON.stringify(doc.data));
  const flash = asciiJson(JSON.stringify(doc.flash));
  const bytes = data.length + flash.length;
  if (bytes > maxBytes) {
    throw new SessionDataError(
      `The session would be ${bytes} bytes as JSON, over maxSessionBytes (${maxBytes}); nothing was written.`,
      HttpStatus.PAYLOAD_TOO_LARGE
    );
  }
  return { data, flash, bytes };
}

/** A stored document, or `undefined` (logged) when what is stored is not valid JSON: the session then reads as ended. */
export function decodeStored(sid: string, data: string, flash: string | null, logger: { error(message: string): void }): SessionDocument | undefined {
  try {
    return decodeDocument(data, flash);
  } catch (error) {
    logger.error(`Stored session ${sid.slice(0, 8)}… is not valid JSON and is treated as empty: ${(error as Error).message}`);
    return undefined;
  }
}

export function decodeDocument(data: string, flash: string | null | undefined): SessionDocument {
  return { data: parseRecord(data), flash: flash ? (parseRecord(flash) as Record<string, FlashEntry>) : {} };
}

/**
 * Escapes everything outside printable ASCII as \uXXXX: the stored text then means the same
 * whatever the connection or column charset (utf8mb3 would mangle emoji), and JSON.parse restores it exactly.
 */
function asciiJson(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Serializes one value the way the store would, for comparing a key before and after a request. */
export function serializedValue(value: unknown): string | undefined {
  return value === undefined ? undefined : JSON.stringify(value);
}

/** Walks a value and throws a SessionDataError naming the first path JSON cannot round-trip. */
export function assertJsonSafe(value: unknown, path: string, ancestors: object[] = []): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) fail(path, `${value} is not a finite number (JSON would store null)`);
      return;
    case 'bigint':
      fail(path, 'BigInt values cannot be stored (JSON has no BigInt); store value.toString()');
      return;
    case 'function':
      fail(path, 'functions cannot be stored');
      return;
    case 'symbol':
      fail(path, 'symbols cannot be stored');
      return;
    case 'undefined':
      fail(path, 'undefined cannot be stored (JSON drops it); delete the key instead');
      return;
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.includes(object)) fail(path, 'circular reference');
  if (ancestors.length >= MAX_DEPTH) fail(path, `nested deeper than ${MAX_DEPTH} levels`);
  ancestors.push(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) assertJsonSafe(object[i], `${path}[${i}]`, ancestors);
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      const hint = kind === 'Date' ? '; store date.toISOString()' : '';
      fail(path, `a ${kind} is not plain JSON data${hint}`);
    }
    for (const key of Object.keys(object)) {
      assertStorableKey(key, path);
      assertJsonSafe((object as Record<string, unknown>)[key], `${path}.${key}`, ancestors);
    }
  }
  ancestors.pop();
}

/** Throws a SessionDataError for a key of `path` that would reach a prototype rather than become data. */
export function assertStorableKey(key: string, path: string): void {
  if (FORBIDDEN_KEYS.has(key)) fail(`${path}.${key}`, `the key "${key}" is refused (prototype pollution)`);
}

function fail(path: string, problem: string): never {
  throw new SessionDataError(`Cannot store ${path}: ${problem}. Nothing was written.`);
}

function parseRecord(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SyntaxError('stored session data is not a JSON object');
  }
  return value as Record<string, unknown>;
}
