import assert from 'node:assert/strict'
import { once } from 'node:events'
import { afterEach, beforeEach, describe, test } from 'node:test'
import smpp from 'smpp'
import type { DeliveryReceipt, InboundMessage } from './connector.ts'
import { ProviderRejectedError, ProviderUnavailableError, SmppBindRefusedError } from './errors.ts'
import { recordingSleep } from './fake-provider.ts'
import { type FakeSmsc, startFakeSmsc } from './fake-smsc.ts'
import { SmppInboundRefusal, SmppLink, type SmppLinkState, smppConnector } from './smpp.ts'
import { DATA_CODING_GSM, DATA_CODING_UCS2, encodeSms } from './smpp-encoding.ts'

const CREDENTIALS = { systemId: 'bank01', password: 'secret1' }
const BANK = '+442071838750'
const CUSTOMER = '+447700900123'
/** Short waits, so that reconnection and keep-alive happen within a test. */
const TIMINGS = { reconnectBaseMs: 10, reconnectMaxMs: 40, enquireLinkMs: 60_000, responseTimeoutMs: 2_000 }

interface Recorded {
  messages: InboundMessage[]
  receipts: DeliveryReceipt[]
}

function recordingInbound(fail?: () => Error | undefined) {
  const recorded: Recorded = { messages: [], receipts: [] }
  return {
    recorded,
    inbound: {
      message: async (message: InboundMessage) => {
        const error = fail?.()
        if (error) throw error
        recorded.messages.push(message)
      },
      receipt: async (receipt: DeliveryReceipt) => {
        recorded.receipts.push(receipt)
      },
    },
  }
}

const customerSms = (text: string, extra: Record<string, unknown> = {}) => ({
  source_addr_ton: 1,
  source_addr_npi: 1,
  source_addr: CUSTOMER.slice(1),
  dest_addr_ton: 1,
  dest_addr_npi: 1,
  destination_addr: BANK.slice(1),
  short_message: text,
  ...extra,
})

