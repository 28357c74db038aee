import type { ChannelSettings as ChannelView } from '@strongroom/sdk/protocol'
import { recordAudit } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { Principal } from '../platform/http/principal.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { secretHash } from '../platform/ids.ts'
import type { EncryptedColumn } from '../platform/keyring/reencrypt.ts'
import { findStaff } from '../tenancy/staff.ts'
import type { Connector, ConnectorKind, WebhookConnector, WebhookConnectorKind } from './connectors/connector.ts'
import { type GoogleAccessTokens, parseServiceAccountKey, RBM_SCOPE } from './connectors/google-access-tokens.ts'
import { messengerConnector } from './connectors/messenger.ts'
import { rbmConnector } from './connectors/rbm.ts'
import type { TransportOptions } from './connectors/retry.ts'
import { twilioConnector } from './connectors/twilio.ts'
import { type WhatsAppConnector, whatsAppConnector } from './connectors/whatsapp.ts'

/** What is secret about a channel: sealed with the tenant data key, never returned, logged or audited. */
export interface ChannelSecrets {
  /** Twilio's auth token (signs webhooks, authenticates sends). */
  authToken?: string
  /** Meta's app secret (signs webhooks, appsecret_proof). */
  appSecret?: string
  /** Meta's page or system-user access token. */
  accessToken?: string
  /** The token Meta echoes in its subscription handshake. */
  verifyToken?: string
  /** The SMPP bind's password (SMPP 3.4 allows at most 8 characters). */
  password?: string
  /** RBM: the webhook's client token, which keys X-Goog-Signature. */
  clientToken?: string
  /** RBM: the agent's service account JSON key, for access tokens (OAuth 2.0 JWT bearer grant, RFC 7523). */
  serviceAccountKey?: string
}

export interface ChannelSettings {
  /** Twilio's account SID. */
  accountSid?: string
  /** The Graph API version for WhatsApp and Messenger. */
  apiVersion?: string
  /** The staff member who joins every new public conversation of this channel (the team's queue owner). */
  agentId?: string
  /** Dev mode only: the provider API's base URL (the channel simulator); production always talks to the provider. */
  baseUrl?: string
  /** SMPP: the SMSC's host and port (in production, one the operator allowed in STRONGROOM_SMPP_HOSTS). */
  host?: string
  port?: number
  /** SMPP over TLS. */
  tls?: boolean
  /** SMPP: the bind's system_id and, when the SMSC wants one, system_type. */
  systemId?: string
  systemType?: string
  /** RBM: the agent's display name, which Google verified at launch and phones show with a verified badge. */
  verifiedSender?: string
  /** Messenger: Meta granted the Human Agent permission, so agents may answer for 7 days with the HUMAN_AGENT tag. */
  humanAgentTag?: boolean
}

export interface ChannelConfig {
  tenantId: string
  connector: ConnectorKind
  /** The bank's number (Twilio, SMPP), WhatsApp phone-number id or Facebook page id. */
  address: string
  settings: ChannelSettings
  secrets: ChannelSecrets
}

/** A channel whose provider calls our webhooks. */
export type WebhookChannelConfig = ChannelConfig & { connector: WebhookConnectorKind }

const REQUIRED_SECRETS: Record<ConnectorKind, (keyof ChannelSecrets)[]> = {
  twilio: ['authToken'],
  whatsapp: ['appSecret', 'accessToken', 'verifyToken'],
  messenger: ['appSecret', 'accessToken', 'verifyToken'],
  smpp: ['password'],
  rbm: ['clientToken'],
}

const secretsField = (connector: ConnectorKind) => ({ table: 'channel_configs', column: 'secrets', rowId: connector })

/** The channel credentials, sealed by the keyring: for `keys reencrypt` and `keys retire`. */
export const channelConfigEncryptedColumns: EncryptedColumn[] = [
  {
    table: 'channel_configs',
    column: 'secrets',
    key: ['connector'],
    field: (row) => secretsField(row.connector as ConnectorKind),
  },
]

type Ctx = Pick<ServerContext, 'db' | 'keyring' | 'config'>

/**
 * Sets a tenant's channel: its receiving address, settings and secrets. Secrets not given keep their stored value,
 * so that rotating one does not mean re-entering the others. Audited with the names of the secrets changed only.
 */
