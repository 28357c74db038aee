import type { Module } from '../platform/module.ts'
import { attachmentRoutes } from './attachment-routes.ts'
import { purgeExpiredAttachments } from './attachments.ts'
import type { MessageLog } from './message-log.ts'
import { type MessageRef, purgeExpiredMessages } from './purge-expired-messages.ts'
import { retentionRoutes } from './retention-routes.ts'
import { conversationRoutes } from './routes.ts'
import type { StreamHub } from './stream-hub.ts'

/** Conversations, members, the ciphertext message log and attachments, the stream, retention on devices. */
export const conversationsModule: Module<{
  messageLog: MessageLog
  hub: StreamHub
  /** Which of these messages the compliance archive holds (their ciphertext may then go). */
  isArchived: (refs: MessageRef[]) => Promise<Set<string>>
  /** How long the bank keeps secure messages: an attachment stays as long as the message carrying its key. */
  secureRetentionDays: (tenantId: string) => Promise<number>
  /** Forgets the search terms of messages whose ciphertext expired. */
  forgetMessageTexts: (refs: MessageRef[]) => Promise<void>
}> = {
  name: 'conversations',
  routes: async (app, ctx, { messageLog, hub, secureRetentionDays }) => {
    await app.register(async (scope) => conversationRoutes(scope, ctx, { messageLog, hub }))
    await app.register(async (scope) => retentionRoutes(scope, ctx))
    await app.register(async (scope) => attachmentRoutes(scope, ctx, { secureRetentionDays }))
  },
  housekeeping: async (ctx, { isArchived, forgetMessageTexts }) =>
    (await purgeExpiredMessages(ctx, { isArchived, purged: forgetMessageTexts })) +
    (await purgeExpiredAttachments(ctx)),
}