describe('SMPP 3.4 link to an SMSC', () => {
  let smsc: FakeSmsc
  let link: SmppLink | undefined

  beforeEach(async () => {
    smsc = await startFakeSmsc(CREDENTIALS)
  })
  afterEach(async () => {
    await link?.close()
    link = undefined
    await smsc.close()
  })

  function open(
    credentials = CREDENTIALS,
    inbound = recordingInbound().inbound,
    timings: Partial<typeof TIMINGS & { reassemblyMs: number }> = {},
  ) {
    link = new SmppLink(
      { host: '127.0.0.1', port: smsc.port, tls: false, ...credentials, sourceAddress: BANK },
      inbound,
      { ...TIMINGS, ...timings },
    )
    link.start()
    return link
  }

  test('binds as a transceiver with the configured system_id and password', async () => {
    assert.equal(await open().reach('bound', 'bind-refused'), 'bound')
    const [bind] = smsc.binds
    assert.equal(bind?.command, 'bind_transceiver')
    assert.equal(bind?.system_id, 'bank01')
    assert.equal(bind?.password, 'secret1')
    assert.equal(bind?.interface_version, 0x34)
  })

  test('wrong credentials: the link reports the refusal, stops binding, and sends nothing', async () => {
    const opened = open({ systemId: 'bank01', password: 'wrong' })
    assert.equal(await opened.reach('bound', 'bind-refused'), 'bind-refused')
    await assert.rejects(opened.submit(CUSTOMER, 'hello'), SmppBindRefusedError)
    const connector = smppConnector(opened, {}, async () => {})
    await assert.rejects(connector.send({ to: CUSTOMER, text: 'hello', idempotencyKey: 'k' }), {
      code: 'smpp/bind-refused',
    })
    assert.equal(smsc.submits.length, 0)
    // One attempt only: binding again with refused credentials could lock the account.
    assert.equal(smsc.binds.length, 1)
    assert.equal(opened.state, 'bind-refused')
  })

  test('submit_sm carries the addresses, the GSM coding and a receipt request; the SMSC id comes back', async () => {
    await open().reach('bound')
    const connector = smppConnector(link as SmppLink, {}, async () => assert.fail('one part has no parts to record'))
    const sent = await connector.send({
      to: CUSTOMER,
      text: 'Your card is on its way',
      link: { url: 'https://bank.example/secure/#t=abc', label: 'Continue securely' },
      idempotencyKey: 'k1',
    })
    assert.equal(sent.providerMessageId, 'msg-1')
    const [submit] = smsc.submits
    assert.equal(submit?.source_addr, '442071838750')
    assert.equal(submit?.source_addr_ton, 1)
    assert.equal(submit?.source_addr_npi, 1)
    assert.equal(submit?.destination_addr, '447700900123')
    assert.equal(submit?.dest_addr_ton, 1)
    assert.equal(submit?.dest_addr_npi, 1)
    assert.equal(submit?.registered_delivery, 1)
    assert.equal(submit?.data_coding, DATA_CODING_GSM)
    assert.equal(submit?.esm_class, 0)
    assert.deepEqual(submit?.short_message, {
      message: 'Your card is on its way\n\nContinue securely: https://bank.example/secure/#t=abc',
    })
  })

  test('a long message goes in parts with a concatenation header, each recorded for its receipt', async () => {
    await open().reach('bound')
    let recorded: string[] = []
    const connector = smppConnector(link as SmppLink, {}, async (ids) => {
      recorded = ids
    })
    const text = `${'0123456789'.repeat(20)}€`
    const sent = await connector.send({ to: CUSTOMER, text, idempotencyKey: 'k2' })
    assert.equal(smsc.submits.length, 2)
    assert.deepEqual(recorded, ['msg-1', 'msg-2'])
    assert.equal(sent.providerMessageId, 'msg-1')
    const headers = smsc.submits.map((pdu) => (pdu.short_message as { udh: Buffer[] }).udh[0])
    const reference = headers[0]?.[2] ?? -1
    assert.deepEqual(headers, [Buffer.from([0, 3, reference, 2, 1]), Buffer.from([0, 3, reference, 2, 2])])
    for (const pdu of smsc.submits) {
      assert.equal(pdu.esm_class, 0x40)
      assert.equal(pdu.data_coding, DATA_CODING_GSM)
    }
    const texts = smsc.submits.map((pdu) => (pdu.short_message as { message: string }).message)
    assert.equal(texts.join(''), text)
    assert.equal(texts[0]?.length, 153)
  })

  test('Unicode text goes as UCS-2', async () => {
    await open().reach('bound')
    await (link as SmppLink).submit(CUSTOMER, 'Привет 👋')
    const [submit] = smsc.submits
    assert.equal(submit?.data_coding, DATA_CODING_UCS2)
    assert.deepEqual(submit?.short_message, { message: 'Привет 👋' })
  })

  test('an SMSC error status is surfaced by name and code, and not retried', async () => {
    await open().reach('bound')
    smsc.answerSubmit = () => ({ command_status: smpp.errors.ESME_RINVDSTADR as number })
    const error = await (link as SmppLink).submit(CUSTOMER, 'hello').catch((e: unknown) => e)
    assert.ok(error instanceof ProviderRejectedError)
    assert.equal(error.providerCode, 'ESME_RINVDSTADR')
    assert.equal(error.status, 0x0b)
    assert.equal(error.answer, 'SMPP ESME_RINVDSTADR (0x0000000B)')
    assert.equal(error.message, 'provider rejected the message with SMPP ESME_RINVDSTADR (0x0000000B)')
    assert.equal(smsc.submits.length, 1)
  })

  test('throttling is retried with backoff, as HTTP 429 is; the budget ends in ProviderUnavailableError', async () => {
    await open().reach('bound')
    let answers = 0
    smsc.answerSubmit = () =>
      ++answers < 3
        ? { command_status: smpp.errors.ESME_RTHROTTLED as number }
        : { command_status: 0, message_id: 'ok' }
    const { sleep, delays } = recordingSleep()
    assert.deepEqual(await (link as SmppLink).submit(CUSTOMER, 'hello', { sleep, random: () => 0 }), ['ok'])
    assert.deepEqual(delays, [250, 500])

    smsc.answerSubmit = () => ({ command_status: smpp.errors.ESME_RMSGQFUL as number })
    const before = smsc.submits.length
    await assert.rejects((link as SmppLink).submit(CUSTOMER, 'hello', { sleep, maxAttempts: 2 }), (error) => {
      assert.ok(error instanceof ProviderUnavailableError)
      assert.equal(error.attempts, 2)
      return true
    })
    assert.equal(smsc.submits.length - before, 2)
  })

  test('enquire_link: the link answers the SMSC, and asks on its own to keep the link alive', async () => {
    await open(CREDENTIALS, undefined, { enquireLinkMs: 20 }).reach('bound')
    const answer = await smsc.enquireLink()
    assert.equal(answer.command, 'enquire_link_resp')
    assert.equal(answer.command_status, 0)
    const [asked] = await once(smsc, 'enquire')
    assert.equal(asked.command, 'enquire_link')
  })

  test('the SMSC dropping the connection: the link reconnects, binds again and carries on', async () => {
    const inbound = recordingInbound()
    const opened = open(CREDENTIALS, inbound.inbound)
    await opened.reach('bound')
    const states: SmppLinkState[] = []
    opened.on('state', (state) => states.push(state))
    smsc.dropAll()
    await opened.reach('disconnected')
    await opened.reach('bound')
    assert.deepEqual(states, ['disconnected', 'connecting', 'bound'])
    assert.equal(smsc.binds.length, 2)
    assert.deepEqual(await opened.submit(CUSTOMER, 'after the drop'), ['msg-1'])
    const answer = await smsc.deliver(customerSms('still here'))
    assert.equal(answer.command_status, 0)
    assert.equal(inbound.recorded.messages[0]?.text, 'still here')
  })

  test('a submit while the link is down waits for the reconnection within its retry budget', async () => {
    const opened = open()
    await opened.reach('bound')
    smsc.dropAll()
    await opened.reach('disconnected')
    const ids = await opened.submit(CUSTOMER, 'queued behind the reconnect', { baseDelayMs: 20, maxAttempts: 50 })
    assert.deepEqual(ids, ['msg-1'])
  })

  test('deliver_sm from a phone is handed up in E.164, answered only once stored', async () => {
    const inbound = recordingInbound()
    await open(CREDENTIALS, inbound.inbound).reach('bound')
    const answer = await smsc.deliver(customerSms('Hello bank', { receipted_message_id: 'smsc-77' }))
    assert.equal(answer.command, 'deliver_sm_resp')
    assert.equal(answer.command_status, 0)
    const [message] = inbound.recorded.messages
    assert.equal(message?.from, CUSTOMER)
    assert.equal(message?.to, BANK)
    assert.equal(message?.text, 'Hello bank')
    assert.equal(message?.providerMessageId, 'smsc-77')
  })

  test('a deliver_sm that cannot be stored is answered with a temporary error, so the SMSC delivers it again', async () => {
    let failing = true
    const inbound = recordingInbound(() => (failing ? new Error('database down') : undefined))
    await open(CREDENTIALS, inbound.inbound).reach('bound')
    const refused = await smsc.deliver(customerSms('retry me'))
    assert.equal(refused.command_status, smpp.errors.ESME_RX_T_APPN)
    failing = false
    assert.equal((await smsc.deliver(customerSms('retry me'))).command_status, 0)
    assert.equal(inbound.recorded.messages.length, 1)
  })

  test('a handler refusal is answered with its status (a number that is not this link’s)', async () => {
    const inbound = recordingInbound(() => new SmppInboundRefusal('ESME_RINVDSTADR'))
    await open(CREDENTIALS, inbound.inbound).reach('bound')
    assert.equal((await smsc.deliver(customerSms('x'))).command_status, smpp.errors.ESME_RINVDSTADR)
  })

  test('the parts of a concatenated SMS are handed up as one message, in order, whatever order they come in', async () => {
    const inbound = recordingInbound()
    await open(CREDENTIALS, inbound.inbound).reach('bound')
    const part = (index: number, text: string) =>
      customerSms('', { esm_class: 0x40, short_message: { udh: Buffer.from([5, 0, 3, 42, 3, index]), message: text } })
    assert.equal((await smsc.deliver(part(2, '1111 1111 '))).command_status, 0)
    assert.equal((await smsc.deliver(part(1, 'my card 4111 '))).command_status, 0)
    assert.equal(inbound.recorded.messages.length, 0)
    assert.equal((await smsc.deliver(part(3, '1111'))).command_status, 0)
    assert.deepEqual(
      inbound.recorded.messages.map((m) => m.text),
      ['my card 4111 1111 1111 1111'],
    )
  })

  test('parts whose rest never comes are handed up as they are once reassembly gives up', async () => {
    const inbound = recordingInbound()
    const opened = open(CREDENTIALS, inbound.inbound, { reassemblyMs: 20 })
    await opened.reach('bound')
    await smsc.deliver(
      customerSms('', { esm_class: 0x40, short_message: { udh: Buffer.from([5, 0, 3, 9, 2, 1]), message: 'half' } }),
    )
    while (inbound.recorded.messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    assert.equal(inbound.recorded.messages[0]?.text, 'half')
  })

  test('UCS-2 and message_payload deliveries are decoded', async () => {
    const inbound = recordingInbound()
    await open(CREDENTIALS, inbound.inbound).reach('bound')
    await smsc.deliver(customerSms('Grüße 👋', { data_coding: DATA_CODING_UCS2 }))
    await smsc.deliver(
      customerSms('', { message_payload: 'a payload well over one hundred and sixty characters '.repeat(4) }),
    )
    assert.equal(inbound.recorded.messages[0]?.text, 'Grüße 👋')
    assert.equal(inbound.recorded.messages[1]?.text, 'a payload well over one hundred and sixty characters '.repeat(4))
  })

  test('delivery receipts: receipted_message_id and message_state, or the receipt text, in our statuses', async () => {
    const inbound = recordingInbound()
    await open(CREDENTIALS, inbound.inbound).reach('bound')
    const receipt = (fields: Record<string, unknown>) =>
      smsc.deliver({ ...customerSms(''), esm_class: 0x04, ...fields })
    await receipt({ receipted_message_id: 'msg-1', message_state: 2, short_message: 'id:msg-1 stat:DELIVRD err:000' })
    await receipt({
      short_message:
        'id:msg-2 sub:001 dlvrd:000 submit date:2611301200 done date:2611301201 stat:UNDELIV err:001 text:',
    })
    await receipt({ short_message: 'id:msg-3 sub:001 dlvrd:000 stat:EXPIRED err:000 text:' })
    await receipt({ receipted_message_id: 'msg-4', message_state: 1 })
    // UNKNOWN says nothing we track; a receipt without an id cannot be matched.
    await receipt({ receipted_message_id: 'msg-5', message_state: 7 })
    await receipt({ short_message: 'stat:DELIVRD' })
    assert.deepEqual(inbound.recorded.receipts, [
      { providerMessageId: 'msg-1', status: 'delivered' },
      { providerMessageId: 'msg-2', status: 'failed', errorCode: 'UNDELIV:001' },
      { providerMessageId: 'msg-3', status: 'failed', errorCode: 'EXPIRED' },
      { providerMessageId: 'msg-4', status: 'sent' },
    ])
    assert.equal(inbound.recorded.messages.length, 0)
  })

  test('close unbinds from the SMSC and stops reconnecting', async () => {
    const opened = open()
    await opened.reach('bound')
    const unbound = once(smsc, 'unbind')
    await opened.close()
    await unbound
    assert.equal(opened.state, 'closed')
    await assert.rejects(opened.submit(CUSTOMER, 'too late'), ProviderUnavailableError)
    assert.equal(smsc.binds.length, 1)
  })
})

describe('SMS encoding', () => {
  test('GSM 03.38 text is one septet per octet, extension characters escaped', () => {
    const { dataCoding, parts } = encodeSms('@£€{', 1)
    assert.equal(dataCoding, DATA_CODING_GSM)
    assert.deepEqual(parts, [Buffer.from([0x00, 0x01, 0x1b, 0x65, 0x1b, 0x28])])
  })

  test('160 GSM characters fit one SMS; 161 take two parts of at most 153', () => {
    assert.equal(encodeSms('a'.repeat(160), 1).parts.length, 1)
    const { parts } = encodeSms('a'.repeat(161), 7)
    assert.deepEqual(
      parts.map((p) => p.length),
      [6 + 153, 6 + 8],
    )
    assert.deepEqual([...(parts[1]?.subarray(0, 6) ?? [])], [5, 0, 3, 7, 2, 2])
  })

  test('a part never ends between an escape and its character', () => {
    const { parts } = encodeSms(`${'a'.repeat(152)}€${'b'.repeat(10)}`, 1)
    assert.equal(parts[0]?.length, 6 + 152)
    assert.deepEqual([...(parts[1]?.subarray(6, 8) ?? [])], [0x1b, 0x65])
  })

  test('UCS-2: 70 characters fit one SMS; longer text splits at 67, never inside a surrogate pair', () => {
    assert.equal(encodeSms('ж'.repeat(70), 1).parts.length, 1)
    const { dataCoding, parts } = encodeSms(`${'ж'.repeat(66)}👋${'ж'.repeat(10)}`, 1)
    assert.equal(dataCoding, DATA_CODING_UCS2)
    assert.equal(parts[0]?.length, 6 + 132)
    assert.equal(
      Buffer.from(parts[1]?.subarray(6) ?? [])
        .swap16()
        .toString('utf16le'),
      `👋${'ж'.repeat(10)}`,
    )
  })

  test('more than 255 parts is refused', () => {
    assert.throws(() => encodeSms('a'.repeat(153 * 255 + 1), 1), { code: 'smpp/message-too-long' })
  })
})