export async function configureChannel(
  ctx: Ctx,
  principal: Principal,
  connector: ConnectorKind,
  input: { address: string; settings: ChannelSettings; secrets: ChannelSecrets },
): Promise<ChannelView> {
  const tenantId = principal.tenantId
  if (input.settings.baseUrl !== undefined && ctx.config.mode !== 'dev') {
    throw new Problem('request/invalid', 'baseUrl is for the dev channel simulator only')
  }
  if (input.settings.agentId && !(await findStaff(ctx, tenantId, { id: input.settings.agentId }))) {
    throw new Problem('request/not-found', 'no such staff member')
  }
  checkConnectorSettings(ctx.config, connector, input.address, input.settings)
  const now = new Date()
  return ctx.db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('channel_configs')
      .select('secrets')
      .where('tenant_id', '=', tenantId)
      .where('connector', '=', connector)
      .forUpdate()
      .executeTakeFirst()
    const stored: ChannelSecrets = existing
      ? JSON.parse(await ctx.keyring.decryptText(tenantId, secretsField(connector), existing.secrets))
      : {}
    const secrets: ChannelSecrets = { ...stored, ...input.secrets }
    const missing = REQUIRED_SECRETS[connector].filter((name) => !secrets[name])
    if (missing.length > 0) throw new Problem('request/invalid', `missing secrets: ${missing.join(', ')}`)
    if (connector === 'rbm') checkRbmCredentials(secrets)
    const handshakeToken = secrets.verifyToken ?? secrets.clientToken
    const sealed = await ctx.keyring.encrypt(tenantId, secretsField(connector), JSON.stringify(secrets))
    const values = {
      receiving_address: input.address,
      settings: JSON.stringify(input.settings),
      secrets: sealed,
      // Meta's verify token, or RBM's client token, which its webhook handshake sends: found by its hash.
      verify_token_hash: handshakeToken ? secretHash(handshakeToken) : null,
      updated_at: now,
    }
    try {
      await trx
        .insertInto('channel_configs')
        .values({ tenant_id: tenantId, connector, created_at: now, ...values })
        .onConflict((oc) => oc.columns(['tenant_id', 'connector']).doUpdateSet(values))
        .execute()
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new Problem('tenancy/duplicate', 'this receiving address is configured for another tenant')
      }
      throw error
    }
    await recordAudit(trx, {
      tenantId,
      actor: actorOf(principal),
      action: 'channels.configure',
      target: { kind: 'channel', id: connector },
      outcome: 'success',
      details: { secretsChanged: Object.keys(input.secrets).sort() },
    })
    return viewOf(connector, input.address, input.settings, secrets, now)
  })
}

/** RBM sends with its service account's key (or, for the simulator, a fixed access token): one is needed, and readable. */
function checkRbmCredentials(secrets: ChannelSecrets): void {
  if (secrets.serviceAccountKey === undefined) {
    if (!secrets.accessToken) throw new Problem('request/invalid', 'missing secrets: serviceAccountKey')
    return
  }
  try {
    parseServiceAccountKey(secrets.serviceAccountKey)
  } catch (error) {
    throw new Problem('request/invalid', (error as TypeError).message)
  }
}

function checkConnectorSettings(
  config: Ctx['config'],
  connector: ConnectorKind,
  address: string,
  settings: ChannelSettings,
): void {
  if (connector === 'twilio' && !settings.accountSid) throw new Problem('request/invalid', 'accountSid is required')
  if ((connector === 'whatsapp' || connector === 'messenger') && !settings.apiVersion) {
    throw new Problem('request/invalid', 'apiVersion is required')
  }
  if (connector === 'rbm') {
    if (!/^[a-z0-9][a-z0-9_-]{0,99}@rbm\.goog$/.test(address)) {
      throw new Problem('request/invalid', 'address must be an RBM agent id (…@rbm.goog)')
    }
    if (!settings.verifiedSender) throw new Problem('request/invalid', 'verifiedSender is required')
  }
  if (connector !== 'smpp') return
  if (!settings.host || !settings.port || !settings.systemId) {
    throw new Problem('request/invalid', 'host, port and systemId are required')
  }
  if (!/^\+[1-9]\d{4,14}$/.test(address)) throw new Problem('request/invalid', 'address must be a number in E.164')
  // A tenant admin must not make the server open connections wherever they like (internal hosts, other services).
  if (!smppHostAllowed(config, settings.host, settings.port)) {
    throw new Problem('request/invalid', "this SMSC is not in the operator's STRONGROOM_SMPP_HOSTS")
  }
}

