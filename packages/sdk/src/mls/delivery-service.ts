import { base64url, type JWK } from 'jose'
import type { MemberClient } from '../client.ts'
import { MLS_CONTENT_TYPE } from '../content-types.ts'
import type { KeyPackageStock, MlsCipherSuite } from '../e2e-protocol.ts'
import { base64ToBytes, bytesToBase64 } from '../encoding.ts'
import { StrongroomError } from '../errors.ts'
import type { Message } from '../protocol.ts'
import type { MemberIdentity } from './member-credential.ts'

/** A member to add or remove; with `instance`, one of a staff member's browsers only. */
export type MemberRef = { kind: MemberIdentity['kind']; id: string; instance?: string }

export type { KeyPackageStock }

export interface PendingWelcome {
  id: string
  conversationId: string
  epoch: number
  commitSeq: number
  welcome: Uint8Array
}

/** A commit the delivery service accepted: the epoch it started and its place in the conversation's log. */
export interface AcceptedCommit {
  epoch: number
  seq: number
}

/**
 * What a member needs from the MLS delivery service. Apps reach it over HTTP (`httpDeliveryService`); the server's
 * own archive member calls the service functions in process. A refused commit or message for a stale epoch throws a
 * `StrongroomError` whose type ends in `/e2e/epoch-conflict`.
 */
export interface DeliveryService {
  issueCredential(signaturePublicKey: Uint8Array): Promise<string>
  credentialAuthorityKeys(): Promise<JWK[]>
  /** The stock of this member's key packages: of one instance (a staff member's browser) when given. */
  keyPackageStock(instance?: string): Promise<KeyPackageStock>
  /** With `replace`, the member's (instance's) unclaimed key packages in the directory are dropped first. */
  uploadKeyPackages(keyPackages: Uint8Array[], lastResort?: Uint8Array, options?: { replace: boolean }): Promise<void>
  claimKeyPackages(conversationId: string, members: MemberRef[]): Promise<Uint8Array[]>
  registerGroup(conversationId: string, groupId: Uint8Array, cipherSuite: MlsCipherSuite): Promise<void>
  /** A member's commit, or a member's external commit re-joining the group; with the GroupInfo of the next epoch. */
  submitCommit(
    conversationId: string,
    commit: { clientMessageId: string; commit: Uint8Array; welcome?: Uint8Array | undefined; groupInfo: Uint8Array },
  ): Promise<AcceptedCommit>
  /** The GroupInfo published for the group's current epoch; undefined when there is none yet. */
  groupInfo(conversationId: string): Promise<Uint8Array | undefined>
  /** Asks for this member (this instance of a staff member) to be added to the group (the archive member does it). */
  requestReadd(conversationId: string, instance?: string): Promise<void>
  /** With `expiresAt`, the message disappears then: members stop showing it and the server deletes it. */
  sendApplicationMessage(
    conversationId: string,
    clientMessageId: string,
    message: Uint8Array,
    expiresAt?: Date,
  ): Promise<Message>
  listMessages(conversationId: string, after: number, limit: number): Promise<Message[]>
  /** The welcomes waiting for this member: for one instance of a staff member (and none named) when given. */
  pendingWelcomes(instance?: string): Promise<PendingWelcome[]>
  deleteWelcome(welcomeId: string): Promise<void>
}

export { MLS_CONTENT_TYPE }

export function isEpochConflict(error: unknown): boolean {
  return error instanceof StrongroomError && error.type.endsWith('/e2e/epoch-conflict')
}

/** The group's current epoch an epoch conflict reports. */
export function conflictEpoch(error: unknown): bigint | undefined {
  const epoch = isEpochConflict(error) ? (error as StrongroomError).problem.currentEpoch : undefined
  return typeof epoch === 'number' ? BigInt(epoch) : undefined
}

/** The delivery service will not take this member back by external commit (it asks to be re-added instead). */
export function isRejoinRefused(error: unknown): boolean {
  return (
    error instanceof StrongroomError &&
    (error.type.endsWith('/e2e/rejoin-refused') || error.type.endsWith('/e2e/no-group-info'))
  )
}

/** The delivery service over Strongroom's HTTP API, with the client's credentials. */
export function httpDeliveryService(client: MemberClient): DeliveryService {
  return {
    async issueCredential(signaturePublicKey) {
      const body = { signaturePublicKey: base64url.encode(signaturePublicKey) }
      return (await client.call('POST /v1/e2e/credentials', { body })).credential
    },
    async credentialAuthorityKeys() {
      return (await client.call('GET /v1/e2e/credential-authority')).keys as JWK[]
    },
    keyPackageStock: (instance) => client.call('GET /v1/e2e/key-packages', { query: { instance } }),
    async uploadKeyPackages(keyPackages, lastResort, options) {
      await client.call('POST /v1/e2e/key-packages', {
        body: {
          keyPackages: keyPackages.map(bytesToBase64),
          ...(lastResort ? { lastResort: bytesToBase64(lastResort) } : {}),
          ...(options?.replace ? { replace: true } : {}),
        },
      })
    },
    async claimKeyPackages(conversationId, members) {
      const { keyPackages } = await client.call('POST /v1/conversations/:conversationId/e2e/key-packages/claim', {
        params: { conversationId },
        body: { members },
      })
      return keyPackages.map((k) => base64ToBytes(k.keyPackage))
    },
    async registerGroup(conversationId, groupId, cipherSuite) {
      await client.call('PUT /v1/conversations/:conversationId/e2e/group', {
        params: { conversationId },
        body: { groupId: bytesToBase64(groupId), cipherSuite },
      })
    },
    submitCommit: (conversationId, commit) =>
      client.call('POST /v1/conversations/:conversationId/e2e/commits', {
        params: { conversationId },
        body: {
          clientMessageId: commit.clientMessageId,
          commit: bytesToBase64(commit.commit),
          ...(commit.welcome ? { welcome: bytesToBase64(commit.welcome) } : {}),
          groupInfo: bytesToBase64(commit.groupInfo),
        },
      }),
    async groupInfo(conversationId) {
      try {
        const { groupInfo } = await client.call('GET /v1/conversations/:conversationId/e2e/group-info', {
          params: { conversationId },
        })
        return base64ToBytes(groupInfo)
      } catch (error) {
        if (error instanceof StrongroomError && error.type.endsWith('/e2e/no-group-info')) return undefined
        throw error
      }
    },
    async requestReadd(conversationId, instance) {
      await client.call('POST /v1/conversations/:conversationId/e2e/readd-requests', {
        params: { conversationId },
        query: { instance },
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
    async pendingWelcomes(instance) {
      const { welcomes } = await client.call('GET /v1/e2e/welcomes', { query: { instance } })
      return welcomes.map((w) => ({ ...w, welcome: base64ToBytes(w.welcome) }))
    },
    async deleteWelcome(welcomeId) {
      await client.call('DELETE /v1/e2e/welcomes/:welcomeId', { params: { welcomeId } })
    },
  }
}
