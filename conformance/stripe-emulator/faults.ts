// Fault injection for reliability tests: rules armed through the admin API
// or in-process make the next matching Stripe API requests slow, fail with
// 500/503, drop the connection unanswered, hang then drop, or perform the
// operation and then lose the response (the charge happens, the caller never
// hears of it), the failure modes a payment server must survive.
import { randomBase62 } from './ids.ts';

export type FaultKind = 'latency' | 'status500' | 'status503' | 'drop' | 'lose_response' | 'timeout';

export const FAULT_KINDS: readonly FaultKind[] = ['latency', 'status500', 'status503', 'drop', 'lose_response', 'timeout'];

export interface FaultMatch {
  /** HTTP method, any case; any method when absent. */
  method?: string;
  /** A path prefix (`/v1/payment_intents`), or a regular expression when it starts with `^` or is a RegExp. */
  path?: string | RegExp;
}

export interface FaultRule {
  match?: FaultMatch;
  kind: FaultKind;
  /** How many matching requests the rule affects: a positive integer (default 1) or 'unlimited'. */
  times?: number | 'unlimited';
  /** Delay for latency (default 1000), hang time for timeout (default 10000), delay before the drop for lose_response (default 0). */
  ms?: number;
}

export interface ArmedFault {
  id: string;
  match: { method?: string; path?: string };
  kind: FaultKind;
  ms: number;
  /** Matching requests still to be affected. */
  remaining: number | 'unlimited';
  /** Requests affected so far. */
  hits: number;
}

export interface FaultController {
  /** Arms a rule; the first armed rule that matches a request applies to it. */
  arm(rule: FaultRule): ArmedFault;
  /** Removes one rule, or every rule when no id is given. */
  clear(id?: string): void;
  /** The armed rules, in arming order; exhausted rules are removed. */
  list(): ArmedFault[];
}

interface ActiveRule {
  view: ArmedFault;
  method: string | undefined;
  test: (path: string) => boolean;
}

const DEFAULT_MS: Record<FaultKind, number> = {
  latency: 1000,
  timeout: 10_000,
  lose_response: 0,
  drop: 0,
  status500: 0,
  status503: 0,
};

export class FaultError extends Error {
  override readonly name = 'FaultError';
}

export class Faults implements FaultController {
  private rules: ActiveRule[] = [];

  arm(rule: FaultRule): ArmedFault {
    if (!rule || typeof rule !== 'object') throw new FaultError('A fault rule must be an object.');
    if (!FAULT_KINDS.includes(rule.kind)) throw new FaultError(`kind must be one of ${FAULT_KINDS.join(', ')}.`);
    const times = rule.times ?? 1;
    if (times !== 'unlimited' && !(Number.isInteger(times) && times >= 1)) {
      throw new FaultError("times must be a positive integer or 'unlimited'.");
    }
    const ms = rule.ms ?? DEFAULT_MS[rule.kind];
    if (!(Number.isFinite(ms) && ms >= 0 && ms <= 600_000)) throw new FaultError('ms must be between 0 and 600000.');
    const match = rule.match ?? {};
    if (match.method !== undefined && typeof match.method !== 'string') throw new FaultError('match.method must be a string.');
    let test: (path: string) => boolean = () => true;
    let pathText: string | undefined;
    if (match.path instanceof RegExp) {
      const regex = match.path;
      test = (path) => regex.test(path);
      pathText = `^${regex.source}`.replace(/^\^\^/, '^');
    } else if (typeof match.path === 'string') {
      pathText = match.path;
      if (match.path.startsWith('^')) {
        let regex: RegExp;
        try {
          regex = new RegExp(match.path);
        } catch {
          throw new FaultError(`match.path is not a valid regular expression: ${match.path}`);
        }
        test = (path) => regex.test(path);
      } else {
        const prefix = match.path;
        test = (path) => path.startsWith(prefix);
      }
    } else if (match.path !== undefined) {
      throw new FaultError('match.path must be a string.');
    }
    const view: ArmedFault = {
      id: `fault_${randomBase62(12)}`,
      match: {
        ...(match.method !== undefined ? { method: match.method.toUpperCase() } : {}),
        ...(pathText !== undefined ? { path: pathText } : {}),
      },
      kind: rule.kind,
      ms,
      remaining: times,
      hits: 0,
    };
    this.rules.push({ view, method: match.method?.toUpperCase(), test });
    return { ...view, match: { ...view.match } };
  }

  clear(id?: string): void {
    this.rules = id === undefined ? [] : this.rules.filter((rule) => rule.view.id !== id);
  }

  list(): ArmedFault[] {
    return this.rules.map((rule) => ({ ...rule.view, match: { ...rule.view.match } }));
  }

  /** The fault to apply to this request, if any; counts it against the rule. */
  take(method: string, path: string): ArmedFault | undefined {
    if (this.rules.length === 0) return undefined;
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (rule.method !== undefined && rule.method !== method) continue;
      if (!rule.test(path)) continue;
      const view = rule.view;
      view.hits++;
      if (view.remaining !== 'unlimited') {
        view.remaining--;
        if (view.remaining <= 0) this.rules.splice(i, 1);
      }
      return { ...view };
    }
    return undefined;
  }
}
