import { existsSync } from 'node:fs'
import websocket from '@fastify/websocket'
import { authenticate, checkDeviceIntegrity, type IntegrityGate, installAccessControl } from './access.ts'
import { ArchiveMember, type ArchiveSink, parsePartition } from './archive/archive-member.ts'
import { archiveStoreSink } from './archive/archive-sink.ts'
import { archivedConversationSeqs } from './archive/archived.ts'
import { startArchiveChainer } from './archive/chainer.ts'
import { startEvidenceArchive } from './archive/evidence-feed.ts'
import { archiveKeyPackagesFromMember, archiveMemberPresence } from './archive/member-presence.ts'
import { expireArchiveRecords } from './archive/retention.ts'
import { archiveRoutes } from './archive/routes.ts'
import { startAuditChainer } from './audit/chainer-timer.ts'
import { auditRoutes } from './audit/routes.ts'
import { purgeExpiredPasskeyChallenges } from './auth/passkey-challenges.ts'
import { passkeyRoutes } from './auth/passkey-routes.ts'
import { authRoutes } from './auth/routes.ts'
import { camaraSimSwap, type SimSwapProvider, SimSwapUnavailable } from './auth/sim-swap.ts'
import { simSwapSimulatorRoutes } from './auth/sim-swap-simulator.ts'
import type { SmsSender } from './auth/sms-otp.ts'
import { openChannels } from './channels/channel-services.ts'
import type { ChannelDeps } from './channels/public-messages.ts'
import { channelRoutes } from './channels/routes.ts'
import { channelSimulatorRoutes } from './channels/simulator.ts'
import { sendTransactionalSms } from './channels/sms.ts'
import { channelWebhookRoutes } from './channels/webhook-routes.ts'
import { consentRoutes } from './consent/routes.ts'
import { handleSmsReply } from './consent/sms-confirmation.ts'
import { removeMemberEverywhere } from './conversations/conversations.ts'
import { MessageLog } from './conversations/message-log.ts'
import { purgeExpiredMessages } from './conversations/purge-expired-messages.ts'
import { retentionRoutes } from './conversations/retention-routes.ts'
import { conversationRoutes } from './conversations/routes.ts'
import { StreamHub } from './conversations/stream-hub.ts'
import { dataSubjectRoutes } from './data-subject/routes.ts'
import { groupMessageAdmission } from './e2e/groups.ts'
import { e2eRoutes } from './e2e/routes.ts'
import { refusalOfDeviceProof } from './identity/device-key-refusal.ts'
import { purgeExpiredAccessTokens } from './identity/devices.ts'
import { purgeExpiredProofs } from './identity/dpop.ts'
import { identityRoutes } from './identity/routes.ts'
import { DeactivatedAppVersions } from './integrity/app-versions.ts'
import { purgeExpiredChallenges } from './integrity/challenges.ts'
import { createHardwareVerifiers } from './integrity/hardware-attestation.ts'
import { cachedIntegrityPolicy, integrityRequirement } from './integrity/policy.ts'
import { integrityRoutes } from './integrity/routes.ts'
import { IntegrityTokenChecker } from './integrity/tokens.ts'
import { checkWebDevice } from './integrity/web-devices.ts'
import { invitePivot } from './pivot/pivot.ts'
import { pivotRoutes, pivotStepUpRoutes } from './pivot/routes.ts'
import { openBus } from './platform/bus/open-bus.ts'
import type { Config } from './platform/config.ts'
import type { ServerContext } from './platform/context.ts'
import { type DatabaseHandle, migrateToLatest, openDatabase, whileDatabaseUnavailable } from './platform/db/database.ts'
import { type App, createHttpServer } from './platform/http/fastify.ts'
import { serveMetrics } from './platform/http/metrics-endpoint.ts'
import { Problem } from './platform/http/problems.ts'
import { Keyring } from './platform/keyring/keyring.ts'
import { LocalKeyFileProvider } from './platform/keyring/local-key-file.ts'
import { openSigningKey } from './platform/keyring/signing-keys.ts'
import { createLogger, type Logger } from './platform/logging.ts'
import { createMetrics } from './platform/metrics.ts'
import { startPeriodicTask } from './platform/periodic-task.ts'
import { refuseDevSeededDatabase, seedDemoBank } from './seed.ts'
import { purgeExpiredClientCredentials } from './tenancy/api-clients.ts'
import { oauthRoutes } from './tenancy/oauth-routes.ts'
import { tenancyRoutes } from './tenancy/routes.ts'
import { webRoutes } from './web/routes.ts'
import { startWebhookDelivery } from './webhooks/delivery.ts'

