/**
 * The one reader of a target's answer (readAnswer) and the internals
 * patterns of ERR-4, on answers shaped as the reference server, a stripe402
 * v1 server and careless servers send them.
 */
import { describe, expect, it } from 'vitest';
import { encodeHeader } from '@stripe402/core';
import { internalsIn } from './checks/errors.ts';
import { toExchange } from './exchange.ts';

const CLIENT = 'a'.repeat(64);
const challenge = (error?: string) => ({
  stripe402Version: 1,
  resource: { url: '/api/joke' },
  accepts: [{ scheme: 'stripe', currency: 'usd', amount: 100, minTopUp: 50_000, publishableKey: 'pk_test_x' }],
  ...(error ? { error } : {}),
});
const answer = (status: number, headers: Record<string, string>, body = '') =>
  toExchange({ method: 'GET', path: '/api/joke', headers: { payment: 'x' } }, { status, headers, body, durationMs: 0 }).answer;

describe('the answer of a target', () => {
  it('is read from payment-response when the response carries one', () => {
    const read = answer(402, {
      'payment-required': encodeHeader(challenge('insufficient_credits')),
      'payment-response': encodeHeader({ success: false, errorCode: 'insufficient_credits', error: 'short', clientId: CLIENT, creditsRemaining: 42 }),
    });
    expect(read).toMatchObject({ source: 'payment-response', errorCode: 'insufficient_credits', clientId: CLIENT, creditsRemaining: 42, message: 'short' });
  });

  it('is read from a v1 PaymentResponse body when there is no payment-response, and reports no balance for clientId ""', () => {
    const read = answer(402, { 'content-type': 'application/json' }, JSON.stringify({ success: false, creditsRemaining: 0, clientId: '', error: 'Your card was declined.', errorCode: 'card_declined' }));
    expect(read).toMatchObject({ source: 'v1-body', errorCode: 'card_declined', clientId: '', message: 'Your card was declined.' });
    expect(read.creditsRemaining).toBeUndefined();
  });

  it('is the challenge\'s error for a v1 insufficient_credits, with no balance', () => {
    const read = answer(402, { 'payment-required': encodeHeader(challenge('insufficient_credits')) }, JSON.stringify(challenge('insufficient_credits')));
    expect(read).toEqual({ source: 'challenge', success: false, errorCode: 'insufficient_credits' });
  });

  it('does not replace a payment-response that is there but undecodable by the body', () => {
    const read = answer(402, { 'payment-response': 'not base64!' }, JSON.stringify({ success: false, errorCode: 'invalid_payment', clientId: '', creditsRemaining: 0 }));
    expect(read.source).toBe('none');
  });
});

describe('the internals an error message must not carry (ERR-4)', () => {
  it.each([
    'TypeError: Cannot read properties of null (reading \'clientId\')\n    at decode (/srv/app/server.js:12:7)',
    'No such PaymentMethod: \'pm_123\'; request-id: req_Ab12Cd34Ef56Gh',
    'Request req_8f7e6d5c4b3a2918 failed',
    'ERR value is not an integer or out of range',
    'new row for relation "balances" violates check constraint "balances_units_check"',
    'strconv.ParseInt: parsing "abc": invalid syntax',
    'panic: runtime error: invalid memory address or nil pointer dereference',
    'Traceback (most recent call last):\n  File "/app/server.py", line 12, in pay',
    'json: cannot unmarshal string into Go struct field .topUpAmount of type int64',
    'dial tcp 127.0.0.1:6379: connect: connection refused',
    'Expecting value: line 1 column 1 (char 0)',
    "Expecting ':' delimiter: line 1 column 5 (char 4)",
    'Extra data: line 1 column 9 (char 8)',
    "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
    "invalid literal for int() with base 10: 'abc'",
    'maximum recursion depth exceeded while decoding a JSON array from a unicode string',
    "'NoneType' object is not subscriptable",
    "'<' not supported between instances of 'float' and 'NoneType'",
  ])('are found in %j', (text) => {
    expect(internalsIn(text)).toBeDefined();
  });

  it.each([
    'the balance does not cover this request',
    'Your card was declined.',
    'the smallest top-up is 50000 units',
    'this resource is not sold in zzz',
    'the payment header is not valid base64',
    'Payment did not succeed. Status: requires_action',
    'this idempotencyKey was used for a different top-up',
    'Expecting a payment header: send one with a PaymentMethod or a client id',
    'the card holder is expected to authenticate this payment',
  ])('are not found in the message for humans %j', (text) => {
    expect(internalsIn(text)).toBeUndefined();
  });
});
