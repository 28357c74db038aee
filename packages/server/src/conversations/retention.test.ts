import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken, StrongroomError } from '@strongroom/sdk'
import { encryptedStore, generateStoreKey, MemoryStore } from '@strongroom/sdk/mls'
import { archivedConversationSeqs } from '../archive/archived.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { type MessageRef, purgeExpiredMessages } from './purge-expired-messages.ts'

const DAY = 86_400_000
const bytes = (s: string) => new TextEncoder().encode(s)

describe('message retention for devices', () => {
  let server: TestServer
  let bank: TestBank
  let admin: StaffClient
  let agent: StaffClient
  let conversationId: string

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    conversationId = (await agent.createConversation({ customerId: bank.customerId })).id
  })
  after(() => server.stop())

  const expiryOf = async (text: string, expiresAt?: Date) => {
    const before = Date.now()
    const message = await agent.sendMessage(conversationId, {
      contentType: 'text/plain',
      ciphertext: bytes(text),
      ...(expiresAt ? { expiresAt } : {}),
    })
    return { expiresAt: message.expiresAt ? Date.parse(message.expiresAt) : null, before, after: Date.now(), message }
  }

  test('without a policy messages do not expire; an admin sets 30 days, an agent may not', async () => {
    assert.equal((await expiryOf('no policy')).expiresAt, null)
    await assert.rejects(
      agent.request('PUT', '/v1/policies/retention', { deviceMessageDays: 1 }),
      (e) => e instanceof StrongroomError && e.status === 403,
    )
    await assert.rejects(
      admin.request('PUT', '/v1/policies/retention', { deviceMessageDays: 0 }),
      (e) => e instanceof StrongroomError && e.status === 400,
    )
    await admin.request('PUT', '/v1/policies/retention', { deviceMessageDays: 30 })
    assert.deepEqual(await admin.request('GET', '/v1/policies/retention'), { deviceMessageDays: 30 })
    const sent = await expiryOf('thirty days')
    assert.ok(sent.expiresAt !== null)
    assert.ok(sent.expiresAt >= sent.before + 30 * DAY - 1000 && sent.expiresAt <= sent.after + 30 * DAY + 1000)
    // What the stored row says, not only the answer.
    const row = await server.ctx.db
      .selectFrom('messages')
      .select('expires_at')
      .where('id', '=', sent.message.id)
      .executeTakeFirstOrThrow()
    assert.equal(new Date(row.expires_at as Date).getTime(), sent.expiresAt)
    // A sender's own expiry wins.
    const own = new Date(Date.now() + 2 * DAY)
    assert.equal((await expiryOf('own expiry', own)).expiresAt, own.getTime())
  })

  test('a conversation overrides the tenant default, and can go back to it', async () => {
    await admin.request('PUT', `/v1/conversations/${conversationId}/retention`, { deviceMessageDays: 7 })
    const seven = await expiryOf('seven days')
    assert.ok(seven.expiresAt !== null && seven.expiresAt <= seven.after + 7 * DAY + 1000)
    assert.ok(seven.expiresAt >= seven.before + 7 * DAY - 1000)
    await admin.request('PUT', `/v1/conversations/${conversationId}/retention`, { deviceMessageDays: null })
    const back = await expiryOf('tenant again')
    assert.ok(back.expiresAt !== null && back.expiresAt >= back.before + 30 * DAY - 1000)
    await assert.rejects(
      admin.request('PUT', '/v1/conversations/cnv_AAAAAAAAAAAAAAAAAAAAAA/retention', { deviceMessageDays: 3 }),
      (e) => e instanceof StrongroomError && e.status === 404,
    )
    const actions = await server.ctx.db
      .selectFrom('audit_events')
      .select('action')
      .where('tenant_id', '=', bank.tenantId)
      .execute()
    assert.ok(actions.some((a) => a.action === 'policy.retention.update'))
    assert.ok(actions.some((a) => a.action === 'conversation.retention.update'))
  })

  test('the job deletes expired messages in bounded batches, only those the archive holds', async () => {
    const other = (await agent.createConversation({ customerId: bank.customerId })).id
    const sent = []
    for (let i = 0; i < 7; i++) {
      sent.push(await agent.sendMessage(other, { contentType: 'text/plain', ciphertext: bytes(`m${i}`) }))
    }
    // Five expired (as if their time had come), two not; the archive holds all but the fourth and the last.
    const past = new Date(Date.now() - 1000)
    await server.ctx.db
      .updateTable('messages')
      .set({ expires_at: past })
      .where('conversation_id', '=', other)
      .where('seq', '<=', 5)
      .execute()
    for (const message of sent.filter((m) => m.seq !== 4 && m.seq !== 7)) {
      await server.ctx.db
        .insertInto('archive_records')
        .values({
          tenant_id: bank.tenantId,
          record_class: 'secure-message',
          source_ref: `mls:${other}:${message.seq}`,
          conversation_id: other,
          conversation_seq: message.seq,
          occurred_at: new Date(),
          details: '{}',
        })
        .execute()
    }
    const asked: MessageRef[][] = []
    const deleted = await purgeExpiredMessages(server.ctx, {
      batch: 2,
      isArchived: (refs) => {
        asked.push(refs)
        return archivedConversationSeqs(server.ctx.db, refs)
      },
    })
    assert.equal(deleted, 4)
    assert.ok(asked.length >= 3 && asked.every((refs) => refs.length <= 2))
    const left = await server.ctx.db
      .selectFrom('messages')
      .select('seq')
      .where('conversation_id', '=', other)
      .orderBy('seq')
      .execute()
    // The expired one the archive has not got stays; the unexpired stay whether archived or not.
    assert.deepEqual(
      left.map((r) => Number(r.seq)),
      [4, 6, 7],
    )
    // Devices no longer see expired messages either way.
    const visible = await agent.listMessages(other)
    assert.deepEqual(
      visible.map((m) => m.seq),
      [6, 7],
    )
    // Once the archive has it, the next pass deletes it.
    await server.ctx.db
      .insertInto('archive_records')
      .values({
        tenant_id: bank.tenantId,
        record_class: 'secure-message',
        source_ref: `mls:${other}:4`,
        conversation_id: other,
        conversation_seq: 4,
        occurred_at: new Date(),
        details: '{}',
      })
      .execute()
    assert.equal(
      await purgeExpiredMessages(server.ctx, { isArchived: (refs) => archivedConversationSeqs(server.ctx.db, refs) }),
      1,
    )
  })
})

