/**
 * Issue #22: a message no member can read is never lost silently. A forked sender (two copies of one member state, as
 * two tabs had before they took turns) encrypts two messages with one key; the members that cannot read the second
 * ask the group for it again, and the sender, which kept its text, sends it again once, however many asked. Every
 * member then reads every message, and the archive holds each message once.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import {
  encryptedStore,
  generateStoreKey,
  MemoryStore,
  nodeCryptoProvider,
  SecureMessaging,
  type SecureStore,
} from '@strongroom/sdk/mls-node'
import { eventually } from '../testing/eventually.ts'
import type { TestBank, TestServer } from '../testing/harness.ts'
import { openMember, startArchivingServer, texts } from '../testing/secure-members.ts'

describe('a message other members could not read is asked for and sent again, once', () => {
  let server: TestServer
  let bank: TestBank
  let archivedTexts: (conversationId: string) => string[]
  let conversationId: string
  let phone: SecureMessaging
  let phoneStore: SecureStore
  let agent: Awaited<ReturnType<typeof openMember>>
  let forkedSeq: number

  before(async () => {
    ;({ server, bank, archivedTexts } = await startArchivingServer())
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const enrolled = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'phone',
    })
    phoneStore = encryptedStore(new MemoryStore(), await generateStoreKey())
    // The phone keeps what it sent (as the browsers do): that is what it can send again.
    phone = await SecureMessaging.open(enrolled.client, {
      provider: nodeCryptoProvider,
      store: phoneStore,
      keepTexts: true,
    })
    agent = await openMember(agentClient)
    const conversation = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [enrolled.device.id],
    })
    conversationId = conversation.id
    await agent.secure.createGroup(conversationId, [
      { kind: 'device', id: enrolled.device.id },
      { kind: 'archive', id: 'archive' },
    ])
    assert.deepEqual(await phone.acceptWelcomes(), [conversationId])
  })

  after(() => server?.stop())

  test('the forked message is reported unreadable with a request, re-sent once, and then read by all', async () => {
    await agent.secure.send(conversationId, 'Hello, how can I help?')
    await phone.sync(conversationId)
    await phone.send(conversationId, 'My card was declined.')
    // The fork: the phone's state goes back to a copy from before its next message, as a stale second tab held it.
    const stale = (await phoneStore.get(`mls/group/${conversationId}`)) as Uint8Array
    await phone.send(conversationId, 'At the supermarket.')
    await phoneStore.set(`mls/group/${conversationId}`, stale)
    const forked = await phone.send(conversationId, 'Around noon today.')
    forkedSeq = forked.seq

    const agentEvents = await agent.secure.sync(conversationId)
    assert.deepEqual(texts(agentEvents), ['My card was declined.', 'At the supermarket.'])
    const unreadable = agentEvents.filter((e) => e.kind === 'unreadable')
    assert.deepEqual(
      unreadable.map((e) => e.kind === 'unreadable' && [e.seq, e.resendRequested]),
      [[forked.seq, true]],
      'the agent could not read the forked message, and asked for it again',
    )

    // The phone reads the agent's request and sends the message again; reading again sends nothing more.
    const phoneEvents = [...(await phone.sync(conversationId)), ...(await phone.sync(conversationId))]
    const resent = phoneEvents.filter((e) => e.kind === 'resent')
    assert.equal(resent.length, 1, 'sent again once, however many asked')
    assert.equal(resent[0]?.kind === 'resent' && resent[0].of, forked.seq)
    assert.deepEqual(phoneEvents.flatMap((e) => (e.kind === 'resend-requested' ? [e.requester.kind] : [])).sort(), [
      'staff',
    ])

    assert.deepEqual(texts(await agent.secure.sync(conversationId)), ['Around noon today.'])
    // The archive could not read the forked one either, and holds the copy: each message once.
    await eventually(
      () => archivedTexts(conversationId).length,
      (count) => count >= 4,
    )
    assert.deepEqual(archivedTexts(conversationId), [
      'Hello, how can I help?',
      'My card was declined.',
      'At the supermarket.',
      'Around noon today.',
    ])
    // The log holds the requests and the one copy: nothing sent twice however often the phone reads them.
    await phone.sync(conversationId)
    const log = await agent.client.listMessages(conversationId)
    const fromPhone = log.filter((m) => m.sender.kind === 'device')
    assert.equal(fromPhone.length, 4, 'three messages and one copy')
    // What the phone keeps of a request or a copy shows nothing; the forked message shows its text.
    assert.deepEqual(await phone.keptText(conversationId, forked.seq), { kind: 'text', text: 'Around noon today.' })
  })

  test('after a commit, a message from the epoch before is not sent again: only its members could read it', async () => {
    const stale = (await phoneStore.get(`mls/group/${conversationId}`)) as Uint8Array
    await phone.send(conversationId, 'One more thing.')
    await phoneStore.set(`mls/group/${conversationId}`, stale)
    const forked = await phone.send(conversationId, 'My address changed.')
    const agentEvents = await agent.secure.sync(conversationId)
    assert.ok(agentEvents.some((e) => e.kind === 'unreadable' && e.seq === forked.seq && e.resendRequested))
    // A commit (another agent joining, a device added) moves the group on before the phone reads the request.
    await agent.secure.addMembers(conversationId, [])
    const phoneEvents = await phone.sync(conversationId)
    assert.ok(phoneEvents.some((e) => e.kind === 'resend-requested' && e.of.seq === forked.seq))
    assert.deepEqual(
      phoneEvents.filter((e) => e.kind === 'resent'),
      [],
      'not sent again into a later epoch',
    )
    const agentLater = await agent.secure.sync(conversationId)
    assert.deepEqual(texts(agentLater), [])
  })

  test('a member that could not read a message and was not its sender never sends it again', async () => {
    const log = await agent.client.listMessages(conversationId)
    const fromStaff = log.filter((m) => m.sender.kind === 'staff').map((m) => m.clientMessageId ?? '')
    // The agent's: its commits, its greeting and its requests; no copy of the phone's message.
    assert.deepEqual(
      fromStaff.filter((id) => id.startsWith('resend-') && !id.startsWith('resend-request-')),
      [],
    )
    assert.ok(fromStaff.includes(`resend-request-${forkedSeq}`))
  })
})
