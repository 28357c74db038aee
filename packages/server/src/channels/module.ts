import type { Module } from '../platform/module.ts'
import { channelConfigEncryptedColumns } from './channel-config.ts'
import { envelopeEncryptedColumns } from './envelope.ts'
import { channelIdentityEncryptedColumns } from './identities.ts'
import type { ChannelDeps } from './public-messages.ts'
import { channelRoutes } from './routes.ts'
import { channelSimulatorRoutes, type SimulatorUrls } from './simulator.ts'
import { suspiciousReportEncryptedColumns } from './suspicious-reports.ts'
import { channelWebhookRoutes } from './webhook-routes.ts'

/** Public-channel connectors and their webhooks, data-loss prevention, and (dev mode) the channel simulator. */
export const channelsModule: Module<{ channelDeps: ChannelDeps } & SimulatorUrls> = {
  name: 'channels',
  routes: async (app, ctx, { channelDeps, listeningUrl, publicUrl }) => {
    await app.register(async (scope) => channelRoutes(scope, ctx, channelDeps))
    await app.register(async (scope) => channelWebhookRoutes(scope, ctx, channelDeps))
    if (ctx.config.mode === 'dev') {
      await app.register(async (scope) => channelSimulatorRoutes(scope, ctx, { listeningUrl, publicUrl }))
    }
  },
  encryptedColumns: [
    ...channelIdentityEncryptedColumns,
    ...channelConfigEncryptedColumns,
    ...envelopeEncryptedColumns,
    ...suspiciousReportEncryptedColumns,
  ],
}
