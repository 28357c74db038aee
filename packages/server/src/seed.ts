import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Actor } from './audit/events.ts'
import { configureChannel } from './channels/channel-config.ts'
import { createCustomer } from './identity/customers.ts'
import { issueEnrolmentCode } from './identity/enrolment-codes.ts'
import type { ServerContext } from './platform/context.ts'
import { authenticateStaffToken, createStaff, issueStaffToken } from './tenancy/staff.ts'
import { createTenant, listTenants } from './tenancy/tenants.ts'

/**
 * Dev mode only: on the first start, a demo bank with an admin, an agent and a customer, so that the whole flow can
 * be tried at once. The credentials go to a file only the owner can read, and its path to the log. Its SMS, WhatsApp
 * and Messenger channels are answered by the agent and played by the channel simulator (random secrets, no
 * provider), and the customer's phone number is the simulator's default, so a text from it reaches their
 * conversation.
 */
const system: Actor = { kind: 'system', id: 'dev-seed' }

/** The demo's addresses: numbers from Ofcom's ranges for drama, which are never assigned to anyone. */
export const demoAddresses = {
  customerPhone: '+447700900123',
  bankSms: '+442079460123',
  bankWhatsApp: '100000000000001',
  bankMessengerPage: '100000000000002',
} as const

export async function seedDemoBank(ctx: ServerContext): Promise<void> {
  if ((await listTenants(ctx)).length > 0) return
  const tenant = await createTenant(ctx, 'Demo Bank', system)
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
 * Public channels for a tenant, answered by the channel simulator (random secrets; in dev, channels without a
 * provider URL send to the simulator), with `agentId` joining every new public conversation. For the demo bank, and
 * for tests.
 */
export async function configureSimulatedChannels(
  ctx: Pick<ServerContext, 'db' | 'keyring' | 'config'>,
  adminToken: string,
  agentId: string,
  addresses: { twilio?: string; whatsapp?: string; messenger?: string },
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
}
