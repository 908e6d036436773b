/**
 * Section 9, card authentication (extension): a charge that needs 3-D Secure
 * is a protocol state, not a failure. The suite drives it end to end when the
 * backend completes authentication on a GET of the next-action URL (the
 * project's emulator does; real Stripe test mode needs a browser, and the
 * check is then skipped). Whether the target implements the extension is
 * established first, from its answer to a card that needs authentication
 * (CONF-5): a server without it is judged by AUTH-4 alone.
 */
import type { RunContext } from '../context.ts';
import { isClientId } from '@stripe402/core';
import { describe, errorCodeOf, isSuccess, type Exchange } from '../exchange.ts';
import { expectBalance, expectError, expectServed, goodCard, probeCard, show, withBalanceUnchanged } from './helpers.ts';
import { CheckFailure, NotApplicable, SkipCheck, expect, type CheckDefinition } from './types.ts';

interface PendingAuthentication {
  /** The card's client id, when the refusal named it (a v1 error body does not). */
  clientId?: string;
  /** The balance before the top-up, when the suite knows it. */
  remainder?: number;
  paymentIntentId: string;
  nextActionUrl: string;
  topUpAmount: number;
}

/** Pays with the authentication card until the target answers authentication_required. */
async function startAuthentication(ctx: RunContext): Promise<{ response: Exchange; pending?: PendingAuthentication }> {
  const card = ctx.options.cards.authentication;
  const topUpAmount = ctx.accept.minTopUp;
  let response = await ctx.payWithCard(card, topUpAmount);
  if (isSuccess(response.status) && response.paymentResponse) {
    // The card's client still holds credit from an earlier run: spend it, then ask again.
    await ctx.drain(response.paymentResponse.clientId);
    response = await ctx.payWithCard(card, topUpAmount);
  }
  const answer = response.answer;
  if (response.status !== 402 || answer.errorCode !== 'authentication_required' || !answer.paymentIntentId || !answer.nextActionUrl) {
    // Without a nextActionUrl (Stripe gave none) the card holder cannot be simulated: nothing pending to resume.
    return { response };
  }
  // Where the refusal reports no balance (a v1 error body), the one the suite learned when it drained the card's client.
  const clientId = isClientId(answer.clientId) ? answer.clientId : ctx.cardClients.get(card);
  const remainder = answer.creditsRemaining ?? (clientId === undefined ? undefined : ctx.knownBalance(clientId));
  return {
    response,
    pending: { clientId, remainder, paymentIntentId: answer.paymentIntentId, nextActionUrl: answer.nextActionUrl, topUpAmount },
  };
}

/**
 * Acts as the card holder: opens the next-action page as a browser would and
 * follows its "complete" link (the emulator's page has one; Stripe's hosted
 * test page needs a browser with JavaScript, so there the check is skipped).
 * Returns true, or why authentication could not be completed.
 */
