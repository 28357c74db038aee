import { existsSync } from 'node:fs'
import websocket from '@fastify/websocket'
import { type GuardChecks, type IntegrityGate, installAccessControl, streamAuthenticator } from './access.ts'
import { ArchiveMember, type ArchiveSink, parsePartition } from './archive/archive-member.ts'
import { archiveStoreSink } from './archive/archive-sink.ts'
import { archivedConversationSeqs } from './archive/archived.ts'
import { startArchiveChainer } from './archive/chainer.ts'
import { startEvidenceArchive } from './archive/evidence-feed.ts'
import { archiveKeyPackagesFromMember, archiveMemberPresence } from './archive/member-presence.ts'
import { archiveModule } from './archive/module.ts'
import { retentionPolicy } from './archive/retention.ts'
import { startAuditChainer } from './audit/chainer-timer.ts'
import { auditModule } from './audit/module.ts'
import { authModule } from './auth/module.ts'
import { carrierOAuth, operatorTokenSource } from './auth/operator-oauth.ts'
import { camaraSimSwap, type SimSwapProvider, SimSwapUnavailable } from './auth/sim-swap.ts'
import type { SmsSender } from './auth/sms-otp.ts'
import { openChannels } from './channels/channel-services.ts'
import { forgetPublicTexts } from './channels/message-search.ts'
import { channelsModule } from './channels/module.ts'
import type { ChannelDeps } from './channels/public-messages.ts'
import { sendTransactionalSms } from './channels/sms.ts'
import { consentModule } from './consent/module.ts'
import { handleSmsReply } from './consent/sms-confirmation.ts'
import { removeMemberEverywhere, requireConversationAccess } from './conversations/conversations.ts'
import { messageActions, streamAccess } from './conversations/message-actions.ts'
import { MessageLog } from './conversations/message-log.ts'
import { conversationsModule } from './conversations/module.ts'
import type { MessageRef } from './conversations/purge-expired-messages.ts'
import { type StreamAuthenticator, StreamHub } from './conversations/stream-hub.ts'
import { dataSubjectModule } from './data-subject/module.ts'
import { deskModule } from './desk/module.ts'
import { groupMessageAdmission } from './e2e/groups.ts'
import { e2eModule } from './e2e/module.ts'
import { idempotencyModule } from './idempotency/module.ts'
import type { EnrolmentAttestation } from './identity/devices.ts'
import { identityModule } from './identity/module.ts'
import type { DeviceRevocationHook } from './identity/routes.ts'
import { DeactivatedAppVersions } from './integrity/app-versions.ts'
import { type AttestationStatusList, openAttestationStatusList } from './integrity/attestation-status-list.ts'
import { enrolmentAttestation } from './integrity/enrolment-attestation.ts'
import { createHardwareVerifiers, type HardwareVerifiers } from './integrity/hardware-attestation.ts'
import { integrityModule } from './integrity/module.ts'
import { cachedIntegrityPolicy, integrityRequirement } from './integrity/policy.ts'
import { checkRequestAssertion } from './integrity/request-assertions.ts'
import { IntegrityTokenChecker } from './integrity/tokens.ts'
import { installRateLimits } from './limits/limiter.ts'
import { limitsModule } from './limits/module.ts'
import { pivotModule } from './pivot/module.ts'
import { invitePivot } from './pivot/pivot.ts'
import { openBus } from './platform/bus/open-bus.ts'
import type { Config } from './platform/config.ts'
import type { ServerContext } from './platform/context.ts'
import { type DatabaseHandle, migrateToLatest, openDatabase, whileDatabaseUnavailable } from './platform/db/database.ts'
import type { AccessTableRow } from './platform/http/access-rule.ts'
import { type App, createHttpServer } from './platform/http/fastify.ts'
import { healthModule } from './platform/http/health-routes.ts'
import { serveMetrics } from './platform/http/metrics-endpoint.ts'
import type { KeyProvider } from './platform/keyring/key-provider.ts'
import { Keyring } from './platform/keyring/keyring.ts'
import { openArchiveKeyProvider, openKeyProvider } from './platform/keyring/open-provider.ts'
import {
  openSigningKey,
  type SigningKey,
  type SigningKeyPurpose,
  TenantSigningKeys,
} from './platform/keyring/signing-keys.ts'
import { createLogger, type Logger } from './platform/logging.ts'
import { createMetrics } from './platform/metrics.ts'
import { type Module, registerModules } from './platform/module.ts'
import { startPeriodicTask } from './platform/periodic-task.ts'
import { startTracing } from './platform/tracing.ts'
import { refuseDevSeededDatabase, seedDemoBank } from './seed.ts'
import { tenancyModule } from './tenancy/module.ts'
import { webModule } from './web/module.ts'
import { startWebhookDelivery } from './webhooks/delivery.ts'

