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
 * A create that a client may send twice (it timed out on one node and failed over to another). Without an
 * `Idempotency-Key` header it simply runs. With one, the key is claimed, the create runs and its response is stored
 * in one transaction, so that nodes agree: a second request with the same key and the same method, URL and body waits
 * for the first to commit and gets its response again (`Idempotency-Replayed: true`); with another request it gets
 * 422. A create that fails stores nothing, and the key can be used again.
 *
 * The create gets a context whose database joins that transaction (its own `transaction()` runs inside it) and whose
 * bus publications wait for the commit, so no other node is woken for a row it cannot read yet.
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
  const key = header.replace(/^"(.*)"$/, '$1')
  const principal = principalOf(request)
  const actor = actorOf(principal)
  const owner = `${actor.kind}:${actor.id}`
  const tenantId = principal.tenantId
  const fingerprint = createHash('sha256')
    .update(`${request.method} ${request.url}\n`)
    .update(JSON.stringify(request.body ?? null))
    .digest()
  const queued: [string, Uint8Array][] = []
  await ctx.keyring.preload(tenantId)
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    const expiresAt = new Date(Date.now() + IDEMPOTENCY_KEY_HOURS * 3600_000)
    // A concurrent request with the same key waits here until the first commits (or rolls back, freeing the key);
    // an expired row is taken over as if it were not there.
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
  if (!outcome.sealed) return reply.status(outcome.status).send(outcome.body)
  // Opened after the transaction: the response may be sealed with an older data key than the one preloaded.
  const body = await ctx.keyring.decryptText(tenantId, field(owner, key), outcome.sealed)
  return reply.status(outcome.status).header('idempotency-replayed', 'true').send(JSON.parse(body))
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
