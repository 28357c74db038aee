import type { JWK } from 'jose'
import type { StrongroomClient } from '../client.ts'
import { base64ToBytes, bytesToBase64 } from '../encoding.ts'
import { StrongroomError } from '../errors.ts'
import type { Message } from '../protocol.ts'
import type { MemberIdentity } from './member-credential.ts'

export type MemberRef = { kind: MemberIdentity['kind']; id: string }

export interface KeyPackageStock {
  available: number
  lastResort: boolean
  low: boolean
}

export interface PendingWelcome {
  id: string
  conversationId: string
  epoch: number
  commitSeq: number
  welcome: Uint8Array
}

/**
 * What a member needs from the MLS delivery service. Apps reach it over HTTP (`httpDeliveryService`); the server's
 * own archive member calls the service functions in process. A refused commit or message for a stale epoch throws a
 * `StrongroomError` whose type ends in `/e2e/epoch-conflict`.
 */
export interface DeliveryService {
  issueCredential(signaturePublicKey: Uint8Array): Promise<string>
  credentialAuthorityKeys(): Promise<JWK[]>
  keyPackageStock(): Promise<KeyPackageStock>
  uploadKeyPackages(keyPackages: Uint8Array[], lastResort?: Uint8Array): Promise<void>
  claimKeyPackages(conversationId: string, members: MemberRef[]): Promise<Uint8Array[]>
  registerGroup(conversationId: string, groupId: Uint8Array, cipherSuite: string): Promise<void>
  submitCommit(
    conversationId: string,
    commit: { clientMessageId: string; commit: Uint8Array; welcome?: Uint8Array | undefined },
  ): Promise<void>
  /** With `expiresAt`, the message disappears then: members stop showing it and the server deletes it. */
  sendApplicationMessage(
    conversationId: string,
    clientMessageId: string,
    message: Uint8Array,
    expiresAt?: Date,
  ): Promise<Message>
  listMessages(conversationId: string, after: number, limit: number): Promise<Message[]>
  pendingWelcomes(): Promise<PendingWelcome[]>
  deleteWelcome(welcomeId: string): Promise<void>
}

/** The media type of an MLS message (RFC 9420, section 17.10). */
export const MLS_CONTENT_TYPE = 'message/mls'

export function isEpochConflict(error: unknown): boolean {
  return error instanceof StrongroomError && error.type.endsWith('/e2e/epoch-conflict')
}

/** The delivery service over Strongroom's HTTP API, with the client's credentials. */
export function httpDeliveryService(client: StrongroomClient): DeliveryService {
  const conversation = (id: string) => `/v1/conversations/${encodeURIComponent(id)}`
  return {
    async issueCredential(signaturePublicKey) {
      const { base64url } = await import('jose')
      const body = { signaturePublicKey: base64url.encode(signaturePublicKey) }
      return (await client.request<{ credential: string }>('POST', '/v1/e2e/credentials', body)).credential
    },
    async credentialAuthorityKeys() {
      return (await client.request<{ keys: JWK[] }>('GET', '/v1/e2e/credential-authority')).keys
    },
    keyPackageStock: () => client.request<KeyPackageStock>('GET', '/v1/e2e/key-packages'),
    async uploadKeyPackages(keyPackages, lastResort) {
      await client.request('POST', '/v1/e2e/key-packages', {
        keyPackages: keyPackages.map(bytesToBase64),
        ...(lastResort ? { lastResort: bytesToBase64(lastResort) } : {}),
      })
    },
    async claimKeyPackages(conversationId, members) {
      const { keyPackages } = await client.request<{ keyPackages: { keyPackage: string }[] }>(
        'POST',
        `${conversation(conversationId)}/e2e/key-packages/claim`,
        { members },
      )
      return keyPackages.map((k) => base64ToBytes(k.keyPackage))
    },
    async registerGroup(conversationId, groupId, cipherSuite) {
      await client.request('PUT', `${conversation(conversationId)}/e2e/group`, {
        groupId: bytesToBase64(groupId),
        cipherSuite,
      })
    },
    async submitCommit(conversationId, commit) {
      await client.request('POST', `${conversation(conversationId)}/e2e/commits`, {
        clientMessageId: commit.clientMessageId,
        commit: bytesToBase64(commit.commit),
        ...(commit.welcome ? { welcome: bytesToBase64(commit.welcome) } : {}),
      })
    },
    sendApplicationMessage: (conversationId, clientMessageId, message, expiresAt) =>
      client.sendMessage(conversationId, {
        contentType: MLS_CONTENT_TYPE,
        ciphertext: message,
        clientMessageId,
        ...(expiresAt ? { expiresAt } : {}),
      }),
    listMessages: (conversationId, after, limit) => client.listMessages(conversationId, { after, limit }),
    async pendingWelcomes() {
      const { welcomes } = await client.request<{
        welcomes: (Omit<PendingWelcome, 'welcome'> & { welcome: string })[]
      }>('GET', '/v1/e2e/welcomes')
      return welcomes.map((w) => ({ ...w, welcome: base64ToBytes(w.welcome) }))
    },
    async deleteWelcome(welcomeId) {
      await client.request('DELETE', `/v1/e2e/welcomes/${encodeURIComponent(welcomeId)}`)
    },
  }
}