/** What the assembly gives the modules: each module's own needs are a part of this. */
interface Services {
  database: DatabaseHandle
  draining: () => boolean
  archiveMemberState: () => Promise<'this node' | 'running' | 'none'>
  wipeKey: SigningKey
  onDeviceRevoked: DeviceRevocationHook
  messageLog: MessageLog
  hub: StreamHub
  isArchived: (refs: MessageRef[]) => Promise<Set<string>>
  secureRetentionDays: (tenantId: string) => Promise<number>
  forgetMessageTexts: (refs: MessageRef[]) => Promise<void>
  credentialKey: SigningKey
  prepareArchive: (tenantId: string) => Promise<void> | undefined
  channelDeps: ChannelDeps
  listeningUrl: () => string
  publicUrl: () => string
  simSwap: () => SimSwapProvider
  sendSms: SmsSender
  receiptKeys: TenantSigningKeys
  integrityTokenKey: SigningKey
  deactivatedAppVersions: DeactivatedAppVersions
  attestationStatus: AttestationStatusList | undefined
  hardwareVerifiers: HardwareVerifiers
  enrolmentAttestation: EnrolmentAttestation
  archiveKeys: TenantSigningKeys
}

/** The capabilities, in the order their routes register. Adding a capability is adding its folder and a line here. */
export const modules: readonly Module<Services>[] = [
  healthModule,
  tenancyModule,
  limitsModule,
  idempotencyModule,
  identityModule,
  conversationsModule,
  e2eModule,
  auditModule,
  channelsModule,
  pivotModule,
  authModule,
  consentModule,
  integrityModule,
  archiveModule,
  dataSubjectModule,
  deskModule,
  webModule,
]

export interface RunningServer {
  readonly app: App
  readonly ctx: ServerContext
  /** The base URL the server listens on, e.g. http://127.0.0.1:8080 */
  readonly url: string
  /** Every route and who may call it, as the modules declared them (`strongroom routes` prints it). */
  readonly accessTable: readonly AccessTableRow[]
  /** Chains the audit events recorded so far (the chainer otherwise does so within a quarter second). */
  flushAudit(): Promise<void>
  /** Links the archive records appended so far into their chains (the chainer otherwise does so within a second). */
  flushArchive(): Promise<void>
  /** Delivers the webhooks that are due now (the delivery loop otherwise does so twice a second). */
  flushWebhooks(): Promise<void>
  /** Runs every module's housekeeping now (it otherwise runs once a minute). */
  flushHousekeeping(): Promise<void>
  /** The archive member on this node, when it runs here. */
  readonly archiveMember: ArchiveMember | undefined
  /** Where this node's KEK and signing keys live (the key file or the HSM). */
  readonly keyProvider: KeyProvider
  close(): Promise<void>
}

interface StartOptions {
  logger?: Logger
  inMemoryDatabase?: boolean
  database?: DatabaseHandle
  archiveSink?: ArchiveSink
}

const HOUSEKEEPING_MS = 60_000
/** How long a starting node waits for an unreachable database before it gives up and exits. */
const STARTUP_DATABASE_DEADLINE_MS = 120_000