async function completeAuthentication(url: string, timeoutMs: number): Promise<true | string> {
  try {
    const page = await fetch(url, { headers: { accept: 'text/html' }, signal: AbortSignal.timeout(timeoutMs) });
    const html = await page.text();
    const link = [...html.matchAll(/<a\s[^>]*href="([^"]+)"[^>]*>([^<]*)<\/a>/gi)].find(([, , text]) => /complete/i.test(text ?? ''));
    if (!link) return 'the next-action page offers no link that completes authentication (a browser is needed)';
    const href = new URL(link[1]!.replaceAll('&amp;', '&'), page.url || url);
    const done = await fetch(href, { headers: { accept: 'text/html' }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await done.arrayBuffer();
    return done.status < 400 ? true : `completing authentication answered HTTP ${done.status}`;
  } catch (error) {
    return `the next-action page could not be used (${(error as Error).message})`;
  }
}

/** Whether the target implements card authentication, and the answer that shows it. */
interface AuthenticationSupport {
  implemented: boolean | undefined;
  evidence: string;
}

/**
 * Establishes once per run whether the target implements the extension: a
 * card that needs authentication is answered authentication_required by a
 * server that does, and payment_failed by one that does not (AUTH-4).
 */
export function authenticationSupport(ctx: RunContext): Promise<AuthenticationSupport> {
  return ctx.memo('card-authentication', async () => {
    const { response } = await startAuthentication(ctx);
    const code = errorCodeOf(response);
    const evidence = `a top-up with ${ctx.options.cards.authentication} was answered ${describe(response)}`;
    if (response.status === 402 && code === 'authentication_required') return { implemented: true, evidence };
    if (response.status === 402 && code === 'payment_failed') return { implemented: false, evidence };
    return { implemented: undefined, evidence };
  });
}

/** Skips unless the target implements card authentication (CONF-5: the extension's rules bind only servers that implement it). */
async function requireAuthentication(ctx: RunContext): Promise<void> {
  const support = await authenticationSupport(ctx);
  if (support.implemented === false) {
    throw new NotApplicable(`the target does not implement card authentication (${support.evidence}, AUTH-4); see 9/without-extension-ignores-payment-intent`);
  }
  if (support.implemented === undefined) throw new SkipCheck(`cannot tell whether the target implements card authentication (${support.evidence})`);
}

export const authenticationChecks: CheckDefinition[] = [
  {
    id: '9/authentication-required-state',
    title: 'a charge needing authentication is a 402 authentication_required with paymentIntentId and nextActionUrl',
    level: 'extensions',
    severity: 'must',
    requirement: 'AUTH-1',
    async run(ctx) {
      const { response } = await startAuthentication(ctx);
      if (errorCodeOf(response) === 'payment_failed') {
        throw new NotApplicable('the target answers payment_failed: it does not implement the authentication extension (AUTH-4)');
      }
      expectError(response, 'authentication_required', `a top-up with ${ctx.options.cards.authentication}`);
      const answer = response.answer;
      expect(/^pi_[A-Za-z0-9_]+$/.test(answer.paymentIntentId ?? ''), 'a paymentIntentId', show(answer));
      if (answer.nextActionUrl !== undefined) expect(URL.canParse(answer.nextActionUrl), 'an absolute nextActionUrl', show(answer));
      expect(answer.chargeId === undefined, 'no chargeId: nothing was credited', show(answer));
      // nextActionUrl is owed whenever Stripe gave the PaymentIntent a redirect URL (AUTH-1); only the
      // backend can tell whether it did, so without one the suite judges the URL only when it is sent.
      if (!ctx.backend) return;
      const intent = await ctx.backend.find(answer.paymentIntentId!);
      if (!intent) throw new CheckFailure(`PaymentIntent ${answer.paymentIntentId} (the target's paymentIntentId) in the backend`, 'the backend has no such PaymentIntent');
      expect(intent.status === 'requires_action', `PaymentIntent ${intent.id} in requires_action (the state authentication_required reports)`, `status ${intent.status}`);
      const stripeUrl = intent.next_action?.redirect_to_url?.url ?? undefined;
      if (stripeUrl !== undefined) {
        expect(
          answer.nextActionUrl === stripeUrl,
          `nextActionUrl ${stripeUrl} (next_action.redirect_to_url.url of ${intent.id})`,
          answer.nextActionUrl === undefined ? `no nextActionUrl (payment-response members: ${Object.keys(answer).join(', ')})` : `nextActionUrl ${answer.nextActionUrl}`,
        );
      }
    },
  },
  {
    id: '9/resume-credits-once',
    title: 'after authentication, a retry with paymentIntentId is served and credited once',
    level: 'extensions',
    severity: 'must',
    requirement: 'AUTH-2',
    async run(ctx) {
      const { response, pending } = await startAuthentication(ctx);
      if (!pending) {
        throw new NotApplicable(`the target gave no authentication_required with a nextActionUrl to complete (${describe(response)}); see 9/authentication-required-state`);
      }
      const completed = await completeAuthentication(pending.nextActionUrl, ctx.options.timeoutMs);
      if (completed !== true) throw new SkipCheck(completed);
      if (ctx.backend) {
        const intent = await ctx.backend.find(pending.paymentIntentId);
        if (!intent) throw new CheckFailure(`PaymentIntent ${pending.paymentIntentId} (the target's paymentIntentId) in the backend`, 'the backend has no such PaymentIntent');
        if (intent.status !== 'succeeded') {
          throw new SkipCheck(`the backend did not complete authentication on a GET of the next-action URL (status ${intent.status})`);
        }
      }
      const card = ctx.options.cards.authentication;
      const payload = { stripe402Version: 1, paymentMethodId: card, paymentIntentId: pending.paymentIntentId, topUpAmount: pending.topUpAmount };
      const resumed = await ctx.pay(payload);
      if (errorCodeOf(resumed) === 'authentication_required' && !ctx.backend) {
        throw new SkipCheck('the backend did not complete authentication on a GET of the next-action URL');
      }
      const answer = expectServed(resumed, 'the retry with paymentIntentId');
      // This request credits the PaymentIntent, unless a webhook or reconciliation did first (LEDG-4): then PROC-9 wants no chargeId.
      // Either way the balance shows exactly one credit.
      expect(
        answer.chargeId === pending.paymentIntentId || answer.chargeId === undefined,
        `chargeId ${pending.paymentIntentId} (this request credited it), or none (it was credited before, LEDG-4)`,
        show(answer),
      );
      const { amount } = ctx.accept;
      expect(pending.clientId === undefined || answer.clientId === pending.clientId, `client id ${pending.clientId}`, answer.clientId);
      let balance: number;
      if (pending.remainder !== undefined) {
        balance = pending.remainder + pending.topUpAmount - amount;
        expectBalance(resumed, balance, `(${pending.remainder} + ${pending.topUpAmount} credited once - ${amount} spent)`);
      } else {
        // The balance before is unknown, but a card is charged only when it cannot pay (PROC-4): it was 0 to amount - 1.
        balance = answer.creditsRemaining;
        const low = pending.topUpAmount - amount;
        expect(balance >= low && balance < pending.topUpAmount, `a balance of ${low} to ${pending.topUpAmount - 1} (below ${amount}, + ${pending.topUpAmount} credited once - ${amount} spent)`, `creditsRemaining ${balance}`);
      }
      ctx.recordCharge({ paymentIntentId: pending.paymentIntentId, clientId: answer.clientId, units: pending.topUpAmount, currency: ctx.accept.currency });
      const again = await ctx.pay(payload);
      // AUTH-2: no second credit, then step 3; a balance that no longer covers the request is insufficient_credits, never a new charge.
      if (balance >= amount) {
        const second = expectServed(again, `a second retry with the same paymentIntentId (balance ${balance} covers ${amount})`);
        expect(second.chargeId === undefined, 'no chargeId: a PaymentIntent credits once', show(second));
        expectBalance(again, balance - amount, 'after one more spend and no second credit');
      } else {
        expectError(again, 'insufficient_credits', `a second retry with the same paymentIntentId (balance ${balance} below ${amount}: no second credit, no new charge)`);
        expectBalance(again, balance, 'unchanged: no second credit');
      }
    },
  },
  {
    id: '9/rejects-foreign-payment-intent',
    title: 'a paymentIntentId that is unknown or belongs to another client is invalid_payment',
    level: 'extensions',
    severity: 'must',
    requirement: 'AUTH-3',
    async run(ctx) {
      await requireAuthentication(ctx);
      const card = probeCard(ctx);
      const otherClient = ctx.cardClients.get(goodCard(ctx, 1));
      const foreign = [...ctx.charges.values()].find((c) => c.clientId === otherClient && c.clientId !== ctx.cardClients.get(card));
      await withBalanceUnchanged(ctx, card, async () => {
        const ids = [['an unknown PaymentIntent', 'pi_conformanceUnknown000000000']];
        if (foreign) ids.push(['a PaymentIntent of another client', foreign.paymentIntentId]);
        for (const [label, id] of ids) {
          const response = await ctx.payWithCard(card, undefined, undefined, { paymentIntentId: id });
          expectError(response, 'invalid_payment', label!);
        }
      });
    },
  },
  {
    id: '9/without-extension-ignores-payment-intent',
    title: 'a server without card authentication answers payment_failed to a card that needs it and ignores paymentIntentId',
    level: 'extensions',
    severity: 'must',
    requirement: 'AUTH-4',
    async run(ctx) {
      const support = await authenticationSupport(ctx);
      if (support.implemented === true) throw new NotApplicable('the target implements card authentication: AUTH-4 binds servers without it');
      // Another answer may be the backend's doing (one that never asks for authentication): nothing to judge by.
      if (support.implemented === undefined) throw new SkipCheck(`cannot tell whether the target implements card authentication (${support.evidence})`);
      const { amount } = ctx.accept;
      const { clientId, balance } = await ctx.fund(probeCard(ctx), amount);
      const response = await ctx.spend(clientId, undefined, { paymentIntentId: 'pi_conformanceUnknown000000000' });
      const answer = expectServed(response, 'a spend carrying a paymentIntentId the target must ignore');
      expect(answer.chargeId === undefined, 'no chargeId', show(answer));
      expectBalance(response, balance - amount, 'after one spend, as without the member');
    },
  },
];
