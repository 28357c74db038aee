import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken, type SuspiciousReport } from '@strongroom/sdk'
import { ChannelSimulator } from '@strongroom/sdk/simulator'
import { sql } from 'kysely'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { problemOf } from '../testing/problems.ts'

const BANK_NUMBER = '+442071838760'
const CUSTOMER_PHONE = '+447700900131'

describe("customers' reports of suspicious messages: by SMS and from the secure chat, queued for staff", () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient

  const customerWrites = async (text: string) => {
    const sent = await new ChannelSimulator({ baseUrl: server.url }).send('twilio', {
      from: CUSTOMER_PHONE,
      to: BANK_NUMBER,
      text,
    })
    assert.equal(sent.status, 200)
  }
  const queue = async (status = 'open') =>
    (await agent.request<{ reports: SuspiciousReport[] }>('GET', `/v1/suspicious-reports?status=${status}`)).reports
  const audited = async (action: string) => {
    const { rows } = await sql<{ details: string }>`
      select details from audit_events where action = ${action} order by seq desc nulls first`.execute(server.ctx.db)
    return rows.map((row) => JSON.parse(row.details) as Record<string, unknown>)
  }

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://secure.example-bank.com' })
    bank = await createTestBank(server, 'Reporting Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}2`,
      agentId: bank.agentId,
      secrets: { authToken: 'twilio-auth-token-0123456789abcdef' },
    })
    await admin.request('PUT', '/v1/policies/links', { domains: ['example-bank.com'], senderIds: ['EXAMPLEBNK'] })
  })
  after(() => server.stop())

  test('a text forwarded after REPORT is queued with its links judged; the customer is thanked, not flagged', async () => {
    await customerWrites('REPORT Your account is locked, verify at https://examp1e-bank.com/login or bit.ly/x1')
    const [report] = await queue()
    assert.ok(report)
    assert.equal(report.source, 'sms')
    assert.equal(report.text, 'Your account is locked, verify at https://examp1e-bank.com/login or bit.ly/x1')
    assert.deepEqual(report.flags, ['lookalike-link', 'link-shortener'])
    assert.deepEqual(report.links, [
      { host: 'examp1e-bank.com', verdict: 'lookalike' },
      { host: 'bit.ly', verdict: 'shortener' },
    ])
    const [conversation] = await agent.listConversations()
    assert.equal(report.conversationId, conversation?.id)
    // Forwarding a smishing text makes the customer no smisher: their conversation carries no risk flag.
    const [channel] = await agent.conversationChannels([conversation?.id as string])
    assert.deepEqual(channel?.risk, [])
    const messages = await agent.listPublicMessages(conversation?.id as string)
    assert.match(messages.at(-1)?.text ?? '', /^Thank you: the message you reported is with our fraud team/)
    assert.deepEqual((await audited('channels.report.received'))[0], {
      source: 'sms',
      flags: ['lookalike-link', 'link-shortener'],
      links: 2,
    })
    // The reported text is sealed at rest.
    const { rows } = await sql<{ sealed: Uint8Array }>`select sealed from suspicious_reports`.execute(server.ctx.db)
    assert.ok(rows.every((row) => !Buffer.from(row.sealed).includes('examp1e')))
  })

  test('an ordinary message is no report, and a card number in a reported text is masked', async () => {
    const before = (await queue()).length
    await customerWrites('I will report my lost card at examp1e-bank.com')
    assert.equal((await queue()).length, before)
    await customerWrites('Fwd: Confirm your card 4111 1111 1111 1111 at examp1e-bank.com')
    const [report] = await queue()
    assert.equal(report?.text, 'Confirm your card [card •••• 1111] at examp1e-bank.com')
  })

  test('a customer reports from the secure chat; only a device may, and within the limits', async () => {
    const { code } = await agent.issueEnrolmentCode(bank.customerId)
    const device = await enrolDevice({ baseUrl: server.url, enrolmentCode: code, label: 'phone' })
    const created = await device.client.request<{ id: string }>('POST', '/v1/suspicious-reports', {
      text: 'Example Bank: your parcel is held, pay the fee at https://tinyurl.com/abc',
    })
    assert.match(created.id, /^rpt_/)
    const [report] = await queue()
    assert.deepEqual(
      [report?.id, report?.source, report?.customerId, report?.conversationId, report?.flags],
      [created.id, 'secure-chat', bank.customerId, null, ['link-shortener']],
    )
    const count = (await queue()).length
    for (const body of [{}, { text: '' }, { text: 'x'.repeat(4097) }, { text: 'hi', extra: 1 }]) {
      const refused = await problemOf(device.client.request('POST', '/v1/suspicious-reports', body))
      assert.equal(refused.status, 400)
    }
    const staffReport = await problemOf(agent.request('POST', '/v1/suspicious-reports', { text: 'staff cannot' }))
    assert.equal(staffReport.status, 403)
    assert.equal((await problemOf(device.client.request('GET', '/v1/suspicious-reports'))).status, 403)
    assert.equal((await queue()).length, count)
  })

  test('staff resolve a report once, audited; a resolved one, an unknown one, another bank’s and bad input are refused', async () => {
    const [report] = await queue()
    assert.ok(report)
    const path = `/v1/suspicious-reports/${report.id}/resolve`
    assert.equal((await problemOf(agent.request('POST', path, { outcome: 'maybe' }))).status, 400)
    // Another bank's staff neither see the report nor resolve it.
    const other = await createTestBank(server, 'Other Reporting Bank')
    const stranger = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(other.agentToken) })
    assert.equal((await problemOf(stranger.request('POST', path, { outcome: 'genuine' }))).status, 404)
    assert.ok(!(await stranger.listSuspiciousReports()).some((r) => r.id === report.id))
    assert.ok(
      (await queue()).some((r) => r.id === report.id),
      'still open',
    )
    const resolved = await agent.request<SuspiciousReport>('POST', path, { outcome: 'smishing' })
    assert.deepEqual([resolved.status, resolved.outcome, resolved.resolvedBy], ['resolved', 'smishing', bank.agentId])
    assert.ok(!(await queue()).some((r) => r.id === report.id))
    assert.ok((await queue('resolved')).some((r) => r.id === report.id))
    const again = await problemOf(agent.request('POST', path, { outcome: 'genuine' }))
    assert.deepEqual([again.status, again.kind], [409, 'channels/report-resolved'])
    const unknown = await problemOf(
      agent.request('POST', `/v1/suspicious-reports/rpt_${'A'.repeat(22)}/resolve`, { outcome: 'genuine' }),
    )
    assert.equal(unknown.status, 404)
    assert.deepEqual(await audited('channels.report.resolved'), [{ outcome: 'smishing' }])
  })
})