/**
 * Opens the key provider, the database (migrating it), the bus, and serves HTTP and WebSocket until closed.
 * Everything the server holds is reached through the returned handle.
 */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const platform = await openPlatform(config, options)
  const { ctx, database } = platform
  const keys = await openSigningKeys(platform)
  // base64 makes a body about 4/3 of the ciphertext; the rest is room for the JSON around it.
  const bodyLimit = Math.ceil((config.maxMessageBytes * 4) / 3) + 16 * 1024
  const stopTracing = config.tracing === 'otlp' ? await startTracing('strongroom') : undefined
  const app = await createHttpServer({
    logger: ctx.log,
    metrics: ctx.metrics,
    bodyLimit,
    trustProxy: config.trustProxy,
    tracing: stopTracing !== undefined,
  })
  const checks = guardChecks(ctx)
  // The limit per IP address runs before authentication, the others after it.
  const rateLimits = installRateLimits(app, ctx)
  const accessTable = installAccessControl(app, ctx, checks)
  const hubAuthenticator = streamAuthenticator(ctx, checks, keys.wipe, {
    stream: streamAccess,
    read: messageActions.read,
  })
  const running = await startServices(platform, keys, {
    gate: checks.gate,
    hubAuthenticator,
    archiveSink: options.archiveSink,
  })
  const { services, archiveMember } = running

  // Shutdown order: tell stream clients where to resume (1012), let in-flight requests finish, commit what is
  // queued, then let go of the bus and the database.
  await app.register(websocket, {
    options: { maxPayload: bodyLimit },
    preClose: async () => {
      running.draining = true
      ctx.metrics.drains.inc()
      ctx.log.info('draining: readiness fails, streams are told where to resume, queued messages commit')
      await running.housekeeping.stop()
      await services.hub.close()
    },
  })
  app.addHook('onClose', async () => {
    // Unbinds from the SMSCs after storing what they delivered, while the message log still takes it.
    await services.channelDeps.smppLinks.close()
    await services.messageLog.close()
    await rateLimits.close()
    await archiveMember?.stop()
    await running.evidenceArchive?.stop()
    await running.archiveChainer.stop()
    await running.auditChainer.stop()
    await running.webhooks.stop()
    checks.gate.deactivated.close()
    await platform.close()
    // Last: the spans of what closing committed and delivered are exported too.
    await stopTracing?.()
  })
  const metricsEndpoint = await serveMetrics(app, config, ctx.metrics)
  app.addHook('onClose', () => metricsEndpoint.close())
  await registerModules(app, modules, ctx, services)

  const address = await app.listen({ port: config.port, host: config.host })
  await services.channelDeps.smppLinks.start()
  const url = running.outside.listening(address.replace('[::1]', 'localhost'))
  ctx.log.info(
    { url, metrics: metricsEndpoint.url, mode: config.mode, database: database.kind, bus: ctx.bus.kind },
    'strongroom listening',
  )
  return {
    app,
    ctx,
    url,
    accessTable,
    flushAudit: () => running.auditChainer.flush(),
    flushArchive: async () => {
      await archiveMember?.idle()
      await running.auditChainer.flush()
      await running.evidenceArchive?.flush()
      await running.archiveChainer.flush()
    },
    flushWebhooks: () => running.webhooks.flush(),
    flushHousekeeping: () => running.housekeeping.flush(),
    archiveMember,
    keyProvider: platform.keyProvider,
    close: () => app.close(),
  }
}

/** What the guard consults for every request and stream frame, kept per node so that a check costs little. */
function guardChecks(ctx: ServerContext): GuardChecks {
  const policyOf = cachedIntegrityPolicy(ctx)
  return {
    gate: {
      tokens: new IntegrityTokenChecker(ctx),
      deactivated: new DeactivatedAppVersions(ctx),
      requestAssertion: (device, request) => checkRequestAssertion(ctx, device, request),
      policyOf,
    },
    integrityRequired: integrityRequirement(ctx, policyOf),
    requireMember: (principal, conversationId) => requireConversationAccess(ctx, principal, conversationId),
  }
}

type Platform = Awaited<ReturnType<typeof openPlatform>>
type SigningKeys = Awaited<ReturnType<typeof openSigningKeys>>

/**
 * The server's signing keys (created on first use, rotated by `strongroom keys rotate`): one a purpose for the
 * deployment, and each bank's own for its receipts and checkpoints, opened when first needed.
 */
