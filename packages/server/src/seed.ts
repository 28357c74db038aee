import { writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Actor } from './audit/events.ts'
import { createCustomer } from './identity/customers.ts'
import { issueEnrolmentCode } from './identity/enrolment-codes.ts'
import type { ServerContext } from './platform/context.ts'
import { createStaff, issueStaffToken } from './tenancy/staff.ts'
import { createTenant, listTenants } from './tenancy/tenants.ts'

/**
 * Dev mode only: on the first start, a demo bank with an admin, an agent and a customer, so that the whole flow can
 * be tried at once. The credentials go to a file only the owner can read, and its path to the log.
 */
const system: Actor = { kind: 'system', id: 'dev-seed' }

export async function seedDemoBank(ctx: ServerContext): Promise<void> {
  if ((await listTenants(ctx)).length > 0) return
  const tenant = await createTenant(ctx, 'Demo Bank', system)
  const admin = await createStaff(ctx, tenant.id, { name: 'admin', role: 'admin' }, system)
  const agent = await createStaff(ctx, tenant.id, { name: 'agent', role: 'agent' }, system)
  const customer = await createCustomer(ctx, tenant.id, { externalRef: 'DEMO-0001', displayName: 'Demo Customer' })
  const ttlSeconds = 30 * 86400
  const credentials = {
    tenantId: tenant.id,
    adminToken: (await issueStaffToken(ctx, admin, { ttlSeconds }, system)).token,
    agentId: agent.id,
    agentToken: (await issueStaffToken(ctx, agent, { ttlSeconds }, system)).token,
    customerId: customer.id,
    enrolmentCode: (await issueEnrolmentCode(ctx, tenant.id, customer.id, system)).code,
  }
  const file = path.resolve(ctx.config.dataDir, 'dev-credentials.json')
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 })
  ctx.log.info({ tenantId: tenant.id, credentialsFile: file }, 'dev mode: created the Demo Bank')
}
