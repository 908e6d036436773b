// The subset of Stripe's Search Query Language the emulator understands:
// clauses `field:'value'`, `metadata['key']:'value'`, `field~'substr'`,
// numeric comparisons (`amount>100`, `created>=1700000000`), negation with a
// leading `-`, joined by AND or by OR (not both, as in Stripe). Unsupported
// fields and syntax errors answer 400 with `param: query`.
import { invalidRequest } from './errors.ts';

export interface SearchField<T> {
  type: 'string' | 'number';
  get(object: T): string | number | null | undefined;
}

export interface SearchResource<T> {
  /** The resource name as Stripe writes it in errors (`payment_intents`). */
  name: string;
  fields: Record<string, SearchField<T>>;
  metadata(object: T): Record<string, string> | null | undefined;
}

type Operator = ':' | '~' | '>' | '<' | '>=' | '<=';

interface Clause {
  negated: boolean;
  field: string;
  metadataKey?: string;
  operator: Operator;
  value: string | number;
}

function syntaxError(detail: string): never {
  throw invalidRequest(
    `We were unable to parse your search query (${detail}). Try using the format \`metadata["key"]:"value"\` to query for metadata or \`key:"value"\` to query for other fields.`,
    { param: 'query' },
  );
}

class Scanner {
  position = 0;
  constructor(readonly text: string) {}

  skipSpaces(): void {
    while (this.position < this.text.length && /\s/.test(this.text[this.position]!)) this.position++;
  }

  atEnd(): boolean {
    this.skipSpaces();
    return this.position >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.position];
  }

  quoted(): string {
    const quote = this.peek();
    if (quote !== "'" && quote !== '"') syntaxError(`expected a quoted value at position ${this.position}`);
    this.position++;
    let out = '';
    while (this.position < this.text.length) {
      const ch = this.text[this.position++]!;
      if (ch === '\\' && this.position < this.text.length) {
        out += this.text[this.position++]!;
      } else if (ch === quote) {
        return out;
      } else {
        out += ch;
      }
    }
    syntaxError('unterminated string');
  }

  identifier(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(this.text.slice(this.position));
    if (!match) syntaxError(`expected a field name at position ${this.position}`);
    this.position += match[0].length;
    return match[0];
  }

  operator(): Operator {
    for (const op of ['>=', '<=', ':', '~', '>', '<'] as const) {
      if (this.text.startsWith(op, this.position)) {
        this.position += op.length;
        return op;
      }
    }
    syntaxError(`expected one of : ~ > < >= <= at position ${this.position}`);
  }

  value(): string | number {
    const ch = this.peek();
    if (ch === "'" || ch === '"') return this.quoted();
    const match = /^-?\d+(\.\d+)?/.exec(this.text.slice(this.position));
    if (!match) syntaxError(`expected a quoted string or a number at position ${this.position}`);
    this.position += match[0].length;
    return Number(match[0]);
  }

  keyword(): 'AND' | 'OR' {
    this.skipSpaces();
    const match = /^(AND|OR)(?=\s)/.exec(this.text.slice(this.position));
    if (!match) syntaxError(`expected AND or OR at position ${this.position}`);
    this.position += match[0].length;
    return match[1] as 'AND' | 'OR';
  }
}

function parseClause(scanner: Scanner): Clause {
  scanner.skipSpaces();
  let negated = false;
  if (scanner.peek() === '-') {
    negated = true;
    scanner.position++;
  }
  const field = scanner.identifier();
  let metadataKey: string | undefined;
  if (field === 'metadata') {
    if (scanner.peek() !== '[') syntaxError('metadata needs a key, as in metadata["key"]');
    scanner.position++;
    metadataKey = scanner.quoted();
    if (scanner.peek() !== ']') syntaxError('expected ] after the metadata key');
    scanner.position++;
  }
  const operator = scanner.operator();
  const value = scanner.value();
  return { negated, field, ...(metadataKey !== undefined ? { metadataKey } : {}), operator, value };
}

/** Compiles a search query into a predicate over the resource's objects. */
export function compileSearch<T>(query: string, resource: SearchResource<T>): (object: T) => boolean {
  const scanner = new Scanner(query);
  if (scanner.atEnd()) syntaxError('the query is empty');
  const clauses = [parseClause(scanner)];
  let joiner: 'AND' | 'OR' | undefined;
  while (!scanner.atEnd()) {
    const keyword = scanner.keyword();
    if (joiner && keyword !== joiner) {
      throw invalidRequest('Search queries cannot mix AND and OR.', { param: 'query' });
    }
    joiner = keyword;
    clauses.push(parseClause(scanner));
  }
  if (clauses.length > 10) throw invalidRequest('Search queries can have at most 10 clauses.', { param: 'query' });
  const tests = clauses.map((clause) => compileClause(clause, resource));
  if (joiner === 'OR') return (object) => tests.some((test) => test(object));
  return (object) => tests.every((test) => test(object));
}

function compileClause<T>(clause: Clause, resource: SearchResource<T>): (object: T) => boolean {
  const positive = compilePositive(clause, resource);
  return clause.negated ? (object) => !positive(object) : positive;
}

function compilePositive<T>(clause: Clause, resource: SearchResource<T>): (object: T) => boolean {
  if (clause.metadataKey !== undefined) {
    const key = clause.metadataKey;
    if (clause.operator !== ':' || typeof clause.value !== 'string') {
      throw invalidRequest('Metadata can only be matched exactly, as in metadata["key"]:"value".', { param: 'query' });
    }
    const expected = clause.value;
    return (object) => resource.metadata(object)?.[key] === expected;
  }
  const field = Object.hasOwn(resource.fields, clause.field) ? resource.fields[clause.field] : undefined;
  if (!field) {
    throw invalidRequest(
      `Field \`${clause.field}\` is an unsupported search field for resource \`${resource.name}\`. See https://stripe.com/docs/search#query-fields-for-${resource.name.replaceAll('_', '-')} for a list of supported fields.`,
      { param: 'query' },
    );
  }
  const { operator, value } = clause;
  if (field.type === 'number') {
    if (typeof value !== 'number') {
      throw invalidRequest(`Field \`${clause.field}\` is numeric; compare it with a number, without quotes.`, { param: 'query' });
    }
    switch (operator) {
      case ':': return (object) => field.get(object) === value;
      case '>': return (object) => Number(field.get(object)) > value;
      case '<': return (object) => Number(field.get(object)) < value;
      case '>=': return (object) => Number(field.get(object)) >= value;
      case '<=': return (object) => Number(field.get(object)) <= value;
      case '~': throw invalidRequest(`Field \`${clause.field}\` does not support substring matching.`, { param: 'query' });
    }
  }
  if (typeof value !== 'string') {
    throw invalidRequest(`Field \`${clause.field}\` is a string; quote the value.`, { param: 'query' });
  }
  if (operator === ':') return (object) => field.get(object) === value;
  if (operator === '~') {
    if (value.length < 3) throw invalidRequest('Substring matches need at least 3 characters.', { param: 'query' });
    return (object) => String(field.get(object) ?? '').includes(value);
  }
  throw invalidRequest(`Field \`${clause.field}\` does not support the ${operator} operator.`, { param: 'query' });
}
