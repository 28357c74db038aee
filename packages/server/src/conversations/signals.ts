import { MAX_SIGNAL_BYTES, MLS_CONTENT_TYPE, type SignalFrame } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import { type Principal, principalMember } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import type { MessageLog } from './message-log.ts'

/**
 * Signals: typing and read indicators of a secure conversation, MLS application messages that the members encrypt
 * like any other, but that are ephemeral. The delivery service relays one at once to the other members whose streams
 * are open, and keeps nothing: no row in the message log, no seq, nothing for the archive member (which reads the
 * log's wake-ups, not these), no unread count, no catch-up for a member that was away.
 */
export const SIGNAL_SUBJECT_PREFIX = 'sr.signal.'

/** A signal on the bus, for every node's members of the conversation. */
export interface SignalRelayedEvent {
  tenantId: string
  conversationId: string
  sender: { kind: 'device' | 'staff'; id: string }
  /** base64, as the sender gave it. */
  ciphertext: string
}

const encoder = new TextEncoder()

/**
 * Relays a signal from a principal the `send` rule admitted (a member of the conversation): at most MAX_SIGNAL_BYTES,
 * and admitted as a message would be (in a conversation with an MLS group, an application message of that group at its
 * current epoch; a conversation without one takes none), then published for the nodes. Nothing is written.
 */
export async function relaySignal(
  ctx: Pick<ServerContext, 'bus'>,
  messageLog: MessageLog,
  principal: Principal,
  frame: SignalFrame,
): Promise<void> {
  const ciphertext = Buffer.from(frame.ciphertext, 'base64')
  if (ciphertext.length > MAX_SIGNAL_BYTES) throw new Problem('conversations/signal-too-large')
  const sender = principalMember(principal)
  await messageLog.check({
    tenantId: principal.tenantId,
    conversationId: frame.conversationId,
    sender,
    clientMessageId: frame.ref,
    contentType: MLS_CONTENT_TYPE,
    ciphertext,
    expiresAt: null,
  })
  const event: SignalRelayedEvent = {
    tenantId: principal.tenantId,
    conversationId: frame.conversationId,
    sender,
    ciphertext: frame.ciphertext,
  }
  ctx.bus.publish(SIGNAL_SUBJECT_PREFIX + principal.tenantId, encoder.encode(JSON.stringify(event)))
}
