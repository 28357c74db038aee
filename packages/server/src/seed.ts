import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Actor } from './audit/events.ts'
import { auditEventsBy } from './audit/events-by.ts'
import { configureChannel } from './channels/channel-config.ts'
import { createCustomer } from './identity/customers.ts'
import { issueEnrolmentCode } from './identity/enrolment-codes.ts'
import { ConfigError } from './platform/config.ts'
import type { ServerContext } from './platform/context.ts'
import { authenticateStaffToken, createStaff, issueStaffToken, revokeStaffToken } from './tenancy/staff.ts'
import { createTenant, listTenants } from './tenancy/tenants.ts'

/**
 * Dev mode only: on the first start, a demo bank with an admin, an agent and a customer, so that the whole flow can
 * be tried at once. The credentials go to a file only the owner can read, and its path to the log. Its SMS, WhatsApp
 * and Messenger channels are answered by the agent and played by the channel simulator (random secrets, no
 * provider), and the customer's phone number is the simulator's default, so a text from it reaches their
 * conversation.
 */
const system: Actor = { kind: 'system', id: 'dev-seed' }
const DEMO_BANK = 'Demo Bank'

/** The demo's addresses: numbers from Ofcom's ranges for drama, which are never assigned to anyone. */
export const demoAddresses = {
  customerPhone: '+447700900123',
  bankSms: '+442079460123',
  bankWhatsApp: '100000000000001',
  bankMessengerPage: '100000000000002',
  bankRbmAgent: 'demo-bank@rbm.goog',
} as const

export async function seedDemoBank(ctx: ServerContext): Promise<void> {
  if ((await listTenants(ctx)).length > 0) return
  const tenant = await createTenant(ctx, DEMO_BANK, system)
  const admin = await createStaff(ctx, tenant.id, { name: 'admin', role: 'admin' }, system)
  const agent = await createStaff(ctx, tenant.id, { name: 'agent', role: 'agent' }, system)
  const customer = await createCustomer(ctx, tenant.id, {
    externalRef: 'DEMO-0001',
    displayName: 'Demo Customer',
    phoneNumber: demoAddresses.customerPhone,
  })
  const ttlSeconds = 30 * 86400
  const adminToken = (await issueStaffToken(ctx, admin, { ttlSeconds }, system)).token
  await configureSimulatedChannels(ctx, adminToken, agent.id, {
    twilio: demoAddresses.bankSms,
    whatsapp: demoAddresses.bankWhatsApp,
    messenger: demoAddresses.bankMessengerPage,
    rbm: { agentId: demoAddresses.bankRbmAgent, verifiedSender: DEMO_BANK },
  })
  const credentials = {
    tenantId: tenant.id,
    adminToken,
    agentId: agent.id,
    agentToken: (await issueStaffToken(ctx, agent, { ttlSeconds }, system)).token,
    customerId: customer.id,
    enrolmentCode: (await issueEnrolmentCode(ctx, tenant.id, customer.id, system)).code,
  }
  const file = path.resolve(ctx.config.dataDir, 'dev-credentials.json')
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 })
  ctx.log.info({ tenantId: tenant.id, credentialsFile: file }, 'dev mode: created the Demo Bank')
}

/**
 * Production on a database that dev mode seeded: refused, since the Demo Bank's tokens sit in a file anyone with the
 * dev machine could read. An operator who means to keep the database sets STRONGROOM_ALLOW_DEV_SEEDED_DATABASE, and
 * every staff token the seed issued is then revoked (audited) before the node serves anything.
 */
export async function refuseDevSeededDatabase(ctx: Pick<ServerContext, 'db' | 'config' | 'log'>): Promise<void> {
  // The seed names its tenant; its own audit record of making it is the proof (a bank may call itself anything).
  const seeded: string[] = []
  for (const tenant of await listTenants(ctx)) {
    if (tenant.name !== DEMO_BANK) continue
    if ((await auditEventsBy(ctx.db, tenant.id, system, 'tenant.create')).length > 0) seeded.push(tenant.id)
  }
  if (seeded.length === 0) return
  if (!ctx.config.allowDevSeededDatabase) {
    throw new ConfigError(
      'STRONGROOM_ALLOW_DEV_SEEDED_DATABASE',
      `is not set and the dev seed wrote to this database (tenant ${seeded.join(', ')}): production refuses it`,
    )
  }
  for (const tenantId of seeded) {
    for (const issued of await auditEventsBy(ctx.db, tenantId, system, 'staff.token.issue')) {
      const tokenId = issued.details.tokenId
      if (typeof tokenId !== 'string') continue
      await revokeStaffToken(ctx, tenantId, tokenId, { kind: 'system', id: 'production-start' }, 'dev-seed-token')
    }
  }
  ctx.log.warn({ tenants: seeded }, 'production on a dev-seeded database: the dev seed’s staff tokens are revoked')
}

/**
 * Public channels for a tenant, answered by the channel simulator (random secrets; in dev, channels without a
 * provider URL send to the simulator), with `agentId` joining every new public conversation. For the demo bank, and
 * for tests.
 */
export async function configureSimulatedChannels(
  ctx: Pick<ServerContext, 'db' | 'keyring' | 'config'>,
  adminToken: string,
  agentId: string,
  addresses: {
    twilio?: string
    whatsapp?: string
    messenger?: string
    rbm?: { agentId: string; verifiedSender: string }
  },
): Promise<void> {
  const admin = await authenticateStaffToken(ctx, adminToken)
  if (!admin) throw new Error('the admin token was not accepted')
  const secret = () => randomBytes(24).toString('base64url')
  if (addresses.twilio) {
    await configureChannel(ctx, admin, 'twilio', {
      address: addresses.twilio,
      settings: { accountSid: `AC${randomBytes(16).toString('hex')}`, agentId },
      secrets: { authToken: secret() },
    })
  }
  for (const connector of ['whatsapp', 'messenger'] as const) {
    const address = addresses[connector]
    if (!address) continue
    await configureChannel(ctx, admin, connector, {
      address,
      settings: { apiVersion: 'v23.0', agentId },
      secrets: { appSecret: secret(), accessToken: secret(), verifyToken: secret() },
    })
  }
  if (addresses.rbm) {
    await configureChannel(ctx, admin, 'rbm', {
      address: addresses.rbm.agentId,
      settings: { verifiedSender: addresses.rbm.verifiedSender, agentId },
      secrets: { accessToken: secret(), clientToken: secret() },
    })
  }
}
