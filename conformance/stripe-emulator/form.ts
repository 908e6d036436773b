// Stripe's request encoding: application/x-www-form-urlencoded bodies and
// query strings with bracket notation (`metadata[k]=v`, `expand[]=x`,
// `expand[0]=x`, `card[number]=...`), parsed into nested values, then checked
// against a per-endpoint parameter spec that reports unknown, missing and
// mistyped parameters with Stripe's messages and the offending `param`.
import { invalidRequest, missingParameter, unknownParameter } from './errors.ts';

export type FormValue = string | FormObject | FormValue[];
export interface FormObject {
  [key: string]: FormValue;
}

const MAX_PARAMETERS = 1000;

/** Splits `a[b][]` into `['a', 'b', '']`; a key that is not bracket notation stays whole. */
function splitKey(key: string): string[] {
  const open = key.indexOf('[');
  if (open <= 0 || !key.endsWith(']')) return [key];
  const segments = [key.slice(0, open)];
  let rest = key.slice(open);
  while (rest.length > 0) {
    if (rest[0] !== '[') return [key];
    const close = rest.indexOf(']');
    if (close < 0) return [key];
    segments.push(rest.slice(1, close));
    rest = rest.slice(close + 1);
  }
  return segments;
}

function conflict(segments: string[], depth: number): never {
  const name = segments.slice(0, depth + 1).reduce((acc, seg, i) => (i === 0 ? seg : `${acc}[${seg}]`), '');
  throw invalidRequest(`Invalid value for ${name}: a parameter cannot be both a value and a hash or array.`, {
    param: name,
  });
}

function isPlainObject(value: FormValue | undefined): value is FormObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function assign(root: FormObject, segments: string[], value: string): void {
  let container: FormObject | FormValue[] = root;
  for (let depth = 0; depth < segments.length; depth++) {
    const segment = segments[depth]!;
    const last = depth === segments.length - 1;
    const nextIsPush = !last && segments[depth + 1] === '';
    if (Array.isArray(container)) {
      // Only `[]` leads here; `a[][b]=1` appends one object per occurrence.
      if (last) {
        container.push(value);
        return;
      }
      const child: FormValue = nextIsPush ? [] : Object.create(null);
      container.push(child);
      container = child as FormObject | FormValue[];
      continue;
    }
    if (segment === '__proto__') conflict(segments, depth);
    const existing: FormValue | undefined = container[segment];
    if (last) {
      if (existing !== undefined && typeof existing !== 'string') conflict(segments, depth);
      container[segment] = value;
      return;
    }
    if (nextIsPush) {
      if (existing === undefined) container[segment] = [];
      else if (!Array.isArray(existing)) conflict(segments, depth);
    } else if (existing === undefined) {
      container[segment] = Object.create(null) as FormObject;
    } else if (!isPlainObject(existing)) {
      conflict(segments, depth);
    }
    container = container[segment] as FormObject | FormValue[];
  }
}

/** Parses a form body or query string into nested parameters. */
export function parseForm(text: string, into: FormObject = Object.create(null) as FormObject): FormObject {
  if (text.length === 0) return into;
  let count = 0;
  for (const [key, value] of new URLSearchParams(text)) {
    if (++count > MAX_PARAMETERS) throw invalidRequest('Too many parameters in the request.');
    if (key.length === 0) continue;
    assign(into, splitKey(key), value);
  }
  return into;
}

// ---------------------------------------------------------------------------
// Parameter specs

export type ParamSpec =
  | { kind: 'string'; required?: boolean; maxLength?: number; oneOf?: readonly string[]; emptyable?: boolean }
  | { kind: 'integer'; required?: boolean; min?: number }
  | { kind: 'boolean'; required?: boolean }
  | { kind: 'metadata' }
  | { kind: 'object'; required?: boolean; fields: Record<string, ParamSpec>; emptyable?: boolean }
  | { kind: 'array'; of: ParamSpec; required?: boolean }
  /** An integer or a hash of `gt`/`gte`/`lt`/`lte` integers, as list filters on `created` take. */
  | { kind: 'range' };

export type ParamValue = string | number | boolean | null | ParamValue[] | { [key: string]: ParamValue };
export type Params = { [key: string]: ParamValue };

