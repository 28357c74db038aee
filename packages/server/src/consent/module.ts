import type { SimSwapProvider } from '../auth/sim-swap.ts'
import type { SmsSender } from '../auth/sms-otp.ts'
import type { SigningKey } from '../platform/keyring/signing-keys.ts'
import type { Module } from '../platform/module.ts'
import { consentRoutes } from './routes.ts'

/** Transaction confirmation with dynamic linking, signed receipts. */
export const consentModule: Module<{ receiptKey: SigningKey; simSwap: () => SimSwapProvider; sendSms: SmsSender }> = {
  name: 'consent',
  routes: (app, ctx, { receiptKey, simSwap, sendSms }) => consentRoutes(app, ctx, { receiptKey, simSwap, sendSms }),
}
