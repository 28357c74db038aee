/**
 * Issue #22: one agent, several browsers. Each of an agent's browsers is a leaf of its own beside the others (named by
 * its signature key), added by the archive member when it asks; none replaces another. Removing one browser leaves
 * the others; a hand-over adds the new agent's browsers and takes every leaf of the former agent out. Every message is
 * readable by every current member, and the archive holds as many as were sent.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import { fetchSecureHistory, type MemberIdentity } from '@strongroom/sdk/mls-node'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { openMember, secureConversation, texts } from '../testing/secure-members.ts'

type Member = Awaited<ReturnType<typeof openMember>>
const leaves = (members: MemberIdentity[]) => members.map((m) => `${m.kind}:${m.id}/${m.instance ?? ''}`).sort()
const leafOf = (member: Member) => `${member.secure.self.kind}:${member.secure.self.id}/${member.secure.self.instance}`

/** A browser that holds no state of the conversation's group asks to be added, and reads on once the archive has. */
async function joinAsNewBrowser(member: Member, conversationId: string): Promise<void> {
  await eventually(
    async () => {
      await member.secure.acceptWelcomes()
      await member.secure.sync(conversationId).catch(() => [])
      return member.secure.isMember(conversationId)
    },
    (joined) => joined,
  )
}

describe('an agent on several browsers, a hand-over, a browser removed', () => {
  let server: TestServer
  let bank: TestBank
  let chat: Awaited<ReturnType<typeof secureConversation>>
  let secondBrowser: Member
  const sent: string[] = []

  const archived = async () =>
    (
      await server.ctx.db
        .selectFrom('archive_records')
        .select('conversation_seq')
        .where('conversation_id', '=', chat.conversationId)
        .where('record_class', '=', 'secure-message')
        .execute()
    ).length
  /** Every message sent so far is in the archive, once each. */
  const archiveHoldsAll = async () => assert.equal(await eventually(archived, (n) => n >= sent.length), sent.length)

  /** Sends from `from`; every other member in `readers` reads exactly that text next. */
  const say = async (from: Member, text: string, readers: Member[]) => {
    await from.secure.send(chat.conversationId, text)
    sent.push(text)
    for (const reader of readers) {
      assert.deepEqual(texts(await reader.secure.sync(chat.conversationId)), [text], `${leafOf(reader)} reads it`)
    }
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    chat = await secureConversation(server, bank)
    secondBrowser = await openMember(
      new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) }),
    )
  })

  after(() => server?.stop())

  test('the agent’s second browser joins as a leaf of its own: both read and send, neither replaces the other', async () => {
    await say(chat.phone, 'Before the second browser.', [chat.agent])
    await joinAsNewBrowser(secondBrowser, chat.conversationId)
    assert.notEqual(secondBrowser.secure.self.instance, chat.agent.secure.self.instance)
    await chat.agent.secure.sync(chat.conversationId)
    assert.ok(await chat.agent.secure.isMember(chat.conversationId), 'the first browser stays in')
    assert.deepEqual(
      leaves(await chat.agent.secure.members(chat.conversationId)),
      ['archive:archive/', `device:${chat.phone.deviceId}/`, leafOf(chat.agent), leafOf(secondBrowser)].sort(),
    )
    await chat.phone.secure.sync(chat.conversationId)
    await say(chat.agent, 'From the first browser.', [chat.phone, secondBrowser])
    await say(secondBrowser, 'From the second browser.', [chat.phone, chat.agent])
    await say(chat.phone, 'Both of you then.', [chat.agent, secondBrowser])
    // The second browser reads what came before it from the archive (sealed to it), the rest from MLS.
    const { messages } = await fetchSecureHistory(secondBrowser.client, chat.conversationId)
    assert.deepEqual(
      messages.map((m) => m.text),
      sent,
    )
    await archiveHoldsAll()
  })

  test('one browser removed: its leaf only goes; the agent’s other browser, the phone and the archive read on', async () => {
    await chat.agent.secure.removeMembers(chat.conversationId, [
      { kind: 'staff', id: bank.agentId, instance: secondBrowser.secure.self.instance as string },
    ])
    await secondBrowser.secure.sync(chat.conversationId)
    assert.equal(await secondBrowser.secure.wasRemoved(chat.conversationId), true)
    await chat.phone.secure.sync(chat.conversationId)
    assert.deepEqual(leaves(await chat.phone.secure.members(chat.conversationId)), [
      'archive:archive/',
      `device:${chat.phone.deviceId}/`,
      leafOf(chat.agent),
    ])
    await say(chat.phone, 'Still there?', [chat.agent])
    await say(chat.agent, 'Yes, on this browser.', [chat.phone])
    assert.deepEqual(texts(await secondBrowser.secure.sync(chat.conversationId)), [], 'the removed browser reads none')
    await archiveHoldsAll()
  })

  test('handed over: the new agent’s browsers join and read the history; every leaf of the former agent goes', async () => {
    const supervisor = await bank.staffToken('supervisor')
    const colleague = await bank.staffToken('agent')
    const colleagueClient = () => new StaffClient({ baseUrl: server.url, credentials: new StaffToken(colleague.token) })
    const laptop = await openMember(colleagueClient())
    const desktop = await openMember(colleagueClient())
    const boss = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(supervisor.token) })
    await boss.request('PUT', `/v1/conversations/${chat.conversationId}/assignment`, {
      staffId: colleague.staffId,
      mode: 'transfer',
    })
    await joinAsNewBrowser(laptop, chat.conversationId)
    await joinAsNewBrowser(desktop, chat.conversationId)
    // The archive took the former agent out when the conversation left them.
    await eventually(
      async () => {
        await chat.phone.secure.sync(chat.conversationId)
        return leaves(await chat.phone.secure.members(chat.conversationId))
      },
      (now) => !now.some((leaf) => leaf.startsWith(`staff:${bank.agentId}/`)),
    )
    await laptop.secure.sync(chat.conversationId)
    await desktop.secure.sync(chat.conversationId)
    assert.deepEqual(
      leaves(await chat.phone.secure.members(chat.conversationId)),
      ['archive:archive/', `device:${chat.phone.deviceId}/`, leafOf(laptop), leafOf(desktop)].sort(),
    )
    const { messages } = await fetchSecureHistory(laptop.client, chat.conversationId)
    assert.deepEqual(
      messages.map((m) => m.text),
      sent,
      'the new agent reads every earlier message',
    )
    // The former agent may no longer fetch the conversation, and the group keys moved on without their leaves.
    await assert.rejects(chat.agent.secure.sync(chat.conversationId), /no such conversation/)
    await say(laptop, 'I am taking over from my colleague.', [chat.phone, desktop])
    await say(chat.phone, 'Welcome.', [laptop, desktop])
    await archiveHoldsAll()
  })
})
