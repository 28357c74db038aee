import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import type { DeactivatedAppVersions } from './app-versions.ts'
import { purgeExpiredChallenges } from './challenges.ts'
import { createHardwareVerifiers } from './hardware-attestation.ts'
import { integrityRoutes } from './routes.ts'

/** App attestation, integrity tokens and their policy, app versions, runtime secrets, pin sets. */
export const integrityModule: Module<{
  integrityTokenKey: SigningKey
  deactivatedAppVersions: DeactivatedAppVersions
}> = {
  name: 'integrity',
  routes: (app, ctx, { integrityTokenKey, deactivatedAppVersions }) =>
    integrityRoutes(app, ctx, {
      tokenKey: integrityTokenKey,
      verifiers: createHardwareVerifiers(ctx.config),
      deactivated: deactivatedAppVersions,
    }),
  housekeeping: (ctx) => purgeExpiredChallenges(ctx),
}
