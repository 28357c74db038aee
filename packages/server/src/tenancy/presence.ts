import { randomUUID } from 'node:crypto'
import type { StaffPresence } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { Config } from '../platform/config.ts'
import type { ServerContext } from '../platform/context.ts'
import { actorOf, type Principal } from '../platform/http/principal.ts'

// Staff presence, for supervisors handing conversations over: available (a console connected), away (connected, and
// they said so) or offline (no console connected). Derived from the stream connections every node records, so it
// holds across nodes. Each node refreshes its rows every STRONGROOM_PRESENCE_REFRESH_MS; rows three refreshes old are
// a dead node's, read as offline at once and deleted by whichever node sweeps first, which tells the supervisors.

/** Told on the bus when a staff member's presence may have changed: the streams wake the tenant's supervisors. */
export const PRESENCE_SUBJECT_PREFIX = 'sr.presence.'

export interface PresenceChangedEvent {
  tenantId: string
  staffId: string
}

/** After how long without a refresh a node's connections count as gone: three refreshes missed. */
const presenceGoneMs = (config: Pick<Config, 'presenceRefreshMs'>) => 3 * config.presenceRefreshMs

/** Gone connections are looked for three times a refresh: a dead node's staff are told offline within 3⅓ refreshes. */
const sweepMs = (config: Pick<Config, 'presenceRefreshMs'>) => Math.ceil(config.presenceRefreshMs / 3)

const encoder = new TextEncoder()

function publishPresenceChanged(ctx: Pick<ServerContext, 'bus'>, tenantId: string, staffId: string): void {
  const event: PresenceChangedEvent = { tenantId, staffId }
  ctx.bus.publish(PRESENCE_SUBJECT_PREFIX + tenantId, encoder.encode(JSON.stringify(event)))
}

const keyOf = (tenantId: string, staffId: string) => `${tenantId}\u0000${staffId}`

/**
 * One node's console connections, counted per staff member: the first opened here records a row for this node, the
 * last closed deletes it, and rows are refreshed while open; a row lost meanwhile (swept while the node could not write
 * for three refreshes) is written again, and told. Writes are best-effort: presence is a hint for people, and a failed
 * write is logged, never a reason to refuse a stream. The node also sweeps every node's gone rows.
 */
export class StaffConnections {
  readonly #ctx: Pick<ServerContext, 'db' | 'bus' | 'log' | 'config'>
  readonly #nodeId = randomUUID()
  readonly #open = new Map<string, { tenantId: string; staffId: string; count: number }>()
  readonly #timers: NodeJS.Timeout[]

