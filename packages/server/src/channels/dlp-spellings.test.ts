import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type PublicMessage, StaffClient, StaffToken } from '@strongroom/sdk'
import { sql } from 'kysely'
import { verifyBundle } from '../archive/bundle.ts'
import { DEFAULT_RETENTION_DAYS, expireArchiveRecords } from '../archive/retention.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { problemOf } from '../testing/problems.ts'
import { CARD_SPELLINGS, groupsOf, IBAN_SPELLINGS } from './dlp-corpus.ts'
import { normalizeForDlp } from './dlp-normalize.ts'

const BANK_NUMBER = '+442071838750'
const CUSTOMER_PHONE = '+447700900123'
const CARD = '4111111111111111'
const IBAN = 'DE89370400440532013000'

/** The spellings issue 16 found slipping past DLP (the split over two SMS has its own test below). */
const ISSUE_SPELLINGS: [string, string][] = [
  ...[
    'dots',
    'slashes',
    'mixed separators',
    'double spaces',
    'line breaks',
    'tabs',
    'no-break spaces',
    'en dashes',
    'zero-width spaces',
    'fullwidth',
    'Arabic-Indic',
    'Devanagari',
    'mathematical bold',
    'keycaps',
    'combining accents',
    'backwards in a right-to-left override',
  ].map((name): [string, string] => [name, (CARD_SPELLINGS[name] as (g: string[]) => string)(groupsOf(CARD))]),
  ...['lower case grouped', 'lower case compact', 'dashes'].map((name): [string, string] => [
    `IBAN ${name}`,
    (IBAN_SPELLINGS[name] as (iban: string) => string)(IBAN),
  ]),
]

/** Whether a text still holds the secret's middle digits, read as DLP reads it (any digits, no separators). */
const holds = (text: string, secret: string) =>
  normalizeForDlp(text)
    .text.replace(/[^0-9a-z]/gi, '')
    .toUpperCase()
    .includes(secret.slice(4, -4))

