import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import { MemoryStore, nodeCryptoProvider, SecureMessaging } from '@strongroom/sdk/mls-node'
import { DataSubjectExport } from '@strongroom/sdk/protocol'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import { operator } from '../audit/events.ts'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { SoftwareAuthenticator } from '../testing/software-authenticator.ts'
import { exportCustomerData } from './export-customer.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const BANK_NUMBER = '+442071838750'
const CUSTOMER_PHONE = '+447700900321'
const OTHER_PHONE = '+447700900999'

describe('data subject requests: exporting everything held about a customer', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let officer: StaffClient
  let officerId: string
  let customerId: string
  let otherCustomerId: string
  const secrets: string[] = []

  const staffExport = async (token: string, customer: string) =>
    fetch(`${server.url}/v1/customers/${customer}/export`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    })

  let officerToken: string

  before(async () => {
    server = await startTestServer({ publicUrl: 'https://bank.example' })
    bank = await createTestBank(server, 'Subject Bank')
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const compliance = await bank.staffToken('compliance', 'officer')
    officerToken = compliance.token
    officerId = compliance.staffId
    officer = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(compliance.token) })
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const create = (ref: string, name: string, phoneNumber: string) =>
      agent.request<{ id: string }>('POST', '/v1/customers', { externalRef: ref, displayName: name, phoneNumber })
    customerId = (await create('DSR-1', 'Ada Subject', CUSTOMER_PHONE)).id
    otherCustomerId = (await create('DSR-2', 'Bob Bystander', OTHER_PHONE)).id
    await admin.request('PUT', '/v1/channels/twilio', {
      address: BANK_NUMBER,
      accountSid: `AC${'0'.repeat(31)}1`,
      agentId: bank.agentId,
      secrets: { authToken: 'twilio-auth-token-0123456789abcdef' },
    })
    await admin.request('PUT', '/v1/policies/retention', { deviceMessageDays: 30 })
  })
  after(() => server.stop())

  const enrolFor = async (customer: string, label: string) => {
    const issued = await agent.issueEnrolmentCode(customer)
    secrets.push(issued.code)
    return enrolDevice({ baseUrl: server.url, enrolmentCode: issued.code, label })
  }
  const texts = (from: string, to: string, text: string) =>
    fetch(`${server.url}/dev/simulator/phone/twilio/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from, to, text }),
    })

  test('a compliance officer downloads one JSON document with all of it, and nothing secret, nothing of others', async () => {
    // Devices in each state.
    const phone = await enrolFor(customerId, 'phone')
    const tablet = await enrolFor(customerId, 'tablet')
    const old = await enrolFor(customerId, 'old phone')
    await agent.suspendDevice(tablet.device.id, 'mislaid')
    await agent.revokeDevice(old.device.id, 'replaced')
    const pending = await agent.issueEnrolmentCode(customerId)
    secrets.push(pending.code)

    // A passkey, an authenticator app (its secret must not leak), a payment confirmation with its receipt.
    const origin = (server.config.rpOrigins as string).split(',')[0] as string
    const key = new SoftwareAuthenticator({ origin, rpId: server.config.rpId as string })
    await phone.client.registerPasskey(key.register(await phone.client.passkeyRegistrationOptions()))
    const totp = await phone.client.request<{ otpauthUri: string }>('POST', '/v1/factors/totp')
    const totpSecret = new URL(totp.otpauthUri).searchParams.get('secret') as string
    secrets.push(totpSecret)
    const consent = await agent.requestConsent({
      customerId,
      amount: { value: 125000, currency: 'EUR' },
      payee: { name: 'Acme Ltd', account: 'GB33BUKB20201555555555' },
      reference: 'INV-7',
    })
    await phone.client.approveConsent(consent)

    // A public-channel conversation (readable by the server) and a secure one (MLS: only the archive reads it).
    assert.equal((await texts(CUSTOMER_PHONE, BANK_NUMBER, 'Hello, is my card 4111 1111 1111 1111 blocked?')).ok, true)
    assert.equal((await texts(OTHER_PHONE, BANK_NUMBER, 'Bystander text, not Ada’s')).ok, true)
    // The invitation to the secure channel carries a single-use link token: a secret the export must not show.
    const inbox = (await (
      await fetch(`${server.url}/dev/simulator/phone/twilio/inbox?address=${encodeURIComponent(CUSTOMER_PHONE)}`)
    ).json()) as { messages: { text: string; link: { url: string } | null }[] }
    const invitation = inbox.messages.at(-1)
    const linkUrl = invitation?.link?.url ?? /https?:\/\/\S+/.exec(invitation?.text ?? '')?.[0]
    const linkToken = /#t=([A-Za-z0-9_-]+)$/.exec(linkUrl ?? '')?.[1]
    assert.ok(linkToken)
    secrets.push(linkToken)
    const secure = await agent.createConversation({
      customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.device.id],
    })
    const agentSecure = await SecureMessaging.open(agent, { provider: nodeCryptoProvider, store: new MemoryStore() })
    const phoneSecure = await SecureMessaging.open(phone.client, {
      provider: nodeCryptoProvider,
      store: new MemoryStore(),
    })
    await agentSecure.createGroup(secure.id, [
      { kind: 'device', id: phone.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    await phoneSecure.acceptWelcomes()
    await phoneSecure.send(secure.id, 'Secure: my new address is 1 Privacy Lane')
    await eventually(
      () => server.ctx.db.selectFrom('archive_records').select('id').where('customer_id', '=', customerId).execute(),
      (rows) => rows.length >= 3,
    )
    await server.flushArchive()
    const held = await officer.request<{ id: string }>('POST', '/v1/archive/holds', {
      scopeKind: 'customer',
      scopeId: customerId,
      reason: 'complaint 2024-17',
    })

    const response = await staffExport(officerToken, customerId)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
    assert.equal(
      response.headers.get('content-disposition'),
      `attachment; filename="strongroom-customer-${customerId}.json"`,
    )
    assert.equal(response.headers.get('cache-control'), 'no-store')
    const raw = await response.text()
    const doc = JSON.parse(raw) as DataSubjectExport
    const ajv = new Ajv({ strict: false, allErrors: true })
    addFormats.default(ajv)
    const valid = ajv.compile(DataSubjectExport)
    assert.ok(valid(doc), JSON.stringify(valid.errors))

    assert.equal(doc.type, 'strongroom-data-subject-export/v1')
    assert.equal(doc.exportedBy, `staff:${officerId}`)
    assert.deepEqual(doc.customer, {
      id: customerId,
      externalRef: 'DSR-1',
      displayName: 'Ada Subject',
      phoneNumber: CUSTOMER_PHONE,
      createdAt: doc.customer.createdAt,
    })
    assert.deepEqual(
      doc.devices.map((d) => [d.id, d.status]),
      [
        [phone.device.id, 'active'],
        [tablet.device.id, 'suspended'],
        [old.device.id, 'revoked'],
        [pending.deviceId, 'pending'],
      ],
    )
    assert.deepEqual(
      doc.passkeys.map((p) => p.credentialId),
      [Buffer.from(key.credentialId).toString('base64url')],
    )
    assert.deepEqual(
      doc.factors.totp.map((f) => f.status),
      ['pending'],
    )
    assert.deepEqual(
      doc.channelIdentities.map((i) => [i.connector, i.address]),
      [['twilio', CUSTOMER_PHONE]],
    )

    const publicConversation = doc.conversations.find((c) => c.id !== secure.id)
    // The card number was masked on arrival, and the customer invited to the secure channel (the link not shown).
    assert.deepEqual(
      publicConversation?.messages.map((m) => m.content),
      [
        {
          readable: true,
          source: 'public-channel',
          direction: 'inbound',
          channel: 'twilio',
          text: 'Hello, is my card [card •••• 1111] blocked?',
          masked: ['card-number'],
          imported: false,
        },
        {
          readable: true,
          source: 'public-channel',
          direction: 'outbound',
          channel: 'twilio',
          text: 'To continue this conversation on our secure page, where only you and the bank can read it, open the link. It works once, for a few minutes. Our links only ever go to bank.example.',
          masked: [],
          imported: false,
        },
      ],
    )
    const secureConversation = doc.conversations.find((c) => c.id === secure.id)
    assert.ok(secureConversation)
    assert.ok(secureConversation.messages.length >= 2, 'the group commit and the message')
    for (const message of secureConversation.messages) {
      assert.equal(message.content.readable, false)
      assert.match(
        message.content.readable ? '' : message.content.reason,
        /^end-to-end encrypted \(MLS\): the server holds only ciphertext/,
      )
      assert.ok(message.expiresAt, "the bank's 30-day retention for devices applies")
    }
    assert.ok(doc.notes.some((note) => note.includes('end-to-end encrypted')))
    assert.deepEqual(
      doc.archive.records.flatMap((r) => (typeof r.content?.text === 'string' ? [r.content.text] : [])).sort(),
      [
        'Hello, is my card [card •••• 1111] blocked?',
        'Secure: my new address is 1 Privacy Lane',
        'To continue this conversation on our secure page, where only you and the bank can read it, open the link. It works once, for a few minutes. Our links only ever go to bank.example.',
      ],
    )

    assert.deepEqual(
      doc.consents.map((c) => [c.id, c.status, typeof c.receipt]),
      [[consent.id, 'approved', 'string']],
    )
    const actions = new Set(doc.auditEvents.map((e) => e.action))
    for (const action of [
      'device.enrolment-code.issue',
      'device.enrol',
      'device.suspend',
      'device.revoke',
      'factor.totp.enrol',
      'consent.request',
      'consent.approve',
      'archive.hold.place',
    ]) {
      assert.ok(actions.has(action), `audit events include ${action}`)
    }
    assert.equal(doc.retention.deviceMessageDays, 30)
    assert.equal(doc.retention.archiveDays['secure-message'], 3650)
    assert.deepEqual(
      doc.retention.legalHolds.map((h) => h.id),
      [held.id],
    )
    assert.deepEqual(doc.retention.erasure, {
      possibleNow: false,
      heldBy: held.id,
      retainedUntil: doc.retention.erasure.retainedUntil,
    })
    assert.ok(doc.retention.erasure.retainedUntil)

    // Nothing secret, and nothing of the other customer.
    for (const secret of [...secrets, 'twilio-auth-token-0123456789abcdef', '4111 1111 1111 1111']) {
      assert.ok(!raw.includes(secret), 'no secret in the export')
    }
    for (const other of [otherCustomerId, OTHER_PHONE, 'Bystander', 'Bob Bystander']) {
      assert.ok(!raw.includes(other), 'nothing about another customer')
    }

    await server.flushAudit()
    const exported = await server.ctx.db
      .selectFrom('audit_events')
      .select(['actor_kind', 'actor_id', 'target_id', 'details'])
      .where('action', '=', 'customer.export')
      .execute()
    assert.deepEqual(
      exported.map((e) => [e.actor_kind, e.actor_id, e.target_id]),
      [['staff', officerId, customerId]],
    )
    assert.deepEqual(JSON.parse(exported[0]?.details ?? '{}'), {
      devices: 4,
      conversations: 2,
      messages: publicConversation?.messages.length + secureConversation.messages.length,
      archiveRecords: doc.archive.records.length,
      auditEvents: doc.auditEvents.length,
    })
  })

  test('only staff with customers:export, of the same bank, for a customer that exists', async () => {
    const phone = await enrolFor(customerId, 'asker')
    const other = await createTestBank(server, 'Another Bank')
    const foreignOfficer = await other.staffToken('compliance')
    const cases: [string, Promise<Response>, number, string][] = [
      ['an agent', staffExport(bank.agentToken, customerId), 403, 'auth/forbidden'],
      ['another bank', staffExport(foreignOfficer.token, customerId), 404, 'request/not-found'],
      ['an unknown customer', staffExport(officerToken, `cus_${'x'.repeat(22)}`), 404, 'request/not-found'],
      ['a malformed id', staffExport(officerToken, 'not-an-id'), 400, 'request/invalid'],
      [
        'no credentials',
        fetch(`${server.url}/v1/customers/${customerId}/export`, { method: 'POST' }),
        401,
        'auth/missing-credentials',
      ],
    ]
    for (const [who, responsePromise, status, type] of cases) {
      const response = await responsePromise
      assert.equal(response.status, status, who)
      assert.equal(((await response.json()) as { type: string }).type, PROBLEMS + type, who)
    }
    // A device, even the customer's own, does not export: the bank answers the request.
    await assert.rejects(
      phone.client.request('POST', `/v1/customers/${customerId}/export`),
      (e: { type?: string }) => e.type === `${PROBLEMS}auth/forbidden`,
    )
  })

  test('a node without the archive key file cannot answer: the export would be incomplete', async () => {
    await assert.rejects(
      exportCustomerData({ ...server.ctx, archiveKek: undefined }, bank.tenantId, customerId, operator),
      (e: { kind?: string }) => e.kind === 'archive/unavailable',
    )
  })
})
