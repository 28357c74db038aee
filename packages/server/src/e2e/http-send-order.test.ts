/**
 * Without a stream (or after it closed), a member's secure messages go over HTTP. Sent at once, as a customer who taps
 * send twice quickly does, each was its own request: the second could reach the server, and be committed, before the
 * first, and the conversation would read them in the wrong order. The SDK sends a conversation's messages over HTTP
 * one request at a time, in the order they were written.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { StaffClient, StaffToken } from '@strongroom/sdk'
import type { TestBank, TestServer } from '../testing/harness.ts'
import { enrolPhone, openMember, startArchivingServer, texts } from '../testing/secure-members.ts'

describe('secure messages over HTTP', () => {
  let server: TestServer
  let bank: TestBank

  before(async () => {
    ;({ server, bank } = await startArchivingServer())
  })

  after(async () => {
    await server?.stop()
  })

  test('sent at once without a stream: one request at a time, stored and read in the order written', async () => {
    /** Requests on their way now, and the most there were at once. */
    let inFlight = 0
    let mostAtOnce = 0
    /** Lets a held request go as soon as another starts (so the test is quick when requests overlap). */
    let anotherStarted: () => void = () => {}
    const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const agent = await openMember(agentClient, (inner) => ({
      ...inner,
      // Each request is held until another starts or 300 ms pass: overlapping requests would show here.
      sendApplicationMessage: async (...args) => {
        anotherStarted()
        inFlight++
        mostAtOnce = Math.max(mostAtOnce, inFlight)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 300)
          anotherStarted = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        try {
          return await inner.sendApplicationMessage(...args)
        } finally {
          inFlight--
        }
      },
    }))
    const phone = await enrolPhone(server, bank, 'phone')
    const { id: conversationId } = await agentClient.createConversation({
      customerId: bank.customerId,
      assignedStaffId: bank.agentId,
      deviceIds: [phone.deviceId],
    })
    await agent.secure.createGroup(conversationId, [
      { kind: 'device', id: phone.deviceId },
      { kind: 'archive', id: 'archive' },
    ])
    assert.deepEqual(await phone.secure.acceptWelcomes(), [conversationId])

    const words = ['first', 'second', 'third', 'fourth']
    const sent = await Promise.all(words.map((word) => agent.secure.send(conversationId, word)))

    assert.equal(mostAtOnce, 1, 'one request at a time')
    const seqs = sent.map((m) => m.seq)
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'stored in the order written',
    )
    assert.deepEqual(texts(await phone.secure.sync(conversationId)), words, 'the phone reads them in that order')
  })
})
