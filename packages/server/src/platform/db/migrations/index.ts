import type { Migration, MigrationProvider } from 'kysely/migration'
import * as foundation from './001-foundation.ts'
import * as audit from './002-audit.ts'
import * as consents from './003-consents.ts'
import * as apiClients from './004-api-clients.ts'
import * as webhooks from './005-webhooks.ts'
import * as totp from './006-totp.ts'
import * as integrity from './007-integrity.ts'
import * as policies from './008-policies.ts'
import * as appVersions from './009-app-versions.ts'
import * as e2e from './010-e2e.ts'
import * as attestation from './011-attestation.ts'
import * as channels from './012-channels.ts'
import * as passkeys from './013-passkeys.ts'
import * as archive from './014-archive.ts'
import * as smsFactors from './015-sms-factors.ts'
import * as remoteWipeRetention from './016-remote-wipe-retention.ts'
import * as smpp from './017-smpp.ts'
import * as e2eRejoin from './018-e2e-rejoin.ts'
import * as consoleLookups from './019-console-lookups.ts'
import * as pivotStepUp from './020-pivot-step-up.ts'
import * as keyPackageLifetimes from './021-key-package-lifetimes.ts'
import * as conversationLastMessage from './022-conversation-last-message.ts'
import * as factorLifecycle from './023-factor-lifecycle.ts'
import * as checkpointWitness from './024-checkpoint-witness.ts'
import * as encryptionRequired from './025-encryption-required.ts'
import * as channelRisk from './026-channel-risk.ts'
import * as tenantKeys from './027-tenant-keys.ts'
import * as rateLimits from './028-rate-limits.ts'
import * as pivotLinkRevocation from './029-pivot-link-revocation.ts'
import * as production from './030-production.ts'
import * as playIntegrity from './031-play-integrity.ts'
import * as archiveEvidence from './032-archive-evidence.ts'
import * as staffLifecycle from './033-staff-lifecycle.ts'
import * as rbm from './034-rbm.ts'
import * as agentDesk from './037-agent-desk.ts'
import * as searchTerms from './038-search-terms.ts'

/** Migrations in order. Add a file, then its line here; never edit one that has shipped. */
const migrations: Record<string, Migration> = {
  '001-foundation': foundation,
  '002-audit': audit,
  '003-consents': consents,
  '004-api-clients': apiClients,
  '005-webhooks': webhooks,
  '006-totp': totp,
  '007-integrity': integrity,
  '008-policies': policies,
  '009-app-versions': appVersions,
  '010-e2e': e2e,
  '011-attestation': attestation,
  '012-channels': channels,
  '013-passkeys': passkeys,
  '014-archive': archive,
  '015-sms-factors': smsFactors,
  '016-remote-wipe-retention': remoteWipeRetention,
  '017-smpp': smpp,
  '018-e2e-rejoin': e2eRejoin,
  '019-console-lookups': consoleLookups,
  '020-pivot-step-up': pivotStepUp,
  '021-key-package-lifetimes': keyPackageLifetimes,
  '022-conversation-last-message': conversationLastMessage,
  '023-factor-lifecycle': factorLifecycle,
  '024-checkpoint-witness': checkpointWitness,
  '025-encryption-required': encryptionRequired,
  '026-channel-risk': channelRisk,
  '027-tenant-keys': tenantKeys,
  '028-rate-limits': rateLimits,
  '029-pivot-link-revocation': pivotLinkRevocation,
  '030-production': production,
  '031-play-integrity': playIntegrity,
  '032-archive-evidence': archiveEvidence,
  '033-staff-lifecycle': staffLifecycle,
  '034-rbm': rbm,
  '037-agent-desk': agentDesk,
  '038-search-terms': searchTerms,
}

export const migrationProvider: MigrationProvider = { getMigrations: async () => migrations }
export const latestMigration = Object.keys(migrations).at(-1) as string
