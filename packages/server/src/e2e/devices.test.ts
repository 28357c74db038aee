/**
 * Issue #22: one person, several devices. A customer's phone and tablet are separate leaves of the same person; when
 * one is revoked, the archive member removes that leaf only, and the person's other device, the agent and the archive
 * read on. Every message is readable by every current member, and the archive holds as many as were sent.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eventually } from '../testing/eventually.ts'
import type { TestBank, TestServer } from '../testing/harness.ts'
import { enrolPhone, secureConversation, startArchivingServer, texts } from '../testing/secure-members.ts'

describe('one customer, several devices', () => {
  let server: TestServer
  let bank: TestBank
  let archivedTexts: (conversationId: string) => string[]
  let chat: Awaited<ReturnType<typeof secureConversation>>
  let tablet: Awaited<ReturnType<typeof enrolPhone>>
  const sent: string[] = []

  before(async () => {
    ;({ server, bank, archivedTexts } = await startArchivingServer())
    chat = await secureConversation(server, bank)
    tablet = await enrolPhone(server, bank, 'tablet')
    // The customer's second device joins the conversation, then its group: a leaf of its own beside the phone's.
    await chat.agentClient.request('POST', `/v1/conversations/${chat.conversationId}/members`, {
      kind: 'device',
      id: tablet.deviceId,
    })
    await chat.agent.secure.addMembers(chat.conversationId, [{ kind: 'device', id: tablet.deviceId }])
    assert.deepEqual(await tablet.secure.acceptWelcomes(), [chat.conversationId])
  })

  after(() => server?.stop())

  test('both devices are members of the group beside each other, and read each other', async () => {
    const devices = (await chat.agent.secure.members(chat.conversationId)).filter((m) => m.kind === 'device')
    assert.deepEqual(devices.map((m) => m.id).sort(), [chat.phone.deviceId, tablet.deviceId].sort())
    await chat.phone.secure.send(chat.conversationId, 'From my phone.')
    await tablet.secure.send(chat.conversationId, 'From my tablet.')
    sent.push('From my phone.', 'From my tablet.')
    assert.deepEqual(texts(await chat.agent.secure.sync(chat.conversationId)), sent)
    assert.ok(texts(await chat.phone.secure.sync(chat.conversationId)).includes('From my tablet.'))
    assert.ok(texts(await tablet.secure.sync(chat.conversationId)).includes('From my phone.'))
  })

  test('the tablet is revoked: its leaf goes, the phone stays, and everyone left reads what follows', async () => {
    await chat.agentClient.revokeDevice(tablet.deviceId, 'lost tablet')
    await eventually(
      async () => {
        await chat.phone.secure.sync(chat.conversationId)
        return (await chat.phone.secure.members(chat.conversationId)).map((m) => `${m.kind}:${m.id}`).sort()
      },
      (members) => !members.includes(`device:${tablet.deviceId}`),
    )
    await chat.agent.secure.sync(chat.conversationId)
    const members = await chat.agent.secure.members(chat.conversationId)
    assert.deepEqual(
      members.map((m) => `${m.kind}:${m.id}`).sort(),
      ['archive:archive', `device:${chat.phone.deviceId}`, `staff:${bank.agentId}`],
      'the phone stays',
    )
    await chat.phone.secure.send(chat.conversationId, 'My tablet is gone, the phone is fine.')
    await chat.agent.secure.send(chat.conversationId, 'Noted, the tablet is removed.')
    sent.push('My tablet is gone, the phone is fine.', 'Noted, the tablet is removed.')
    assert.deepEqual(texts(await chat.agent.secure.sync(chat.conversationId)), [
      'My tablet is gone, the phone is fine.',
    ])
    assert.deepEqual(texts(await chat.phone.secure.sync(chat.conversationId)), ['Noted, the tablet is removed.'])
    assert.deepEqual(
      await eventually(
        () => archivedTexts(chat.conversationId),
        (archived) => archived.length >= sent.length,
      ),
      sent,
      'the archive holds every message once',
    )
  })
})
