import { IMPORTED_HISTORY_TYPE, PUBLIC_MESSAGE_TYPE } from '@strongroom/sdk/protocol'
import type { ServerContext } from '../platform/context.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import type { ConnectorKind } from './connectors/connector.ts'
import type { FindingKind } from './dlp.ts'
import type { RiskFlag } from './link-policy.ts'

/**
 * Public-channel messages in the message log. Their text is plaintext by nature, so the server seals it with the
 * tenant data key (AES-256-GCM, associated data naming the message's place) instead of the devices encrypting it:
 * the messages table, the bus and the stream carry only the sealed bytes, and the channels API opens them for
 * whoever may read the conversation. Their content types (`PUBLIC_MESSAGE_TYPE`, and `IMPORTED_HISTORY_TYPE` for the
 * history a pivot imports into a secure conversation) are the SDK's, which clients switch on.
 */
export { IMPORTED_HISTORY_TYPE, PUBLIC_MESSAGE_TYPE } from '@strongroom/sdk/protocol'

export interface Envelope {
  v: 1
  channel: ConnectorKind
  direction: 'inbound' | 'outbound'
  /** Masked before storage when DLP found something. */
  text: string
  /** What DLP masked (kinds only, never values). */
  masked?: FindingKind[]
  /** Masked after it was stored: a later message completed a card number this one began (dlp-split.ts). */
  maskedLater?: true
  /** Smishing and spoofing flags an inbound message raised (link-policy.ts). */
  risk?: RiskFlag[]
  /** Attachments the customer sent, which are not carried across. */
  mediaCount?: number
  /** A pivot invitation: the button's label. The link itself is never stored (it carries the token). */
  linkLabel?: string
  /** When the customer sent it, or when it was sent to the customer. */
  at: string
  /** For imported history: where it was on the public channel. */
  origin?: { conversationId: string; seq: number }
}

export interface MessagePlace {
  conversationId: string
  sender: { kind: string; id: string }
  clientMessageId: string
}

const fieldOf = (place: MessagePlace) => ({
  table: 'messages',
  column: 'ciphertext',
  rowId: `${place.conversationId}/${place.sender.kind}:${place.sender.id}/${place.clientMessageId}`,
})

/**
 * Public-channel messages and imported history, sealed by the keyring (the other rows of the messages table are the
 * devices' own MLS ciphertext): for `keys reencrypt` and `keys retire`.
 */
export const envelopeEncryptedColumns: EncryptedColumn[] = [
  {
    table: 'messages',
    column: 'ciphertext',
    key: ['conversation_id', 'sender_kind', 'sender_id', 'client_message_id'],
    field: (row) =>
      fieldOf({
        conversationId: row.conversation_id as string,
        sender: { kind: row.sender_kind as string, id: row.sender_id as string },
        clientMessageId: row.client_message_id as string,
      }),
    only: { column: 'content_type', values: [PUBLIC_MESSAGE_TYPE, IMPORTED_HISTORY_TYPE] },
  },
]

export async function sealEnvelope(
  ctx: Pick<ServerContext, 'keyring'>,
  tenantId: string,
  place: MessagePlace,
  envelope: Envelope,
): Promise<Buffer> {
  return ctx.keyring.encrypt(tenantId, fieldOf(place), JSON.stringify(envelope))
}

export async function openEnvelope(
  ctx: Pick<ServerContext, 'keyring'>,
  tenantId: string,
  place: MessagePlace,
  sealed: Uint8Array,
): Promise<Envelope> {
  return JSON.parse(await ctx.keyring.decryptText(tenantId, fieldOf(place), sealed)) as Envelope
}
