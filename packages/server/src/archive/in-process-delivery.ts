import { StrongroomError } from '@strongroom/sdk'
import type { DeliveryService } from '@strongroom/sdk/mls-node'
import { fetchMessages } from '../conversations/messages.ts'
import { credentialAuthorityKeys, issueMemberCredential } from '../e2e/credential-authority.ts'
import { acceptCommitFrom, deleteWelcome, loadGroup, pendingWelcomes } from '../e2e/groups.ts'
import { claimKeyPackages, keyPackageStock, storeKeyPackages } from '../e2e/key-packages.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'

export const ARCHIVE_MEMBER = { kind: 'archive', id: 'archive' } as const

const notForTheArchive = () => Promise.reject(new Error('the archive member creates no group and sends nothing'))

/** The archive holds no usable state of a group and could not re-join it by external commit; nobody re-adds it. */
export class ArchiveCannotRejoin extends Error {
  constructor(readonly conversationId: string) {
    super('the archive member could not re-join a group by external commit')
    this.name = 'ArchiveCannotRejoin'
  }
}

/**
 * The delivery service as the archive member of one tenant reaches it: the e2e and conversations service functions,
 * called in process. It reads every conversation of its tenant, which is what the archive is for; it commits the
 * removal of revoked devices and re-adds members that lost their state and asked (the caller checks they may be).
 */
export function inProcessDelivery(ctx: ServerContext, credentialKey: SigningKey, tenantId: string): DeliveryService {
  return {
    issueCredential: (signaturePublicKey) =>
      issueMemberCredential(ctx, credentialKey, { tenantId, member: ARCHIVE_MEMBER, signaturePublicKey }),
    credentialAuthorityKeys: () => credentialAuthorityKeys(ctx),
    keyPackageStock: () => keyPackageStock(ctx, tenantId, ARCHIVE_MEMBER),
    async uploadKeyPackages(keyPackages, lastResort, options) {
      await storeKeyPackages(ctx, tenantId, ARCHIVE_MEMBER, { keyPackages, lastResort, replace: options?.replace })
    },
    async claimKeyPackages(conversationId, members) {
      const claimed = await claimKeyPackages(ctx, tenantId, conversationId, members)
      return claimed.map((c) => c.keyPackage)
    },
    registerGroup: notForTheArchive,
    async submitCommit(conversationId, commit) {
      const committer = { tenantId, sender: ARCHIVE_MEMBER, actor: { kind: 'system', id: null } as const }
      try {
        const { epoch, seq } = await acceptCommitFrom(ctx, committer, conversationId, commit)
        return { epoch, seq }
      } catch (error) {
        // The SDK tells an epoch conflict by the problem it would get over HTTP.
        throw error instanceof Problem ? new StrongroomError(error.toBody()) : error
      }
    },
    async groupInfo(conversationId) {
      return (await loadGroup(ctx.db, tenantId, conversationId))?.group_info ?? undefined
    },
    requestReadd: (conversationId) => Promise.reject(new ArchiveCannotRejoin(conversationId)),
    sendApplicationMessage: notForTheArchive,
    listMessages: (conversationId, after, limit) =>
      fetchMessages(ctx, tenantId, conversationId, { afterSeq: after, limit }),
    async pendingWelcomes() {
      const welcomes = await pendingWelcomes(ctx, tenantId, ARCHIVE_MEMBER)
      return welcomes.map((w) => ({ ...w, welcome: new Uint8Array(Buffer.from(w.welcome, 'base64')) }))
    },
    async deleteWelcome(welcomeId) {
      await deleteWelcome(ctx, tenantId, ARCHIVE_MEMBER, welcomeId)
    },
  }
}