function joinParam(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}[${key}]`;
}

const INTEGER = /^[+-]?\d+$/;

function toInteger(value: FormValue, param: string): number {
  if (typeof value !== 'string') throw invalidRequest(`Invalid integer: ${describe(value)}`, { code: 'parameter_invalid_integer', param });
  const trimmed = value.trim();
  const parsed = INTEGER.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(parsed)) {
    throw invalidRequest(`Invalid integer: ${value}`, { code: 'parameter_invalid_integer', param });
  }
  return parsed;
}

function describe(value: FormValue): string {
  return typeof value === 'string' ? value : Array.isArray(value) ? 'array' : 'hash';
}

/** `{0: a, 1: b}` (from `x[0]=a&x[1]=b`) becomes `[a, b]`; other hashes are not arrays. */
function asArray(value: FormValue): FormValue[] | undefined {
  if (Array.isArray(value)) return value;
  if (!isPlainObject(value)) return undefined;
  const keys = Object.keys(value);
  if (!keys.every((k) => /^\d+$/.test(k))) return undefined;
  return keys.sort((a, b) => Number(a) - Number(b)).map((k) => value[k]!);
}

const METADATA_MAX_KEYS = 50;
const METADATA_MAX_KEY_LENGTH = 40;
const METADATA_MAX_VALUE_LENGTH = 500;

function checkMetadata(value: FormValue, param: string): Params | null {
  if (value === '') return null;
  if (!isPlainObject(value)) throw invalidRequest('Invalid hash', { param });
  const keys = Object.keys(value);
  if (keys.length > METADATA_MAX_KEYS) {
    throw invalidRequest(`Invalid ${param}: metadata can have at most ${METADATA_MAX_KEYS} keys.`, { param });
  }
  const out: Params = {};
  for (const key of keys) {
    const itemParam = joinParam(param, key);
    const item = value[key]!;
    if (typeof item !== 'string') {
      throw invalidRequest(`Invalid value type: ${describe(item)} must be a string`, { param: itemParam });
    }
    if (key.length > METADATA_MAX_KEY_LENGTH) {
      throw invalidRequest(`Metadata keys can have up to ${METADATA_MAX_KEY_LENGTH} characters; \`${key}\` has ${key.length}.`, { param: itemParam });
    }
    if (item.length > METADATA_MAX_VALUE_LENGTH) {
      throw invalidRequest(`Metadata values can have up to ${METADATA_MAX_VALUE_LENGTH} characters, but you passed in a value that is ${item.length} characters.`, { param: itemParam });
    }
    out[key] = item;
  }
  return out;
}

function checkValue(spec: ParamSpec, value: FormValue, param: string): ParamValue {
  switch (spec.kind) {
    case 'string': {
      if (typeof value !== 'string') throw invalidRequest(`Invalid string: ${describe(value)}`, { param });
      if (value === '' && spec.emptyable) return null;
      if (spec.oneOf && !spec.oneOf.includes(value)) {
        throw invalidRequest(`Invalid ${param}: must be one of ${formatChoices(spec.oneOf)}`, { param });
      }
      if (spec.maxLength !== undefined && value.length > spec.maxLength) {
        throw invalidRequest(`Invalid string: ${value.slice(0, 20)}...; must be at most ${spec.maxLength} characters`, { param });
      }
      return value;
    }
    case 'integer': {
      const parsed = toInteger(value, param);
      if (spec.min !== undefined && parsed < spec.min) {
        throw invalidRequest(`This value must be greater than or equal to ${spec.min}.`, { code: 'parameter_invalid_integer', param });
      }
      return parsed;
    }
    case 'boolean': {
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw invalidRequest(`Invalid boolean: ${describe(value)}`, { param });
    }
    case 'metadata':
      return checkMetadata(value, param);
    case 'object': {
      if (value === '' && spec.emptyable) return null;
      if (!isPlainObject(value)) throw invalidRequest('Invalid hash', { param });
      return checkParams(spec.fields, value, param);
    }
    case 'array': {
      if (value === '') return [];
      const items = asArray(value);
      if (!items) throw invalidRequest('Invalid array', { param });
      return items.map((item, i) => checkValue(spec.of, item, `${param}[${i}]`));
    }
    case 'range': {
      if (typeof value === 'string') return toInteger(value, param);
      if (!isPlainObject(value)) throw invalidRequest('Invalid hash', { param });
      return checkParams(RANGE_FIELDS, value, param);
    }
  }
}

const RANGE_FIELDS: Record<string, ParamSpec> = {
  gt: { kind: 'integer' },
  gte: { kind: 'integer' },
  lt: { kind: 'integer' },
  lte: { kind: 'integer' },
};

function formatChoices(choices: readonly string[]): string {
  if (choices.length <= 1) return choices.join('');
  return `${choices.slice(0, -1).join(', ')}, or ${choices[choices.length - 1]}`;
}

/**
 * Checks raw parameters against a spec, in the order the client sent them,
 * and returns them typed (integers as numbers, booleans as booleans).
 */
export function checkParams(fields: Record<string, ParamSpec>, raw: FormObject, prefix = ''): Params {
  const out: Params = {};
  for (const key of Object.keys(raw)) {
    const param = joinParam(prefix, key);
    const spec = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (!spec) throw unknownParameter(param);
    out[key] = checkValue(spec, raw[key]!, param);
  }
  for (const [key, spec] of Object.entries(fields)) {
    if ('required' in spec && spec.required && !(key in out)) throw missingParameter(joinParam(prefix, key));
  }
  return out;
}
