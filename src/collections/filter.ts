/**
 * Metadata filters: `{ "lang": "en" }` (equality), `{ "year": { "$in": [2020, 2021] } }`, several fields in
 * one object (all must hold), `{ "$and": [...] }`, `{ "$or": [...] }`. Parsed once into a small tree that
 * each store turns into its own query with bound parameters only: keys and values never become SQL text.
 */
import { GatewayError } from '../errors.ts';
import type { Metadata, MetadataValue } from './types.ts';

export type FilterNode =
  | { op: 'and' | 'or'; items: FilterNode[] }
  | { op: 'eq'; key: string; value: MetadataValue }
  | { op: 'in'; key: string; values: MetadataValue[] };

const MAX_CONDITIONS = 64;
const MAX_DEPTH = 6;
const MAX_IN = 256;
const MAX_KEY = 128;

const isScalar = (v: unknown): v is MetadataValue => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/** Parses a filter from a request; 400 naming the place of what is wrong. */
export function parseFilter(raw: unknown, where = 'filter'): FilterNode {
  let count = 0;
  const walk = (v: unknown, at: string, depth: number): FilterNode => {
    if (depth > MAX_DEPTH) throw new GatewayError('invalid_request', `${at}: filters nest at most ${MAX_DEPTH} levels`);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GatewayError('invalid_request', `${at} must be an object of field conditions`);
    const items: FilterNode[] = [];
    for (const [key, cond] of Object.entries(v)) {
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(cond) || cond.length === 0) throw new GatewayError('invalid_request', `${at}.${key} must be a non-empty list of filters`);
        items.push({ op: key === '$and' ? 'and' : 'or', items: cond.map((c, i) => walk(c, `${at}.${key}[${i}]`, depth + 1)) });
        continue;
      }
      if (key.startsWith('$')) throw new GatewayError('invalid_request', `${at}: unknown operator ${JSON.stringify(key)}; use $and, $or, or a field name`);
      if (key.length === 0 || key.length > MAX_KEY) throw new GatewayError('invalid_request', `${at}: field names are 1 to ${MAX_KEY} characters`);
      if (++count > MAX_CONDITIONS) throw new GatewayError('invalid_request', `${where} has more than ${MAX_CONDITIONS} conditions`);
      if (isScalar(cond)) items.push({ op: 'eq', key, value: cond });
      else if (typeof cond === 'object' && cond !== null && !Array.isArray(cond) && Object.keys(cond).length === 1 && '$in' in cond) {
        const values = (cond as { $in: unknown }).$in;
        if (!Array.isArray(values) || values.length === 0 || values.length > MAX_IN || !values.every(isScalar)) {
          throw new GatewayError('invalid_request', `${at}.${key}.$in must be a list of 1 to ${MAX_IN} strings, numbers, booleans or nulls`);
        }
        items.push({ op: 'in', key, values });
      } else if (typeof cond === 'object' && cond !== null && !Array.isArray(cond) && Object.keys(cond).length === 1 && '$eq' in cond && isScalar((cond as { $eq: unknown }).$eq)) {
        items.push({ op: 'eq', key, value: (cond as { $eq: MetadataValue }).$eq });
      } else {
        throw new GatewayError('invalid_request', `${at}.${key} must be a string, number, boolean or null, or { "$in": [...] }`);
      }
    }
    if (items.length === 0) throw new GatewayError('invalid_request', `${at} is empty`);
    return items.length === 1 ? items[0] : { op: 'and', items };
  };
  return walk(raw, where, 1);
}

/** Whether a document's metadata matches (the memory store, and tests of the SQL stores against it). */
export function matches(meta: Metadata, f: FilterNode): boolean {
  switch (f.op) {
    case 'and':
      return f.items.every((x) => matches(meta, x));
    case 'or':
      return f.items.some((x) => matches(meta, x));
    case 'eq':
      return Object.hasOwn(meta, f.key) && meta[f.key] === f.value;
    case 'in':
      return Object.hasOwn(meta, f.key) && f.values.includes(meta[f.key]);
  }
}

/** Checks document metadata: a flat object of scalars (what filters can match). */
export function checkMetadata(raw: unknown, where: string): Metadata {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GatewayError('invalid_request', `${where} must be an object of field: value`);
  const entries = Object.entries(raw);
  if (entries.length > 64) throw new GatewayError('too_large', `${where} has ${entries.length} fields; the limit is 64`, { details: { limit: 64 } });
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > MAX_KEY) throw new GatewayError('invalid_request', `${where}: field names are 1 to ${MAX_KEY} characters`);
    if (!isScalar(v)) throw new GatewayError('invalid_request', `${where}.${k} must be a string, number, boolean or null`);
    if (typeof v === 'string' && v.length > 4096) throw new GatewayError('too_large', `${where}.${k} is over 4096 characters`, { details: { limit: 4096 } });
  }
  return raw as Metadata;
}
