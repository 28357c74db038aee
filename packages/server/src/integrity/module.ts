import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import type { DeactivatedAppVersions } from './app-versions.ts'
import type { AttestationStatusList } from './attestation-status-list.ts'
import { purgeExpiredChallenges } from './challenges.ts'
import { integrityCommands } from './commands.ts'
import { createHardwareVerifiers } from './hardware-attestation.ts'
import { integrityRoutes } from './routes.ts'
import { runtimeSecretEncryptedColumns } from './runtime-secrets.ts'

/** App attestation, integrity tokens and their policy, app versions, runtime secrets, pin sets. */
export const integrityModule: Module<{
  integrityTokenKey: SigningKey
  deactivatedAppVersions: DeactivatedAppVersions
  attestationStatus: AttestationStatusList | undefined
}> = {
  name: 'integrity',
  routes: (app, ctx, { integrityTokenKey, deactivatedAppVersions, attestationStatus }) =>
    integrityRoutes(app, ctx, {
      tokenKey: integrityTokenKey,
      verifiers: createHardwareVerifiers(ctx.config, attestationStatus),
      deactivated: deactivatedAppVersions,
    }),
  // Google's attestation status list is loaded again on its own schedule, checked at each pass.
  housekeeping: (ctx, { attestationStatus }) =>
    Promise.all([purgeExpiredChallenges(ctx), attestationStatus?.refreshIfDue()]),
  commands: integrityCommands,
  encryptedColumns: runtimeSecretEncryptedColumns,
}
