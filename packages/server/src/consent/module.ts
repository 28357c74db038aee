import type { SimSwapProvider } from '../auth/sim-swap.ts'
import type { SmsSender } from '../auth/sms-otp.ts'
import type { TenantSigningKeys } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import { announceExpiredConsents, consentEncryptedColumns } from './consents.ts'
import { consentRoutes } from './routes.ts'

/** Transaction confirmation with dynamic linking, signed receipts. */
export const consentModule: Module<{
  receiptKeys: TenantSigningKeys
  simSwap: () => SimSwapProvider
  sendSms: SmsSender
}> = {
  name: 'consent',
  routes: (app, ctx, { receiptKeys, simSwap, sendSms }) => consentRoutes(app, ctx, { receiptKeys, simSwap, sendSms }),
  housekeeping: (ctx) => announceExpiredConsents(ctx),
  encryptedColumns: consentEncryptedColumns,
}
