import { createHash, timingSafeEqual } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sql, type Transaction } from 'kysely'
import type { Bus } from '../platform/bus/bus.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Db } from '../platform/db/database.ts'
import type { Database } from '../platform/db/schema.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { principalOf } from '../platform/http/request.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'

/** How long a key is remembered: longer than any client goes on retrying one request. */
export const IDEMPOTENCY_KEY_HOURS = 24

/**
 * The `Idempotency-Key` request header (IETF draft-ietf-httpapi-idempotency-key-header): a Structured Field string
 * (`"…"`, as the draft writes it) or the bare value, 1–255 printable characters without quotes or backslashes.
 */
export const IdempotencyKeyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      pattern: '^(?:"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,255}"|[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,255})$',
      description:
        'Makes a retried create safe: the same key with the same request within 24 hours replays the first response; ' +
        'with another request it is refused (422)',
    }),
  ),
})

const field = (principal: string, key: string) => ({
  table: 'idempotency_keys',
  column: 'response',
  rowId: `${principal} ${key}`,
})

/** The stored responses, sealed with the tenant's data key (they hold what the create returned: names, numbers). */
export const idempotencyEncryptedColumns: EncryptedColumn[] = [
  {
    table: 'idempotency_keys',
    column: 'response',
    key: ['principal', 'key'],
    field: (row) => field(row.principal as string, row.key as string),
  },
]

/**
 * How long a retry waits for the first attempt with its key to finish (and then gets its response) before it is
 * answered 409 `request/idempotency-key-in-progress`: most creates take milliseconds, and a retry that arrives while
 * the first still runs is usually the same client having given up on a slow node.
 */
export const IDEMPOTENCY_CLAIM_WAIT_MS = 2000
/**
 * The lease on a claimed key: a transaction holding a claim that stays idle this long (its node hung, SIGSTOP, or
 * lost the network without a reset) is ended by PostgreSQL (idle_in_transaction_session_timeout), which rolls back
 * the create and frees the key for a retry elsewhere, instead of the retry waiting on its row lock for the
 * statement timeout.
 */
export const IDEMPOTENCY_LEASE_MS = 5000
/** What a 409 in-progress answer tells the client to wait before trying again (seconds). */
const IN_PROGRESS_RETRY_AFTER_S = 2

/** One create's claim: whose key it is and the request it was first used for. */
export interface IdempotencyClaim {
  tenantId: string
  /** `<actor kind>:<actor id>`: keys are per principal. */
  owner: string
  key: string
  /** SHA-256 of method, URL and body. */
  fingerprint: Buffer
}

/** A create's answer: its own, or the first attempt's, replayed. */
export interface IdempotentOutcome {
  status: number
  body: unknown
  replayed: boolean
}

/**
 * A create that a client may send twice (it timed out on one node and failed over to another). Without an
 * `Idempotency-Key` header it simply runs. With one, the key is claimed, the create runs and its response is stored
 * in one transaction (`runIdempotently`), so that nodes agree. Answers as the create did, or with the first
 * attempt's response again (`Idempotency-Replayed: true`), 422 for the key used with another request, or 409 with
 * Retry-After while the first attempt is still under way.
 */
export async function idempotent<T>(
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  create: (ctx: ServerContext) => Promise<T>,
): Promise<FastifyReply> {
  // A string when present: the route's header schema (IdempotencyKeyHeaders) has checked it.
  const header = request.headers['idempotency-key'] as string | undefined
  if (header === undefined) return reply.status(status).send(await create(ctx))
  const principal = principalOf(request)
  const actor = actorOf(principal)
  const claim: IdempotencyClaim = {
    tenantId: principal.tenantId,
    owner: `${actor.kind}:${actor.id}`,
    key: header.replace(/^"(.*)"$/, '$1'),
    fingerprint: createHash('sha256')
      .update(`${request.method} ${request.url}\n`)
      .update(JSON.stringify(request.body ?? null))
      .digest(),
  }
  try {
    const outcome = await runIdempotently(ctx, claim, status, create)
    if (outcome.replayed) reply.header('idempotency-replayed', 'true')
    return reply.status(outcome.status).send(outcome.body)
  } catch (error) {
    if (error instanceof Problem && error.kind === 'request/idempotency-key-in-progress') {
      reply.header('retry-after', String(IN_PROGRESS_RETRY_AFTER_S))
    }
    throw error
  }
}

/**
 * Claims the key and runs the create in one transaction, storing its response sealed; or answers with the stored
 * response of the first attempt. A second attempt with the same key waits for the first to commit (or roll back,
 * freeing the key) for at most IDEMPOTENCY_CLAIM_WAIT_MS, and is refused with `request/idempotency-key-in-progress`
 * after that; the first attempt's transaction holds its claim under a lease (IDEMPOTENCY_LEASE_MS of idleness), so a
 * hung node cannot keep the key for longer. A create that fails stores nothing, and the key can be used again.
 *
 * The create gets a context whose database joins that transaction (its own `transaction()` runs inside it) and whose
 * bus publications wait for the commit, so no other node is woken for a row it cannot read yet.
 */
