/**
 * Encrypted attachments in the secure chat (issue 20, item 4): the sender's device encrypts the file with a fresh key
 * and uploads ciphertext only; the key reaches the group (the bank's archive among it) in an MLS message; only
 * members of the conversation download it; a file changed on the server, one too big, or one expired is refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  AttachmentError,
  attachmentMessage,
  downloadAttachment,
  readAttachmentMessage,
  StaffClient,
  StaffToken,
  uploadAttachment,
} from '@strongroom/sdk'
import type { ArchiveRecord } from '../archive/archive-member.ts'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { PROBLEMS, problemOf } from '../testing/problems.ts'
import { enrolPhone, secureConversation, texts } from '../testing/secure-members.ts'
import { purgeExpiredAttachments } from './attachments.ts'

const LIMIT = 4096
const pdf = (size: number) => {
  const bytes = new Uint8Array(size)
  bytes.set(new TextEncoder().encode('%PDF-1.4\n'))
  for (let i = 9; i < size; i++) bytes[i] = i % 251
  return bytes
}

describe('encrypted attachments in a secure conversation', () => {
  let server: TestServer
  let bank: TestBank
  const archived: ArchiveRecord[] = []
  let chat: Awaited<ReturnType<typeof secureConversation>>

  before(async () => {
    server = await startTestServer({ maxAttachmentBytes: LIMIT }, undefined, {
      archiveSink: (record) => void archived.push(record),
    })
    bank = await createTestBank(server)
    chat = await secureConversation(server, bank)
  })
  after(() => server.stop())

  test('T290: the agent sends a PDF the phone opens; the server holds ciphertext only, the archive holds the key', async () => {
    const file = pdf(3000)
    const ref = await uploadAttachment(
      chat.agentClient,
      chat.conversationId,
      { name: 'statement.pdf', type: 'application/pdf', bytes: file },
      { maxBytes: LIMIT },
    )
    await chat.agent.secure.send(chat.conversationId, attachmentMessage(ref))

    const [received] = texts(await chat.phone.secure.sync(chat.conversationId))
    const readRef = readAttachmentMessage(received as string)
    assert.deepEqual(readRef, ref)
    assert.deepEqual(await downloadAttachment(chat.phone.client, chat.conversationId, readRef), file)

    // What the server stored is not the file, and nothing the server holds is its key.
    const row = await server.ctx.db
      .selectFrom('attachments')
      .selectAll()
      .where('id', '=', ref.id)
      .executeTakeFirstOrThrow()
    assert.equal(row.ciphertext.length, file.length + 16)
    assert.equal(Buffer.from(row.ciphertext).includes(Buffer.from('%PDF')), false)
    const key = Buffer.from(ref.key, 'base64')
    for (const table of ['attachments', 'messages'] as const) {
      const rows = await server.ctx.db.selectFrom(table).select('ciphertext').execute()
      assert.ok(
        rows.every((r) => !Buffer.from(r.ciphertext).includes(key)),
        `${table} holds no key`,
      )
    }
    // The bank's archive member read the message: it keeps the reference with its key.
    await eventually(
      () => archived.some((r) => r.kind === 'message' && new TextDecoder().decode(r.plaintext) === received),
      (found) => found,
    )
  })

  test('T291: only members of the conversation download an attachment', async () => {
    const ref = await uploadAttachment(chat.phone.client, chat.conversationId, {
      name: 'receipt.png',
      type: 'image/png',
      bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]),
    })
    // The agent, a member, opens the customer's picture.
    assert.deepEqual(
      await downloadAttachment(chat.agentClient, chat.conversationId, ref),
      new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]),
    )
    // A device of a member of another conversation, and an agent of the bank who is not in this one, are refused.
    const stranger = await enrolPhone(server, bank, 'another phone')
    const otherAgent = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken((await bank.staffToken('agent', 'Other Agent')).token),
    })
    const otherConversation = await otherAgent.createConversation({
      customerId: bank.customerId,
      deviceIds: [stranger.deviceId],
    })
    for (const client of [stranger.client, otherAgent]) {
      const refused = await problemOf(downloadAttachment(client, chat.conversationId, ref))
      assert.equal(refused.status, 404, refused.message)
      // Naming their own conversation does not reach an attachment of another one either.
      const elsewhere = await problemOf(downloadAttachment(client, otherConversation.id, ref))
      assert.equal(elsewhere.type, `${PROBLEMS}conversations/attachment-not-found`)
    }
    // Nor can a stranger put a file into a conversation they are not in.
    const upload = await problemOf(
      uploadAttachment(stranger.client, chat.conversationId, {
        name: 'x.pdf',
        type: 'application/pdf',
        bytes: pdf(10),
      }),
    )
    assert.equal(upload.status, 404)
  })

  test('T292: too big, a type that is not allowed, or a file changed on the server is refused with a clear reason', async () => {
    const tooBig = { name: 'big.pdf', type: 'application/pdf', bytes: pdf(LIMIT + 1) }
    const local = await uploadAttachment(chat.agentClient, chat.conversationId, tooBig, { maxBytes: LIMIT }).catch(
      (error: unknown) => error,
    )
    assert.ok(local instanceof AttachmentError && local.code === 'too-large')
    assert.match(local.message, /too big to send: the limit is/)
    // A client that does not check (or thinks the limit higher) is refused by the server, and nothing is stored.
    const before = await server.ctx.db.selectFrom('attachments').select('id').execute()
    const refused = await problemOf(
      uploadAttachment(chat.agentClient, chat.conversationId, tooBig, { maxBytes: LIMIT * 2 }),
    )
    assert.equal(refused.status, 413)
    assert.equal(refused.type, `${PROBLEMS}conversations/attachment-too-large`)
    assert.equal((await server.ctx.db.selectFrom('attachments').select('id').execute()).length, before.length)

    const svg = await uploadAttachment(chat.agentClient, chat.conversationId, {
      name: 'x.svg',
      type: 'image/svg+xml',
      bytes: new TextEncoder().encode('<svg onload="alert(1)"/>'),
    }).catch((error: unknown) => error)
    assert.ok(svg instanceof AttachmentError && svg.code === 'type-not-allowed')

    const ref = await uploadAttachment(chat.agentClient, chat.conversationId, {
      name: 'a.pdf',
      type: 'application/pdf',
      bytes: pdf(100),
    })
    const row = await server.ctx.db
      .selectFrom('attachments')
      .select('ciphertext')
      .where('id', '=', ref.id)
      .executeTakeFirstOrThrow()
    const changed = Buffer.from(row.ciphertext)
    changed[20] = (changed[20] as number) ^ 1
    await server.ctx.db.updateTable('attachments').set({ ciphertext: changed }).where('id', '=', ref.id).execute()
    const tampered = await downloadAttachment(chat.phone.client, chat.conversationId, ref).catch((e: unknown) => e)
    assert.ok(tampered instanceof AttachmentError && tampered.code === 'tampered')
  })

  test('T293: an attachment expires with its message for the members, and goes from the server after the retention', async () => {
    const ref = await uploadAttachment(
      chat.agentClient,
      chat.conversationId,
      {
        name: 'b.pdf',
        type: 'application/pdf',
        bytes: pdf(50),
      },
      { expiresAt: new Date(Date.now() + 60_000) },
    )
    const byId = server.ctx.db.updateTable('attachments').where('id', '=', ref.id)
    await byId.set({ expires_at: new Date(Date.now() - 1000) }).execute()
    const gone = await problemOf(downloadAttachment(chat.phone.client, chat.conversationId, ref))
    assert.equal(gone.type, `${PROBLEMS}conversations/attachment-not-found`)
    // Kept while the bank's retention of secure messages lasts, deleted after it.
    assert.equal(await purgeExpiredAttachments(server.ctx), 0)
    await byId.set({ retain_until: new Date(Date.now() - 1000) }).execute()
    assert.equal(await purgeExpiredAttachments(server.ctx), 1)
    const left = await server.ctx.db.selectFrom('attachments').select('id').where('id', '=', ref.id).execute()
    assert.deepEqual(left, [])
  })
})