/** Whether the operator allows SMPP binds to this SMSC (`STRONGROOM_SMPP_HOSTS`); dev mode allows any. */
export function smppHostAllowed(config: Ctx['config'], host: string, port: number): boolean {
  if (config.mode === 'dev') return true
  const allowed = config.smppHosts
  const wanted = `${host.toLowerCase()}:${port}`
  return (allowed ?? '').split(',').some((entry) => entry.trim().toLowerCase() === wanted)
}

function viewOf(
  connector: ConnectorKind,
  address: string,
  settings: ChannelSettings,
  secrets: ChannelSecrets,
  updatedAt: Date | string,
): ChannelView {
  const { baseUrl: _, ...shown } = settings
  return {
    connector,
    address,
    ...shown,
    secretsSet: Object.keys(secrets)
      .filter((k) => secrets[k as keyof ChannelSecrets])
      .sort(),
    updatedAt: new Date(updatedAt).toISOString(),
  }
}

export async function listChannels(ctx: Ctx, tenantId: string): Promise<ChannelView[]> {
  const rows = await ctx.db.selectFrom('channel_configs').selectAll().where('tenant_id', '=', tenantId).execute()
  return Promise.all(
    rows.map(async (row) => {
      const secrets = JSON.parse(await ctx.keyring.decryptText(tenantId, secretsField(row.connector), row.secrets))
      return viewOf(row.connector, row.receiving_address, JSON.parse(row.settings), secrets, row.updated_at)
    }),
  )
}

async function toConfig(
  ctx: Ctx,
  row: {
    tenant_id: string
    connector: ConnectorKind
    receiving_address: string
    settings: string
    secrets: Uint8Array
  },
): Promise<ChannelConfig> {
  return {
    tenantId: row.tenant_id,
    connector: row.connector,
    address: row.receiving_address,
    settings: JSON.parse(row.settings),
    secrets: JSON.parse(await ctx.keyring.decryptText(row.tenant_id, secretsField(row.connector), row.secrets)),
  }
}

/** The tenant's own receiving numbers and pages: a message claiming to come from one of them is spoofed. */
export async function tenantChannelAddresses(ctx: Pick<ServerContext, 'db'>, tenantId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('channel_configs')
    .select('receiving_address')
    .where('tenant_id', '=', tenantId)
    .execute()
  return rows.map((row) => row.receiving_address)
}

/** A tenant's channels' settings (nothing secret), by connector. */
export async function tenantChannelSettings(
  ctx: Pick<ServerContext, 'db'>,
  tenantId: string,
): Promise<Map<ConnectorKind, ChannelSettings>> {
  const rows = await ctx.db
    .selectFrom('channel_configs')
    .select(['connector', 'settings'])
    .where('tenant_id', '=', tenantId)
    .execute()
  return new Map(rows.map((row) => [row.connector, JSON.parse(row.settings) as ChannelSettings]))
}

/** Every tenant's channel of one connector (the SMPP links to open when the server starts). */
export async function listChannelsOf(ctx: Ctx, connector: ConnectorKind): Promise<ChannelConfig[]> {
  const rows = await ctx.db.selectFrom('channel_configs').selectAll().where('connector', '=', connector).execute()
  return Promise.all(rows.map((row) => toConfig(ctx, row)))
}

/** Dev mode only (the channel simulator): every tenant's channels, by connector and receiving address only. */
export async function listChannelAddresses(
  ctx: Pick<ServerContext, 'db'>,
): Promise<{ connector: WebhookConnectorKind; address: string; verifiedSender?: string }[]> {
  const rows = await ctx.db
    .selectFrom('channel_configs')
    .select(['connector', 'receiving_address', 'settings'])
    // The simulator posts the providers' webhooks; it does not play an SMSC.
    .where('connector', '!=', 'smpp')
    .orderBy('connector')
    .orderBy('receiving_address')
    .execute()
  return rows.map((row) => {
    const { verifiedSender }: ChannelSettings = JSON.parse(row.settings)
    const channel = { connector: row.connector as WebhookConnectorKind, address: row.receiving_address }
    return verifiedSender ? { ...channel, verifiedSender } : channel
  })
}

