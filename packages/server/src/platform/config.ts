import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/**
 * Every setting, its environment variable, its type and its default. The README's configuration table is this list.
 * A setting may also come from the JSON file named by STRONGROOM_CONFIG; the environment wins over the file.
 */
const settings = {
  port: { env: 'PORT', schema: Type.Integer({ minimum: 0, maximum: 65535 }), default: 8080 },
  host: { env: 'HOST', schema: Type.String({ minLength: 1 }), default: '127.0.0.1' },
  mode: {
    env: 'STRONGROOM_MODE',
    schema: Type.Union([Type.Literal('dev'), Type.Literal('production')]),
    default: 'dev',
  },
  dataDir: { env: 'STRONGROOM_DATA_DIR', schema: Type.String({ minLength: 1 }), default: './strongroom-data' },
  databaseUrl: { env: 'DATABASE_URL', schema: Type.String({ pattern: '^postgres(ql)?://' }), default: undefined },
  databasePoolSize: { env: 'DATABASE_POOL_SIZE', schema: Type.Integer({ minimum: 1, maximum: 200 }), default: 10 },
  statementTimeoutMs: {
    env: 'DATABASE_STATEMENT_TIMEOUT_MS',
    schema: Type.Integer({ minimum: 100, maximum: 600000 }),
    default: 15000,
  },
  /** `nats://` or `tls://`, with `user:password@` when the NATS server authorizes by user and password. */
  natsUrl: { env: 'NATS_URL', schema: Type.String({ pattern: '^(nats|tls)://' }), default: undefined },
  /** A NATS credentials file (a user JWT and its NKey seed, as `nsc` writes it), for servers run in operator mode. */
  natsCredentialsFile: { env: 'NATS_CREDENTIALS_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** PEM CA bundle the NATS server's certificate must chain to; setting it makes the connection TLS. */
  natsTlsCaFile: { env: 'NATS_TLS_CA_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** This node's client certificate and key (PEM), when the NATS server verifies clients (mutual TLS). */
  natsTlsCertFile: { env: 'NATS_TLS_CERT_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  natsTlsKeyFile: { env: 'NATS_TLS_KEY_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** Where the key-encryption key and the signing keys live: a local key file (dev) or a PKCS#11 token (an HSM). */
  keyProvider: {
    env: 'STRONGROOM_KEY_PROVIDER',
    schema: Type.Union([Type.Literal('file'), Type.Literal('pkcs11')]),
    default: 'file',
  },
  keyFile: { env: 'STRONGROOM_KEY_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** The PKCS#11 library of the HSM (for SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so). */
  pkcs11Module: { env: 'STRONGROOM_PKCS11_MODULE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** The token, by its label (or by slot id with STRONGROOM_PKCS11_SLOT). */
  pkcs11TokenLabel: { env: 'STRONGROOM_PKCS11_TOKEN_LABEL', schema: Type.String({ minLength: 1 }), default: undefined },
  pkcs11Slot: {
    env: 'STRONGROOM_PKCS11_SLOT',
    schema: Type.Integer({ minimum: 0, maximum: 4294967295 }),
    default: undefined,
  },
  /** A file holding the token's user PIN (never the PIN itself in the environment). */
  pkcs11PinFile: { env: 'STRONGROOM_PKCS11_PIN_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** Where the compliance archive's own KEK lives: its key file, or the HSM (same module; its own KEK objects). */
  archiveKeyProvider: {
    env: 'STRONGROOM_ARCHIVE_KEY_PROVIDER',
    schema: Type.Union([Type.Literal('file'), Type.Literal('pkcs11')]),
    default: 'file',
  },
  /** The archive's token, when it is not the live keyring's (its label and PIN file; the module is shared). */
  archivePkcs11TokenLabel: {
    env: 'STRONGROOM_ARCHIVE_PKCS11_TOKEN_LABEL',
    schema: Type.String({ minLength: 1 }),
    default: undefined,
  },
  archivePkcs11PinFile: {
    env: 'STRONGROOM_ARCHIVE_PKCS11_PIN_FILE',
    schema: Type.String({ minLength: 1 }),
    default: undefined,
  },
  archiveMember: { env: 'STRONGROOM_ARCHIVE_MEMBER', schema: Type.Boolean(), default: undefined },
  archiveKeyFile: { env: 'STRONGROOM_ARCHIVE_KEY_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  archivePartition: {
    env: 'STRONGROOM_ARCHIVE_PARTITION',
    schema: Type.String({ pattern: '^[0-9]{1,3}/[0-9]{1,3}$' }),
    default: '0/1',
  },
  logLevel: {
    env: 'LOG_LEVEL',
    schema: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
    default: 'info',
  },
  maxMessageBytes: {
    env: 'STRONGROOM_MAX_MESSAGE_BYTES',
    schema: Type.Integer({ minimum: 256, maximum: 1048576 }),
    default: 65536,
  },
  maxAttachmentBytes: {
    env: 'STRONGROOM_MAX_ATTACHMENT_BYTES',
    schema: Type.Integer({ minimum: 1024, maximum: 26214400 }),
    default: 5242880,
  },
  accessTokenTtlSeconds: {
    env: 'STRONGROOM_ACCESS_TOKEN_TTL_SECONDS',
    schema: Type.Integer({ minimum: 30, maximum: 86400 }),
    default: 900,
  },
  enrolmentCodeTtlSeconds: {
    env: 'STRONGROOM_ENROLMENT_CODE_TTL_SECONDS',
    schema: Type.Integer({ minimum: 60, maximum: 604800 }),
    default: 86400,
  },
  streamHeartbeatMs: {
    env: 'STRONGROOM_STREAM_HEARTBEAT_MS',
    schema: Type.Integer({ minimum: 1000, maximum: 300000 }),
    default: 20000,
  },
  /**
   * How often a node says its staff consoles are still connected; three missed, they count as gone (a node that died).
   * The same on every node: each reads the others' rows by it.
   */
  presenceRefreshMs: {
    env: 'STRONGROOM_PRESENCE_REFRESH_MS',
    schema: Type.Integer({ minimum: 1000, maximum: 600000 }),
    default: 30000,
  },
  /** Requests a minute from one client address (behind a trusted proxy, the address it forwards), on all nodes. */
  rateLimitIpPerMinute: {
    env: 'STRONGROOM_RATE_LIMIT_IP_PER_MINUTE',
    schema: Type.Integer({ minimum: 1, maximum: 100000000 }),
    default: 12000,
  },
  /** Frames a second one stream socket may send (a burst of twice as many passes); more are refused one by one. */
  streamFramesPerSecond: {
    env: 'STRONGROOM_STREAM_FRAMES_PER_SECOND',
    schema: Type.Integer({ minimum: 1, maximum: 1000000 }),
    default: 200,
  },
  streamMaxBufferedBytes: {
    env: 'STRONGROOM_STREAM_MAX_BUFFERED_BYTES',
    schema: Type.Integer({ minimum: 65536, maximum: 268435456 }),
    default: 8388608,
  },
  /**
   * OpenTelemetry traces: 'otlp' exports them over OTLP/HTTP to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or
   * OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, default http://localhost:4318/v1/traces), with the other standard
   * OTEL_EXPORTER_OTLP_* and OTEL_RESOURCE_ATTRIBUTES variables; OTEL_TRACES_EXPORTER=otlp does the same.
   */
  tracing: {
    env: 'STRONGROOM_TRACING',
    schema: Type.Union([Type.Literal('off'), Type.Literal('otlp')]),
    default: 'off',
  },
  commitDelayMs: { env: 'STRONGROOM_COMMIT_DELAY_MS', schema: Type.Integer({ minimum: 0, maximum: 100 }), default: 1 },
  auditCheckpointRecords: {
    env: 'STRONGROOM_AUDIT_CHECKPOINT_RECORDS',
    schema: Type.Integer({ minimum: 1, maximum: 1000000 }),
    default: 1000,
  },
  auditCheckpointSeconds: {
    env: 'STRONGROOM_AUDIT_CHECKPOINT_SECONDS',
    schema: Type.Integer({ minimum: 1, maximum: 86400 }),
    default: 60,
  },
  archiveCheckpointRecords: {
    env: 'STRONGROOM_ARCHIVE_CHECKPOINT_RECORDS',
    schema: Type.Integer({ minimum: 1, maximum: 1000000 }),
    default: 1000,
  },
  archiveCheckpointSeconds: {
    env: 'STRONGROOM_ARCHIVE_CHECKPOINT_SECONDS',
    schema: Type.Integer({ minimum: 1, maximum: 86400 }),
    default: 60,
  },
  /**
   * An append-only file every signed audit and archive checkpoint is also written to (point it at WORM storage), and a
   * webhook that is sent each one: verifiers check the chains against what the witness holds.
   */
  witnessFile: { env: 'STRONGROOM_WITNESS_FILE', schema: Type.String({ minLength: 1 }), default: undefined },
  witnessUrl: { env: 'STRONGROOM_WITNESS_URL', schema: Type.String({ pattern: '^https?://' }), default: undefined },
  archiveExpiryBatch: {
    env: 'STRONGROOM_ARCHIVE_EXPIRY_BATCH',
    schema: Type.Integer({ minimum: 1, maximum: 100000 }),
    default: 1000,
  },
  webhookRetryBaseMs: {
    env: 'STRONGROOM_WEBHOOK_RETRY_BASE_MS',
    schema: Type.Integer({ minimum: 10, maximum: 600000 }),
    default: 2000,
  },
  simSwapUrl: {
    env: 'STRONGROOM_SIM_SWAP_URL',
    schema: Type.String({ pattern: '^https?://' }),
    default: undefined,
  },
  simSwapToken: { env: 'STRONGROOM_SIM_SWAP_TOKEN', schema: Type.String({ minLength: 1 }), default: undefined },
  simSwapTokenUrl: {
    env: 'STRONGROOM_SIM_SWAP_TOKEN_URL',
    schema: Type.String({ pattern: '^https?://' }),
    default: undefined,
  },
  simSwapClientId: { env: 'STRONGROOM_SIM_SWAP_CLIENT_ID', schema: Type.String({ minLength: 1 }), default: undefined },
  simSwapClientSecretFile: {
    env: 'STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE',
    schema: Type.String({ minLength: 1 }),
    default: undefined,
  },
  simSwapScope: { env: 'STRONGROOM_SIM_SWAP_SCOPE', schema: Type.String({ minLength: 1 }), default: undefined },
  /** The operator's CIBA backchannel authentication endpoint, for operators that require CAMARA's CIBA flow. */
  simSwapBcAuthorizeUrl: {
    env: 'STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL',
    schema: Type.String({ pattern: '^https?://' }),
    default: undefined,
  },
  simSwapWindowHours: {
    env: 'STRONGROOM_SIM_SWAP_WINDOW_HOURS',
    schema: Type.Integer({ minimum: 1, maximum: 2400 }),
    default: 72,
  },
  integrityRequired: {
    env: 'STRONGROOM_INTEGRITY_REQUIRED',
    schema: Type.Boolean(),
    default: undefined,
  },
  minAppVersion: {
    env: 'STRONGROOM_MIN_APP_VERSION',
    schema: Type.String({ pattern: '^[0-9]+(\\.[0-9]+){0,2}$' }),
    default: '0.0.0',
  },
  appleAttestRoots: {
    env: 'STRONGROOM_APPLE_ATTEST_ROOTS',
    schema: Type.String({ minLength: 1 }),
    default: undefined,
  },
  androidAttestRoots: {
    env: 'STRONGROOM_ANDROID_ATTEST_ROOTS',
    schema: Type.String({ minLength: 1 }),
    default: undefined,
  },
  /**
   * Google's Android attestation status list (revoked and suspended attestation certificates): a file or URL. In
   * production Google's own URL unless set; `none` (dev only) checks no list.
   */
  androidAttestStatus: {
    env: 'STRONGROOM_ANDROID_ATTEST_STATUS',
    schema: Type.String({ minLength: 1 }),
    default: undefined,
  },
  /** How often (checked once a minute) the status list is loaded again; four missed refreshes (at least a day) refuse Android. */
  androidAttestStatusRefreshSeconds: {
    env: 'STRONGROOM_ATTEST_STATUS_REFRESH',
    schema: Type.Integer({ minimum: 60, maximum: 86_400 }),
    default: 3600,
  },
  rpId: {
    env: 'STRONGROOM_RP_ID',
    schema: Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$' }),
    default: undefined,
  },
  rpOrigins: {
    env: 'STRONGROOM_RP_ORIGINS',
    schema: Type.String({ pattern: '^https?://[^,\\s/]+(,https?://[^,\\s/]+)*$' }),
    default: undefined,
  },
  webDir: { env: 'STRONGROOM_WEB_DIR', schema: Type.String({ minLength: 1 }), default: undefined },
  trustProxy: { env: 'STRONGROOM_TRUST_PROXY', schema: Type.Boolean(), default: false },
  /**
   * A port of its own for `/metrics` (on STRONGROOM_METRICS_HOST), so that the scraper reaches it and the public does
   * not; the main port then has no `/metrics`.
   */
  metricsPort: {
    env: 'STRONGROOM_METRICS_PORT',
    schema: Type.Integer({ minimum: 0, maximum: 65535 }),
    default: undefined,
  },
  metricsHost: { env: 'STRONGROOM_METRICS_HOST', schema: Type.String({ minLength: 1 }), default: '127.0.0.1' },
  /** A bearer token the scraper sends for `/metrics` on the main port (32 characters at least). */
  metricsToken: { env: 'STRONGROOM_METRICS_TOKEN', schema: Type.String({ minLength: 32 }), default: undefined },
  /**
   * The URL providers, customers, staff and bank backends reach this server at (behind a proxy, the proxy's): Twilio
   * signs the webhook URL it called, pivot and invitation links point here, and it is the OAuth issuer a client
   * assertion names. Required (https://) in production; in dev, the listening URL (or the URL a request addressed).
   */
  publicUrl: {
    env: 'STRONGROOM_PUBLIC_URL',
    schema: Type.String({ pattern: '^https?://[^/?#]+$' }),
    default: undefined,
  },
  /**
   * The SMSCs (host:port, comma-separated) that tenants may configure SMPP channels to bind to in production; dev
   * mode allows any. Without it, production has no SMPP channels.
   */
  smppHosts: {
    env: 'STRONGROOM_SMPP_HOSTS',
    schema: Type.String({ pattern: '^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$' }),
    default: undefined,
  },
  pivotLinkTtlSeconds: {
    env: 'STRONGROOM_PIVOT_LINK_TTL_SECONDS',
    schema: Type.Integer({ minimum: 30, maximum: 3600 }),
    default: 300,
  },
  devSeed: { env: 'STRONGROOM_DEV_SEED', schema: Type.Boolean(), default: true },
  /**
   * Production refuses a database the dev seed wrote to (its Demo Bank and tokens); an operator who means to keep such
   * a database says so here, and the seed's staff tokens are revoked at start.
   */
  allowDevSeededDatabase: {
    env: 'STRONGROOM_ALLOW_DEV_SEEDED_DATABASE',
    schema: Type.Boolean(),
    default: false,
  },
} as const

type Settings = typeof settings
export type Config = {
  -readonly [K in keyof Settings]: Settings[K]['default'] extends undefined
    ? Static<Settings[K]['schema']> | undefined
    : Static<Settings[K]['schema']>
} & {
  keyFile: string
  /** Unset in production unless named (by itself or by a named data directory): such a node reads no archive. */
  archiveKeyFile: string | undefined
  archiveMember: boolean
  integrityRequired: boolean
  webDir: string
}

/** A configuration error names the setting and says what is wrong; the CLI prints it as one line and exits. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    reason: string,
  ) {
    super(`configuration error: ${setting} ${reason}`)
    this.name = 'ConfigError'
  }
}

function parseEnvValue(raw: string, schema: { type?: unknown }): unknown {
  if (schema.type === 'integer') return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw
  if (schema.type === 'boolean') {
    if (/^(true|1|yes)$/i.test(raw)) return true
    if (/^(false|0|no)$/i.test(raw)) return false
    return raw
  }
  return raw
}

function describeSchema(schema: object): string {
  const s = schema as {
    anyOf?: { const: unknown }[]
    type?: string
    pattern?: string
    minimum?: number
    maximum?: number
    minLength?: number
  }
  if (s.anyOf) return `must be one of ${s.anyOf.map((o) => o.const).join(', ')}`
  if (s.type === 'integer') return `must be an integer from ${s.minimum} to ${s.maximum}`
  if (s.type === 'boolean') return 'must be true or false'
  if (s.pattern) return `must match ${s.pattern}`
  if (s.minLength && s.minLength > 1) return `must be at least ${s.minLength} characters`
  return 'must be a non-empty string'
}

/**
 * Reads the configuration from the environment (and STRONGROOM_CONFIG, a JSON file), validates every value and
 * applies the production rules. Throws ConfigError naming the first bad setting. `creatingKeyFiles` is for
 * `strongroom keys init`, which makes the key files production otherwise insists on.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Config> = {},
  options: { creatingKeyFiles?: boolean } = {},
): Config {
  let fileValues: Record<string, unknown> = {}
  if (env.STRONGROOM_CONFIG) {
    try {
      fileValues = JSON.parse(readFileSync(env.STRONGROOM_CONFIG, 'utf8'))
    } catch {
      throw new ConfigError('STRONGROOM_CONFIG', `cannot be read as a JSON file: ${env.STRONGROOM_CONFIG}`)
    }
    if (typeof fileValues !== 'object' || fileValues === null || Array.isArray(fileValues)) {
      throw new ConfigError('STRONGROOM_CONFIG', 'must hold a JSON object')
    }
    for (const key of Object.keys(fileValues)) {
      if (!(key in settings)) throw new ConfigError('STRONGROOM_CONFIG', `has an unknown setting "${key}"`)
    }
  }
  const config: Record<string, unknown> = {}
  const explicit = new Set<string>()
  for (const [key, setting] of Object.entries(settings)) {
    const fromEnv = env[setting.env]
    let value: unknown = setting.default
    if (key in overrides) value = (overrides as Record<string, unknown>)[key]
    else if (fromEnv !== undefined && fromEnv !== '')
      value = parseEnvValue(fromEnv, setting.schema as { type?: unknown })
    else if (key in fileValues) value = fileValues[key]
    if (key in overrides || fromEnv || key in fileValues) explicit.add(key)
    if (value !== undefined && !Value.Check(setting.schema, value)) {
      throw new ConfigError(setting.env, describeSchema(setting.schema))
    }
    config[key] = value
  }
  const result = config as Config
  // The standard switch of OpenTelemetry's own SDKs turns tracing on too (STRONGROOM_TRACING, when set, decides).
  if (!explicit.has('tracing') && env.OTEL_TRACES_EXPORTER === 'otlp') result.tracing = 'otlp'
  result.keyFile ??= path.join(result.dataDir, 'keyring.json')
  // Production reads no key file from wherever it was started: only one it was told about.
  const archiveKeyFileNamed = result.mode === 'dev' || explicit.has('archiveKeyFile') || explicit.has('dataDir')
  if (archiveKeyFileNamed) result.archiveKeyFile ??= path.join(result.dataDir, 'archive-keyring.json')
  // The web package's build output, beside this package in the repository.
  result.webDir ??= path.resolve(import.meta.dirname, '../../../web/dist')
  // In dev every node reads for the archive; in production the operator picks the node(s) or runs a separate process.
  result.archiveMember ??= result.mode === 'dev'
  const [partitionIndex, partitionCount] = result.archivePartition.split('/').map(Number) as [number, number]
  if (partitionCount < 1 || partitionIndex >= partitionCount) {
    throw new ConfigError('STRONGROOM_ARCHIVE_PARTITION', 'must be i/n with 0 <= i < n (e.g. 0/1, or 1/4)')
  }
  // Device requests need an integrity token in production unless the operator says otherwise.
  result.integrityRequired ??= result.mode === 'production'
  // Passkeys in dev work on localhost out of the box; production names its relying party, or passkeys stay off.
  if (result.mode === 'dev' && !result.rpId && !result.rpOrigins) {
    result.rpId = 'localhost'
    result.rpOrigins = `http://localhost:${result.port || 8080}`
  }
  checkRelyingParty(result)
  checkCarrierOAuth(result)
  if (result.keyProvider === 'pkcs11' || result.archiveKeyProvider === 'pkcs11') checkPkcs11Settings(result)
  if (result.mode === 'production') checkProductionRules(result, explicit, options.creatingKeyFiles ?? false)
  return result
}

/**
 * The carrier's OAuth client for its CAMARA APIs: a token endpoint needs the client id and the secret's file, takes
 * the place of a static token, and is served over HTTPS in production (the client secret goes to it).
 */
function checkCarrierOAuth(config: Config): void {
  if (config.simSwapBcAuthorizeUrl && !config.simSwapTokenUrl) {
    throw new ConfigError('STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL', 'needs STRONGROOM_SIM_SWAP_TOKEN_URL (CIBA polls it)')
  }
  if (!config.simSwapTokenUrl) return
  if (!config.simSwapClientId || !config.simSwapClientSecretFile) {
    throw new ConfigError(
      'STRONGROOM_SIM_SWAP_TOKEN_URL',
      'needs STRONGROOM_SIM_SWAP_CLIENT_ID and STRONGROOM_SIM_SWAP_CLIENT_SECRET_FILE',
    )
  }
  if (config.simSwapToken) {
    throw new ConfigError('STRONGROOM_SIM_SWAP_TOKEN', 'and STRONGROOM_SIM_SWAP_TOKEN_URL are exclusive: set one')
  }
  if (config.mode === 'production' && !config.simSwapTokenUrl.startsWith('https://')) {
    throw new ConfigError('STRONGROOM_SIM_SWAP_TOKEN_URL', 'must be an https:// URL in production mode')
  }
  if (config.mode === 'production' && config.simSwapBcAuthorizeUrl?.startsWith('https://') === false) {
    throw new ConfigError('STRONGROOM_SIM_SWAP_BC_AUTHORIZE_URL', 'must be an https:// URL in production mode')
  }
}

/**
 * The relying party of passkeys: both settings or neither; every origin is the RP id's host or one of its
 * subdomains (what browsers enforce too), and in production served over HTTPS.
 */
function checkRelyingParty(config: Config): void {
  if (!config.rpId !== !config.rpOrigins) {
    throw new ConfigError(config.rpId ? 'STRONGROOM_RP_ORIGINS' : 'STRONGROOM_RP_ID', 'must be set with the other')
  }
  if (!config.rpId || !config.rpOrigins) return
  for (const origin of config.rpOrigins.split(',')) {
    const url = new URL(origin)
    if (url.hostname !== config.rpId && !url.hostname.endsWith(`.${config.rpId}`)) {
      throw new ConfigError('STRONGROOM_RP_ORIGINS', `has ${origin}, which is not on ${config.rpId} or a subdomain`)
    }
    if (config.mode === 'production' && url.protocol !== 'https:') {
      throw new ConfigError('STRONGROOM_RP_ORIGINS', 'must be https:// origins in production mode')
    }
  }
}

/** The passkey relying party, when configured: its id and the origins a ceremony may come from. */
export function relyingPartyOf(config: Config): { id: string; origins: string[] } | undefined {
  if (!config.rpId || !config.rpOrigins) return undefined
  return { id: config.rpId, origins: config.rpOrigins.split(',') }
}

/**
 * Production reads nothing from wherever it happens to be started: a key file comes from its own setting or from a
 * data directory the operator named, never from the `./strongroom-data` default of dev mode.
 */
const PUBLIC_URL_REQUIRED =
  'is required in production mode: the https:// URL clients reach this server at (the OAuth issuer, links, webhook signatures)'

const UNNAMED_KEY_FILE =
  'must be set in production mode (or STRONGROOM_DATA_DIR): it never defaults to ./strongroom-data'

function checkProductionRules(config: Config, explicit: Set<string>, creatingKeyFiles: boolean): void {
  if (!config.databaseUrl) throw new ConfigError('DATABASE_URL', 'is required in production mode (PGlite is for dev)')
  // Without it the server would take its own URL from the Host header, which whoever sends the request chooses.
  if (!config.publicUrl) throw new ConfigError('STRONGROOM_PUBLIC_URL', PUBLIC_URL_REQUIRED)
  if (!config.publicUrl.startsWith('https://')) {
    throw new ConfigError('STRONGROOM_PUBLIC_URL', 'must be an https:// URL in production mode')
  }
  if (config.devSeed && explicit.has('devSeed')) {
    throw new ConfigError('STRONGROOM_DEV_SEED', 'is a dev-only feature and production mode refuses it')
  }
  config.devSeed = false
  if (config.androidAttestStatus === 'none') {
    throw new ConfigError('STRONGROOM_ANDROID_ATTEST_STATUS', 'must name a status list (a file or URL) in production')
  }
  if (config.keyProvider === 'pkcs11') {
    requirePrivateFile(config.pkcs11PinFile as string, 'STRONGROOM_PKCS11_PIN_FILE', 'must exist in production mode')
  } else {
    if (!explicit.has('keyFile') && !explicit.has('dataDir')) {
      throw new ConfigError('STRONGROOM_KEY_FILE', UNNAMED_KEY_FILE)
    }
    if (!creatingKeyFiles) {
      requirePrivateFile(
        config.keyFile,
        'STRONGROOM_KEY_FILE',
        'must exist in production mode (create it with `strongroom keys init`)',
      )
    }
  }
  if (creatingKeyFiles) return
  if (config.archiveMember && config.archiveKeyProvider === 'file') checkArchiveKeyFile(config)
}

/** A PKCS#11 token is named by its library, its label or slot, and a PIN file. */
function checkPkcs11Settings(config: Config): void {
  if (!config.pkcs11Module)
    throw new ConfigError('STRONGROOM_PKCS11_MODULE', 'is required with STRONGROOM_KEY_PROVIDER=pkcs11')
  if ((config.pkcs11TokenLabel === undefined) === (config.pkcs11Slot === undefined)) {
    throw new ConfigError('STRONGROOM_PKCS11_TOKEN_LABEL', 'or STRONGROOM_PKCS11_SLOT (one of them) names the token')
  }
  if (!config.pkcs11PinFile)
    throw new ConfigError('STRONGROOM_PKCS11_PIN_FILE', 'is required with STRONGROOM_KEY_PROVIDER=pkcs11')
}

/** A file of secrets (key file, PIN file): it exists and only its owner may read or write it. */
function requirePrivateFile(file: string, setting: string, missing: string): void {
  let mode: number
  try {
    mode = statSync(file).mode
  } catch {
    throw new ConfigError(setting, missing)
  }
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(setting, 'must not be readable or writable by group or others (chmod 600)')
  }
}

/** The archive's key file, for the commands that need it; production names it or has none. */
export function archiveKeyFileOf(config: Config): string {
  if (!config.archiveKeyFile) throw new ConfigError('STRONGROOM_ARCHIVE_KEY_FILE', UNNAMED_KEY_FILE)
  return config.archiveKeyFile
}

/** The archive member's keys are its own: a separate key file, as private as the keyring's. */
function checkArchiveKeyFile(config: Config): void {
  const archiveKeyFile = archiveKeyFileOf(config)
  if (path.resolve(archiveKeyFile) === path.resolve(config.keyFile)) {
    throw new ConfigError('STRONGROOM_ARCHIVE_KEY_FILE', 'must not be the live keyring’s key file')
  }
  requirePrivateFile(
    archiveKeyFile,
    'STRONGROOM_ARCHIVE_KEY_FILE',
    'must exist in production mode when the archive member runs (create it with `strongroom keys init --archive`)',
  )
}

export const configTable = Object.entries(settings).map(([key, s]) => ({ key, env: s.env, default: s.default }))