export interface RunningServer {
  readonly app: App
  readonly ctx: ServerContext
  /** The base URL the server listens on, e.g. http://127.0.0.1:8080 */
  readonly url: string
  /** Chains the audit events recorded so far (the chainer otherwise does so within a quarter second). */
  flushAudit(): Promise<void>
  /** Links the archive records appended so far into their chains (the chainer otherwise does so within a second). */
  flushArchive(): Promise<void>
  /** Delivers the webhooks that are due now (the delivery loop otherwise does so twice a second). */
  flushWebhooks(): Promise<void>
  /** The archive member on this node, when it runs here. */
  readonly archiveMember: ArchiveMember | undefined
  close(): Promise<void>
}

const HOUSEKEEPING_MS = 60_000
/** How long a starting node waits for an unreachable database before it gives up and exits. */
const STARTUP_DATABASE_DEADLINE_MS = 120_000

/**
 * Opens the key provider, the database (migrating it), the bus, and serves HTTP and WebSocket until closed.
 * Everything the server holds is reached through the returned handle.
 */
export async function startServer(
  config: Config,
  options: { logger?: Logger; inMemoryDatabase?: boolean; database?: DatabaseHandle; archiveSink?: ArchiveSink } = {},
): Promise<RunningServer> {
  const log = options.logger ?? createLogger(config.logLevel)
  const metrics = createMetrics()
  const keyProvider = await LocalKeyFileProvider.open(config.keyFile, { create: config.mode === 'dev' })
  const database = options.database ?? (await openDatabase(config, { inMemory: options.inMemoryDatabase ?? false }))
  const stopWatchingDatabase = database.onConnectionLost((error) => {
    metrics.databaseConnectionsLost.inc()
    log.warn({ code: (error as { code?: string }).code, reason: error.message }, 'database connection lost')
  })
  // Start-up's reads and get-or-create writes are safe to repeat; they wait for a database that is not there yet or
  // drops the connection meanwhile.
  const startupStep = <T>(step: () => Promise<T>) =>
    whileDatabaseUnavailable(step, {
      deadlineMs: STARTUP_DATABASE_DEADLINE_MS,
      onRetry: (error, delayMs) =>
        log.warn({ code: (error as { code?: string }).code, retryInMs: delayMs }, 'database unavailable at start-up'),
    })
  const applied = await startupStep(() => migrateToLatest(database.db))
  if (applied.length > 0) log.info({ migrations: applied }, 'database migrated')
  if (config.mode === 'production') {
    await startupStep(() => refuseDevSeededDatabase({ db: database.db, config, log })).catch(async (error: unknown) => {
      if (!options.database) await database.close()
      throw error
    })
  }
  const bus = await openBus(config)
  metrics.busConnected.set(bus.connected() ? 1 : 0)
  bus.onDisconnect(() => {
    metrics.busConnected.set(0)
    metrics.busDisconnects.inc()
    log.warn({ bus: bus.kind }, 'bus disconnected: live delivery from other nodes waits until it is back')
  })
  bus.onReconnect(() => {
    metrics.busConnected.set(1)
    metrics.busReconnects.inc()
    log.info({ bus: bus.kind }, 'bus reconnected: streams re-read what they may have missed')
  })
  // The archive's own KEK: every node that archives (the archive member, public-channel intake) or reads the archive
  // needs it; a node without the file neither writes nor reads archive content.
  // Production names the file or has none (config.ts): it never picks one up from the directory it started in.
  const archiveKeyFile = config.archiveKeyFile
  const archiveKek =
    archiveKeyFile && (config.archiveMember || config.mode === 'dev' || existsSync(archiveKeyFile))
      ? await LocalKeyFileProvider.open(archiveKeyFile, { create: config.mode === 'dev' })
      : undefined
  const ctx: ServerContext = {
    config,
    db: database.db,
    bus,
    keyring: new Keyring(database.db, keyProvider),
    archiveKek,
    metrics,
    log,
  }
  if (config.mode === 'dev' && config.devSeed) await seedDemoBank(ctx)

  // base64 makes a body about 4/3 of the ciphertext; the rest is room for the JSON around it.
  const bodyLimit = Math.ceil((config.maxMessageBytes * 4) / 3) + 16 * 1024
  const app = await createHttpServer({ logger: log, metrics, bodyLimit, trustProxy: config.trustProxy })
  const integrityGate: IntegrityGate = {
    tokens: new IntegrityTokenChecker(ctx),
    deactivated: new DeactivatedAppVersions(ctx),
    policyOf: cachedIntegrityPolicy(ctx),
  }
  const integrityRequired = integrityRequirement(ctx, integrityGate.policyOf)
  installAccessControl(app, ctx, integrityGate, integrityRequired)

  const messageLog = new MessageLog(ctx, groupMessageAdmission(ctx))
  const wipeKey = await startupStep(() => openSigningKey(ctx.db, keyProvider, 'wipe-command'))
  const hub = new StreamHub(ctx, messageLog, async (frame, htu) => {
    const credentials = { authorization: frame.authorization, dpop: frame.dpop, htm: 'GET', htu }
    const principal = await authenticate(ctx, credentials).catch(async (error: unknown) => {
      // A revoked or suspended device reconnecting with its old token: answer with the wipe command or the
      // suspension, not a plain refusal that the SDK would retry.
      const [scheme, token] = frame.authorization.split(' ', 2)
      if (
        error instanceof Problem &&
        error.kind === 'auth/invalid-token' &&
        scheme?.toLowerCase() === 'dpop' &&
        token
      ) {
        const refusal = await refusalOfDeviceProof(ctx, wipeKey, frame.dpop, { htm: 'GET', htu, accessToken: token })
        if (refusal) throw refusal
      }
      throw error
    })
    if (principal.kind === 'device' && (await integrityRequired(principal.tenantId, 'GET /v1/stream'))) {
      // A browser has no integrity token: the tenant's policy for browsers decides instead.
      if (principal.deviceKind === 'web') {
        checkWebDevice(principal, 'GET /v1/stream', await integrityGate.policyOf(principal.tenantId))
        return { principal }
      }
      const { app } = await checkDeviceIntegrity(integrityGate, frame.integrity, principal, 'GET')
      return { principal, app }
    }
    return { principal }
  })
  let closing = false
  const housekeeping = startPeriodicTask({
    name: 'housekeeping',
    intervalMs: HOUSEKEEPING_MS,
    pass: () =>
      Promise.all([
        purgeExpiredProofs(ctx),
        purgeExpiredAccessTokens(ctx),
        purgeExpiredClientCredentials(ctx),
        purgeExpiredChallenges(ctx),
        purgeExpiredPasskeyChallenges(ctx),
        purgeExpiredMessages(ctx, { isArchived: (refs) => archivedConversationSeqs(ctx.db, refs) }),
        expireArchiveRecords(ctx.db, { batch: config.archiveExpiryBatch }),
      ]),
    log,
  })
  const auditChainer = startAuditChainer(
    ctx,
    await startupStep(() => openSigningKey(ctx.db, keyProvider, 'audit-checkpoint')),
  )
  const archiveSigner = await startupStep(() => openSigningKey(ctx.db, keyProvider, 'archive-checkpoint'))
  const archiveChainer = startArchiveChainer(ctx, archiveSigner)

  // Shutdown order: tell stream clients where to resume (1012), let in-flight requests finish, commit what is
  // queued, then let go of the bus and the database.
  await app.register(websocket, {
    options: { maxPayload: bodyLimit },
    preClose: async () => {
      closing = true
      metrics.drains.inc()
      log.info('draining: readiness fails, streams are told where to resume, queued messages commit')
      await housekeeping.stop()
      await hub.close()
    },
  })
  app.addHook('onClose', async () => {
    // Unbinds from the SMSCs after storing what they delivered, while the message log still takes it.
    await smppLinks.close()
    await messageLog.close()
    await archiveMember?.stop()
    await evidenceArchive?.stop()
    await archiveChainer.stop()
    await auditChainer.stop()
    await webhooks.stop()
    integrityGate.deactivated.close()
    await bus.close()
    stopWatchingDatabase()
    if (!options.database) await database.close()
  })

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }))
  // Ready means this node can serve: it is not draining and its database answers. The bus is not part of it: without
  // the bus a node still commits and delivers to its own sockets, and other nodes catch up when it is back; its
  // state is in /metrics and the logs.
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (closing) throw new Problem('server/unavailable', 'shutting down')
    if (!(await database.ready())) throw new Problem('server/unavailable', 'database not ready')
    return reply.send({
      status: 'ready',
      database: database.kind,
      bus: bus.kind,
      busConnected: bus.connected(),
      archiveMember: await archiveMemberState(),
    })
  })
  const metricsEndpoint = await serveMetrics(app, config, metrics)
  app.addHook('onClose', () => metricsEndpoint.close())
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(async (scope) => tenancyRoutes(scope, ctx))
  await app.register(async (scope) => oauthRoutes(scope, ctx))
  await app.register(async (scope) => identityRoutes(scope, ctx, { wipeKey, onRevoked: removeMemberEverywhere }))
  await app.register(async (scope) => conversationRoutes(scope, ctx, { messageLog, hub }))
  await app.register(async (scope) => retentionRoutes(scope, ctx))
  await app.register(async (scope) => auditRoutes(scope, ctx))
  // Known once listening; providers and customers may know us by another URL (STRONGROOM_PUBLIC_URL).
  let listeningUrl = ''
  const publicUrl = () => config.publicUrl ?? listeningUrl
  let simSwap: SimSwapProvider = {
    check: () => Promise.reject(new SimSwapUnavailable('not configured')),
    retrieveDate: () => Promise.reject(new SimSwapUnavailable('not configured')),
  }
  if (config.simSwapUrl) simSwap = camaraSimSwap({ baseUrl: config.simSwapUrl, accessToken: config.simSwapToken })
  const receiptKey = await startupStep(() => openSigningKey(ctx.db, keyProvider, 'consent-receipt'))
  const channelDeps: ChannelDeps = openChannels(ctx, {
    messageLog,
    env: {
      publicUrl,
      // In dev, channels without a provider URL of their own send to the channel simulator.
      simulatorUrl:
        config.mode === 'dev' ? (connector) => `${listeningUrl}/dev/simulator/provider/${connector}` : undefined,
    },
    smsReplyHandlers: [(reply) => handleSmsReply(ctx, { receiptKey, simSwap }, reply)],
    inviteToSecureChannel: (invitation) => invitePivot(ctx, channelDeps, invitation),
  })
  const smppLinks = channelDeps.smppLinks
  const sendSms: SmsSender = (sms) => sendTransactionalSms(ctx, channelDeps, sms)
  await app.register(async (scope) => channelRoutes(scope, ctx, channelDeps))
  await app.register(async (scope) => pivotRoutes(scope, ctx, channelDeps))
  await app.register(async (scope) => pivotStepUpRoutes(scope, ctx, channelDeps, { simSwap: () => simSwap, sendSms }))
  await app.register(async (scope) => channelWebhookRoutes(scope, ctx, channelDeps))
  if (config.mode === 'dev') {
    await app.register(async (scope) =>
      channelSimulatorRoutes(scope, ctx, { listeningUrl: () => listeningUrl, publicUrl }),
    )
  }
  await app.register(async (scope) => authRoutes(scope, ctx, { simSwap: () => simSwap, sendSms }))
  await app.register(async (scope) => passkeyRoutes(scope, ctx))
  const tokenKey = await startupStep(() => openSigningKey(ctx.db, keyProvider, 'integrity-token'))
  await app.register(async (scope) =>
    integrityRoutes(scope, ctx, {
      tokenKey,
      verifiers: createHardwareVerifiers(config),
      deactivated: integrityGate.deactivated,
    }),
  )
  if (config.mode === 'dev') await app.register(async (scope) => simSwapSimulatorRoutes(scope))
  const credentialKey = await startupStep(() => openSigningKey(ctx.db, keyProvider, 'mls-credential'))
  const archiveMember = config.archiveMember
    ? await ArchiveMember.start(ctx, {
        credentialKey,
        kek: archiveKek as LocalKeyFileProvider,
        sink: options.archiveSink ?? archiveStoreSink(ctx),
        partition: parsePartition(config.archivePartition),
      })
    : undefined
  // Not a reason to refuse to start (the archive's node may start after this one, or be upgraded meanwhile): said in
  // the log at start, in /readyz, and by the problem a new secure conversation gets while none runs.
  const archiveMemberState = async () =>
    archiveMember ? 'this node' : (await archiveMemberPresence(ctx)).running ? 'running' : 'none'
  if ((await startupStep(archiveMemberState)) === 'none') {
    log.warn(
      'no node runs the compliance archive member: secure conversations cannot be created until one does ' +
        '(STRONGROOM_ARCHIVE_MEMBER=true on one node)',
    )
  }
  // Consents, pivots and device events reach the archive from the audit chain, read by one archive process only.
  const evidenceArchive =
    archiveMember && parsePartition(config.archivePartition).index === 0 ? startEvidenceArchive(ctx) : undefined
  await app.register(async (scope) =>
    e2eRoutes(scope, ctx, {
      credentialKey,
      prepareArchive: (tenantId) =>
        archiveMember ? archiveMember.ensureTenant(tenantId) : archiveKeyPackagesFromMember(ctx, tenantId),
    }),
  )
  await app.register(async (scope) => consentRoutes(scope, ctx, { receiptKey, simSwap: () => simSwap, sendSms }))
  await app.register(async (scope) => webRoutes(scope, ctx))
  await app.register(async (scope) => archiveRoutes(scope, ctx, { signer: archiveSigner }))
  await app.register(async (scope) => dataSubjectRoutes(scope, ctx))
  const webhooks = startWebhookDelivery(ctx, receiptKey)

  const address = await app.listen({ port: config.port, host: config.host })
  await smppLinks.start()
  const url = address.replace('[::1]', 'localhost')
  listeningUrl = url
  // In dev without a carrier, the built-in simulator answers, through the same CAMARA wire format.
  if (config.mode === 'dev' && !config.simSwapUrl) simSwap = camaraSimSwap({ baseUrl: `${url}/dev/camara/sim-swap/v0` })
  log.info(
    { url, metrics: metricsEndpoint.url, mode: config.mode, database: database.kind, bus: bus.kind },
    'strongroom listening',
  )
  return {
    app,
    ctx,
    url,
    flushAudit: () => auditChainer.flush(),
    flushArchive: async () => {
      await archiveMember?.idle()
      await auditChainer.flush()
      await evidenceArchive?.flush()
      await archiveChainer.flush()
    },
    flushWebhooks: () => webhooks.flush(),
    archiveMember,
    close: () => app.close(),
  }
}
