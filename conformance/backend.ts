/**
 * The suite's view of the Stripe backend behind the target (the project's
 * emulator, stripe-mock or Stripe test mode), reached only through the
 * official SDK. It counts and reads the PaymentIntents a server created, by
 * the metadata keys the spec fixes (PROC-6), so ledger checks can compare
 * what the target said with what was charged.
 */
import type Stripe from 'stripe';
import { stripeClientForUrl } from '@stripe402/stripe-emulator';

/** The metadata key naming the client id on every PaymentIntent (PROC-6). */
export const METADATA_CLIENT_ID = 'stripe402_client_id';
/** The metadata key naming the units bought (PROC-6). */
export const METADATA_UNITS = 'stripe402_units';

/** Read-only access to the backend's PaymentIntents and PaymentMethods. */
export class Backend {
  /**
   * @param stripe an SDK client for the backend
   * @param sinceSeconds PaymentIntents created before this Unix time belong to earlier runs and are ignored
   */
  constructor(
    readonly stripe: Stripe,
    readonly sinceSeconds: number,
  ) {}

  static connect(baseUrl: string, secretKey: string, sinceSeconds: number): Backend {
    return new Backend(stripeClientForUrl(baseUrl, secretKey), sinceSeconds);
  }

  private statelessProbe: Promise<boolean> | undefined;

  /**
   * Whether the backend keeps no state: it answers a PaymentIntent id that
   * was never created (stripe-mock answers every id with its one fixture),
   * where Stripe and the emulator answer 404. On such a backend a top-up of
   * another size than its fixture's cannot succeed, whatever the server does.
   */
  stateless(): Promise<boolean> {
    this.statelessProbe ??= this.find('pi_stripe402ConformanceNeverCreated').then((intent) => intent !== undefined);
    return this.statelessProbe;
  }

  /** Fails when the backend cannot be reached or refuses the key. */
  async ping(): Promise<void> {
    await this.stripe.paymentIntents.list({ limit: 1 });
  }

  /** The card fingerprint of a PaymentMethod, as the server reads it (CID-1). */
  async fingerprint(paymentMethodId: string): Promise<string | undefined> {
    const method = await this.stripe.paymentMethods.retrieve(paymentMethodId);
    return method.card?.fingerprint ?? undefined;
  }

  /** A PaymentIntent by id. */
  retrieve(id: string): Promise<Stripe.PaymentIntent> {
    return this.stripe.paymentIntents.retrieve(id);
  }

  /** A PaymentIntent by id, or undefined when the backend has none by that id (a target that reported a charge that never happened). */
  async find(id: string): Promise<Stripe.PaymentIntent | undefined> {
    try {
      return await this.stripe.paymentIntents.retrieve(id);
    } catch (error) {
      const { statusCode, code } = error as { statusCode?: number; code?: string };
      if (statusCode === 404 || code === 'resource_missing') return undefined;
      throw error;
    }
  }

  /** Every PaymentIntent of this run (created since the run started), newest first. */
  async recentPaymentIntents(): Promise<Stripe.PaymentIntent[]> {
    const found: Stripe.PaymentIntent[] = [];
    for await (const intent of this.stripe.paymentIntents.list({ limit: 100, created: { gte: this.sinceSeconds } })) {
      // Filter again: a backend may ignore the `created` filter.
      if (intent.created >= this.sinceSeconds) found.push(intent);
    }
    return found;
  }

  /** This run's PaymentIntents whose metadata names the client id. */
  async paymentIntentsFor(clientId: string): Promise<Stripe.PaymentIntent[]> {
    return (await this.recentPaymentIntents()).filter((intent) => intent.metadata?.[METADATA_CLIENT_ID] === clientId);
  }

  /** This run's succeeded PaymentIntents for a client id. */
  async succeededFor(clientId: string): Promise<Stripe.PaymentIntent[]> {
    return (await this.paymentIntentsFor(clientId)).filter((intent) => intent.status === 'succeeded');
  }
}
