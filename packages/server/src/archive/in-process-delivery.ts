import { StrongroomError } from '@strongroom/sdk'
import type { DeliveryService } from '@strongroom/sdk/mls-node'
import { fetchMessages } from '../conversations/messages.ts'
import { credentialAuthorityKeys, issueMemberCredential } from '../e2e/credential-authority.ts'
import { acceptCommitFrom, deleteWelcome, pendingWelcomes } from '../e2e/groups.ts'
import { keyPackageStock, storeKeyPackages } from '../e2e/key-packages.ts'
import type { ServerContext } from '../platform/context.ts'
import { Problem } from '../platform/http/problems.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'

export const ARCHIVE_MEMBER = { kind: 'archive', id: 'archive' } as const

const notForTheArchive = () =>
  Promise.reject(new Error('the archive member adds no one and sends nothing; it only commits removals'))

/**
 * The delivery service as the archive member of one tenant reaches it: the e2e and conversations service functions,
 * called in process. It reads every conversation of its tenant, which is what the archive is for.
 */
export function inProcessDelivery(ctx: ServerContext, credentialKey: SigningKey, tenantId: string): DeliveryService {
  return {
    issueCredential: (signaturePublicKey) =>
      issueMemberCredential(ctx, credentialKey, { tenantId, member: ARCHIVE_MEMBER, signaturePublicKey }),
    credentialAuthorityKeys: () => credentialAuthorityKeys(ctx),
    keyPackageStock: () => keyPackageStock(ctx, tenantId, ARCHIVE_MEMBER),
    async uploadKeyPackages(keyPackages, lastResort) {
      await storeKeyPackages(ctx, tenantId, ARCHIVE_MEMBER, { keyPackages, lastResort })
    },
    claimKeyPackages: notForTheArchive,
    registerGroup: notForTheArchive,
    async submitCommit(conversationId, commit) {
      const committer = { tenantId, sender: ARCHIVE_MEMBER, actor: { kind: 'system', id: null } as const }
      try {
        await acceptCommitFrom(ctx, committer, conversationId, commit)
      } catch (error) {
        // The SDK tells an epoch conflict by the problem it would get over HTTP.
        throw error instanceof Problem ? new StrongroomError(error.toBody()) : error
      }
    },
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
