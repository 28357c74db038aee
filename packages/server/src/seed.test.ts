/**
 * The demo bank of `npm start` (dev mode, first start): its credentials, and public channels ready for the channel
 * simulator, so that texting the bank from the simulator reaches the demo agent in the demo customer's conversation.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { operator } from './audit/events.ts'
import { ConfigError } from './platform/config.ts'
import { demoAddresses, refuseDevSeededDatabase } from './seed.ts'
import { findStaff, issueStaffToken } from './tenancy/staff.ts'
import { createTenant } from './tenancy/tenants.ts'
import { startTestServer, type TestServer } from './testing/harness.ts'

let server: TestServer
let credentials: { agentToken: string; adminToken: string; customerId: string; tenantId: string }

before(async () => {
  server = await startTestServer({ devSeed: true })
  const file = path.join(server.dataDir, 'dev-credentials.json')
  assert.equal(statSync(file).mode & 0o777, 0o600)
  credentials = JSON.parse(readFileSync(file, 'utf8'))
})
after(() => server.stop())

test('the demo bank answers SMS, WhatsApp, Messenger and RCS, and its secrets are not in the credentials file', async () => {
  const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(credentials.adminToken) })
  const { channels } = await admin.request<{ channels: { connector: string; address: string }[] }>(
    'GET',
    '/v1/channels',
  )
  assert.deepEqual(channels.map((c) => `${c.connector} ${c.address}`).sort(), [
    `messenger ${demoAddresses.bankMessengerPage}`,
    `rbm ${demoAddresses.bankRbmAgent}`,
    `twilio ${demoAddresses.bankSms}`,
    `whatsapp ${demoAddresses.bankWhatsApp}`,
  ])
  assert.deepEqual(Object.keys(credentials).sort(), [
    'adminToken',
    'agentId',
    'agentToken',
    'customerId',
    'enrolmentCode',
    'tenantId',
  ])
})

test("a text from the demo customer's phone in the simulator reaches the demo agent, in that customer's conversation", async () => {
  const phone = new ChannelSimulator({ baseUrl: server.url })
  const sms = (await phone.channels()).find((c) => c.connector === 'twilio')
  assert.ok(sms)
  const sent = await phone.send('twilio', { from: demoAddresses.customerPhone, to: sms.address, text: 'Hello bank' })
  assert.equal(sent.status, 200)
  const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(credentials.agentToken) })
  const [conversation] = await agent.listConversations()
  assert.equal(conversation?.customerId, credentials.customerId)
  const [message] = await agent.listPublicMessages(conversation?.id as string)
  assert.deepEqual([message?.channel, message?.text], ['twilio', 'Hello bank'])
})

// Last in this file: it revokes the demo bank's tokens.
test('production refuses the database the dev seed wrote to; with the operator’s flag the seed’s tokens stop working', async () => {
  const production = { ...server.config, mode: 'production' as const }
  const deps = { db: server.ctx.db, log: server.ctx.log }
  const me = (token: string) => fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } })
  await assert.rejects(refuseDevSeededDatabase({ ...deps, config: production }), (error) => {
    assert.ok(error instanceof ConfigError)
    assert.equal(error.setting, 'STRONGROOM_ALLOW_DEV_SEEDED_DATABASE')
    assert.match(error.message, /the dev seed wrote to this database/)
    assert.ok(!error.message.includes('\n'))
    return true
  })
  assert.equal((await me(credentials.adminToken)).status, 200, 'refusing changes nothing')

  await refuseDevSeededDatabase({ ...deps, config: { ...production, allowDevSeededDatabase: true } })
  assert.equal((await me(credentials.adminToken)).status, 401)
  assert.equal((await me(credentials.agentToken)).status, 401)
  // An operator's own token on the same database works, and a second start revokes nothing more.
  const admin = await findStaff(server.ctx, credentials.tenantId, { name: 'admin' })
  assert.ok(admin)
  const fresh = await issueStaffToken(server.ctx, admin, { ttlSeconds: 600 }, operator)
  await refuseDevSeededDatabase({ ...deps, config: { ...production, allowDevSeededDatabase: true } })
  assert.equal((await me(fresh.token)).status, 200)
})

test('a bank that calls itself Demo Bank is not the dev seed', async () => {
  const other = await startTestServer()
  try {
    await createTenant(other.ctx, 'Demo Bank', operator)
    await refuseDevSeededDatabase({
      db: other.ctx.db,
      log: other.ctx.log,
      config: { ...other.config, mode: 'production' },
    })
  } finally {
    await other.stop()
  }
})