async function openSigningKeys({ ctx, keyProvider, startupStep }: Platform) {
  const key = (purpose: SigningKeyPurpose) => startupStep(() => openSigningKey(ctx.db, keyProvider, purpose))
  const perBank = (purpose: SigningKeyPurpose) => new TenantSigningKeys(ctx.db, keyProvider, purpose)
  return {
    wipe: await key('wipe-command'),
    audit: perBank('audit-checkpoint'),
    archive: perBank('archive-checkpoint'),
    receipt: perBank('consent-receipt'),
    integrity: await key('integrity-token'),
    credential: await key('mls-credential'),
  }
}

/**
 * What the modules share at run time (the message log, the stream hub, the channels, the archive member), and the
 * work that runs in the background: housekeeping from every module, the chainers, webhook delivery.
 */
async function startServices(
  { ctx, database, startupStep }: Platform,
  keys: SigningKeys,
  parts: { gate: IntegrityGate; hubAuthenticator: StreamAuthenticator; archiveSink: ArchiveSink | undefined },
) {
  const { config } = ctx
  const messageLog = new MessageLog(ctx, groupMessageAdmission)
  const outside = externalServices(config)
  const channelDeps: ChannelDeps = openChannels(ctx, {
    messageLog,
    env: { publicUrl: outside.publicUrl, simulatorUrl: outside.simulatorUrl },
    smsReplyHandlers: [
      (reply) => handleSmsReply(ctx, { receiptKeys: keys.receipt, simSwap: outside.simSwap() }, reply),
    ],
    inviteToSecureChannel: (invitation) => invitePivot(ctx, channelDeps, invitation),
  })
  const archiveMember = config.archiveMember
    ? await ArchiveMember.start(ctx, {
        credentialKey: keys.credential,
        kek: ctx.archiveKek as KeyProvider,
        sink: parts.archiveSink ?? archiveStoreSink(ctx),
        partition: parsePartition(config.archivePartition),
      })
    : undefined
  // Not a reason to refuse to start (the archive's node may start after this one, or be upgraded meanwhile): said in
  // the log at start, in /readyz, and by the problem a new secure conversation gets while none runs.
  const archiveMemberState = async () =>
    archiveMember ? 'this node' : (await archiveMemberPresence(ctx)).running ? 'running' : 'none'
  if ((await startupStep(archiveMemberState)) === 'none') {
    ctx.log.warn(
      'no node runs the compliance archive member: secure conversations cannot be created until one does ' +
        '(STRONGROOM_ARCHIVE_MEMBER=true on one node)',
    )
  }
  const attestationStatus = await openAttestationStatusList(ctx)
  const hardwareVerifiers = createHardwareVerifiers(config, attestationStatus)
  const services: Services = {
    database,
    draining: () => running.draining,
    archiveMemberState,
    wipeKey: keys.wipe,
    onDeviceRevoked: removeMemberEverywhere,
    messageLog,
    hub: new StreamHub(ctx, messageLog, parts.hubAuthenticator),
    isArchived: (refs) => archivedConversationSeqs(ctx.db, refs),
    secureRetentionDays: async (tenantId) => (await retentionPolicy(ctx.db, tenantId))['secure-message'],
    forgetMessageTexts: (refs) => forgetPublicTexts(ctx.db, refs),
    credentialKey: keys.credential,
    prepareArchive: (tenantId) =>
      archiveMember ? archiveMember.ensureTenant(tenantId) : archiveKeyPackagesFromMember(ctx, tenantId),
    channelDeps,
    listeningUrl: outside.listeningUrl,
    publicUrl: outside.publicUrl,
    simSwap: outside.simSwap,
    sendSms: (sms) => sendTransactionalSms(ctx, channelDeps, sms),
    receiptKeys: keys.receipt,
    integrityTokenKey: keys.integrity,
    deactivatedAppVersions: parts.gate.deactivated,
    attestationStatus,
    hardwareVerifiers,
    enrolmentAttestation: enrolmentAttestation(ctx, hardwareVerifiers),
    archiveKeys: keys.archive,
  }
  const running = {
    draining: false,
    services,
    outside,
    archiveMember,
    // Consents, pivots and device events reach the archive from the audit chain, read by one archive process only.
    evidenceArchive:
      archiveMember && parsePartition(config.archivePartition).index === 0 ? startEvidenceArchive(ctx) : undefined,
    housekeeping: startPeriodicTask({
      name: 'housekeeping',
      intervalMs: HOUSEKEEPING_MS,
      pass: () => Promise.all(modules.map((module) => module.housekeeping?.(ctx, services))),
      log: ctx.log,
    }),
    auditChainer: startAuditChainer(ctx, keys.audit),
    archiveChainer: startArchiveChainer(ctx, keys.archive),
    webhooks: startWebhookDelivery(ctx, keys.receipt),
  }
  return running
}