  constructor(ctx: Pick<ServerContext, 'db' | 'bus' | 'log' | 'config'>) {
    this.#ctx = ctx
    this.#timers = [
      setInterval(() => void this.#refresh(), ctx.config.presenceRefreshMs),
      setInterval(() => void forgetGoneConnections(ctx), sweepMs(ctx.config)),
    ]
    for (const timer of this.#timers) timer.unref()
  }

  connected(tenantId: string, staffId: string): void {
    const key = keyOf(tenantId, staffId)
    const open = this.#open.get(key)
    if (open) {
      open.count++
      return
    }
    this.#open.set(key, { tenantId, staffId, count: 1 })
    void this.#write(tenantId, staffId, true)
  }

  disconnected(tenantId: string, staffId: string): void {
    const key = keyOf(tenantId, staffId)
    const open = this.#open.get(key)
    if (!open || --open.count > 0) return
    this.#open.delete(key)
    void this.#write(tenantId, staffId, false)
  }

  /** The node stops: its connections are gone. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
    const open = [...this.#open.values()]
    this.#open.clear()
    await Promise.all(open.map(({ tenantId, staffId }) => this.#write(tenantId, staffId, false)))
  }

  async #write(tenantId: string, staffId: string, connected: boolean): Promise<void> {
    try {
      const db = this.#ctx.db
      if (connected) {
        await db
          .insertInto('staff_connections')
          .values({ tenant_id: tenantId, staff_id: staffId, node_id: this.#nodeId, seen_at: new Date() })
          .onConflict((oc) => oc.columns(['tenant_id', 'staff_id', 'node_id']).doUpdateSet({ seen_at: new Date() }))
          .execute()
      } else {
        await db
          .deleteFrom('staff_connections')
          .where('tenant_id', '=', tenantId)
          .where('staff_id', '=', staffId)
          .where('node_id', '=', this.#nodeId)
          .execute()
      }
      publishPresenceChanged(this.#ctx, tenantId, staffId)
    } catch (error) {
      this.#ctx.log.warn({ err: error }, 'recording staff presence failed')
    }
  }

  async #refresh(): Promise<void> {
    if (this.#open.size === 0) return
    const now = new Date()
    try {
      const kept = await this.#ctx.db
        .updateTable('staff_connections')
        .set({ seen_at: now })
        .where('node_id', '=', this.#nodeId)
        .returning(['tenant_id', 'staff_id'])
        .execute()
      const present = new Set(kept.map((r) => keyOf(r.tenant_id, r.staff_id)))
      // Swept as gone while this node could not write: written again, and the supervisors told they are back.
      const lost = [...this.#open.values()].filter((o) => !present.has(keyOf(o.tenantId, o.staffId)))
      if (lost.length === 0) return
      await this.#ctx.db
        .insertInto('staff_connections')
        .values(lost.map((o) => ({ tenant_id: o.tenantId, staff_id: o.staffId, node_id: this.#nodeId, seen_at: now })))
        .onConflict((oc) => oc.columns(['tenant_id', 'staff_id', 'node_id']).doUpdateSet({ seen_at: now }))
        .execute()
      for (const o of lost) publishPresenceChanged(this.#ctx, o.tenantId, o.staffId)
    } catch (error) {
      this.#ctx.log.warn({ err: error }, 'refreshing staff presence failed')
    }
  }
}

/**
 * Forgets the connection rows of nodes that stopped refreshing them (a crash, a lost database) and tells the tenants'
 * supervisors on every node. Every node runs it; each row is deleted, and told, by one of them only.
 */
export async function forgetGoneConnections(ctx: Pick<ServerContext, 'db' | 'bus' | 'log' | 'config'>): Promise<void> {
  try {
    const gone = await ctx.db
      .deleteFrom('staff_connections')
      .where('seen_at', '<', new Date(Date.now() - presenceGoneMs(ctx.config)))
      .returning(['tenant_id', 'staff_id'])
      .execute()
    const told = new Set<string>()
    for (const { tenant_id, staff_id } of gone) {
      if (told.has(keyOf(tenant_id, staff_id))) continue
      told.add(keyOf(tenant_id, staff_id))
      publishPresenceChanged(ctx, tenant_id, staff_id)
    }
  } catch (error) {
    ctx.log.warn({ err: error }, 'sweeping gone staff connections failed')
  }
}

/** The presence of every staff member of the tenant who can work: active, and holding a role. */
export async function listPresence(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  tenantId: string,
): Promise<StaffPresence[]> {
  const since = new Date(Date.now() - presenceGoneMs(ctx.config))
  const rows = await ctx.db
    .selectFrom('staff')
    .select((eb) => [
      'staff.id',
      eb
        .exists(
          eb
            .selectFrom('staff_connections')
            .select('staff_connections.node_id')
            .whereRef('staff_connections.tenant_id', '=', 'staff.tenant_id')
            .whereRef('staff_connections.staff_id', '=', 'staff.id')
            .where('staff_connections.seen_at', '>', since),
        )
        .as('connected'),
      eb
        .exists(
          eb
            .selectFrom('staff_away')
            .select('staff_away.since')
            .whereRef('staff_away.tenant_id', '=', 'staff.tenant_id')
            .whereRef('staff_away.staff_id', '=', 'staff.id'),
        )
        .as('away'),
    ])
    .where('staff.tenant_id', '=', tenantId)
    .where('staff.deactivated_at', 'is', null)
    .where('staff.deleted_at', 'is', null)
    .where('staff.roleless_at', 'is', null)
    .orderBy('staff.id')
    .execute()
  return rows.map((r) => ({ staffId: r.id, presence: !r.connected ? 'offline' : r.away ? 'away' : 'available' }))
}

/** A staff member says they are away (or back): kept until they say otherwise, audited, told to supervisors. */
export async function setAway(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  principal: Extract<Principal, { kind: 'staff' }>,
  away: boolean,
): Promise<void> {
  const { tenantId, staffId } = principal
  await ctx.db.transaction().execute(async (trx) => {
    const changed = away
      ? await trx
          .insertInto('staff_away')
          .values({ tenant_id: tenantId, staff_id: staffId, since: new Date() })
          .onConflict((oc) => oc.columns(['tenant_id', 'staff_id']).doNothing())
          .executeTakeFirst()
          .then((r) => (r.numInsertedOrUpdatedRows ?? 0n) > 0n)
      : await trx
          .deleteFrom('staff_away')
          .where('tenant_id', '=', tenantId)
          .where('staff_id', '=', staffId)
          .executeTakeFirst()
          .then((r) => r.numDeletedRows > 0n)
    if (!changed) return
    await recordAudit(trx, {
      tenantId,
      actor: actorOf(principal),
      action: away ? 'staff.presence.away' : 'staff.presence.back',
      target: { kind: 'staff', id: staffId },
      outcome: 'success',
    })
  })
  publishPresenceChanged(ctx, tenantId, staffId)
}
