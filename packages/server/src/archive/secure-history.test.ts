/**
 * Issue #22: history that follows the bank's side. An agent on a new browser, or one a conversation is handed to, reads
 * the conversation's earlier secure messages: the archive seals each to a key the agent's device made for the request
 * (HPKE). Nobody else gets them: not an agent the conversation was taken from, not a bank backend, not a device.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { fetchSecureHistory } from '@strongroom/sdk/mls-node'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { problemOf } from '../testing/problems.ts'
import { secureConversation } from '../testing/secure-members.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'

describe('earlier secure messages for the bank’s staff, sealed by the archive', () => {
  let server: TestServer
  let bank: TestBank
  let chat: Awaited<ReturnType<typeof secureConversation>>
  const said = ['Is my transfer through?', 'It is, since 10:02.', 'Thank you!']

  const archivedCount = async () =>
    Number(
      (
        await server.ctx.db
          .selectFrom('archive_records')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('conversation_id', '=', chat.conversationId)
          .where('record_class', '=', 'secure-message')
          .executeTakeFirstOrThrow()
      ).n,
    )

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    chat = await secureConversation(server, bank)
    await chat.phone.secure.send(chat.conversationId, said[0] as string)
    await chat.agent.secure.send(chat.conversationId, said[1] as string)
    await chat.phone.secure.send(chat.conversationId, said[2] as string)
    // The archive holds every message the members sent.
    await eventually(archivedCount, (n) => n === said.length)
  })

  after(() => server?.stop())

  test('the agent on a new browser (no MLS state) reads every earlier message, with its sender', async () => {
    const newBrowser = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const { messages, next } = await fetchSecureHistory(newBrowser, chat.conversationId)
    assert.deepEqual(
      messages.map((m) => [m.sender.kind, m.text]),
      [
        ['device', said[0]],
        ['staff', said[1]],
        ['device', said[2]],
      ],
    )
    assert.equal(next, null)
    // Pages follow the conversation's order.
    const page = await fetchSecureHistory(newBrowser, chat.conversationId, { after: messages[0]?.seq ?? 0, limit: 1 })
    assert.deepEqual(
      page.messages.map((m) => m.text),
      [said[1]],
    )
    assert.equal(page.next, messages[1]?.seq)
  })

  test('what travels is sealed to the requesting key: no text in the answer, and another key cannot open it', async () => {
    const raw = await chat.agentClient.request<{ messages: { ciphertext: string }[] }>(
      'POST',
      `/v1/conversations/${chat.conversationId}/secure-history`,
      { recipientKey: Buffer.alloc(32, 9).toString('base64') },
    )
    assert.equal(raw.messages.length, said.length)
    assert.ok(!JSON.stringify(raw).includes('transfer'), 'no plaintext on the wire')
    const malformed = await problemOf(
      chat.agentClient.request('POST', `/v1/conversations/${chat.conversationId}/secure-history`, {
        recipientKey: 'not a key',
      }),
    )
    assert.deepEqual([malformed.status, malformed.type], [400, `${PROBLEMS}request/invalid`])
  })

  test('handed over: the new agent reads the history; the agent it was taken from, a device and a backend get nothing', async () => {
    const supervisor = await bank.staffToken('supervisor')
    const colleague = await bank.staffToken('agent')
    const boss = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(supervisor.token) })
    await boss.request('PUT', `/v1/conversations/${chat.conversationId}/assignment`, {
      staffId: colleague.staffId,
      mode: 'transfer',
    })
    const newAgent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(colleague.token) })
    const { messages } = await fetchSecureHistory(newAgent, chat.conversationId)
    assert.deepEqual(
      messages.map((m) => m.text),
      said,
    )

    const formerAgent = await problemOf(fetchSecureHistory(chat.agentClient, chat.conversationId))
    assert.deepEqual([formerAgent.status, formerAgent.type], [404, `${PROBLEMS}request/not-found`])
    const device = await problemOf(fetchSecureHistory(chat.phone.client, chat.conversationId))
    assert.equal(device.status, 403)
    // The supervisor may see the conversation but is not in it: not theirs to read.
    const notMember = await problemOf(fetchSecureHistory(boss, chat.conversationId))
    assert.equal(notMember.status, 404)

    const audits = await server.ctx.db
      .selectFrom('audit_events')
      .select(['actor_id', 'outcome'])
      .where('tenant_id', '=', bank.tenantId)
      .where('action', '=', 'archive.history.serve')
      .execute()
    assert.ok(audits.some((a) => a.actor_id === colleague.staffId && a.outcome === 'success'))
  })
})
