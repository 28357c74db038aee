import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  base64ToBytes,
  type DeviceClient,
  enrolDevice,
  type MemberClient,
  type Message,
  type MessageStream,
  StaffClient,
  StaffToken,
} from '@strongroom/sdk'
import WebSocket from 'ws'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (m: Message) => new TextDecoder().decode(base64ToBytes(m.ciphertext))

/** Collects what a stream delivers and lets a test wait until a condition holds. */
function collector() {
  const messages: Message[] = []
  let waiters: (() => void)[] = []
  return {
    messages,
    onMessage(message: Message) {
      messages.push(message)
      for (const wake of waiters) wake()
      waiters = []
    },
    async until(condition: () => boolean, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out with ${messages.length} messages`)
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 50)
        })
      }
    },
  }
}

describe('realtime stream', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient
  let alice: DeviceClient
  let aliceTablet: DeviceClient
  let conversationId: string
  const streams: MessageStream[] = []

  before(async () => {
    server = await startTestServer({ streamHeartbeatMs: 1000 })
    bank = await createTestBank(server)
    agent = new StaffClient({
      baseUrl: server.url,
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
    const enrol = async (label: string) =>
      (
        await enrolDevice({
          baseUrl: server.url,
          enrolmentCode: await bank.enrolmentCode(),
          label,
          WebSocket: WebSocket as never,
        })
      ).client
    alice = await enrol('phone')
    aliceTablet = await enrol('tablet')
    conversationId = (await agent.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })).id
  })
  after(async () => {
    for (const stream of streams) stream.close()
    await server.stop()
  })

  function open(client: MemberClient, options: Parameters<MemberClient['stream']>[0] = {}) {
    const stream = client.stream(options)
    streams.push(stream)
    return stream
  }

  test('two devices exchange messages in real time, in order, each exactly once', async () => {
    const atAgent = collector()
    const atTablet = collector()
    const agentStream = open(agent, { onMessage: atAgent.onMessage })
    const tabletStream = open(aliceTablet, { onMessage: atTablet.onMessage })
    const phoneStream = open(alice)
    await Promise.all([agentStream.ready(), tabletStream.ready(), phoneStream.ready()])
    const sent = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? agentStream : phoneStream).send(conversationId, {
          contentType: 'text/plain',
          ciphertext: bytes(`${i}`),
        }),
      ),
    )
    await atAgent.until(() => atAgent.messages.length >= 50)
    await atTablet.until(() => atTablet.messages.length >= 50)
    const seqs = atAgent.messages.map((m) => m.seq)
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    )
    assert.equal(new Set(seqs).size, 50)
    assert.deepEqual(
      atTablet.messages.map((m) => m.seq),
      seqs,
    )
    assert.deepEqual(new Set(sent.map((s) => s.seq)), new Set(seqs))
    assert.equal(atAgent.messages.find((m) => m.seq === sent[3]?.seq)?.sender.kind, 'staff')
    for (const s of [agentStream, tabletStream, phoneStream]) s.close()
  })

  test('a device that was away resumes from its cursor: no gap, no duplicate', async () => {
    const first = collector()
    const tablet = open(aliceTablet, { onMessage: first.onMessage })
    await tablet.ready()
    await agent.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes('before') })
    await first.until(() => first.messages.some((m) => text(m) === 'before'))
    const cursors = tablet.cursors
    tablet.close()
    for (let i = 0; i < 20; i++) {
      await agent.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes(`away ${i}`) })
    }
    const second = collector()
    const resumed = open(aliceTablet, { cursors, onMessage: second.onMessage })
    await resumed.ready()
    await second.until(() => second.messages.length >= 20)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(
      second.messages.map(text),
      Array.from({ length: 20 }, (_, i) => `away ${i}`),
    )
    resumed.close()
  })

  test('a client without cursors resumes after what it acknowledged, as the server recorded it', async () => {
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    const first = collector()
    const tablet = open(aliceTablet, { onMessage: first.onMessage })
    await tablet.ready()
    for (const word of ['one', 'two']) {
      await agent.sendMessage(conversation.id, { contentType: 'text/plain', ciphertext: bytes(word) })
    }
    await first.until(() => first.messages.filter((m) => m.conversationId === conversation.id).length === 2)
    await new Promise((resolve) => setTimeout(resolve, 400)) // the SDK acknowledges after 200 ms
    tablet.close()
    await agent.sendMessage(conversation.id, { contentType: 'text/plain', ciphertext: bytes('three') })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const tabletId = (await aliceTablet.me()).deviceId
    const member = (await agent.getConversation(conversation.id)).members.find((m) => m.id === tabletId)
    assert.equal(member?.deliveredSeq, 2)
    const second = collector()
    const again = open(aliceTablet, { onMessage: second.onMessage })
    await again.ready()
    await second.until(() => second.messages.some((m) => m.conversationId === conversation.id))
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(second.messages.filter((m) => m.conversationId === conversation.id).map(text), ['three'])
    again.close()
  })

  test('a dropped connection reconnects by itself and re-sends unacknowledged messages once', async () => {
    const received = collector()
    const listener = open(agent, { onMessage: received.onMessage })
    const states: string[] = []
    const sender = open(alice, { onStateChange: (s) => states.push(s) })
    await Promise.all([listener.ready(), sender.ready()])
    const sends: Promise<unknown>[] = []
    for (let i = 0; i < 30; i++) {
      sends.push(sender.send(conversationId, { contentType: 'text/plain', ciphertext: bytes(`drop ${i}`) }))
      if (i === 10) {
        // Cut every socket on the server: both clients must reconnect and resume.
        for (const client of server.app.websocketServer.clients) client.terminate()
      }
    }
    await Promise.all(sends)
    await received.until(() => received.messages.filter((m) => text(m).startsWith('drop ')).length >= 30)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const drops = received.messages.filter((m) => text(m).startsWith('drop ')).map(text)
    assert.deepEqual(
      drops,
      Array.from({ length: 30 }, (_, i) => `drop ${i}`),
    )
    assert.ok(states.includes('reconnecting'))
    const stored = await agent.listMessages(conversationId, { after: 0, limit: 1000 })
    assert.equal(stored.filter((m) => text(m).startsWith('drop ')).length, 30)
    listener.close()
    sender.close()
  })

  test('a device added to a new conversation receives it live', async () => {
    const received = collector()
    const joined: string[] = []
    const tablet = open(aliceTablet, { onMessage: received.onMessage, onJoined: (id) => joined.push(id) })
    await tablet.ready()
    const fresh = await agent.createConversation({ customerId: bank.customerId })
    await agent.sendMessage(fresh.id, { contentType: 'text/plain', ciphertext: bytes('welcome') })
    await received.until(() => received.messages.some((m) => m.conversationId === fresh.id))
    assert.deepEqual(joined, [fresh.id])
    tablet.close()
  })

  test('a socket closes when its token expires; the SDK renews the token and resumes', async () => {
    const enrolled = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await bank.enrolmentCode(),
      label: 'short-lived',
      WebSocket: WebSocket as never,
    })
    await server.ctx.db
      .updateTable('access_tokens')
      .set({ expires_at: new Date(Date.now() + 1500) })
      .where('device_id', '=', enrolled.device.id)
      .execute()
    const states: string[] = []
    const received = collector()
    const stream = open(enrolled.client, { onStateChange: (s) => states.push(s), onMessage: received.onMessage })
    await stream.ready()
    await new Promise((resolve) => setTimeout(resolve, 2500))
    assert.deepEqual(states.slice(0, 3), ['open', 'reconnecting', 'open'])
    const conversation = await agent.createConversation({ customerId: bank.customerId })
    await agent.sendMessage(conversation.id, { contentType: 'text/plain', ciphertext: bytes('after renewal') })
    await received.until(() => received.messages.some((m) => text(m) === 'after renewal'))
    stream.close()
  })

  describe('the socket protocol, raw', () => {
    const streamUrl = () => `${server.url.replace('http', 'ws')}/v1/stream`

    function connect() {
      const socket = new WebSocket(streamUrl())
      const frames: Record<string, unknown>[] = []
      const closed = new Promise<{ code: number }>((resolve) => socket.on('close', (code) => resolve({ code })))
      socket.on('message', (data) => frames.push(JSON.parse(String(data))))
      const opened = new Promise((resolve) => socket.on('open', resolve))
      return { socket, frames, closed, opened }
    }

    test('a first frame that is not auth closes the socket with 4001', async () => {
      const { socket, closed, opened } = connect()
      await opened
      socket.send(JSON.stringify({ type: 'ping' }))
      assert.equal((await closed).code, 4001)
    })

    test('a forged token is refused on the socket as on HTTP', async () => {
      const { socket, closed, opened, frames } = connect()
      await opened
      socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer srs_${'x'.repeat(43)}` }))
      assert.equal((await closed).code, 4001)
      assert.equal(
        (frames[0]?.problem as { type?: string } | undefined)?.type,
        'https://strongroom.dev/problems/auth/invalid-token',
      )
    })

    test('a device token without a proof, or with a replayed proof, is refused', async () => {
      const enrolled = await enrolDevice({
        baseUrl: server.url,
        enrolmentCode: await bank.enrolmentCode(),
        label: 'raw',
      })
      const auth = await enrolled.client.credentials.authorize('GET', `${server.url}/v1/stream`)
      const noProof = connect()
      await noProof.opened
      noProof.socket.send(JSON.stringify({ type: 'auth', authorization: auth.authorization }))
      assert.equal((await noProof.closed).code, 4001)

      const good = connect()
      await good.opened
      good.socket.send(JSON.stringify({ type: 'auth', ...auth }))
      assert.equal(await eventually(() => good.frames[0]?.type, Boolean), 'ready')
      good.socket.close()

      const replay = connect()
      await replay.opened
      replay.socket.send(JSON.stringify({ type: 'auth', ...auth }))
      assert.equal((await replay.closed).code, 4001)
      assert.equal(
        (replay.frames[0]?.problem as { type?: string } | undefined)?.type,
        'https://strongroom.dev/problems/auth/dpop-replay',
      )
    })

    test('a proof for another URL is refused', async () => {
      const enrolled = await enrolDevice({
        baseUrl: server.url,
        enrolmentCode: await bank.enrolmentCode(),
        label: 'url',
      })
      const auth = await enrolled.client.credentials.authorize('GET', `${server.url}/v1/me`)
      const { socket, closed, opened } = connect()
      await opened
      socket.send(JSON.stringify({ type: 'auth', ...auth }))
      assert.equal((await closed).code, 4001)
    })

    test('a send frame is held to the rule of POST …/messages: the same refusal, and the same reach as over HTTP', async () => {
      const compliance = await bank.staffToken('compliance')
      const supervisor = await bank.staffToken('supervisor')
      const body = { clientMessageId: 'rule-1', contentType: 'text/plain', ciphertext: 'aGk=' }
      const overHttp = async (token: string) =>
        fetch(`${server.url}/v1/conversations/${conversationId}/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      const overStream = async (token: string) => {
        const { socket, opened, frames } = connect()
        await opened
        socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${token}` }))
        assert.equal(await eventually(() => frames[0]?.type, Boolean), 'ready')
        socket.send(JSON.stringify({ type: 'send', ref: 'r1', conversationId, ...body }))
        const answer = await eventually(() => frames.find((f) => f.ref === 'r1'), Boolean)
        socket.close()
        return answer
      }
      // Compliance reads every conversation but writes none: the stream refuses its send as HTTP does, word for word.
      const refused = await overHttp(compliance.token)
      assert.equal(refused.status, 403)
      const { instance: _, ...problem } = await refused.json()
      assert.deepEqual(await overStream(compliance.token), { type: 'error', ref: 'r1', problem })
      // A supervisor (conversations:all) may write where it is not a member, over HTTP and over the stream alike.
      assert.equal((await overHttp(supervisor.token)).status, 201)
      const sent = await overStream(supervisor.token)
      assert.equal(sent?.type, 'sent')
      assert.equal(sent?.created, false, 'the same clientMessageId is the same message')
    })

    test('invalid frames after auth get an error naming the ref; sending to a foreign conversation is not found', async () => {
      const { socket, opened, frames } = connect()
      await opened
      socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${bank.agentToken}` }))
      assert.equal(await eventually(() => frames[0]?.type, Boolean), 'ready')
      socket.send(JSON.stringify({ type: 'send', ref: 'r1', conversationId, clientMessageId: 5 }))
      socket.send(
        JSON.stringify({
          type: 'send',
          ref: 'r2',
          conversationId: `cnv_${'A'.repeat(22)}`,
          clientMessageId: 'x',
          contentType: 'text/plain',
          ciphertext: '',
        }),
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      const errors = frames.filter((f) => f.type === 'error')
      assert.deepEqual(
        errors.map((e) => [e.ref, (e.problem as { type: string }).type]),
        [
          ['r1', 'https://strongroom.dev/problems/request/invalid'],
          ['r2', 'https://strongroom.dev/problems/request/not-found'],
        ],
      )
      socket.close()
    })

    test('an ack or a cursor beyond any stored number is refused, and other members’ acks on the node still count', async () => {
      // Acks are recorded for every socket of the node in one statement; one that PostgreSQL cannot store (a bigint
      // overflow) once made that statement fail, and everyone's delivery markers with it.
      const { id: conversationId } = await agent.createConversation({ customerId: bank.customerId })
      await agent.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: bytes('one') })
      const second = await bank.staffToken('agent')
      await agent.addMember(conversationId, { kind: 'staff', id: second.staffId })
      const victim = connect()
      const attacker = connect()
      await Promise.all([victim.opened, attacker.opened])
      victim.socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${bank.agentToken}` }))
      attacker.socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${second.token}` }))
      assert.equal(await eventually(() => victim.frames[0]?.type, Boolean), 'ready')
      assert.equal(await eventually(() => attacker.frames[0]?.type, Boolean), 'ready')
      attacker.socket.send(JSON.stringify({ type: 'ack', conversationId, seq: 2 ** 63 }))
      victim.socket.send(JSON.stringify({ type: 'ack', conversationId, seq: 1 }))
      const refused = await eventually(() => attacker.frames.find((f) => f.type === 'error'), Boolean)
      assert.equal(
        (refused?.problem as { type?: string } | undefined)?.type,
        'https://strongroom.dev/problems/request/invalid',
      )
      const delivered = async () =>
        (await agent.getConversation(conversationId)).members.find((m) => m.id === bank.agentId)?.deliveredSeq
      assert.equal(await eventually(delivered, (seq) => (seq ?? 0) >= 1), 1)
      const cursor = connect()
      await cursor.opened
      cursor.socket.send(
        JSON.stringify({
          type: 'auth',
          authorization: `Bearer ${bank.agentToken}`,
          cursors: { [conversationId]: 2 ** 63 },
        }),
      )
      assert.equal((await cursor.closed).code, 4001)
      for (const socket of [victim.socket, attacker.socket]) socket.close()
    })

    test('a client that does not read is disconnected instead of buffering without bound', async () => {
      const slow = await startTestServer({ streamMaxBufferedBytes: 65536 })
      try {
        const slowBank = await createTestBank(slow)
        const staff = new StaffClient({ baseUrl: slow.url, credentials: new StaffToken(slowBank.agentToken) })
        const conversation = await staff.createConversation({ customerId: slowBank.customerId })
        const socket = new WebSocket(`${slow.url.replace('http', 'ws')}/v1/stream`)
        await new Promise((resolve) => socket.on('open', resolve))
        const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)))
        const ready = new Promise((resolve) => socket.once('message', resolve))
        socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${slowBank.agentToken}` }))
        await ready
        // Stop reading from the TCP socket: what the server writes piles up in its buffer.
        const tcp = (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket
        tcp.pause()
        let code: number | undefined
        void closed.then((c) => {
          code = c
        })
        const big = new Uint8Array(60_000)
        for (let batch = 0; batch < 30 && code === undefined; batch++) {
          await Promise.all(
            Array.from({ length: 10 }, () =>
              staff.sendMessage(conversation.id, { contentType: 'application/octet-stream', ciphertext: big }),
            ),
          )
        }
        tcp.resume()
        // The close frame (4008) sits behind the unread data, so the client may only see the connection drop.
        assert.ok([4008, 1006].includes(await closed))
        const metrics = await (await fetch(`${slow.url}/metrics`)).text()
        assert.match(metrics, /strongroom_stream_slow_consumer_disconnects_total 1/)
        assert.equal((await staff.listMessages(conversation.id, { limit: 1000 })).length > 0, true)
      } finally {
        await slow.stop()
      }
    })
  })

  test("a member's stored read marker moved over HTTP reaches the other members' streams, once", async () => {
    const { id } = await agent.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })
    const deviceIdOf = async (client: DeviceClient) => {
      const me = await client.me()
      assert.ok(me.kind === 'device')
      return me.deviceId
    }
    const told: [string, number, number][] = []
    const agentStream = open(agent, {
      onUpdate: (conversation, update) => {
        if (conversation === id && update.kind === 'markers' && update.member.kind === 'device') {
          told.push([update.member.id, update.deliveredSeq, update.readSeq])
        }
      },
    })
    await agentStream.ready()
    const { seq } = await agent.sendMessage(id, { contentType: 'text/plain', ciphertext: bytes('read me') })
    await alice.markRead(id, seq)
    await alice.markRead(id, seq)
    await aliceTablet.markRead(id, seq)
    await eventually(
      () => told.length,
      (n) => n >= 2,
    )
    assert.deepEqual(told, [
      [await deviceIdOf(alice), seq, seq],
      [await deviceIdOf(aliceTablet), seq, seq],
    ])
    agentStream.close()
  })

  test('the server tells clients where to resume when it shuts down', async () => {
    const other = await startTestServer()
    try {
      const otherBank = await createTestBank(other)
      const frames: Record<string, unknown>[] = []
      const socket = new WebSocket(`${other.url.replace('http', 'ws')}/v1/stream`)
      await new Promise((resolve) => socket.on('open', resolve))
      socket.on('message', (data) => frames.push(JSON.parse(String(data))))
      const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)))
      socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${otherBank.agentToken}` }))
      assert.equal(await eventually(() => frames[0]?.type, Boolean), 'ready')
      await other.close()
      assert.equal(await closed, 1012)
      assert.deepEqual(
        frames.map((f) => f.type),
        ['ready', 'closing'],
      )
    } finally {
      await other.stop().catch(() => {})
    }
  })
})
