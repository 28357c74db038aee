import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, type MemberClient, StaffClient, StaffToken } from '@strongroom/sdk'
import { MemoryStore, nodeCryptoProvider, SecureMessaging } from '@strongroom/sdk/mls-node'
import { sql } from 'kysely'
import { operator } from '../audit/events.ts'
import { createCustomer } from '../identity/customers.ts'
import { verificationKeys } from '../platform/keyring/signing-keys.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { type ArchiveInput, archiveKeysOf, archiveRecords } from './append.ts'
import { ArchiveKeys } from './archive-keys.ts'
import { archiveStoreSink } from './archive-sink.ts'
import { verifyBundle } from './bundle.ts'
import { eraseCustomer } from './erasure.ts'
import type { ArchiveRecordView } from './open-records.ts'
import { expireArchiveRecords } from './retention.ts'
import { verifyArchiveChain } from './verify.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const DAY = 86_400_000

describe('the compliance archive', () => {
  let server: TestServer
  let bank: TestBank
  let compliance: string

  before(async () => {
    server = await startTestServer({ archiveCheckpointRecords: 5 })
    bank = await createTestBank(server)
    compliance = (await bank.staffToken('compliance')).token
  })
  after(() => server.stop())

  async function call<T = Record<string, unknown>>(method: string, path: string, token: string, body?: unknown) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await response.text()
    const type = response.headers.get('content-type') ?? ''
    const json = /^application\/(problem\+)?json/.test(type) && text
    return { status: response.status, headers: response.headers, body: (json ? JSON.parse(text) : text) as T }
  }

  type Found = { records: ArchiveRecordView[] }
  const search = (query: string, token = compliance) =>
    call<Found & { next: number | null }>('GET', `/v1/archive/records?${query}`, token)
  const verify = async (tenantId: string) =>
    verifyArchiveChain(server.ctx.db, tenantId, { keys: await verificationKeys(server.ctx.db, 'archive-checkpoint') })

  /** Public-channel style records of a new customer, at given ages in days, through the archive's append function. */
  async function customerWithRecords(tenantId: string, ages: number[], ref = `REF-${Math.random()}`) {
    const customer = await createCustomer(server.ctx, tenantId, { externalRef: ref, displayName: 'Old Customer' })
    const inputs: ArchiveInput[] = ages.map((age, i) => ({
      tenantId,
      recordClass: 'public-message',
      sourceRef: `channel:${customer.id}:${i}`,
      conversationId: null,
      conversationSeq: null,
      customerId: customer.id,
      occurredAt: new Date(Date.now() - age * DAY),
      content: { sender: { kind: 'customer', id: customer.id }, text: `public message ${i} of ${customer.id}` },
    }))
    assert.equal(await archiveRecords(server.ctx, inputs), inputs.length)
    await server.flushArchive()
    return customer.id
  }

  test('a secure conversation is archived through the archive member, readable only with the archive’s keys', async () => {
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const enrolled = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
    })
    const open = (client: MemberClient) =>
      SecureMessaging.open(client, { provider: nodeCryptoProvider, store: new MemoryStore() })
    const [phone, agent] = [await open(enrolled.client), await open(agentClient)]
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [enrolled.device.id],
    })
    await agent.createGroup(conversation.id, [
      { kind: 'device', id: enrolled.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    await phone.acceptWelcomes()
    await phone.send(conversation.id, 'Please raise my card limit to 5000')
    await agent.send(conversation.id, 'Done: your limit is now 5000')

    let found: Found['records'] = []
    for (let i = 0; i < 100 && found.filter((r) => r.content?.text).length < 2; i++) {
      await server.flushArchive()
      found = (await search(`conversationId=${conversation.id}`)).body.records
    }
    assert.deepEqual(
      found.flatMap((r) => (r.content?.text ? [r.content.text] : [])),
      ['Please raise my card limit to 5000', 'Done: your limit is now 5000'],
    )
    assert.ok(found.every((r) => r.customerId === bank.customerId))
    // Each is stamped with the time the server accepted the message, not the time the archive read it.
    const sent = new Map((await agentClient.listMessages(conversation.id)).map((m) => [m.seq, m.createdAt]))
    const messages = found.filter((r) => r.recordClass === 'secure-message')
    assert.equal(messages.length, 2)
    for (const record of messages) {
      assert.equal(record.occurredAt, new Date(sent.get(record.conversationSeq ?? -1) ?? 0).toISOString())
    }

    // In the database the content is sealed: no plaintext in any archive column.
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from archive_records
      where position(${Buffer.from('card limit')}::bytea in coalesce(sealed, ''::bytea)) > 0
         or position('card limit' in details) > 0`.execute(server.ctx.db)
    assert.equal(rows[0]?.n, 0)
    // The archive keys are wrapped by the archive's own KEK: the live keyring's KEK cannot unwrap them.
    const live = server.keyProvider
    const keyIds = (
      await server.ctx.db.selectFrom('archive_keys').select('id').where('tenant_id', '=', bank.tenantId).execute()
    ).map((k) => k.id)
    assert.ok(keyIds.length > 0)
    await assert.rejects(new ArchiveKeys(server.ctx.db, live).openingKeys(bank.tenantId, keyIds))
    assert.equal((await archiveKeysOf(server.ctx).openingKeys(bank.tenantId, keyIds)).size, keyIds.length)

    // The archive member replays after a crash: nothing is archived twice.
    const count = async () => (await server.ctx.db.selectFrom('archive_records').select('id').execute()).length
    const before = await count()
    const first = await server.ctx.db
      .selectFrom('archive_records')
      .select('conversation_seq')
      .where('conversation_id', '=', conversation.id)
      .orderBy('seq')
      .executeTakeFirstOrThrow()
    await archiveStoreSink(server.ctx)({
      kind: 'message',
      tenantId: bank.tenantId,
      conversationId: conversation.id,
      seq: Number(first.conversation_seq),
      sender: { kind: 'device', id: enrolled.device.id },
      plaintext: new TextEncoder().encode('Please raise my card limit to 5000'),
      sentAt: new Date(),
    })
    assert.equal(await count(), before)
    assert.equal((await verify(bank.tenantId)).ok, true)
  })

  test('membership changes are archived, sealed; a replayed one is written once', async () => {
    const record = {
      kind: 'members-changed' as const,
      tenantId: bank.tenantId,
      conversationId: 'cnv_replayreplayreplayrepl',
      seq: 42,
      epoch: 3n,
      added: [{ kind: 'device' as const, id: 'dev_tablet' }],
      removed: [],
      rejoined: [],
    }
    const sink = archiveStoreSink(server.ctx)
    await sink(record)
    await sink(record)
    await server.flushArchive()
    const found = (await search('conversationId=cnv_replayreplayreplayrepl')).body.records
    assert.equal(found.length, 1)
    assert.deepEqual(found[0]?.content && { ...found[0].content, salt: undefined }, {
      epoch: '3',
      added: [{ kind: 'device', id: 'dev_tablet' }],
      removed: [],
      salt: undefined,
    })
  })

  test('consents with their receipts, and device events, are archived as records of their own, once each', async () => {
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    const asked = await agentClient.requestConsent({
      customerId: bank.customerId,
      amount: { value: 4200, currency: 'EUR' },
      payee: { name: 'Archive Test Ltd', account: 'DE89370400440532013000' },
      reference: 'Evidence 1',
    })
    const approved = await phone.client.approveConsent(await phone.client.getConsent(asked.id))
    await phone.client.revokeDevice(phone.device.id, 'lost')
    await server.flushAudit()
    await server.flushArchive()
    await server.flushArchive()

    const consents = (await search(`customerId=${bank.customerId}&recordClass=consent`)).body.records
    const mine = consents.filter((r) => (r.content?.consent as { id?: string } | undefined)?.id === asked.id)
    assert.deepEqual(
      mine.map((r) => r.content?.action),
      ['consent.request', 'consent.approve'],
    )
    // The approval's record holds the receipt the bank got, with the device's own signature in it.
    const approval = mine[1]?.content as { consent: { receipt?: string; status: string }; actor: { id: string } }
    assert.equal(approval.consent.status, 'approved')
    assert.equal(approval.consent.receipt, approved.receipt)
    assert.equal(approval.actor.id, phone.device.id)

    const deviceEvents = (await search(`customerId=${bank.customerId}&recordClass=device-event`)).body.records
    const ofPhone = deviceEvents.filter(
      (r) => (r.content?.target as { id?: string } | undefined)?.id === phone.device.id,
    )
    assert.deepEqual(
      ofPhone.map((r) => r.content?.action),
      ['device.enrol', 'device.revoke'],
    )
    // Each at the time it happened; archived again, nothing doubles; the chain still verifies.
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select('occurred_at')
      .where('action', '=', 'consent.approve')
      .where('target_id', '=', asked.id)
      .executeTakeFirstOrThrow()
    assert.equal(mine[1]?.occurredAt, new Date(audited.occurred_at).toISOString())
    await server.flushArchive()
    const again = (await search(`customerId=${bank.customerId}&recordClass=consent`)).body.records
    assert.equal(again.length, consents.length)
    assert.equal((await verify(bank.tenantId)).ok, true)
  })

  test('search by customer, time and text, in pages; audited; agents may not search', async () => {
    const tenantId = bank.tenantId
    const customerId = await customerWithRecords(tenantId, [30, 20, 10, 1])
    const all = await search(`customerId=${customerId}`)
    assert.equal(all.status, 200)
    assert.equal(all.body.records.length, 4)
    const recent = await search(
      `customerId=${customerId}&from=${encodeURIComponent(new Date(Date.now() - 15 * DAY).toISOString())}`,
    )
    assert.deepEqual(
      recent.body.records.map((r) => r.content?.text),
      [`public message 2 of ${customerId}`, `public message 3 of ${customerId}`],
    )
    const text = await search(`customerId=${customerId}&text=${encodeURIComponent('MESSAGE 1 OF')}`)
    assert.deepEqual(
      text.body.records.map((r) => r.content?.text),
      [`public message 1 of ${customerId}`],
    )
    const first = await search(`customerId=${customerId}&limit=3`)
    assert.equal(first.body.records.length, 3)
    assert.ok(first.body.next)
    const rest = await search(`customerId=${customerId}&limit=3&after=${first.body.next}`)
    assert.equal(rest.body.records.length, 1)
    assert.equal(rest.body.next, null)
    const bad = await search(`from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z`)
    assert.equal(bad.body.records, undefined)
    assert.equal((bad.body as unknown as { type: string }).type, `${PROBLEMS}archive/invalid-range`)

    const refused = await search(`customerId=${customerId}`, bank.agentToken)
    assert.equal(refused.status, 403)
    // Another bank's compliance officer sees nothing of this one.
    const other = await createTestBank(server, 'Other Bank')
    const theirs = await search(`customerId=${customerId}`, (await other.staffToken('compliance')).token)
    assert.deepEqual(theirs.body.records, [])

    await server.flushAudit()
    const searches = await server.ctx.db
      .selectFrom('audit_events')
      .select('details')
      .where('tenant_id', '=', tenantId)
      .where('action', '=', 'archive.search')
      .execute()
    assert.ok(searches.length >= 5)
    assert.ok(
      searches.every((s) => !s.details.includes('MESSAGE 1 OF')),
      'the searched text is not audited',
    )
  })

  test('retention and legal hold: expiry deletes content in batches, never under hold, and the chain records it', async () => {
    const tenant = await createTestBank(server, 'Retention Bank')
    const admin = (await tenant.staffToken('compliance')).token
    const set = await call('PUT', '/v1/archive/retention', admin, { 'public-message': 365 })
    assert.deepEqual(set.body, {
      'secure-message': 3650,
      'public-message': 365,
      'membership-change': 3650,
      consent: 3650,
      pivot: 3650,
      'device-event': 3650,
    })
    assert.equal((await call('PUT', '/v1/archive/retention', tenant.agentToken, { 'public-message': 1 })).status, 403)
    const held = await customerWithRecords(tenant.tenantId, [400, 400, 10])
    const free = await customerWithRecords(tenant.tenantId, [500, 450, 400, 20])
    const hold = await call<{ id: string }>('POST', '/v1/archive/holds', admin, {
      scopeKind: 'customer',
      scopeId: held,
      reason: 'litigation 2025-17',
    })
    assert.equal(hold.status, 201)

    // Batches of two: the three expired records of the free customer go in two batches, the held ones stay.
    assert.equal(await expireArchiveRecords(server.ctx.db, { batch: 2 }), 3)
    assert.equal(await expireArchiveRecords(server.ctx.db, { batch: 2 }), 0)
    const statuses = async (customerId: string) =>
      (await search(`customerId=${customerId}`, admin)).body.records.map((r) => r.status)
    assert.deepEqual(await statuses(free), ['deleted', 'deleted', 'deleted', 'available'])
    assert.deepEqual(await statuses(held), ['available', 'available', 'available'])
    await server.flushArchive()
    const verified = await verify(tenant.tenantId)
    assert.deepEqual([verified.ok, verified.deleted], [true, 3])
    const markers = await server.ctx.db
      .selectFrom('archive_records')
      .select('details')
      .where('tenant_id', '=', tenant.tenantId)
      .where('record_class', '=', 'deletion')
      .orderBy('id')
      .execute()
    assert.deepEqual(
      markers.map((m) => JSON.parse(m.details).deleted.length),
      [2, 1],
    )

    const released = await call('POST', `/v1/archive/holds/${hold.body.id}/release`, admin)
    assert.equal(released.status, 200)
    const again = await call<{ type: string }>('POST', `/v1/archive/holds/${hold.body.id}/release`, admin)
    assert.equal(again.body.type, `${PROBLEMS}archive/hold-released`)
    assert.equal(await expireArchiveRecords(server.ctx.db, { batch: 100 }), 2)
    assert.deepEqual(await statuses(held), ['deleted', 'deleted', 'available'])
    await server.flushArchive()
    assert.equal((await verify(tenant.tenantId)).ok, true)
  })

  test('crypto-shredding: refused under hold and within retention, then the customer’s records can never be read', async () => {
    const tenant = await createTestBank(server, 'Erasure Bank')
    const officer = (await tenant.staffToken('compliance')).token
    await call('PUT', '/v1/archive/retention', officer, { 'public-message': 365 })
    const recent = await customerWithRecords(tenant.tenantId, [700, 30])
    const within = await call<{ type: string; detail: string }>(
      'POST',
      `/v1/archive/customers/${recent}/erase`,
      officer,
    )
    assert.equal(within.status, 409)
    assert.equal(within.body.type, `${PROBLEMS}archive/retention-active`)
    assert.match(within.body.detail, /erasure is possible from \d{4}-/)

    const old = await customerWithRecords(tenant.tenantId, [800, 700])
    const hold = await call<{ id: string }>('POST', '/v1/archive/holds', officer, {
      scopeKind: 'customer',
      scopeId: old,
      reason: 'regulator inquiry',
    })
    const held = await call<{ type: string }>('POST', `/v1/archive/customers/${old}/erase`, officer)
    assert.equal(held.body.type, `${PROBLEMS}archive/legal-hold`)
    await call('POST', `/v1/archive/holds/${hold.body.id}/release`, officer)

    assert.equal((await call('POST', `/v1/archive/customers/${old}/erase`, tenant.agentToken)).status, 403)
    const erased = await call<{ keyId: string; records: number }>('POST', `/v1/archive/customers/${old}/erase`, officer)
    assert.equal(erased.status, 200)
    assert.equal(erased.body.records, 2)
    const found = (await search(`customerId=${old}`, officer)).body.records
    assert.deepEqual(
      found.map((r) => r.status),
      ['erased', 'erased'],
    )
    // The sealed bytes are still there (the chain still verifies), but the key material is gone for good.
    const key = await server.ctx.db
      .selectFrom('archive_keys')
      .selectAll()
      .where('id', '=', erased.body.keyId)
      .executeTakeFirstOrThrow()
    assert.deepEqual([key.wrapped_key, key.kek_id, key.destroyed_at !== null], [null, null, true])
    await server.flushArchive()
    assert.equal((await verify(tenant.tenantId)).ok, true)
    // The other customer is untouched; a second erasure of the same customer finds no key to destroy.
    assert.deepEqual(
      (await search(`customerId=${recent}`, officer)).body.records.map((r) => r.status),
      ['available', 'available'],
    )
    const later = await eraseCustomer(
      server.ctx.db,
      archiveKeysOf(server.ctx),
      tenant.tenantId,
      recent,
      operator,
      new Date(Date.now() + 400 * DAY),
    )
    assert.equal(later.records, 2)
  })

  test('a case exports as a signed bundle that verifies offline, and fails when a line is altered', async () => {
    const tenant = await createTestBank(server, 'Export Bank')
    const officer = (await tenant.staffToken('compliance')).token
    const customerId = await customerWithRecords(tenant.tenantId, [5, 4, 3, 2, 1])
    await customerWithRecords(tenant.tenantId, [3, 2]) // another customer's records interleave in the chain
    const exported = await call<string>('POST', '/v1/archive/exports', officer, { customerId })
    assert.equal(exported.status, 200)
    assert.equal(exported.headers.get('strongroom-export-records'), '5', 'the record count comes before the body')
    const bundle = exported.body
    const keys = await verificationKeys(server.ctx.db, 'archive-checkpoint')
    assert.deepEqual(verifyBundle(bundle, keys), { ok: true, records: 5 })
    const lines = bundle.trimEnd().split('\n')
    assert.match(lines[0] ?? '', /public message 0 of/)

    const altered = bundle.replace('public message 2 of', 'public message 9 of')
    assert.deepEqual(verifyBundle(altered, keys).failure, {
      line: 3,
      reason: `record ${JSON.parse(lines[2] ?? '').seq} content altered`,
    })
    const dropped = [...lines.slice(0, 1), ...lines.slice(2)].join('\n')
    assert.equal(verifyBundle(dropped, keys).ok, false)
    const manifest = JSON.parse(lines.at(-1) ?? '')
    manifest.manifest.records = 4
    assert.equal(
      verifyBundle([...lines.slice(0, -1), JSON.stringify(manifest)].join('\n'), keys).failure?.reason,
      'the manifest signature does not verify',
    )
    const stranger = new Map([[[...keys.keys()][0] as string, generateKeyPairSync('ed25519').publicKey]])
    assert.equal(verifyBundle(bundle, stranger).ok, false)

    await server.flushAudit()
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'target_id'])
      .where('tenant_id', '=', tenant.tenantId)
      .where('action', '=', 'archive.export')
      .execute()
    assert.deepEqual(audited, [{ action: 'archive.export', target_id: customerId }])
    const neither = await call<{ type: string }>('POST', '/v1/archive/exports', officer, {})
    assert.equal(neither.status, 400)
  })

  test('verification on request: ok, then the first failing record once tampered; audited; compliance only', async () => {
    const tenant = await createTestBank(server, 'Verified Bank')
    const officer = (await tenant.staffToken('compliance')).token
    await customerWithRecords(tenant.tenantId, [4, 3, 2, 1])
    const clean = await call<Record<string, unknown>>('GET', '/v1/archive/verification', officer)
    assert.equal(clean.status, 200)
    const { verifiedAt, ...result } = clean.body
    assert.deepEqual(result, { ok: true, records: 4, checkpoints: 0, pending: 0, deleted: 0 })
    assert.ok(Date.parse(String(verifiedAt)) > Date.now() - 60_000)

    const both = await Promise.all([1, 2].map(() => call('GET', '/v1/archive/verification', officer)))
    assert.deepEqual(
      both.map((r) => r.body.ok),
      [true, true],
      'callers at the same time share one walk',
    )

    await server.ctx.db
      .updateTable('archive_records')
      .set({ occurred_at: new Date(0) })
      .where('tenant_id', '=', tenant.tenantId)
      .where('seq', '=', 3)
      .execute()
    const tampered = await call<{ ok: boolean; records: number; failure: { seq: number; reason: string } }>(
      'GET',
      '/v1/archive/verification',
      officer,
    )
    assert.deepEqual(
      [tampered.body.ok, tampered.body.records, tampered.body.failure.seq, tampered.body.failure.reason],
      [false, 2, 3, 'record altered'],
    )
    assert.equal((await call('GET', '/v1/archive/verification', tenant.agentToken)).status, 403)

    await server.flushAudit()
    const audited = await server.ctx.db
      .selectFrom('audit_events')
      .select(['outcome', 'reason'])
      .where('tenant_id', '=', tenant.tenantId)
      .where('action', '=', 'archive.verify')
      .orderBy('id')
      .execute()
    assert.deepEqual(audited.at(-1), { outcome: 'failure', reason: 'record altered' })
    assert.equal(audited.length, 4)
  })

  describe('the verifier catches tampering done directly in the database', () => {
    const db = () => server.ctx.db
    const update = (tenantId: string, seq: number) =>
      db().updateTable('archive_records').where('tenant_id', '=', tenantId).where('seq', '=', seq)
    const rowId = async (tenantId: string, seq: number) =>
      Number(
        (
          await db()
            .selectFrom('archive_records')
            .select('id')
            .where('tenant_id', '=', tenantId)
            .where('seq', '=', seq)
            .executeTakeFirstOrThrow()
        ).id,
      )
    /** Each way of tampering, on a fresh chain of twelve records (checkpoints at 5 and 10), and what must be named. */
    const tamperings: [string, (tenantId: string) => Promise<unknown>, (tenantId: string) => Promise<object>][] = [
      [
        'metadata changed',
        (t) =>
          update(t, 7)
            .set({ occurred_at: new Date(0) })
            .execute(),
        async (t) => ({ seq: 7, id: await rowId(t, 7), reason: 'record altered' }),
      ],
      [
        'sealed bytes changed',
        (t) =>
          sql`update archive_records set sealed = sealed || '\\x00'::bytea where tenant_id = ${t} and seq = 4`.execute(
            db(),
          ),
        async (t) => ({ seq: 4, id: await rowId(t, 4), reason: 'sealed content altered' }),
      ],
      [
        'content removed with no deletion record',
        (t) => update(t, 9).set({ sealed: null, deleted_at: new Date() }).execute(),
        async (t) => ({
          seq: 9,
          id: await rowId(t, 9),
          reason: 'content removed without a deletion record in the chain',
        }),
      ],
      [
        'a record deleted',
        (t) => db().deleteFrom('archive_records').where('tenant_id', '=', t).where('seq', '=', 7).execute(),
        async () => ({ seq: 7, id: null, reason: 'record missing (sequence gap)' }),
      ],
      [
        'two records reordered',
        async (t) => {
          for (const [from, to] of [
            [6, -6],
            [7, 6],
            [-6, 7],
          ] as const) {
            await sql`update archive_records set seq = ${to} where tenant_id = ${t} and seq = ${from}`.execute(db())
          }
        },
        async (t) => ({
          seq: 6,
          id: await rowId(t, 6),
          reason: 'not linked to the previous record (moved, or one before it changed)',
        }),
      ],
      [
        'a checkpoint forged',
        (t) =>
          db()
            .updateTable('archive_checkpoints')
            .set({ root_hash: Buffer.alloc(32, 7) })
            .where('tenant_id', '=', t)
            .where('tree_size', '=', 5)
            .execute(),
        async (t) => ({ seq: 5, id: await rowId(t, 5), reason: 'checkpoint 5 has a bad signature' }),
      ],
      [
        'the newest records cut off',
        (t) => db().deleteFrom('archive_records').where('tenant_id', '=', t).where('seq', '>', 8).execute(),
        async () => ({ seq: 9, id: null, reason: 'records missing: checkpoint covers 10, chain ends at 8' }),
      ],
    ]
    for (const [name, tamper, expected] of tamperings) {
      test(name, async () => {
        const tenant = await createTestBank(server, `Tampered ${name}`)
        await customerWithRecords(
          tenant.tenantId,
          Array.from({ length: 12 }, (_, i) => 12 - i),
        )
        const clean = await verify(tenant.tenantId)
        assert.deepEqual([clean.ok, clean.records, clean.checkpoints], [true, 12, 2])
        await tamper(tenant.tenantId)
        const found = await verify(tenant.tenantId)
        assert.equal(found.ok, false)
        assert.deepEqual(found.failure, await expected(tenant.tenantId))
      })
    }
  })
})