describe('the SDK store purges expired values offline', () => {
  test('MemoryStore: purgeExpired erases what has expired, get hides it already', async () => {
    const store = new MemoryStore()
    const now = Date.now()
    await store.set('messages/old', bytes('old'), { expiresAt: new Date(now - 1) })
    await store.set('messages/later', bytes('later'), { expiresAt: new Date(now + DAY) })
    await store.set('mls/state', bytes('state'))
    assert.equal(await store.get('messages/old'), undefined)
    assert.equal(await store.purgeExpired(new Date(now)), 1)
    assert.equal(store.values().length, 2)
    assert.equal(await store.purgeExpired(new Date(now + 2 * DAY)), 1)
    assert.deepEqual(store.values(), [bytes('state')])
  })
  test('encryptedStore passes expiry to its inner store, which purges the sealed value', async () => {
    const inner = new MemoryStore()
    const store = encryptedStore(inner, await generateStoreKey())
    const now = Date.now()
    await store.set('messages/old', bytes('old'), { expiresAt: new Date(now - 1) })
    await store.set('messages/new', bytes('new'), { expiresAt: new Date(now + DAY) })
    assert.equal(await store.get('messages/old'), undefined)
    assert.equal(await store.purgeExpired?.(new Date(now)), 1)
    assert.equal(inner.values().length, 1)
    assert.deepEqual(await store.get('messages/new'), bytes('new'))
  })
})
