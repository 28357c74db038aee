import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type MemberClient, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import type { ChannelSettings } from '@strongroom/sdk/protocol'
import { sql } from 'kysely'
import smpp, { type Pdu } from 'smpp'
import { Problem } from '../platform/http/problems.ts'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { configureChannel } from './channel-config.ts'
import { type FakeSmsc, startFakeSmsc } from './connectors/fake-smsc.ts'
import { SmppLinks } from './smpp-links.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const BANK_NUMBER = '+442071838751'
const OTHER_BANK_NUMBER = '+442071838752'
const CUSTOMER_PHONE = '+447700900321'
const CREDENTIALS = { systemId: 'bank01', password: 'pw12345' }
const PAN = '4111 1111 1111 1111'
/** The link rebinds with backoff: give it longer than the usual wait. */
const LINK_WAIT_MS = 15_000

interface PublicMessageView {
  id: string
  direction: string
  channel: string
  text: string
  masked: string[]
  delivery: { status: string; errorCode: string | null } | null
}

const customerSms = (text: string, extra: Record<string, unknown> = {}) => ({
  source_addr_ton: 1,
  source_addr_npi: 1,
  source_addr: CUSTOMER_PHONE.slice(1),
  dest_addr_ton: 1,
  dest_addr_npi: 1,
  destination_addr: BANK_NUMBER.slice(1),
  short_message: text,
  ...extra,
})

const textOf = (pdus: Pdu[]) => pdus.map((pdu) => (pdu.short_message as { message: string }).message).join('')

async function problemOf(promise: Promise<unknown>): Promise<StrongroomError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof StrongroomError) return error
    throw error
  }
  assert.fail('expected a problem')
}

