/**
 * The demo bank of `npm start` (dev mode, first start): its credentials, and public channels ready for the channel
 * simulator, so that texting the bank from the simulator reaches the demo agent in the demo customer's conversation.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { StaffToken, StrongroomClient } from '@strongroom/sdk'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { demoAddresses } from './seed.ts'
import { startTestServer, type TestServer } from './testing/harness.ts'

let server: TestServer
let credentials: { agentToken: string; adminToken: string; customerId: string }

before(async () => {
  server = await startTestServer({ devSeed: true })
  const file = path.join(server.dataDir, 'dev-credentials.json')
  assert.equal(statSync(file).mode & 0o777, 0o600)
  credentials = JSON.parse(readFileSync(file, 'utf8'))
})
after(() => server.stop())

test('the demo bank answers SMS, WhatsApp and Messenger, and its secrets are not in the credentials file', async () => {
  const admin = new StrongroomClient({ baseUrl: server.url, credentials: new StaffToken(credentials.adminToken) })
  const { channels } = await admin.request<{ channels: { connector: string; address: string }[] }>(
    'GET',
    '/v1/channels',
  )
  assert.deepEqual(channels.map((c) => `${c.connector} ${c.address}`).sort(), [
    `messenger ${demoAddresses.bankMessengerPage}`,
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
  const agent = new StrongroomClient({ baseUrl: server.url, credentials: new StaffToken(credentials.agentToken) })
  const [conversation] = await agent.listConversations()
  assert.equal(conversation?.customerId, credentials.customerId)
  const [message] = await agent.listPublicMessages(conversation?.id as string)
  assert.deepEqual([message?.channel, message?.text], ['twilio', 'Hello bank'])
})
