/**
 * The dev channel simulator as the simulator page uses it (through `@strongroom/sdk/simulator`): which channels a
 * phone can write to, and a phone's thread both ways, in order, followed live by waiting for what comes next.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { LocalKeyFileProvider } from '../platform/keyring/local-key-file.ts'
import { configureSimulatedChannels } from '../seed.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { needsPostgres } from '../testing/requirements.ts'
import { PhoneLog } from './simulator-phone-log.ts'

const BANK_NUMBER = '+442079460555'
const OTHER_BANK_NUMBER = '+442079460556'
const CUSTOMER_PHONE = '+447700900555'
const PAGE_ID = '100000000000555'
const RBM_AGENT = 'simulator-bank@rbm.goog'

describe('the channel simulator: the phone side', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let phone: ChannelSimulator
  let conversationId: string
  let customerId: string

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server, 'Simulator Bank')
    const otherBank = await createTestBank(server, 'Other Simulator Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    customerId = await agent
      .request<{ id: string }>('POST', '/v1/customers', {
        externalRef: 'SIM-1',
        displayName: 'Simon Customer',
        phoneNumber: CUSTOMER_PHONE,
      })
      .then((customer) => customer.id)
    await configureSimulatedChannels(server.ctx, bank.adminToken, bank.agentId, {
      twilio: BANK_NUMBER,
      messenger: PAGE_ID,
      rbm: { agentId: RBM_AGENT, verifiedSender: 'Simulator Bank' },
    })
    await configureSimulatedChannels(server.ctx, otherBank.adminToken, otherBank.agentId, {
      twilio: OTHER_BANK_NUMBER,
    })
    phone = new ChannelSimulator({ baseUrl: server.url })
  })
  after(() => server.stop())

  test('a phone can write to every configured channel, named by connector and address (and RCS sender) only', async () => {
    assert.deepEqual(await phone.channels(), [
      { connector: 'messenger', address: PAGE_ID },
      { connector: 'rbm', address: RBM_AGENT, verifiedSender: 'Simulator Bank' },
      { connector: 'twilio', address: BANK_NUMBER },
      { connector: 'twilio', address: OTHER_BANK_NUMBER },
    ])
  })

  test("the thread holds both ways in order: the customer's text with a card number, then the bank's link", async () => {
    const sent = await phone.send('twilio', {
      from: CUSTOMER_PHONE,
      to: BANK_NUMBER,
      text: 'My card is 4111 1111 1111 1111',
    })
    assert.equal(sent.status, 200)
    const thread = await phone.thread('twilio', CUSTOMER_PHONE)
    assert.deepEqual(
      thread.map((m) => [m.direction, m.webhookStatus]),
      [
        ['from-phone', 200],
        ['to-phone', null],
      ],
    )
    // The phone shows what the customer typed; the bank stores it masked.
    assert.equal(thread[0]?.text, 'My card is 4111 1111 1111 1111')
    assert.equal(thread[0]?.providerMessageId, sent.providerMessageId)
    assert.match(thread[1]?.text ?? '', /secure\/#t=srp_/)
    assert.ok((thread[0]?.seq ?? 0) < (thread[1]?.seq ?? 0))
    // Nothing after the last one; another phone's thread is its own.
    assert.deepEqual(await phone.thread('twilio', CUSTOMER_PHONE, { after: thread[1]?.seq ?? 0 }), [])
    assert.deepEqual(await phone.thread('twilio', '+447700900556'), [])
    assert.deepEqual(await phone.thread('messenger', CUSTOMER_PHONE), [])
    conversationId = (await agent.listConversations())[0]?.id as string
  })

  test('a badly signed text is refused by the bank, and the thread says so', async () => {
    const refused = await phone.send('twilio', {
      from: CUSTOMER_PHONE,
      to: BANK_NUMBER,
      text: 'forged',
      signature: 'invalid',
    })
    assert.equal(refused.status, 401)
    const last = (await phone.thread('twilio', CUSTOMER_PHONE)).at(-1)
    assert.deepEqual([last?.text, last?.webhookStatus], ['forged', 401])
  })

  test("a reader waiting for the phone's next message gets the agent's reply when it is sent", async () => {
    const seen = (await phone.thread('twilio', CUSTOMER_PHONE)).at(-1)?.seq ?? 0
    const waiting = phone.thread('twilio', CUSTOMER_PHONE, { after: seen, waitSeconds: 25 })
    await agent.sendPublicMessage(conversationId, { text: 'Thank you, we blocked it.' })
    const [reply, ...more] = await waiting
    assert.deepEqual(more, [])
    assert.deepEqual([reply?.direction, reply?.text], ['to-phone', 'Thank you, we blocked it.'])
    // With nothing new, a short wait ends empty.
    assert.deepEqual(await phone.thread('twilio', CUSTOMER_PHONE, { after: reply?.seq ?? 0, waitSeconds: 1 }), [])
  })

  test('a Messenger button arrives with its link and label', async () => {
    // A page-scoped id is not a phone number: the sender is unidentified until an agent links them.
    await phone.send('messenger', { from: '7012345678901234', to: PAGE_ID, text: 'Hello from Messenger' })
    const unidentified = (await agent.listConversations())[0]
    assert.equal(unidentified?.customerId, null)
    await agent.request('POST', `/v1/conversations/${unidentified?.id}/public-channel/customer`, {
      customerId: bank.customerId,
    })
    await agent.invitePivot(unidentified?.id as string)
    const invitation = (await phone.thread('messenger', '7012345678901234')).at(-1)
    assert.equal(invitation?.link?.label, 'Continue securely')
    assert.match(invitation?.link?.url ?? '', /\/secure\/#t=srp_[A-Za-z0-9_-]+$/)
  })

  test('RCS: the pivot story, from the verified sender, with a rich card and delivery and read events', async () => {
    const sent = await phone.send('rbm', { from: CUSTOMER_PHONE, to: RBM_AGENT, text: 'Is this really my bank?' })
    assert.equal(sent.status, 200)
    const conversation = (await agent.listConversations())[0]
    assert.ok(conversation)
    // The console shows who the customer sees writing: the sender name Google verified for the agent.
    const [channel] = await agent.conversationChannels([conversation.id])
    assert.deepEqual(
      [channel?.connector, channel?.kind, channel?.verifiedSender, channel?.customerLinked],
      ['rbm', 'public', 'Simulator Bank', true],
    )
    const { message } = await agent.invitePivot(conversation.id)
    const card = (await phone.thread('rbm', CUSTOMER_PHONE)).at(-1)
    assert.equal(card?.providerMessageId, message?.delivery.providerMessageId)
    assert.equal(card?.link?.label, 'Continue securely')
    const token = /\/secure\/#t=(srp_[A-Za-z0-9_-]+)$/.exec(card?.link?.url ?? '')?.[1]
    assert.ok(token, 'the rich card opens the pivot link')
    for (const status of ['delivered', 'read'] as const) {
      const receipt = await phone.receipt('rbm', { to: RBM_AGENT, providerMessageId: card.providerMessageId, status })
      assert.equal(receipt.status, 200)
    }
    // The webhook is handled before it is answered: the console already shows the card as read.
    assert.equal((await agent.listPublicMessages(conversation.id)).at(-1)?.delivery?.status, 'read')
    // A forged RBM event is refused and stores nothing.
    const forged = await phone.send('rbm', {
      from: CUSTOMER_PHONE,
      to: RBM_AGENT,
      text: 'forged',
      signature: 'invalid',
    })
    assert.equal(forged.status, 401)
    assert.ok(!(await agent.listPublicMessages(conversation.id)).some((m) => m.text === 'forged'))
    // The customer's device opens the link: the conversation continues in the secure channel.
    const { code } = await agent.issueEnrolmentCode(customerId)
    const device = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone' })
    const { secureConversationId } = await device.client.redeemPivotLink(token)
    const [secure] = await agent.conversationChannels([secureConversationId])
    assert.deepEqual([secure?.kind, secure?.connector], ['secure', 'rbm'])
  })

  test("the simulated RBM API takes only the agent's own access token, as Google does", async () => {
    const sendWith = (authorization: string | undefined, agentId = RBM_AGENT) =>
      fetch(
        `${server.url}/dev/simulator/provider/rbm/v1/phones/${encodeURIComponent(CUSTOMER_PHONE)}/agentMessages?` +
          new URLSearchParams({ messageId: `direct-${authorization?.length ?? 0}-${agentId}`, agentId }),
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          body: JSON.stringify({ contentMessage: { text: 'not from the bank' } }),
        },
      )
    const before = (await phone.thread('rbm', CUSTOMER_PHONE)).length
    for (const [authorization, agentId] of [
      ['Bearer any-token-at-all', RBM_AGENT],
      ['Basic dXNlcjpwYXNz', RBM_AGENT],
      [undefined, RBM_AGENT],
      ['Bearer any-token-at-all', 'no-such-agent@rbm.goog'],
    ] as const) {
      const response = await sendWith(authorization, agentId)
      assert.equal(response.status, 401, `${authorization} for ${agentId}`)
    }
    assert.equal((await phone.thread('rbm', CUSTOMER_PHONE)).length, before, 'nothing reached the phone')
    // The agent's token, rotated by the bank: the old one is refused, and the connector sends with the new one.
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const rotated = 'rotated-access-token-of-the-agent'
    await admin.request('PUT', '/v1/channels/rbm', {
      address: RBM_AGENT,
      verifiedSender: 'Simulator Bank',
      secrets: { accessToken: rotated },
    })
    assert.equal((await sendWith(`Bearer ${rotated}`)).status, 200)
    const conversations = await agent.listConversations()
    const channels = await agent.conversationChannels(conversations.map((c) => c.id))
    const onRcs = channels.find((c) => c.connector === 'rbm' && c.kind === 'public')
    assert.ok(onRcs)
    const sent = await agent.sendPublicMessage(onRcs.conversationId, { text: 'Sent with the rotated token' })
    assert.notEqual(sent.delivery.status, 'failed')
    assert.equal((await phone.thread('rbm', CUSTOMER_PHONE)).at(-1)?.text, 'Sent with the rotated token')
  })

  test("RBM's webhook verification is answered with its secret only for the agent's client token", async () => {
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const clientToken = 'rbm-client-token-of-the-bank'
    await admin.request('PUT', '/v1/channels/rbm', {
      address: RBM_AGENT,
      verifiedSender: 'Simulator Bank',
      secrets: { clientToken },
    })
    const verify = async (body: unknown) => {
      const response = await fetch(`${server.url}/v1/channels/rbm/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return [response.status, await response.text()]
    }
    assert.deepEqual(await verify({ clientToken, secret: '1234567890' }), [200, '1234567890'])
    const [wrongToken] = await verify({ clientToken: 'not-our-client-token', secret: '1234567890' })
    assert.equal(wrongToken, 403)
    // Nothing that could be read as markup is echoed, and an unsigned event is no handshake.
    const [markup] = await verify({ clientToken, secret: '<script>' })
    assert.equal(markup, 403)
    const [unsigned] = await verify({ message: { data: Buffer.from('{}').toString('base64') } })
    assert.equal(unsigned, 403)
    // The channel still answers events signed with the new token: the simulator signs with the stored one.
    const sent = await phone.send('rbm', { from: CUSTOMER_PHONE, to: RBM_AGENT, text: 'still here' })
    assert.equal(sent.status, 200)
  })

  test('the phone cannot write to an address no channel has, nor wait longer than 25 s', async () => {
    const unknown = await phone
      .send('twilio', { from: CUSTOMER_PHONE, to: '+442079460999', text: 'hello?' })
      .catch((e: unknown) => e)
    assert.ok(unknown instanceof StrongroomError)
    assert.equal(unknown.type, 'https://strongroom.dev/problems/channels/not-configured')
    const tooLong = await phone.thread('twilio', CUSTOMER_PHONE, { waitSeconds: 26 }).catch((e: unknown) => e)
    assert.ok(tooLong instanceof StrongroomError)
    assert.equal(tooLong.status, 400)
  })
})

describe('the phone log', () => {
  const message = (phone: string) =>
    ({
      connector: 'twilio',
      direction: 'to-phone',
      phone,
      providerMessageId: `SM-${phone}`,
      text: 'hi',
      link: null,
      at: new Date().toISOString(),
      webhookStatus: null,
    }) as const

  test("a waiting reader wakes for its phone's message, not another's", async () => {
    const log = new PhoneLog()
    const waiting = log.next('twilio', '+447700900001', 0, 2 ** 31 - 1)
    log.record(message('+447700900002'))
    log.record(message('+447700900001'))
    assert.deepEqual(
      (await waiting).map((m) => [m.seq, m.phone]),
      [[2, '+447700900001']],
    )
  })

  test('release answers every waiting reader at once (a closing server is not held open)', async () => {
    const log = new PhoneLog()
    const waiting = [
      log.next('twilio', '+447700900001', 0, 2 ** 31 - 1),
      log.next('whatsapp', '447700900001', 0, 2 ** 31 - 1),
    ]
    log.release()
    assert.deepEqual(await Promise.all(waiting), [[], []])
  })
})

describe('a production server', {
  skip: needsPostgres(),
}, () => {
  test('has no channel simulator: no phone, no thread, no channel list, no fake provider', async () => {
    const keys = mkdtempSync(path.join(os.tmpdir(), 'strongroom-production-keys-'))
    const keyFile = path.join(keys, 'keyring.json')
    await LocalKeyFileProvider.open(keyFile, { create: true })
    const server = await startTestServer({ mode: 'production', keyFile })
    try {
      const status = async (method: string, url: string, body?: unknown) => {
        const response = await fetch(server.url + url, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? null : JSON.stringify(body),
        })
        await response.body?.cancel()
        return response.status
      }
      assert.equal(await status('GET', '/dev/simulator/channels'), 404)
      assert.equal(await status('GET', `/dev/simulator/phone/twilio/thread?address=${CUSTOMER_PHONE}`), 404)
      assert.equal(await status('GET', `/dev/simulator/phone/twilio/inbox?address=${CUSTOMER_PHONE}`), 404)
      assert.equal(
        await status('POST', '/dev/simulator/phone/twilio/messages', {
          from: CUSTOMER_PHONE,
          to: BANK_NUMBER,
          text: 'x',
        }),
        404,
      )
      assert.equal(await status('POST', '/dev/simulator/provider/messenger/v23.0/me/messages', {}), 404)
    } finally {
      await server.stop()
      rmSync(keys, { recursive: true, force: true })
    }
  })
})