describe('SMS over SMPP through the server', () => {
  let server: TestServer
  let stopped = false
  let smsc: FakeSmsc
  let otherSmsc: FakeSmsc
  let bank: TestBank
  let admin: StaffClient
  let agent: StaffClient
  let customerId: string

  const linkState = async (client = admin) => {
    const { channels } = await client.request<{ channels: ChannelSettings[] }>('GET', '/v1/channels')
    return channels.find((c) => c.connector === 'smpp')?.link
  }
  const linkReaches = async (state: string, client = admin) =>
    assert.equal(
      await eventually(
        () => linkState(client),
        (now) => now === state,
        LINK_WAIT_MS,
      ),
      state,
    )
  const configure = (client: MemberClient, body: Record<string, unknown>) =>
    client.request<ChannelSettings>('PUT', '/v1/channels/smpp', body)
  const publicMessages = async (conversationId: string) =>
    (
      await agent.request<{ messages: PublicMessageView[] }>(
        'GET',
        `/v1/conversations/${conversationId}/public-messages`,
      )
    ).messages
  const conversationOf = async () => {
    const [conversation] = await agent.listConversations()
    assert.ok(conversation)
    return conversation
  }

  before(async () => {
    smsc = await startFakeSmsc(CREDENTIALS)
    otherSmsc = await startFakeSmsc({ systemId: 'other', password: 'other12' })
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'SMPP Bank')
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const customer = await agent.request<{ id: string }>('POST', '/v1/customers', {
      externalRef: 'SMPP-1',
      displayName: 'Sam Customer',
      phoneNumber: CUSTOMER_PHONE,
    })
    customerId = customer.id
    await configure(admin, {
      address: BANK_NUMBER,
      host: '127.0.0.1',
      port: smsc.port,
      systemId: CREDENTIALS.systemId,
      agentId: bank.agentId,
      secrets: { password: CREDENTIALS.password },
    })
    const otherBank = await createTestBank(server, 'Other SMPP Bank')
    const otherAdmin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(otherBank.adminToken) })
    await configure(otherAdmin, {
      address: OTHER_BANK_NUMBER,
      host: '127.0.0.1',
      port: otherSmsc.port,
      systemId: 'other',
      secrets: { password: 'other12' },
    })
    await linkReaches('bound')
    await linkReaches('bound', otherAdmin)
  })
  after(async () => {
    if (!stopped) await server.stop()
    await smsc.close()
    await otherSmsc.close()
  })

  test('the channel binds with its configured credentials, which are sealed at rest and never shown', async () => {
    const { channels } = await admin.request<{ channels: ChannelSettings[] }>('GET', '/v1/channels')
    const channel = channels.find((c) => c.connector === 'smpp')
    assert.deepEqual(channel?.secretsSet, ['password'])
    assert.equal(channel?.systemId, 'bank01')
    assert.equal(channel?.link, 'bound')
    assert.ok(!JSON.stringify(channels).includes(CREDENTIALS.password))
    const { rows } = await sql<{ secrets: Uint8Array }>`
      select secrets from channel_configs where connector = 'smpp'`.execute(server.ctx.db)
    for (const row of rows) assert.ok(!Buffer.from(row.secrets).includes(CREDENTIALS.password))
    assert.equal(smsc.binds.at(-1)?.password, CREDENTIALS.password)
    // SMPP settings are checked: a channel without its SMSC cannot be saved.
    const incomplete = await problemOf(configure(admin, { address: BANK_NUMBER, secrets: {} }))
    assert.equal(incomplete.type, `${PROBLEMS}request/invalid`)
    const tooLong = await problemOf(
      configure(admin, { address: BANK_NUMBER, host: 'h', port: 1, systemId: 's', secrets: { password: '123456789' } }),
    )
    assert.equal(tooLong.status, 400)
  })

  test('an inbound SMS with a card number becomes a masked message in the customer’s conversation, once', async () => {
    const before = smsc.submits.length
    const answer = await smsc.deliver(customerSms(`my card is ${PAN}`, { receipted_message_id: 'mo-1' }))
    assert.equal(answer.command_status, 0)
    const conversation = await conversationOf()
    assert.equal(conversation.customerId, customerId)
    const [message] = await publicMessages(conversation.id)
    assert.equal(message?.channel, 'smpp')
    assert.equal(message?.direction, 'inbound')
    assert.equal(message?.text, 'my card is [card •••• 1111]')
    assert.deepEqual(message?.masked, ['card-number'])
    // The SMSC delivering it again (its answer lost) adds nothing.
    assert.equal(
      (await smsc.deliver(customerSms(`my card is ${PAN}`, { receipted_message_id: 'mo-1' }))).command_status,
      0,
    )
    assert.equal((await publicMessages(conversation.id)).filter((m) => m.direction === 'inbound').length, 1)
    const { rows } = await sql<{ ciphertext: Uint8Array }>`select ciphertext from messages`.execute(server.ctx.db)
    for (const row of rows) assert.ok(!Buffer.from(row.ciphertext).includes(PAN.replace(/ /g, '')))
    const audit = await sql<{ details: string }>`
      select details from audit_events where action = 'channels.dlp.masked'`.execute(server.ctx.db)
    assert.ok(audit.rows.some((row) => JSON.parse(row.details).channel === 'smpp'))
    // The automatic invitation to the secure channel went out by submit_sm, as a pivot link.
    const invitation = textOf(smsc.submits.slice(before))
    assert.match(invitation, /https:\/\/bank\.example\/secure\/#t=[A-Za-z0-9_-]+/)
    const links = await agent.request<{ links: { status: string }[] }>(
      'GET',
      `/v1/conversations/${conversation.id}/pivot-links`,
    )
    assert.equal(links.links[0]?.status, 'sent')
  })

  test('a card number split across the parts of a long SMS is still masked', async () => {
    const part = (index: number, text: string) =>
      customerSms('', { esm_class: 0x40, short_message: { udh: Buffer.from([5, 0, 3, 77, 2, index]), message: text } })
    await smsc.deliver(part(1, 'split card 4111 1111 '))
    await smsc.deliver(part(2, '1111 1111 please'))
    const conversation = await conversationOf()
    const messages = await publicMessages(conversation.id)
    assert.ok(messages.some((m) => m.text === 'split card [card •••• 1111] please'))
    assert.ok(!messages.some((m) => m.text.includes('4111')))
  })

  test('an agent’s reply goes out as submit_sm, and a delivery receipt moves its delivery state', async () => {
    const conversation = await conversationOf()
    const sent = await agent.request<{ messageId: string; delivery: { status: string; providerMessageId: string } }>(
      'POST',
      `/v1/conversations/${conversation.id}/public-messages`,
      { clientMessageId: 'reply-1', text: 'Your new card is on its way' },
    )
    assert.equal(sent.delivery.status, 'queued')
    const submit = smsc.submits.at(-1)
    assert.equal(sent.delivery.providerMessageId, `msg-${smsc.submits.length}`)
    assert.equal(submit?.destination_addr, CUSTOMER_PHONE.slice(1))
    assert.equal(submit?.source_addr, BANK_NUMBER.slice(1))
    assert.equal(submit?.registered_delivery, 1)
    assert.equal(textOf([submit as Pdu]), 'Your new card is on its way')
    const receipt = await smsc.deliver({
      ...customerSms('id:x stat:DELIVRD err:000'),
      esm_class: 0x04,
      receipted_message_id: sent.delivery.providerMessageId,
      message_state: 2,
    })
    assert.equal(receipt.command_status, 0)
    const view = (await publicMessages(conversation.id)).find((m) => m.id === sent.messageId)
    assert.equal(view?.delivery?.status, 'delivered')
    // A later, lesser receipt does not move it back.
    await smsc.deliver({
      ...customerSms(''),
      esm_class: 0x04,
      receipted_message_id: sent.delivery.providerMessageId,
      message_state: 1,
    })
    assert.equal(
      (await publicMessages(conversation.id)).find((m) => m.id === sent.messageId)?.delivery?.status,
      'delivered',
    )
  })

  test('a long Unicode reply goes in UCS-2 parts and is delivered only when every part is', async () => {
    const conversation = await conversationOf()
    const before = smsc.submits.length
    const text = `Здравствуйте! ${'Ваша карта в пути. '.repeat(5)}`
    const sent = await agent.request<{ messageId: string; delivery: { providerMessageId: string } }>(
      'POST',
      `/v1/conversations/${conversation.id}/public-messages`,
      { clientMessageId: 'reply-long', text },
    )
    const parts = smsc.submits.slice(before)
    assert.equal(parts.length, 2)
    for (const part of parts) assert.equal(part.data_coding, 0x08)
    assert.equal(textOf(parts), text)
    const [first, second] = parts.map((_, i) => `msg-${before + i + 1}`)
    assert.equal(sent.delivery.providerMessageId, first)
    const status = async () =>
      (await publicMessages(conversation.id)).find((m) => m.id === sent.messageId)?.delivery?.status
    const deliverReceipt = (id: string | undefined, state: number) =>
      smsc.deliver({ ...customerSms(''), esm_class: 0x04, receipted_message_id: id, message_state: state })
    await deliverReceipt(second, 2)
    assert.equal(await status(), 'queued')
    await deliverReceipt(first, 2)
    assert.equal(await status(), 'delivered')
  })

  test('an SMSC error answer is surfaced: 502 naming the SMPP status, and the message marked failed with it', async () => {
    const conversation = await conversationOf()
    smsc.answerSubmit = () => ({ command_status: smpp.errors.ESME_RINVDSTADR as number })
    try {
      const refused = await problemOf(
        agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
          clientMessageId: 'reply-refused',
          text: 'hello',
        }),
      )
      assert.equal(refused.status, 502)
      assert.equal(refused.type, `${PROBLEMS}channels/provider-rejected`)
      assert.equal(refused.problem.detail, 'SMPP ESME_RINVDSTADR (0x0000000B)')
      const failed = (await publicMessages(conversation.id)).at(-1)
      assert.deepEqual(failed?.delivery, { status: 'failed', errorCode: 'ESME_RINVDSTADR' })
    } finally {
      let id = smsc.submits.length
      smsc.answerSubmit = () => ({ command_status: 0, message_id: `msg-${++id}` })
    }
  })

  test('a deliver_sm for a number that is not this link’s tenant’s is refused, and nothing is stored', async () => {
    const count = async () =>
      Number(
        (
          await server.ctx.db
            .selectFrom('channel_messages')
            .select(({ fn }) => fn.countAll<string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      )
    const before = await count()
    const foreign = await smsc.deliver(
      customerSms('to the other bank', { destination_addr: OTHER_BANK_NUMBER.slice(1) }),
    )
    assert.equal(foreign.command_status, smpp.errors.ESME_RINVDSTADR)
    const unknown = await smsc.deliver(customerSms('to nobody', { destination_addr: '442070000000' }))
    assert.equal(unknown.command_status, smpp.errors.ESME_RINVDSTADR)
    assert.equal(await count(), before)
  })

  test('the SMSC dropping the connection: the server reconnects and carries on both ways', async () => {
    const binds = smsc.binds.length
    smsc.dropAll()
    await eventually(
      () => smsc.binds.length,
      (n) => n > binds,
      LINK_WAIT_MS,
    )
    await linkReaches('bound')
    assert.equal((await smsc.deliver(customerSms('back again', { receipted_message_id: 'mo-2' }))).command_status, 0)
    const conversation = await conversationOf()
    assert.ok((await publicMessages(conversation.id)).some((m) => m.text === 'back again'))
    const sent = await agent.request<{ delivery: { status: string } }>(
      'POST',
      `/v1/conversations/${conversation.id}/public-messages`,
      { clientMessageId: 'after-drop', text: 'Welcome back' },
    )
    assert.equal(sent.delivery.status, 'queued')
  })

  test('a one-time code goes out by submit_sm when the tenant’s SMS channel is SMPP', async () => {
    const before = smsc.submits.length
    const sent = await agent.request<{ expiresAt: string }>('POST', '/v1/factors/sms/send', { customerId })
    assert.ok(sent.expiresAt)
    const [submit] = smsc.submits.slice(before)
    assert.equal(submit?.destination_addr, CUSTOMER_PHONE.slice(1))
    assert.match(textOf([submit as Pdu]), /\b\d{6}\b/)
  })

  test('the SMSC’s enquire_link is answered by the server’s link', async () => {
    const answer = await smsc.enquireLink()
    assert.equal(answer.command, 'enquire_link_resp')
    assert.equal(answer.command_status, 0)
  })

  test('wrong credentials: the bind is refused, shown and audited, and nothing is sent until fixed', async () => {
    const binds = smsc.binds.length
    const submits = smsc.submits.length
    await configure(admin, {
      address: BANK_NUMBER,
      host: '127.0.0.1',
      port: smsc.port,
      systemId: CREDENTIALS.systemId,
      agentId: bank.agentId,
      secrets: { password: 'wrong' },
    })
    await linkReaches('bind-refused')
    assert.equal(smsc.binds.length, binds + 1)
    // The refusal is audited as the link reports it, a moment after the state changes.
    const audit = await eventually(
      async () =>
        (
          await sql<{ outcome: string; details: string }>`
            select outcome, details from audit_events where action = 'channels.smpp.bind'`.execute(server.ctx.db)
        ).rows,
      (rows) => rows.length > 0,
    )
    assert.equal(audit[0]?.outcome, 'failure')
    assert.ok(!JSON.stringify(audit).includes('wrong'))
    const conversation = await conversationOf()
    const refused = await problemOf(
      agent.request('POST', `/v1/conversations/${conversation.id}/public-messages`, {
        clientMessageId: 'while-refused',
        text: 'hello?',
      }),
    )
    assert.equal(refused.status, 503)
    assert.deepEqual((await publicMessages(conversation.id)).at(-1)?.delivery, {
      status: 'failed',
      errorCode: 'smpp/bind-refused',
    })
    assert.equal(smsc.submits.length, submits)
    // The right password again: the link binds and the message goes out when the agent retries it.
    await configure(admin, {
      address: BANK_NUMBER,
      host: '127.0.0.1',
      port: smsc.port,
      systemId: CREDENTIALS.systemId,
      agentId: bank.agentId,
      secrets: { password: CREDENTIALS.password },
    })
    await linkReaches('bound')
    const retried = await agent.request<{ delivery: { status: string } }>(
      'POST',
      `/v1/conversations/${conversation.id}/public-messages`,
      { clientMessageId: 'while-refused', text: 'hello?' },
    )
    assert.equal(retried.delivery.status, 'queued')
    assert.equal(smsc.submits.length, submits + 1)
  })

  test('in production, an SMSC must be one the operator allowed: no connections to hosts a tenant picks', async () => {
    const principal = {
      kind: 'staff' as const,
      tenantId: bank.tenantId,
      staffId: 'stf_admin',
      role: 'admin' as const,
      scopes: [],
      tokenId: 'stk_test',
      tokenExpiresAt: new Date(Date.now() + 60_000),
    }
    const production = (smppHosts: string | undefined) => ({
      ...server.ctx,
      config: { ...server.ctx.config, mode: 'production' as const, smppHosts },
    })
    const input = (host: string, port: number) => ({
      address: BANK_NUMBER,
      settings: { host, port, systemId: CREDENTIALS.systemId },
      secrets: {},
    })
    for (const [allowed, host, port] of [
      [undefined, 'smsc.example', 2775],
      ['smsc.example:2775', '127.0.0.1', 5432],
      ['smsc.example:2775', 'smsc.example', 2776],
    ] as const) {
      await assert.rejects(configureChannel(production(allowed), principal, 'smpp', input(host, port)), (error) => {
        assert.ok(error instanceof Problem)
        assert.equal(error.kind, 'request/invalid')
        assert.equal(error.detail, "this SMSC is not in the operator's STRONGROOM_SMPP_HOSTS")
        return true
      })
    }
    const view = await configureChannel(
      production('other.example:2775,SMSC.example:2775'),
      principal,
      'smpp',
      input('smsc.example', 2775),
    )
    assert.equal(view.host, 'smsc.example')
    // An SMSC the operator has since withdrawn gets no link when the server starts.
    const links = new SmppLinks(production('other.example:2775'), {
      // A link that is never opened receives nothing.
      receive: () => Promise.reject(new Error('no link, nothing received')),
    })
    await links.reload(bank.tenantId)
    assert.equal(links.stateOf(bank.tenantId), undefined)
    await links.close()
  })

  test('closing the server unbinds from the SMSC', async () => {
    const unbinds: Pdu[] = []
    smsc.on('unbind', (pdu) => unbinds.push(pdu))
    stopped = true
    await server.stop()
    // Stopping waits for the SMSC's answer to the unbind, so it has been received by now (not merely eventually).
    assert.equal(unbinds.length, 1)
  })
})
