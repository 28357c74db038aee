import type { Module } from '../platform/module.ts'
import type { MessageLog } from './message-log.ts'
import { type MessageRef, purgeExpiredMessages } from './purge-expired-messages.ts'
import { retentionRoutes } from './retention-routes.ts'
import { conversationRoutes } from './routes.ts'
import type { StreamHub } from './stream-hub.ts'

/** Conversations, members, the ciphertext message log, the stream, retention on devices. */
export const conversationsModule: Module<{
  messageLog: MessageLog
  hub: StreamHub
  /** Which of these messages the compliance archive holds (their ciphertext may then go). */
  isArchived: (refs: MessageRef[]) => Promise<Set<string>>
}> = {
  name: 'conversations',
  routes: async (app, ctx, { messageLog, hub }) => {
    await app.register(async (scope) => conversationRoutes(scope, ctx, { messageLog, hub }))
    await app.register(async (scope) => retentionRoutes(scope, ctx))
  },
  housekeeping: (ctx, { isArchived }) => purgeExpiredMessages(ctx, { isArchived }),
}
