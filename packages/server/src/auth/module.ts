import type { Module } from '../platform/module.ts'
import { purgeExpiredPasskeyChallenges } from './passkey-challenges.ts'
import { passkeyRoutes } from './passkey-routes.ts'
import { authRoutes } from './routes.ts'
import type { SimSwapProvider } from './sim-swap.ts'
import { simSwapSimulatorRoutes } from './sim-swap-simulator.ts'
import type { SmsSender } from './sms-otp.ts'
import { staffInvitationRoutes } from './staff-invitation-routes.ts'
import { totpEncryptedColumns } from './totp.ts'

/** Factors (TOTP, SMS, passkeys), staff passkey sign-in, SIM-swap checks, and (dev mode) the carrier simulator. */
export const authModule: Module<{ simSwap: () => SimSwapProvider; sendSms: SmsSender }> = {
  name: 'auth',
  routes: async (app, ctx, { simSwap, sendSms }) => {
    await app.register(async (scope) => authRoutes(scope, ctx, { simSwap, sendSms }))
    await app.register(async (scope) => passkeyRoutes(scope, ctx))
    await app.register(async (scope) => staffInvitationRoutes(scope, ctx))
    if (ctx.config.mode === 'dev') await app.register(async (scope) => simSwapSimulatorRoutes(scope))
  },
  housekeeping: (ctx) => purgeExpiredPasskeyChallenges(ctx),
  encryptedColumns: totpEncryptedColumns,
}