/** The channel a message is for, by the address it was sent to: this is how the tenant is found. */
export async function findChannelByAddress(
  ctx: Ctx,
  connector: ConnectorKind,
  address: string,
): Promise<ChannelConfig | undefined> {
  const row = await ctx.db
    .selectFrom('channel_configs')
    .selectAll()
    .where('connector', '=', connector)
    .where('receiving_address', '=', address)
    .executeTakeFirst()
  return row && toConfig(ctx, row)
}

/** The channel whose verify token is this one (Meta's handshake names no page or number). */
export async function findChannelByVerifyToken(
  ctx: Ctx,
  connector: ConnectorKind,
  verifyToken: string,
): Promise<ChannelConfig | undefined> {
  const row = await ctx.db
    .selectFrom('channel_configs')
    .selectAll()
    .where('connector', '=', connector)
    .where('verify_token_hash', '=', secretHash(verifyToken))
    .executeTakeFirst()
  return row && toConfig(ctx, row)
}

export async function findTenantChannel(
  ctx: Ctx,
  tenantId: string,
  connector: ConnectorKind,
): Promise<ChannelConfig | undefined> {
  const row = await ctx.db
    .selectFrom('channel_configs')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('connector', '=', connector)
    .executeTakeFirst()
  return row && toConfig(ctx, row)
}

/** Where the connectors post (the provider, or in dev the simulator) and how long they wait between attempts. */
export interface ConnectorEnvironment {
  publicUrl: () => string
  /** Dev mode: where the channel simulator plays each provider, for channels without a baseUrl of their own. */
  simulatorUrl?: ((connector: WebhookConnectorKind) => string) | undefined
  transport?: TransportOptions | undefined
  /** Google service accounts' access tokens, cached for this node (RBM). */
  googleTokens: GoogleAccessTokens
  /** Sends on the tenant's SMPP link, which lives in the server process (see smpp-links.ts). */
  smpp?: ((config: ChannelConfig) => Connector) | undefined
}

/**
 * An RBM channel's access tokens: from its service account key (exchanged and cached by the node's GoogleAccessTokens),
 * or its fixed token where it has one instead (the simulator's).
 */
function rbmAccessToken(secrets: ChannelSecrets, env: ConnectorEnvironment): () => Promise<string> {
  const { serviceAccountKey, accessToken } = secrets
  if (serviceAccountKey === undefined) return async () => accessToken ?? ''
  const key = parseServiceAccountKey(serviceAccountKey)
  return () => env.googleTokens.get(key, RBM_SCOPE)
}

/** The connector that sends on a configured channel. */
export function connectorFor(config: ChannelConfig, env: ConnectorEnvironment): Connector {
  if (config.connector !== 'smpp') return webhookConnectorFor({ ...config, connector: config.connector }, env)
  if (!env.smpp) throw new Problem('channels/not-configured')
  return env.smpp(config)
}

/** The connector of a channel whose provider calls our webhooks: it verifies and reads them, and sends. */
export function webhookConnectorFor(
  config: WebhookChannelConfig,
  env: ConnectorEnvironment,
): WebhookConnector | WhatsAppConnector {
  const { settings, secrets } = config
  const url = settings.baseUrl ?? env.simulatorUrl?.(config.connector)
  const baseUrl = url === undefined ? {} : { baseUrl: url }
  switch (config.connector) {
    case 'twilio':
      return twilioConnector(
        {
          accountSid: settings.accountSid ?? '',
          authToken: secrets.authToken ?? '',
          sender: { from: config.address },
          statusCallbackUrl: `${env.publicUrl()}/v1/channels/twilio/webhook`,
          ...baseUrl,
        },
        env.transport,
      )
    case 'whatsapp':
      return whatsAppConnector(
        {
          phoneNumberId: config.address,
          accessToken: secrets.accessToken ?? '',
          appSecret: secrets.appSecret ?? '',
          apiVersion: settings.apiVersion ?? '',
          ...baseUrl,
        },
        env.transport,
      )
    case 'messenger':
      return messengerConnector(
        {
          accessToken: secrets.accessToken ?? '',
          appSecret: secrets.appSecret ?? '',
          apiVersion: settings.apiVersion ?? '',
          humanAgentTag: settings.humanAgentTag === true,
          ...baseUrl,
        },
        env.transport,
      )
    case 'rbm':
      return rbmConnector(
        {
          agentId: config.address,
          accessToken: rbmAccessToken(secrets, env),
          clientToken: secrets.clientToken ?? '',
          ...baseUrl,
        },
        env.transport,
      )
  }
}
