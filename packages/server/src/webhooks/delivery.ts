import type { ServerContext } from '../platform/context.ts'
import { signCompactJws } from '../platform/keyring/jws.ts'
import type { SigningKey, TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import { startPeriodicTask } from '../platform/periodic-task.ts'

const POLL_MS = 500
const BATCH = 20
const TIMEOUT_MS = 5000
const MAX_ATTEMPTS = 10
const MAX_BACKOFF_MS = 3_600_000
const LEASE_MS = 60_000

/**
 * The body's signature, as a JWS with a detached payload (RFC 7515 Appendix F): ES256 with the bank's receipt key, so a bank
 * verifies webhooks with the same JWKS as receipts and holds no shared secret.
 */
export async function signWebhookBody(key: SigningKey, body: Uint8Array): Promise<string> {
  const [header, , signature] = signCompactJws(key, { b64: true }, body).split('.')
  return `${header}..${signature}`
}

/**
 * Delivers queued webhooks: due deliveries are claimed with SKIP LOCKED and a lease (so nodes share the work without
 * sending one twice at once), posted with their signature, and on failure retried with exponential backoff up to
 * ten attempts.
 */
export function startWebhookDelivery(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, keys: TenantSigningKeys) {
  return startPeriodicTask({
    name: 'webhook delivery',
    intervalMs: POLL_MS,
    pass: () => deliverDue(ctx, keys),
    log: ctx.log,
  })
}

async function deliverDue(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>, keys: TenantSigningKeys): Promise<void> {
  // Claim a batch with a lease: no transaction stays open across HTTP calls, and a node that dies mid-way leaves its
  // deliveries to be retried when the lease runs out.
  const due = await ctx.db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', new Date())
      .orderBy('next_attempt_at')
      .limit(BATCH)
      .forUpdate()
      .skipLocked()
      .execute()
    if (rows.length > 0) {
      await trx
        .updateTable('webhook_deliveries')
        .set({ next_attempt_at: new Date(Date.now() + LEASE_MS) })
        .where(
          'id',
          'in',
          rows.map((r) => r.id),
        )
        .execute()
    }
    return rows
  })
  for (const delivery of due) {
    const body = Buffer.from(delivery.body)
    let error: string | undefined
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'strongroom-event-id': delivery.id,
          'strongroom-signature': await signWebhookBody(await keys.for(delivery.tenant_id), body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      if (response.status < 200 || response.status > 299) error = `HTTP ${response.status}`
      await response.body?.cancel()
    } catch (failure) {
      error = (failure as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed'
    }
    const attempts = delivery.attempts + 1
    const backoff = Math.min(ctx.config.webhookRetryBaseMs * 2 ** (attempts - 1), MAX_BACKOFF_MS)
    await ctx.db
      .updateTable('webhook_deliveries')
      .set(
        error === undefined
          ? { status: 'delivered', attempts, delivered_at: new Date(), last_error: null }
          : {
              status: attempts >= MAX_ATTEMPTS ? 'failed' : 'pending',
              attempts,
              last_error: error,
              next_attempt_at: new Date(Date.now() + backoff),
            },
      )
      .where('id', '=', delivery.id)
      .execute()
    if (error !== undefined) ctx.log.warn({ webhookId: delivery.id, attempts, error }, 'webhook not delivered')
  }
}
