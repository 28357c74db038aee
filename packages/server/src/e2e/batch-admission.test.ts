/**
 * Issue #17: a secure message costs one statement. The MLS epoch is checked inside the batch statement that stores the
 * message, after it has locked the conversation, and a commit (or a group being made) takes that lock before it
 * changes the group: whatever moves the epoch on any node comes before the check or after the insert, never between.
 * Before, the epoch was read in a round trip of its own ahead of the batch, and a commit accepted meanwhile let a
 * message of the old epoch in after it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { base64ToBytes, enrolDevice, type Message, StaffToken, StrongroomClient } from '@strongroom/sdk'
import { sql } from 'kysely'
import { type AppendInput, lockConversationLog, MessageLog } from '../conversations/message-log.ts'
import { Problem } from '../platform/http/problems.ts'
import { eventually } from '../testing/eventually.ts'
import { type TestBank, type TestServer, usingPostgres } from '../testing/harness.ts'
import { openMember, secureConversation, startArchivingServer } from '../testing/secure-members.ts'
import { groupMessageAdmission } from './groups.ts'

describe('the epoch is checked in the statement that stores the message, under the conversation lock', () => {
  let server: TestServer
  let bank: TestBank
  /** A second writer of the log on the same database, as another node has. */
  let otherNode: MessageLog

  before(async () => {
    ;({ server, bank } = await startArchivingServer())
    otherNode = new MessageLog(server.ctx, groupMessageAdmission)
  })

  after(async () => {
    await otherNode?.close()
    await server?.stop()
  })

  /** The message again under a new client message id, from `sender`: its bytes keep the group and epoch they name. */
  const replay = (message: Message, sender: AppendInput['sender'], clientMessageId: string): AppendInput => ({
    tenantId: bank.tenantId,
    conversationId: message.conversationId,
    sender,
    clientMessageId,
    contentType: message.contentType,
    ciphertext: Buffer.from(base64ToBytes(message.ciphertext)),
    expiresAt: null,
  })

  const refusal = async (appending: Promise<unknown>) => {
    const error = await appending.then(
      () => assert.fail('the message was stored'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof Problem, `a problem, not ${String(error)}`)
    return { kind: error.kind, currentEpoch: error.extensions?.currentEpoch }
  }

  /**
   * Runs `change` in a transaction that holds the conversation's log lock (as a commit accepted on another node does),
   * calls `meanwhile` once it holds it, and commits only when the statements `meanwhile` started wait for the lock
   * (on PostgreSQL; PGlite has one connection, so they wait for the transaction to end in any case).
   */
  async function whileLocked(
    conversationId: string,
    change: Parameters<typeof lockConversationLog>[3],
    write: (trx: TestServer['ctx']['db']) => Promise<unknown>,
    meanwhile: () => void,
  ): Promise<void> {
    let locked: () => void = () => {}
    const holding = new Promise<void>((resolve) => {
      locked = resolve
    })
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const transaction = server.ctx.db.transaction().execute(async (trx) => {
      await lockConversationLog(trx, bank.tenantId, conversationId, change)
      await write(trx)
      locked()
      await released
    })
    await holding
    meanwhile()
    if (usingPostgres) {
      await eventually(
        async () =>
          (
            await sql<{ n: number }>`
              select count(*)::int as n from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`.execute(server.ctx.db)
          ).rows[0]?.n ?? 0,
        (waiting) => waiting > 0,
      )
    }
    release()
    await transaction
  }

  test('a message that waited for the conversation while a commit moved the epoch is refused with the new epoch', async () => {
    const { conversationId, agent, agentClient } = await secureConversation(server, bank)
    const sent = await agent.secure.send(conversationId, 'before the commit')
    const { epoch } = await agentClient.request<{ epoch: number }>(
      'GET',
      `/v1/conversations/${conversationId}/e2e/group`,
    )
    const before = (await agentClient.getConversation(conversationId)).lastSeq

    // The refusal is taken as soon as the append starts: it can arrive before `whileLocked` returns.
    let stale: ReturnType<typeof refusal> | undefined
    await whileLocked(
      conversationId,
      undefined,
      // What an accepted commit does to the group, on another node, before it commits.
      (trx) =>
        trx
          .updateTable('e2e_groups')
          .set((eb) => ({ epoch: eb('epoch', '+', 1) }))
          .where('conversation_id', '=', conversationId)
          .execute(),
      () => {
        // Checked when it arrives, this message was of the current epoch.
        stale = refusal(otherNode.append(replay(sent, sent.sender as AppendInput['sender'], 'sent-during-the-commit')))
      },
    )
    assert.deepEqual(await stale, { kind: 'e2e/epoch-conflict', currentEpoch: epoch + 1 })
    assert.equal((await agentClient.getConversation(conversationId)).lastSeq, before, 'nothing was stored')
  })

  test('in one batch after a commit: the old epoch is refused, the new one stored with the next number', async () => {
    const { conversationId, agent, phone, agentClient } = await secureConversation(server, bank)
    const beforeCommit = await agent.secure.send(conversationId, 'before the commit')
    // The phone commits (a tablet of the customer joins); the agent's member has not read it yet.
    const tablet = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'tab' })
    await (await openMember(tablet.client)).secure.replenishKeyPackages()
    await agentClient.addMember(conversationId, { kind: 'device', id: tablet.device.id })
    await phone.secure.addMembers(conversationId, [{ kind: 'device', id: tablet.device.id }])
    const afterCommit = await phone.secure.send(conversationId, 'after the commit')
    const { epoch } = await agentClient.request<{ epoch: number }>(
      'GET',
      `/v1/conversations/${conversationId}/e2e/group`,
    )
    const lastSeq = (await agentClient.getConversation(conversationId)).lastSeq

    // Appended in one turn: one batch, one statement.
    const agentSender = beforeCommit.sender as AppendInput['sender']
    const phoneSender = afterCommit.sender as AppendInput['sender']
    const old = otherNode.append(replay(beforeCommit, agentSender, 'old-epoch'))
    const current = otherNode.append(replay(afterCommit, phoneSender, 'new-epoch'))
    // The agent's retry of the message stored before the commit is answered as stored, not refused.
    const retry = otherNode.append(replay(beforeCommit, agentSender, beforeCommit.clientMessageId))

    assert.deepEqual(await refusal(old), { kind: 'e2e/epoch-conflict', currentEpoch: epoch })
    const stored = await current
    assert.equal(stored.created, true)
    assert.equal(stored.message.seq, lastSeq + 1, 'the refused message took no number')
    const retried = await retry
    assert.deepEqual([retried.created, retried.message.seq], [false, beforeCommit.seq])
  })

  test('plaintext that waited for the conversation while its group was made is refused', async () => {
    const agentClient = new StrongroomClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const { id: conversationId } = await agentClient.createConversation({ customerId: bank.customerId })
    let plain: ReturnType<typeof refusal> | undefined
    await whileLocked(
      conversationId,
      { requireEncryption: true },
      // What registering a group does, on another node, before it commits.
      (trx) =>
        trx
          .insertInto('e2e_groups')
          .values({
            tenant_id: bank.tenantId,
            conversation_id: conversationId,
            group_id: Buffer.from('a group made meanwhile'),
            cipher_suite: 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519',
            epoch: 0,
            created_at: new Date(),
            updated_at: new Date(),
            group_info: null,
          })
          .execute(),
      () => {
        plain = refusal(
          otherNode.append({
            tenantId: bank.tenantId,
            conversationId,
            sender: { kind: 'staff', id: bank.agentId },
            clientMessageId: 'plain-while-made-secure',
            contentType: 'text/plain',
            ciphertext: Buffer.from('in clear'),
            expiresAt: null,
          }),
        )
      },
    )
    assert.equal((await plain)?.kind, 'e2e/encryption-required')
    assert.equal((await agentClient.getConversation(conversationId)).lastSeq, 0)
  })
})