describe('DLP: every spelling of issue 16, inbound, in the scan and outbound', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient

  const customerWrites = async (text: string) => {
    const response = await fetch(`${server.url}/dev/simulator/phone/twilio/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: CUSTOMER_PHONE, to: BANK_NUMBER, text }),
    })
    assert.equal(((await response.json()) as { status: number }).status, 200)
  }
  const conversationId = async () => {
    const [conversation] = await agent.listConversations()
    assert.ok(conversation)
    return conversation.id
  }
  const publicMessages = async (id: string) =>
    (
      await agent.request<{ messages: Pick<PublicMessage, 'seq' | 'text' | 'masked' | 'maskedLater' | 'direction'>[] }>(
        'GET',
        `/v1/conversations/${id}/public-messages`,
      )
    ).messages.filter((m) => m.direction === 'inbound')

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'Spelling Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}1`,
      agentId: bank.agentId,
      secrets: { authToken: 'twilio-auth-token-0123456789abcdef' },
    })
  })
  after(() => server.stop())

  for (const [name, spelled] of ISSUE_SPELLINGS) {
    const secret = name.startsWith('IBAN') ? IBAN : CARD
    test(`${name}: masked inbound, caught by the scan, refused outbound`, async () => {
      await customerWrites(`here it is: ${spelled} ok`)
      const id = await conversationId()
      const stored = (await publicMessages(id)).at(-1)
      assert.ok(stored && stored.masked.length > 0, `${name}: masked inbound`)
      assert.ok(!holds(stored.text, secret), `${name}: ${JSON.stringify(stored.text)}`)

      const scan = await agent.request<{ masked: string; findings: { kind: string }[] }>('POST', '/v1/dlp/scan', {
        text: `your number ${spelled}`,
      })
      assert.ok(scan.findings.length > 0 && !holds(scan.masked, secret), `${name}: caught by the scan`)

      const before = await publicMessages(id)
      const refused = await problemOf(
        agent.request('POST', `/v1/conversations/${id}/public-messages`, {
          clientMessageId: `reply-${name.replace(/[^a-z]/gi, '-')}`,
          text: `We have your card ${spelled} on file`,
        }),
      )
      assert.equal(refused.status, 422, `${name}: refused outbound`)
      assert.equal(refused.kind, 'channels/sensitive-data')
      assert.equal((await publicMessages(id)).length, before.length)
    })
  }

  test('a card split over two SMS is caught, and the first part is masked after the fact in one transaction', async () => {
    await customerWrites('my card number is 4111 1111')
    const id = await conversationId()
    const first = (await publicMessages(id)).at(-1)
    assert.equal(first?.text, 'my card number is 4111 1111')
    assert.equal(first?.maskedLater, false)
    await customerWrites('1111 1111 thanks')
    const [earlier, later] = (await publicMessages(id)).slice(-2)
    assert.equal(earlier?.text, 'my card number is [card •••• 1111]')
    assert.deepEqual(earlier?.masked, ['card-number'])
    assert.equal(earlier?.maskedLater, true)
    assert.equal(later?.text, '[card, continued] thanks')
    assert.deepEqual(later?.masked, ['card-number'])
    assert.equal(later?.maskedLater, false)
    // Nowhere in the sealed log any more.
    const { rows } = await sql<{ ciphertext: Uint8Array }>`select ciphertext from messages`.execute(server.ctx.db)
    for (const row of rows) assert.ok(!Buffer.from(row.ciphertext).includes('4111 1111'))
    const audit = await sql<{ details: string }>`
      select details from audit_events where action = 'channels.dlp.masked' order by id desc limit 1`.execute(
      server.ctx.db,
    )
    assert.match(audit.rows[0]?.details ?? '', /"splitOver":2/)
  })

  test('the archive kept the first part before the second came: a redaction supersedes it in search and export', async () => {
    await customerWrites('card for the archive 5555 5555')
    const id = await conversationId()
    await server.flushArchive()
    await customerWrites('5555 4444 done')
    await server.flushArchive()
    const officer = (await bank.staffToken('compliance')).token
    const call = async (method: string, path: string, body?: object) => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${officer}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      })
      assert.equal(response.status, 200)
      return response.text()
    }
    type Found = { records: { recordClass: string; status: string; content: Record<string, unknown> | null }[] }
    const found = JSON.parse(await call('GET', `/v1/archive/records?conversationId=${id}`)) as Found
    const publicTexts = found.records
      .filter((r) => r.recordClass === 'public-message' && r.content?.direction === 'inbound')
      .map((r) => [r.status, r.content?.text])
      .slice(-2)
    assert.deepEqual(publicTexts, [
      ['redacted', 'card for the archive [card •••• 4444]'],
      ['available', '[card, continued] done'],
    ])
    const redaction = found.records.find((r) => r.recordClass === 'redaction')
    assert.ok(redaction, 'the redaction is a record of its own, in the chain')
    // Searching for the digits the first part held finds nothing any more.
    const byDigits = JSON.parse(await call('GET', `/v1/archive/records?conversationId=${id}&text=5555%205555`)) as Found
    assert.deepEqual(byDigits.records, [])

    const bundle = await call('POST', '/v1/archive/exports', { conversationId: id })
    assert.ok(!bundle.includes('5555 5555'), 'the export carries the first part masked only')
    const keys = await verificationKeys(server.ctx.db, 'archive-checkpoint')
    assert.equal(verifyBundle(bundle, keys).ok, true)
    const lines = bundle
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { recordClass: string; status: string; content: unknown })
    assert.ok(
      lines.some((line) => line.recordClass === 'public-message' && line.status === 'redacted' && !line.content),
    )
  })

  test('parts further apart than the window, or not consecutive digits, are not joined', async () => {
    await customerWrites('reference 4111 1111')
    const id = await conversationId()
    // The first part was received three minutes ago.
    await sql`update channel_messages set created_at = now() - interval '3 minutes'
      where conversation_id = ${id} and direction = 'inbound'`.execute(server.ctx.db)
    await customerWrites('1111 1111')
    const [earlier, later] = (await publicMessages(id)).slice(-2)
    assert.equal(earlier?.text, 'reference 4111 1111')
    assert.equal(later?.text, '1111 1111')
    await customerWrites('4111 1111 and')
    await customerWrites('1111 1111')
    assert.deepEqual(
      (await publicMessages(id)).slice(-2).map((m) => m.text),
      ['4111 1111 and', '1111 1111'],
    )
  })

  test('a redaction expires with the public messages it redacts, never before them', async () => {
    await server.flushArchive()
    const id = await conversationId()
    const sealedOf = async (recordClass: string) => {
      const { rows } = await sql<{ sealed: number }>`select count(*)::int as sealed from archive_records
        where conversation_id = ${id} and record_class = ${recordClass} and sealed is not null`.execute(server.ctx.db)
      return rows[0]?.sealed ?? 0
    }
    const redactions = await sealedOf('redaction')
    assert.ok(redactions > 0 && (await sealedOf('public-message')) > 0)
    const days = (n: number) => new Date(Date.now() + n * 86_400_000)
    await expireArchiveRecords(server.ctx.db, { batch: 1000, now: days(30) })
    assert.equal(await sealedOf('redaction'), redactions, 'kept within the retention of what it redacts')

    // A provider whose clock runs ahead stamped the public messages a month later than the redaction: past the
    // redaction's retention, the messages it redacts are still kept, and so is it.
    await sql`update archive_records set occurred_at = occurred_at + interval '30 days'
      where conversation_id = ${id} and record_class = 'public-message'`.execute(server.ctx.db)
    await expireArchiveRecords(server.ctx.db, { batch: 1000, now: days(DEFAULT_RETENTION_DAYS + 1) })
    assert.equal(await sealedOf('redaction'), redactions, 'not before what it redacts')
    assert.ok((await sealedOf('public-message')) > 0)

    await expireArchiveRecords(server.ctx.db, { batch: 1000, now: days(DEFAULT_RETENTION_DAYS + 32) })
    assert.equal(await sealedOf('public-message'), 0)
    assert.equal(await sealedOf('redaction'), 0, 'gone with them')
  })
})
