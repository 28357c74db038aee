import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import type { SealedHistoryMessage, SecureHistoryRequest } from '../archive-protocol.ts'
import type { MemberClient } from '../client.ts'
import { base64ToBytes, bytesToBase64 } from '../encoding.ts'
import type { MemberIdentity } from './member-credential.ts'

/**
 * Earlier secure messages for the bank's staff, from the bank's archive: a browser that joined a conversation after
 * they were sent (an agent's new browser, a conversation handed over) cannot decrypt them with MLS, whose keys were
 * never its own. The archive, a member that read them all, re-encrypts each to a key made for the request on the
 * agent's device (HPKE, RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM), bound to its conversation
 * and seq. Customers' devices get nothing this way: their side keeps MLS's forward secrecy.
 */
export const SECURE_HISTORY_INFO = new TextEncoder().encode('strongroom/secure-history/v1')

export const secureHistorySuite = () =>
  new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() })

/** What each sealed message is bound to: its conversation and place in it. */
export const secureHistoryAad = (conversationId: string, seq: number) =>
  new TextEncoder().encode(`${conversationId}:${seq}`)

/** One earlier message as the archive sealed it to the requesting device. */
export type { SealedHistoryMessage }

/** One earlier secure message, opened on this device. */
export interface HistoryMessage {
  seq: number
  sender: MemberIdentity
  text: string
  sentAt: string
}

/**
 * Fetches a conversation's earlier secure messages (after `after`, up to `limit`), sealed by the archive to a key pair
 * made here for this request and dropped after it: staff who are members of the conversation only; audited.
 *
 * @example
 * const { messages } = await fetchSecureHistory(agent, conversationId)
 * for (const m of messages) show(m.seq, m.text)
 */
export async function fetchSecureHistory(
  client: MemberClient,
  conversationId: string,
  options: Omit<SecureHistoryRequest, 'recipientKey'> = {},
): Promise<{ messages: HistoryMessage[]; next: number | null }> {
  const suite = secureHistorySuite()
  const recipient = await suite.kem.generateKeyPair()
  const recipientKey = new Uint8Array(await suite.kem.serializePublicKey(recipient.publicKey))
  const answer = await client.call('POST /v1/conversations/:conversationId/secure-history', {
    params: { conversationId },
    body: { recipientKey: bytesToBase64(recipientKey), ...options },
  })
  const messages: HistoryMessage[] = []
  for (const sealed of answer.messages) {
    const opened = await suite.open(
      { recipientKey: recipient, enc: base64ToBytes(sealed.enc), info: SECURE_HISTORY_INFO },
      base64ToBytes(sealed.ciphertext),
      secureHistoryAad(conversationId, sealed.seq),
    )
    const content = JSON.parse(new TextDecoder().decode(opened)) as Omit<HistoryMessage, 'seq'>
    messages.push({ seq: sealed.seq, ...content })
  }
  return { messages, next: answer.next }
}
