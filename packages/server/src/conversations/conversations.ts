import type { ConversationUpdate } from '@strongroom/sdk/protocol'
import { sql } from 'kysely'
import { requireCustomer } from '../identity/customers.ts'
import { activeDeviceIds } from '../identity/devices.ts'
import type { ServerContext } from '../platform/context.ts'
import type { ConversationStatus } from '../platform/db/schema.ts'
import { type Principal, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { assignableStaff, workingStaff } from '../tenancy/staff.ts'
import { publishConversationUpdate, publishMemberAdded } from './bus-events.ts'

export interface ConversationMember {
  kind: 'device' | 'staff'
  id: string
  deliveredSeq: number
  readSeq: number
}

export interface Conversation {
  id: string
  /** Null for a public-channel conversation whose sender is not yet linked to a customer. */
  customerId: string | null
  assignedStaffId: string | null
  lastSeq: number
  /** When the last message arrived; null before the first. */
  lastMessageAt: string | null
  createdAt: string
  status: ConversationStatus
  members: ConversationMember[]
}

type Ctx = Pick<ServerContext, 'db' | 'bus'>

/**
 * Opens a conversation with a customer: the customer's active devices and the assigned staff member join it. Other
 * members are added later (another agent, a new device).
 */
export async function createConversation(
  ctx: Ctx,
  tenantId: string,
  input: {
    customerId: string
    assignedStaffId?: string | undefined
    deviceIds?: string[] | undefined
    encryptionRequired?: boolean | undefined
  },
): Promise<Conversation> {
  const created = await ctx.db.transaction().execute((trx) => createConversationIn(trx, tenantId, input))
  created.announce(ctx)
  return created.conversation
}

/**
 * createConversation inside the caller's transaction, for a conversation that must commit together with another
 * write (a pivot consuming its link). A null customer is a public-channel conversation whose sender is not known yet.
 * Call `announce` once the transaction has committed.
 */
export async function createConversationIn(
  trx: ServerContext['db'],
  tenantId: string,
  input: {
    customerId: string | null
    assignedStaffId?: string | undefined
    deviceIds?: string[] | undefined
    /** Marked secure: only MLS messages of its group are accepted, and none before the group exists. */
    encryptionRequired?: boolean | undefined
  },
): Promise<{ conversation: Conversation; announce: (ctx: Pick<ServerContext, 'bus'>) => void }> {
  const id = newId('cnv')
  const now = new Date()
  if (input.customerId !== null) await requireCustomer({ db: trx }, tenantId, input.customerId)
  if (input.assignedStaffId) await assignableStaff({ db: trx }, tenantId, input.assignedStaffId)
  const deviceIds =
    input.customerId === null ? [] : await activeDeviceIds({ db: trx }, tenantId, input.customerId, input.deviceIds)
  if (input.deviceIds && deviceIds.length !== new Set(input.deviceIds).size) {
    throw new Problem('request/not-found', 'a device is not an active device of this customer')
  }
  await trx
    .insertInto('conversations')
    .values({
      tenant_id: tenantId,
      id,
      customer_id: input.customerId,
      assigned_staff_id: input.assignedStaffId ?? null,
      last_seq: 0,
      created_at: now,
      encryption_required: input.encryptionRequired ?? false,
    })
    .execute()
  const members = [
    ...deviceIds.map((id) => ({ kind: 'device' as const, id })),
    ...(input.assignedStaffId ? [{ kind: 'staff' as const, id: input.assignedStaffId }] : []),
  ]
  if (members.length > 0) {
    await trx
      .insertInto('conversation_members')
      .values(
        members.map((m) => ({
          tenant_id: tenantId,
          conversation_id: id,
          member_kind: m.kind,
          member_id: m.id,
          delivered_seq: 0,
          read_seq: 0,
          joined_at: now,
        })),
      )
      .execute()
  }
  return {
    conversation: {
      id,
      customerId: input.customerId,
      assignedStaffId: input.assignedStaffId ?? null,
      lastSeq: 0,
      lastMessageAt: null,
      createdAt: now.toISOString(),
      status: 'open',
      members: members.map((m) => ({ ...m, deliveredSeq: 0, readSeq: 0 })),
    },
    announce: (ctx) => {
      for (const member of members) publishMemberAdded(ctx.bus, tenantId, id, member)
    },
  }
}

/** Adds a device of the conversation's customer, or a staff member of the tenant, to a conversation. */
export async function addMember(
  ctx: Ctx,
  tenantId: string,
  conversationId: string,
  member: { kind: 'device' | 'staff'; id: string },
): Promise<void> {
  const added = await ctx.db.transaction().execute((trx) => addMemberIn(trx, tenantId, conversationId, member))
  added.announce(ctx)
}

/** addMember inside the caller's transaction; call `announce` once it has committed. */
export async function addMemberIn(
  trx: ServerContext['db'],
  tenantId: string,
  conversationId: string,
  member: { kind: 'device' | 'staff'; id: string },
): Promise<{ added: boolean; announce: (ctx: Pick<ServerContext, 'bus'>) => void }> {
  const conversation = await trx
    .selectFrom('conversations')
    .select(['customer_id'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', conversationId)
    .executeTakeFirst()
  if (!conversation) throw new Problem('request/not-found', 'no such conversation')
  const customerId = conversation.customer_id
  if (member.kind === 'device') {
    const exists =
      customerId !== null && (await activeDeviceIds({ db: trx }, tenantId, customerId, [member.id])).length > 0
    if (!exists) throw new Problem('request/not-found', 'no such device for this conversation')
  } else {
    // A member who cannot work (deactivated, or left without a role by their groups) is not made one.
    await workingStaff({ db: trx }, tenantId, member.id, 'join conversations')
  }
  const inserted = await trx
    .insertInto('conversation_members')
    .values({
      tenant_id: tenantId,
      conversation_id: conversationId,
      member_kind: member.kind,
      member_id: member.id,
      delivered_seq: 0,
      read_seq: 0,
      joined_at: new Date(),
    })
    .onConflict((oc) => oc.columns(['conversation_id', 'member_kind', 'member_id']).doNothing())
    .executeTakeFirst()
  const added = (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n
  return {
    added,
    announce: (ctx) => {
      if (added) publishMemberAdded(ctx.bus, tenantId, conversationId, member)
    },
  }
}

/**
 * Names the customer of a conversation opened without one (an unidentified sender on a public channel). A
 * conversation that already has a customer keeps it: returns false.
 */
export async function linkConversationCustomer(
  db: ServerContext['db'],
  tenantId: string,
  conversationId: string,
  customerId: string,
): Promise<boolean> {
  await requireCustomer({ db }, tenantId, customerId)
  const updated = await db
    .updateTable('conversations')
    .set({ customer_id: customerId })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', conversationId)
    .where('customer_id', 'is', null)
    .executeTakeFirst()
  return (updated.numUpdatedRows ?? 0n) > 0n
}

/**
 * Whether the principal may see the conversation: members may; staff holding conversations:all may see every
 * conversation of their tenant. Another tenant's conversation is simply not found.
 */
export async function canAccessConversation(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
): Promise<boolean> {
  return (await accessibleConversationIds(ctx, principal, [conversationId])).has(conversationId)
}

/** Which of these conversations the principal may see, by the rule of `canAccessConversation`, in one query. */
export async function accessibleConversationIds(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationIds: readonly string[],
): Promise<Set<string>> {
  if (conversationIds.length === 0) return new Set()
  const member = principalMember(principal)
  if (principal.kind === 'staff' && principal.scopes.includes('conversations:all')) {
    const rows = await ctx.db
      .selectFrom('conversations')
      .select('id')
      .where('tenant_id', '=', principal.tenantId)
      .where('id', 'in', conversationIds)
      .execute()
    return new Set(rows.map((r) => r.id))
  }
  const rows = await ctx.db
    .selectFrom('conversation_members')
    .select('conversation_id')
    .where('tenant_id', '=', principal.tenantId)
    .where('conversation_id', 'in', conversationIds)
    .where('member_kind', '=', member.kind)
    .where('member_id', '=', member.id)
    .execute()
  return new Set(rows.map((r) => r.conversation_id))
}

export async function requireConversationAccess(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
): Promise<void> {
  if (!(await canAccessConversation(ctx, principal, conversationId))) {
    throw new Problem('request/not-found', 'no such conversation')
  }
}

export async function getConversation(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  conversationId: string,
): Promise<Conversation> {
  await requireConversationAccess(ctx, principal, conversationId)
  const [conversation] = await loadConversations(ctx, principal.tenantId, [conversationId])
  if (!conversation) throw new Problem('request/not-found', 'no such conversation')
  return conversation
}

/**
 * The conversations the principal is a member of, newest first, a page at a time; with `scope: 'all'`, every
 * conversation of the tenant, for staff holding conversations:all (a supervisor finding one to hand to an agent).
 */
export async function listConversations(
  ctx: Pick<ServerContext, 'db'>,
  principal: Principal,
  page: {
    limit?: number | undefined
    before?: string | undefined
    scope?: 'member' | 'all' | undefined
    status?: ConversationStatus | undefined
  } = {},
) {
  const { limit = 100, before, scope = 'member', status } = page
  if (scope === 'all' && (principal.kind !== 'staff' || !principal.scopes.includes('conversations:all'))) {
    throw new Problem('auth/forbidden', 'listing every conversation needs conversations:all')
  }
  const member = principalMember(principal)
  let query = ctx.db
    .selectFrom('conversations')
    .select('conversations.id')
    .where('conversations.tenant_id', '=', principal.tenantId)
    .$if(scope === 'member', (q) =>
      q.where(
        'conversations.id',
        'in',
        ctx.db
          .selectFrom('conversation_members')
          .select('conversation_id')
          .where('tenant_id', '=', principal.tenantId)
          .where('member_kind', '=', member.kind)
          .where('member_id', '=', member.id),
      ),
    )
  if (status !== undefined) query = query.where('conversations.status', '=', status)
  if (before !== undefined) {
    const cursor = await ctx.db
      .selectFrom('conversations')
      .select('created_at')
      .where('tenant_id', '=', principal.tenantId)
      .where('id', '=', before)
      .executeTakeFirst()
    if (!cursor) throw new Problem('request/invalid', 'before names no conversation')
    query = query.where((eb) =>
      eb.or([
        eb('conversations.created_at', '<', cursor.created_at),
        eb.and([eb('conversations.created_at', '=', cursor.created_at), eb('conversations.id', '<', before)]),
      ]),
    )
  }
  const rows = await query
    .orderBy('conversations.created_at', 'desc')
    .orderBy('conversations.id', 'desc')
    .limit(limit)
    .execute()
  return loadConversations(
    ctx,
    principal.tenantId,
    rows.map((r) => r.id),
  )
}

/**
 * Where conversations stand, for a list that groups them (the console's search): the conversations named, and every
 * conversation of the customers named, of the tenant.
 */
export async function conversationSummaries(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  of: { ids: readonly string[]; customerIds: readonly string[] },
): Promise<{ id: string; customerId: string | null; lastMessageAt: Date; status: ConversationStatus }[]> {
  if (of.ids.length === 0 && of.customerIds.length === 0) return []
  const rows = await ctx.db
    .selectFrom('conversations')
    .select(['id', 'customer_id', 'last_message_at', 'created_at', 'status'])
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([
        ...(of.ids.length > 0 ? [eb('id', 'in', of.ids)] : []),
        ...(of.customerIds.length > 0 ? [eb('customer_id', 'in', of.customerIds)] : []),
      ]),
    )
    .execute()
  return rows.map((r) => ({
    id: r.id,
    customerId: r.customer_id,
    lastMessageAt: new Date(r.last_message_at ?? r.created_at),
    status: r.status,
  }))
}

/** Every conversation with a customer, oldest first, whoever is a member (for a data subject export). */
export async function customerConversations(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  customerId: string,
): Promise<Conversation[]> {
  const rows = await ctx.db
    .selectFrom('conversations')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
  return loadConversations(
    ctx,
    tenantId,
    rows.map((r) => r.id),
  )
}

async function loadConversations(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  ids: string[],
): Promise<Conversation[]> {
  if (ids.length === 0) return []
  const [rows, members] = await Promise.all([
    ctx.db.selectFrom('conversations').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', ids).execute(),
    ctx.db
      .selectFrom('conversation_members')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('conversation_id', 'in', ids)
      .orderBy('joined_at')
      .execute(),
  ])
  const byId = new Map(
    rows.map((row) => [
      row.id,
      {
        id: row.id,
        customerId: row.customer_id,
        assignedStaffId: row.assigned_staff_id,
        lastSeq: Number(row.last_seq),
        lastMessageAt: row.last_message_at ? new Date(row.last_message_at).toISOString() : null,
        createdAt: new Date(row.created_at).toISOString(),
        status: row.status,
        members: [] as ConversationMember[],
      },
    ]),
  )
  for (const m of members) {
    byId.get(m.conversation_id)?.members.push({
      kind: m.member_kind,
      id: m.member_id,
      deliveredSeq: Number(m.delivered_seq),
      readSeq: Number(m.read_seq),
    })
  }
  return ids.flatMap((id) => byId.get(id) ?? [])
}

/** The last sequence number of each conversation named that exists, read a few thousand at a time. */
export async function lastSequences(
  ctx: Pick<ServerContext, 'db'>,
  conversationIds: string[],
): Promise<Map<string, number>> {
  const latest = new Map<string, number>()
  for (let i = 0; i < conversationIds.length; i += 5_000) {
    const rows = await ctx.db
      .selectFrom('conversations')
      .select(['id', 'last_seq'])
      .where('id', 'in', conversationIds.slice(i, i + 5_000))
      .execute()
    for (const row of rows) latest.set(row.id, Number(row.last_seq))
  }
  return latest
}

/** Where each of a member's conversations stands: its last sequence number and the member's delivered marker. */
export async function memberConversationCursors(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  member: { kind: 'device' | 'staff'; id: string },
  conversationId?: string,
): Promise<{ conversationId: string; lastSeq: number; deliveredSeq: number }[]> {
  let query = ctx.db
    .selectFrom('conversation_members')
    .innerJoin('conversations', 'conversations.id', 'conversation_members.conversation_id')
    .select(['conversations.id', 'conversations.last_seq', 'conversation_members.delivered_seq'])
    .where('conversation_members.tenant_id', '=', tenantId)
    .where('conversation_members.member_kind', '=', member.kind)
    .where('conversation_members.member_id', '=', member.id)
  if (conversationId) query = query.where('conversations.id', '=', conversationId)
  const rows = await query.execute()
  return rows.map((r) => ({ conversationId: r.id, lastSeq: Number(r.last_seq), deliveredSeq: Number(r.delivered_seq) }))
}

/**
 * Moves a member's delivered and read markers forward (never back), and never past the conversation's last message:
 * a marker claims what the member received or read, which cannot be a message not yet sent. A move is told to the
 * conversation's open streams on every node (the other members, and this member's other devices or console tabs).
 */
export async function updateMarkers(
  ctx: Pick<ServerContext, 'db' | 'bus'>,
  tenantId: string,
  conversationId: string,
  member: { kind: 'device' | 'staff'; id: string },
  markers: { deliveredSeq?: number | undefined; readSeq?: number | undefined },
): Promise<void> {
  const lastSeq = sql`(select last_seq from conversations c where c.tenant_id = ${tenantId} and c.id = ${conversationId})`
  const read = sql<number>`least(${markers.readSeq ?? 0}, ${lastSeq})`
  const delivered = sql<number>`least(${Math.max(markers.deliveredSeq ?? 0, markers.readSeq ?? 0)}, ${lastSeq})`
  const moved = await ctx.db
    .updateTable('conversation_members')
    .set({ delivered_seq: sql`greatest(delivered_seq, ${delivered})`, read_seq: sql`greatest(read_seq, ${read})` })
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where('member_kind', '=', member.kind)
    .where('member_id', '=', member.id)
    .where((eb) => eb.or([eb('delivered_seq', '<', delivered), eb('read_seq', '<', read)]))
    .returning(['delivered_seq', 'read_seq'])
    .executeTakeFirst()
  if (!moved) return
  const update = markersUpdate(member, moved)
  publishConversationUpdate(ctx.bus, { tenantId, conversationId, update })
}

export interface DeliveredMarker {
  tenantId: string
  conversationId: string
  member: { kind: 'device' | 'staff'; id: string }
  seq: number
}

/** A member's markers where a move left them. */
export interface MovedMarkers {
  tenantId: string
  conversationId: string
  update: Extract<ConversationUpdate, { kind: 'markers' }>
}

/**
 * Moves many members' delivered markers forward in one statement (what the stream's acknowledgements say), never past
 * a conversation's last message (as `updateMarkers`); one entry a member and conversation. Gives the markers that
 * moved, for the caller to tell.
 */
export async function advanceDeliveredMarkers(
  ctx: Pick<ServerContext, 'db'>,
  markers: DeliveredMarker[],
): Promise<MovedMarkers[]> {
  const { rows } = await sql<{
    tenant_id: string
    conversation_id: string
    member_kind: 'device' | 'staff'
    member_id: string
    delivered_seq: string | number
    read_seq: string | number
  }>`
    update conversation_members m set delivered_seq = least(v.seq, c.last_seq)
    from unnest(${markers.map((k) => k.tenantId)}::text[], ${markers.map((k) => k.conversationId)}::text[],
                ${markers.map((k) => k.member.kind)}::text[], ${markers.map((k) => k.member.id)}::text[],
                ${markers.map((k) => k.seq)}::bigint[]) as v (tenant_id, conversation_id, member_kind, member_id, seq),
         conversations c
    where c.tenant_id = v.tenant_id and c.id = v.conversation_id
      and m.tenant_id = v.tenant_id and m.conversation_id = v.conversation_id
      and m.member_kind = v.member_kind and m.member_id = v.member_id
      and m.delivered_seq < least(v.seq, c.last_seq)
    returning m.tenant_id, m.conversation_id, m.member_kind, m.member_id, m.delivered_seq, m.read_seq`.execute(ctx.db)
  return rows.map((row) => ({
    tenantId: row.tenant_id,
    conversationId: row.conversation_id,
    update: markersUpdate({ kind: row.member_kind, id: row.member_id }, row),
  }))
}

const markersUpdate = (
  member: { kind: 'device' | 'staff'; id: string },
  stored: { delivered_seq: string | number | bigint; read_seq: string | number | bigint },
): Extract<ConversationUpdate, { kind: 'markers' }> => ({
  kind: 'markers',
  member,
  deliveredSeq: Number(stored.delivered_seq),
  readSeq: Number(stored.read_seq),
})

/** Takes a member out of every conversation of the tenant (a revoked device); returns the conversations it left. */
export async function removeMemberEverywhere(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  member: { kind: 'device' | 'staff'; id: string },
): Promise<string[]> {
  const rows = await ctx.db
    .deleteFrom('conversation_members')
    .where('tenant_id', '=', tenantId)
    .where('member_kind', '=', member.kind)
    .where('member_id', '=', member.id)
    .returning('conversation_id')
    .execute()
  return rows.map((r) => r.conversation_id)
}

/** Throws not-found unless the conversation is the customer's, in the tenant. */
export async function requireCustomerConversation(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  customerId: string,
): Promise<void> {
  const row = await ctx.db
    .selectFrom('conversations')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', conversationId)
    .where('customer_id', '=', customerId)
    .executeTakeFirst()
  if (!row) throw new Problem('request/not-found', 'no such conversation of this customer')
}

/**
 * The customer a conversation of the tenant is with: null for a public conversation not linked to a customer yet,
 * undefined when there is no such conversation.
 */
export async function conversationCustomer(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
): Promise<string | null | undefined> {
  const row = await ctx.db
    .selectFrom('conversations')
    .select('customer_id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', conversationId)
    .executeTakeFirst()
  return row?.customer_id
}

/** Whether a device or staff member is a member of the conversation (membership itself, not staff-wide access). */
export async function isConversationMember(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  member: { kind: 'device' | 'staff'; id: string },
): Promise<boolean> {
  const row = await ctx.db
    .selectFrom('conversation_members')
    .select('conversation_id')
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where('member_kind', '=', member.kind)
    .where('member_id', '=', member.id)
    .executeTakeFirst()
  return row !== undefined
}

/** The staff member a conversation is assigned to, if any (the agent who follows a customer from one to the next). */
export async function assignedStaffOf(
  db: ServerContext['db'],
  tenantId: string,
  conversationId: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('conversations')
    .select('assigned_staff_id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', conversationId)
    .executeTakeFirst()
  return row?.assigned_staff_id ?? undefined
}