export async function runIdempotently<T>(
  ctx: ServerContext,
  claim: IdempotencyClaim,
  status: number,
  create: (ctx: ServerContext) => Promise<T>,
): Promise<IdempotentOutcome> {
  const { tenantId, owner, key, fingerprint } = claim
  const queued: [string, Uint8Array][] = []
  await ctx.keyring.preload(tenantId)
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    await sql`select set_config('lock_timeout', ${`${IDEMPOTENCY_CLAIM_WAIT_MS}ms`}, true),
      set_config('idle_in_transaction_session_timeout', ${`${IDEMPOTENCY_LEASE_MS}ms`}, true)`.execute(trx)
    const expiresAt = new Date(Date.now() + IDEMPOTENCY_KEY_HOURS * 3600_000)
    // A concurrent request with the same key waits here until the first commits (or rolls back, freeing the key),
    // at most the claim wait; an expired row is taken over as if it were not there.
    const claimed = await trx
      .insertInto('idempotency_keys')
      .values({
        tenant_id: tenantId,
        principal: owner,
        key,
        fingerprint,
        status: 0,
        response: Buffer.alloc(0),
        expires_at: expiresAt,
      })
      .onConflict((oc) =>
        oc
          .columns(['tenant_id', 'principal', 'key'])
          .doUpdateSet({ fingerprint, status: 0, response: Buffer.alloc(0), expires_at: expiresAt })
          .where('idempotency_keys.expires_at', '<', sql<Date>`now()`),
      )
      .returning('key')
      .executeTakeFirst()
      .catch((error: unknown) => {
        // lock_not_available: the first attempt still holds the key.
        if ((error as { code?: string }).code === '55P03') throw new Problem('request/idempotency-key-in-progress')
        throw error
      })
    // The create's own statements wait on locks as long as they normally would.
    await sql`set local lock_timeout to default`.execute(trx)
    if (!claimed) {
      const first = await trx
        .selectFrom('idempotency_keys')
        .select(['fingerprint', 'status', 'response'])
        .where('tenant_id', '=', tenantId)
        .where('principal', '=', owner)
        .where('key', '=', key)
        .executeTakeFirstOrThrow()
      const stored = Buffer.from(first.fingerprint)
      if (stored.length !== fingerprint.length || !timingSafeEqual(stored, fingerprint)) {
        throw new Problem('request/idempotency-key-reused')
      }
      return { status: first.status, body: undefined, sealed: first.response }
    }
    const scoped: ServerContext = { ...ctx, db: joined(trx), bus: afterCommit(ctx.bus, queued) }
    const body = await create(scoped)
    await trx
      .updateTable('idempotency_keys')
      .set({ status, response: await ctx.keyring.encrypt(tenantId, field(owner, key), JSON.stringify(body)) })
      .where('tenant_id', '=', tenantId)
      .where('principal', '=', owner)
      .where('key', '=', key)
      .execute()
    return { status, body: body as unknown, sealed: undefined }
  })
  for (const [subject, payload] of queued) ctx.bus.publish(subject, payload)
  if (!outcome.sealed) return { status: outcome.status, body: outcome.body, replayed: false }
  // Opened after the transaction: the response may be sealed with an older data key than the one preloaded.
  const body = await ctx.keyring.decryptText(tenantId, field(owner, key), outcome.sealed)
  return { status: outcome.status, body: JSON.parse(body), replayed: true }
}

/** The transaction as a database handle whose `transaction()` runs its callback inside it (no nesting in Kysely). */
function joined(trx: Transaction<Database>): Db {
  const inside = {
    execute: <R>(run: (t: Transaction<Database>) => Promise<R>) => run(trx),
    setIsolationLevel: () => inside,
    setAccessMode: () => inside,
  }
  return new Proxy(trx, {
    get(target, property) {
      if (property === 'transaction') return () => inside
      const value: unknown = Reflect.get(target, property, target)
      // Kysely keeps its state in private fields: its methods must run on the transaction itself.
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as unknown as Db
}

/** The bus, with publications held back until the transaction commits. */
function afterCommit(bus: Bus, queued: [string, Uint8Array][]): Bus {
  return {
    kind: bus.kind,
    publish: (subject, payload) => queued.push([subject, payload]),
    subscribe: (subject, handler) => bus.subscribe(subject, handler),
    onDisconnect: (handler) => bus.onDisconnect(handler),
    onReconnect: (handler) => bus.onReconnect(handler),
    connected: () => bus.connected(),
    close: () => bus.close(),
  }
}

/** Forgets keys whose time is up. */
export async function purgeExpiredIdempotencyKeys(ctx: { db: Db }): Promise<void> {
  await ctx.db.deleteFrom('idempotency_keys').where('expires_at', '<', new Date()).execute()
}
