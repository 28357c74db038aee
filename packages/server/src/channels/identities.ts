import { sql } from 'kysely'
import { createConversationIn, linkConversationCustomer } from '../conversations/conversations.ts'
import { findCustomerIdByPhoneNumber } from '../identity/customers.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import type { ChannelConfig } from './channel-config.ts'
import type { ConnectorKind } from './connectors/connector.ts'

/**
 * A customer's address on a public channel (a phone number, a WhatsApp id, a page-scoped Messenger id) and the one
 * public conversation it has with the tenant. The address is encrypted at rest and found through a blind index.
 */
export interface ChannelIdentity {
  tenantId: string
  id: string
  connector: ConnectorKind
  customerId: string | null
  conversationId: string
  secureConversationId: string | null
  lastInboundAt: Date | null
}

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'bus'>

export const ADDRESS_INDEX = 'channel_identities.address'
const addressField = (id: string) => ({ table: 'channel_identities', column: 'address', rowId: id })

/** The public-channel addresses, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const channelIdentityEncryptedColumns: EncryptedColumn[] = [
  { table: 'channel_identities', column: 'address', key: ['id'], field: (row) => addressField(row.id as string) },
]

/**
 * The phone number in E.164 behind an SMS (Twilio, SMPP), RCS (the carrier gives RBM the number) or WhatsApp address;
 * Messenger ids are not phone numbers.
 */
export function phoneNumberOf(connector: ConnectorKind, address: string): string | undefined {
  if (connector === 'twilio' || connector === 'smpp' || connector === 'rbm')
    return /^\+[1-9]\d{4,14}$/.test(address) ? address : undefined
  if (connector === 'whatsapp') return /^[1-9]\d{4,14}$/.test(address) ? `+${address}` : undefined
  return undefined
}

/** The address a customer's phone number (E.164) has on a channel; none on Messenger, whose ids are not numbers. */
export function addressForPhoneNumber(connector: ConnectorKind, phoneNumber: string): string | undefined {
  if (connector === 'messenger') return undefined
  return connector === 'whatsapp' ? phoneNumber.slice(1) : phoneNumber
}

type Row = {
  tenant_id: string
  id: string
  connector: ConnectorKind
  customer_id: string | null
  conversation_id: string
  secure_conversation_id: string | null
  last_inbound_at: Date | string | null
}

function toIdentity(row: Row): ChannelIdentity {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    connector: row.connector,
    customerId: row.customer_id,
    conversationId: row.conversation_id,
    secureConversationId: row.secure_conversation_id,
    lastInboundAt: row.last_inbound_at === null ? null : new Date(row.last_inbound_at),
  }
}

const COLUMNS = [
  'tenant_id',
  'id',
  'connector',
  'customer_id',
  'conversation_id',
  'secure_conversation_id',
  'last_inbound_at',
] as const

/**
 * The sender's identity on this channel, made on first contact with its public conversation: the customer whose
 * phone number it is (blind index) when exactly one is, else none — an unidentified conversation that an agent links
 * to a customer. The channel's agent, if it has one, joins the conversation. Two first messages racing make one.
 */
export async function identityForSender(
  ctx: Ctx,
  channel: ChannelConfig,
  address: string,
  /** Who the conversation is assigned to when it is made: the channel's agent, or the agent writing first. */
  assignedStaffId = channel.settings.agentId,
): Promise<{ identity: ChannelIdentity; created: boolean }> {
  const { tenantId, connector } = channel
  const find = () => findIdentityByAddress(ctx, channel, address)
  const existing = await find()
  if (existing) return { identity: existing, created: false }
  const index = await ctx.keyring.blindIndex(tenantId, ADDRESS_INDEX, `${connector}:${address}`)
  const phone = phoneNumberOf(connector, address)
  const customerId = phone === undefined ? undefined : await findCustomerIdByPhoneNumber(ctx, tenantId, phone)
  const id = newId('chi')
  try {
    const created = await ctx.db.transaction().execute(async (trx) => {
      const { conversation, announce } = await createConversationIn(trx, tenantId, {
        customerId: customerId ?? null,
        assignedStaffId,
      })
      await trx
        .insertInto('channel_identities')
        .values({
          tenant_id: tenantId,
          id,
          connector,
          address_index: index,
          address: await ctx.keyring.encrypt(tenantId, addressField(id), address),
          customer_id: customerId ?? null,
          conversation_id: conversation.id,
          secure_conversation_id: null,
          last_inbound_at: null,
          created_at: new Date(),
        })
        .execute()
      return { conversation, announce }
    })
    created.announce(ctx)
  } catch (error) {
    // Another node made it first: use theirs.
    if ((error as { code?: string }).code !== '23505') throw error
  }
  const identity = await find()
  if (!identity) throw new Problem('server/internal')
  return { identity, created: identity.id === id }
}

