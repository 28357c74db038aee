import { createHash } from 'node:crypto'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import { newId } from '../platform/ids.ts'
import { conversationRetentionDays, loadRetentionPolicy } from './retention.ts'

/** An attachment as stored: who sent it and the SHA-256 of its ciphertext (base64url), never its key. */
export interface StoredAttachment {
  id: string
  conversationId: string
  size: number
  sha256: string
  createdAt: string
  expiresAt: string | null
}

const DAY_MS = 86_400_000

/**
 * Stores an encrypted attachment a member of the conversation uploaded. The server sees ciphertext only: the key, the
 * file's name and type travel in the MLS message that refers to it. It is served until `expiresAt` (the expiry of the
 * message that carries its key) or, without one, until the conversation's (or else the bank's) retention on devices
 * ends, as a message is; and it is kept, like the archive's record of that message, for `retentionDays`.
 */
export async function storeAttachment(
  ctx: Pick<ServerContext, 'db' | 'config'>,
  input: {
    tenantId: string
    conversationId: string
    uploader: { kind: 'device' | 'staff'; id: string }
    ciphertext: Buffer
    expiresAt: Date | null
    retentionDays: number
  },
): Promise<StoredAttachment> {
  if (input.ciphertext.length > attachmentCiphertextLimit(ctx.config.maxAttachmentBytes)) {
    throw new Problem('conversations/attachment-too-large')
  }
  const createdAt = new Date()
  const expiresAt = input.expiresAt ?? (await deviceExpiry(ctx, input.tenantId, input.conversationId, createdAt))
  const sha256 = createHash('sha256').update(input.ciphertext).digest()
  const id = newId('att')
  await ctx.db
    .insertInto('attachments')
    .values({
      tenant_id: input.tenantId,
      id,
      conversation_id: input.conversationId,
      uploader_kind: input.uploader.kind,
      uploader_id: input.uploader.id,
      sha256,
      ciphertext: input.ciphertext,
      created_at: createdAt,
      expires_at: expiresAt,
      retain_until: new Date(createdAt.getTime() + input.retentionDays * DAY_MS),
    })
    .execute()
  return {
    id,
    conversationId: input.conversationId,
    size: input.ciphertext.length,
    sha256: sha256.toString('base64url'),
    createdAt: createdAt.toISOString(),
    expiresAt: expiresAt?.toISOString() ?? null,
  }
}

/**
 * An attachment's ciphertext, for a member of its conversation (the route checked that): one of another conversation,
 * or one past its expiry, is not found.
 */
export async function fetchAttachment(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  attachmentId: string,
): Promise<Buffer> {
  const row = await ctx.db
    .selectFrom('attachments')
    .select(['ciphertext'])
    .where('tenant_id', '=', tenantId)
    .where('conversation_id', '=', conversationId)
    .where('id', '=', attachmentId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    .executeTakeFirst()
  if (!row) throw new Problem('conversations/attachment-not-found')
  return Buffer.from(row.ciphertext)
}

/** Deletes attachments past their expiry and past the bank's retention; returns how many went. */
export async function purgeExpiredAttachments(ctx: Pick<ServerContext, 'db'>, now = new Date()): Promise<number> {
  const result = await ctx.db
    .deleteFrom('attachments')
    .where('expires_at', '<=', now)
    .where('retain_until', '<=', now)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

async function deviceExpiry(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
  conversationId: string,
  now: Date,
): Promise<Date | null> {
  const days =
    (await conversationRetentionDays(ctx, tenantId, [conversationId])).get(conversationId) ??
    (await loadRetentionPolicy(ctx, tenantId)).deviceMessageDays
  return days === null ? null : new Date(now.getTime() + days * DAY_MS)
}

/** AES-256-GCM adds a 16-byte tag to the file (the nonce travels in the message, not with the ciphertext). */
export const attachmentCiphertextLimit = (maxAttachmentBytes: number) => maxAttachmentBytes + 16
