import type { SimSwapProvider } from '../auth/sim-swap.ts'
import type { SmsSender } from '../auth/sms-otp.ts'
import type { ChannelDeps } from '../channels/public-messages.ts'
import type { Module } from '../platform/module.ts'
import { announceExpiredLinks } from './pivot.ts'
import { pivotRoutes, pivotStepUpRoutes } from './routes.ts'

/** The move from a public channel into the secure one: invitation links, redemption, a browser's step-up. */
export const pivotModule: Module<{ channelDeps: ChannelDeps; simSwap: () => SimSwapProvider; sendSms: SmsSender }> = {
  name: 'pivot',
  routes: async (app, ctx, { channelDeps, simSwap, sendSms }) => {
    await app.register(async (scope) => pivotRoutes(scope, ctx, channelDeps))
    await app.register(async (scope) => pivotStepUpRoutes(scope, ctx, channelDeps, { simSwap, sendSms }))
  },
  housekeeping: (ctx) => announceExpiredLinks(ctx),
}
