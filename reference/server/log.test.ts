/**
 * Log redaction (SEC-2): client ids and PaymentMethod ids never reach a log
 * line whole.
 */
import { describe, expect, it } from 'vitest';
import { redact, scrub } from './log.ts';

describe('log redaction', () => {
  it('keeps the first 8 characters of an id and an ellipsis', () => {
    expect(redact('0939620a1e8c6a26b166de5d8b3030e2ed2dd80a852a62a6c0b38b77b4d09dfc')).toBe('0939620a…');
    expect(redact('pm_1QabcDEF234ghi')).toBe('pm_1Qabc…');
    expect(redact(undefined)).toBeUndefined();
  });

  it('scrubs client ids and PaymentMethod ids out of free text', () => {
    const id = 'ab'.repeat(32);
    const text = `No such PaymentMethod: 'pm_1QabcDEF234ghi' for client ${id}`;
    const scrubbed = scrub(text);
    expect(scrubbed).not.toContain('pm_1QabcDEF234ghi');
    expect(scrubbed).not.toContain(id);
    expect(scrubbed).toContain('pm_1Qabc…');
    expect(scrubbed).toContain('abababab…');
  });
});
