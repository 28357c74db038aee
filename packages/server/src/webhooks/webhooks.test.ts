import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import {
  BackendClient,
  ClientAssertion,
  type ConversationUpdate,
  enrolDevice,
  StaffClient,
  StaffToken,
} from '@strongroom/sdk'
import { base64url, createLocalJWKSet, exportJWK, flattenedVerify } from 'jose'
import WebSocket from 'ws'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

interface Received {
  eventId: string
  signature: string
  body: string
}

describe('webhooks to bank backends', () => {
  let server: TestServer
  let bank: TestBank
  let receiver: Server
  let failuresToGo = 0
  const received: Received[] = []
  let backend: BackendClient
  let phone: Awaited<ReturnType<typeof enrolDevice>>

  before(async () => {
    receiver = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk) => {
        body += chunk
      })
      request.on('end', () => {
        received.push({
          eventId: String(request.headers['strongroom-event-id']),
          signature: String(request.headers['strongroom-signature']),
          body,
        })
        if (failuresToGo > 0) {
          failuresToGo--
          response.writeHead(503).end()
        } else response.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/strongroom`

    server = await startTestServer({ webhookRetryBaseMs: 10 })
    bank = await createTestBank(server)
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const registered = await fetch(`${server.url}/v1/api-clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'payments',
        jwks: { keys: [await exportJWK(publicKey)] },
        scopes: ['consents:write'],
        webhookUrl,
      }),
    })
    const { clientId, tokenEndpoint } = await registered.json()
    backend = new BackendClient({
      baseUrl: server.url,
      credentials: new ClientAssertion({ clientId, privateKey, algorithm: 'ES256', tokenEndpoint }),
    })
    phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
  })
  after(async () => {
    await server.stop()
    receiver.close()
  })

  const ask = () =>
    backend.requestConsent({
      customerId: bank.customerId,
      amount: { value: 4200, currency: 'EUR' },
      payee: { name: 'Landlord', account: 'FR1420041010050500013M02606' },
      reference: 'Rent',
    })

  async function deliver(until: () => boolean) {
    for (let i = 0; i < 50 && !until(); i++) {
      await server.flushWebhooks()
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  test('an approval reaches the backend signed with the receipt keys, with the receipt', async () => {
    received.length = 0
    const consent = await ask()
    await phone.client.approveConsent(await phone.client.getConsent(consent.id))
    await deliver(() => received.length > 0)
    assert.equal(received.length, 1)
    const [delivery] = received as [Received]
    const event = JSON.parse(delivery.body)
    assert.equal(event.id, delivery.eventId)
    assert.equal(event.type, 'consent.approved')
    assert.equal(event.data.consentId, consent.id)
    assert.match(event.data.receipt, /^ey/)

    const jwks = createLocalJWKSet(await (await fetch(`${server.url}/.well-known/jwks.json`)).json())
    const [protectedHeader, , signature] = delivery.signature.split('.') as [string, string, string]
    const verify = (body: string) =>
      flattenedVerify({ protected: protectedHeader, payload: base64url.encode(body), signature }, jwks)
    await verify(delivery.body)
    await assert.rejects(verify(delivery.body.replace('consent.approved', 'consent.declined')))
  })

  test('a backend that fails is retried with the same event id until it answers', async () => {
    received.length = 0
    failuresToGo = 2
    const consent = await ask()
    await phone.client.declineConsent(consent.id, 'not mine')
    await deliver(() => received.length >= 3)
    assert.equal(received.length, 3)
    assert.equal(new Set(received.map((r) => r.eventId)).size, 1)
    assert.equal(JSON.parse(received[2]?.body ?? '{}').type, 'consent.declined')
    const row = await server.ctx.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', received[0]?.eventId ?? '')
      .executeTakeFirstOrThrow()
    assert.deepEqual([row.status, row.attempts], ['delivered', 3])
  })

  test('a webhook URL must be http(s) — https only in production', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const response = await fetch(`${server.url}/v1/api-clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'x',
        jwks: { keys: [await exportJWK(publicKey)] },
        scopes: ['consents:write'],
        webhookUrl: 'ftp://files.example/hook',
      }),
    })
    assert.equal(response.status, 400)
    assert.equal((await response.json()).detail, 'webhookUrl must be https')
  })

  test('a consent asked by an agent sends no webhook', async () => {
    received.length = 0
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const consent = await agent.requestConsent({
      customerId: bank.customerId,
      amount: { value: 100, currency: 'EUR' },
      payee: { name: 'X', account: 'Y' },
      reference: 'Z',
    })
    await phone.client.approveConsent(await phone.client.getConsent(consent.id))
    await server.flushWebhooks()
    assert.equal(received.length, 0)
  })

  test("'This wasn't me': the bank's webhook hears of the fraud, the agent's stream flags it, and the payee is blocked", async () => {
    received.length = 0
    const agent = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
    const conversation = await agent.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.device.id],
    })
    const updates: ConversationUpdate[] = []
    const stream = agent.stream({ onUpdate: (_id, update) => updates.push(update) })
    try {
      await stream.ready()
      // Asked by an agent, not a backend: the fraud report still reaches the bank's backends.
      const payee = { name: 'Quick Parcel Ltd', account: 'GB33BUKB20201555555555' }
      const consent = await agent.requestConsent({
        customerId: bank.customerId,
        conversationId: conversation.id,
        amount: { value: 99000, currency: 'GBP' },
        payee,
        reference: 'Customs fee',
      })
      // A block needs the fraud report it belongs to.
      await assert.rejects(phone.client.declineConsent(consent.id, { blockPayee: true }), { status: 400 })
      const declined = await phone.client.declineConsent(consent.id, { fraud: true, blockPayee: true })
      assert.deepEqual([declined.status, declined.fraudReported, declined.payeeBlocked], ['declined', true, true])
      await deliver(() => received.length > 0)
      const events = received.map((r) => JSON.parse(r.body))
      assert.deepEqual(
        events.map((e) => e.type),
        ['consent.fraud_reported'],
      )
      assert.deepEqual(events[0].data, {
        consentId: consent.id,
        customerId: bank.customerId,
        conversationId: conversation.id,
        deviceId: phone.device.id,
        amount: { value: 99000, currency: 'GBP' },
        payee,
        reference: 'Customs fee',
        payeeBlocked: true,
      })
      // The agent's console hears it at once, and reads it flagged.
      for (let i = 0; i < 100 && !updates.some((u) => u.kind === 'consent' && u.status === 'declined'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.deepEqual(updates, [
        { kind: 'consent', consentId: consent.id, status: 'pending' },
        { kind: 'consent', consentId: consent.id, status: 'declined', fraud: true },
      ])
      const seen = await agent.getConsent(consent.id)
      assert.deepEqual([seen.fraudReported, seen.payeeBlocked, seen.bankName], [true, true, 'Test Bank'])
      // A replay changes nothing and tells nobody again.
      await assert.rejects(phone.client.declineConsent(consent.id, { fraud: true }), { status: 409 })
      await server.flushWebhooks()
      assert.equal(received.length, 1)
      // The same account, however it is spaced or cased, is refused for this customer; another payee is not.
      const again = (account: string) =>
        backend.requestConsent({
          customerId: bank.customerId,
          amount: { value: 100, currency: 'GBP' },
          payee: { name: 'Quick Parcel', account },
          reference: 'Again',
        })
      await assert.rejects(again('gb33 bukb 2020 1555 5555 55'), (error: { problem?: { type?: string } }) =>
        String(error.problem?.type).endsWith('/consent/payee-blocked'),
      )
      assert.equal((await again('GB94BARC10201530093459')).status, 'pending')
    } finally {
      stream.close()
    }
  })
})