/**
 * The URLs the server is known by, and the carrier SIM-swap API: both are settled only once the server listens
 * (in dev, the built-in simulators answer on the server's own port).
 */
function externalServices(config: Config) {
  // Known once listening; providers and customers may know us by another URL (STRONGROOM_PUBLIC_URL).
  let listeningUrl = ''
  let simSwap: SimSwapProvider = config.simSwapUrl
    ? camaraSimSwap({ baseUrl: config.simSwapUrl, accessToken: carrierAccessToken(config) })
    : {
        check: () => Promise.reject(new SimSwapUnavailable('not configured')),
        retrieveDate: () => Promise.reject(new SimSwapUnavailable('not configured')),
      }
  return {
    listeningUrl: () => listeningUrl,
    publicUrl: () => config.publicUrl ?? listeningUrl,
    // In dev, channels without a provider URL of their own send to the channel simulator.
    simulatorUrl:
      config.mode === 'dev' ? (connector: string) => `${listeningUrl}/dev/simulator/provider/${connector}` : undefined,
    simSwap: () => simSwap,
    /** Settles the URLs once the server listens at `url`; gives `url`. */
    listening(url: string): string {
      listeningUrl = url
      // In dev without a carrier, the built-in simulator answers, through the same CAMARA wire format.
      if (config.mode === 'dev' && !config.simSwapUrl)
        simSwap = camaraSimSwap({ baseUrl: `${url}/dev/camara/sim-swap/v0` })
      return url
    },
  }
}

/**
 * The platform under the capabilities: the key provider, the database (migrated, waited for at start-up), the bus
 * and the archive's key, as one context. `close` lets go of the bus and the database (unless the caller owns it).
 */
async function openPlatform(config: Config, options: StartOptions) {
  const log = options.logger ?? createLogger(config.logLevel)
  const metrics = createMetrics()
  const keyProvider = await openKeyProvider(config, { create: config.mode === 'dev' })
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
  const archiveKekHere =
    config.archiveKeyProvider === 'pkcs11' ||
    (archiveKeyFile && (config.archiveMember || config.mode === 'dev' || existsSync(archiveKeyFile)))
  const archiveKek = archiveKekHere
    ? await openArchiveKeyProvider(config, { create: config.mode === 'dev' })
    : undefined
  const keyring = new Keyring(database.db, keyProvider)
  // A data key rotated by `strongroom keys rotate --data-keys` is used from the next write, on every node.
  const stopFollowingKeyRotations = keyring.followRotations(bus)
  const ctx: ServerContext = { config, db: database.db, bus, keyring, archiveKek, metrics, log }
  if (config.mode === 'dev' && config.devSeed) await seedDemoBank(ctx)
  return {
    ctx,
    database,
    keyProvider,
    startupStep,
    async close() {
      stopFollowingKeyRotations()
      await bus.close()
      stopWatchingDatabase()
      if (!options.database) await database.close()
      await keyProvider.close()
    },
  }
}

/** The bearer token for the carrier's CAMARA APIs: from its OAuth token endpoint when configured, else a static one. */
function carrierAccessToken(config: Config) {
  const oauth = carrierOAuth(config)
  return oauth ? operatorTokenSource(oauth) : config.simSwapToken
}