/** The identity an address has on this channel, if it ever wrote or was written to. */
export async function findIdentityByAddress(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  channel: Pick<ChannelConfig, 'tenantId' | 'connector'>,
  address: string,
): Promise<ChannelIdentity | undefined> {
  const index = await ctx.keyring.blindIndex(channel.tenantId, ADDRESS_INDEX, `${channel.connector}:${address}`)
  const row = await ctx.db
    .selectFrom('channel_identities')
    .select(COLUMNS)
    .where('tenant_id', '=', channel.tenantId)
    .where('connector', '=', channel.connector)
    .where('address_index', '=', index)
    .executeTakeFirst()
  return row && toIdentity(row)
}

/**
 * The customer's identity on a channel whose addresses are not phone numbers (Messenger's page-scoped ids): known only
 * once they wrote and the conversation was linked to them; the one they wrote from last.
 */
export async function linkedIdentityOn(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  customerId: string,
  connector: ConnectorKind,
): Promise<ChannelIdentity | undefined> {
  const row = await ctx.db
    .selectFrom('channel_identities')
    .select(COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('connector', '=', connector)
    .orderBy(sql`last_inbound_at desc nulls last`)
    .executeTakeFirst()
  return row && toIdentity(row)
}

export async function identityOfConversation(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
): Promise<ChannelIdentity | undefined> {
  const row = await ctx.db
    .selectFrom('channel_identities')
    .select(COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .executeTakeFirst()
  return row && toIdentity(row)
}

/** The address to send to, decrypted only for the send. */
export async function addressOf(ctx: Pick<ServerContext, 'db' | 'keyring'>, identity: ChannelIdentity) {
  const row = await ctx.db
    .selectFrom('channel_identities')
    .select('address')
    .where('tenant_id', '=', identity.tenantId)
    .where('id', '=', identity.id)
    .executeTakeFirstOrThrow()
  return ctx.keyring.decryptText(identity.tenantId, addressField(identity.id), row.address)
}

export async function noteInbound(db: ServerContext['db'], identity: ChannelIdentity, at: Date): Promise<void> {
  await db
    .updateTable('channel_identities')
    .set({ last_inbound_at: sql`greatest(coalesce(last_inbound_at, ${at}::timestamptz), ${at}::timestamptz)` })
    .where('tenant_id', '=', identity.tenantId)
    .where('id', '=', identity.id)
    .execute()
}

/**
 * An agent names the customer behind an unidentified public conversation (after checking who they are on the
 * channel). Only an unlinked conversation can be linked: a linked one keeps its customer.
 */
export async function linkIdentityCustomer(
  ctx: Pick<ServerContext, 'db'>,
  identity: ChannelIdentity,
  customerId: string,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const linked = await linkConversationCustomer(trx, identity.tenantId, identity.conversationId, customerId)
    if (!linked) throw new Problem('tenancy/duplicate', 'the conversation is already linked to a customer')
    await trx
      .updateTable('channel_identities')
      .set({ customer_id: customerId })
      .where('tenant_id', '=', identity.tenantId)
      .where('id', '=', identity.id)
      .where('customer_id', 'is', null)
      .execute()
  })
}

/** The public-channel conversations of a tenant (the archive member catches up on them after a restart). */
export async function publicConversationIds(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('channel_identities')
    .select('conversation_id')
    .where('tenant_id', '=', tenantId)
    .orderBy('conversation_id')
    .execute()
  return rows.map((r) => r.conversation_id)
}

/** A customer's addresses on public channels, decrypted, with their conversations: for a data subject export. */
export async function customerChannelIdentities(
  ctx: Pick<ServerContext, 'db' | 'keyring'>,
  tenantId: string,
  customerId: string,
) {
  const rows = await ctx.db
    .selectFrom('channel_identities')
    .select([...COLUMNS, 'address', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
  return Promise.all(
    rows.map(async (row) => {
      const identity = toIdentity(row)
      return {
        id: identity.id,
        connector: identity.connector,
        address: await ctx.keyring.decryptText(tenantId, addressField(row.id), row.address),
        conversationId: identity.conversationId,
        secureConversationId: identity.secureConversationId,
        lastInboundAt: identity.lastInboundAt?.toISOString() ?? null,
        createdAt: new Date(row.created_at).toISOString(),
      }
    }),
  )
}

/** Adds smishing or spoofing flags to a public conversation's identity, in the caller's transaction (kept, unioned). */
export async function flagIdentity(
  trx: ServerContext['db'],
  identity: Pick<ChannelIdentity, 'tenantId' | 'id'>,
  flags: readonly string[],
): Promise<void> {
  const row = await trx
    .selectFrom('channel_identities')
    .select('risk_flags')
    .where('tenant_id', '=', identity.tenantId)
    .where('id', '=', identity.id)
    .forUpdate()
    .executeTakeFirstOrThrow()
  const merged = [...new Set([...(JSON.parse(row.risk_flags) as string[]), ...flags])].sort()
  await trx
    .updateTable('channel_identities')
    .set({ risk_flags: JSON.stringify(merged) })
    .where('tenant_id', '=', identity.tenantId)
    .where('id', '=', identity.id)
    .execute()
}
