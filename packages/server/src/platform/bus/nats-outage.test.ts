import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { base64ToBytes, type DeviceClient, type Message, StaffClient, StaffToken } from '@strongroom/sdk'
import { eventually } from '../../testing/eventually.ts'
import {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestBank,
  type TestDatabase,
  type TestServer,
} from '../../testing/harness.ts'

// Two nodes share one database, so this needs PostgreSQL; under CI it runs, and fails without it.
const skip = !process.env.DATABASE_URL && !process.env.CI && 'needs DATABASE_URL (PostgreSQL) and nats-server'

async function freePort(): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as net.AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

/** A NATS server of this test's own, on its own port, that the test stops and starts again. */
async function startNats(port: number, storeDir: string): Promise<ChildProcess> {
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
    stdio: 'ignore',
  })
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket.destroy() === socket))
        socket.on('error', () => resolve(false))
      }),
    Boolean,
  )
  return child
}

async function stopNats(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

const texts = (messages: Message[]) => messages.map((m) => new TextDecoder().decode(base64ToBytes(m.ciphertext)))

describe('a NATS outage', { skip }, () => {
  let database: TestDatabase
  let natsDir: string
  let natsPort: number
  let nats: ChildProcess
  let nodeA: TestServer
  let nodeB: TestServer
  let bank: TestBank
  let conversationId: string
  let phone: DeviceClient
  let tablet: DeviceClient

  before(async () => {
    natsDir = mkdtempSync(path.join(os.tmpdir(), 'sr-nats-'))
    natsPort = await freePort()
    nats = await startNats(natsPort, natsDir)
    database = await createTestDatabase()
    const natsUrl = `nats://127.0.0.1:${natsPort}`
    nodeA = await startTestServer({ natsUrl, streamHeartbeatMs: 1000 }, database)
    const { keyFile, archiveKeyFile } = nodeA.config
    nodeB = await startTestServer({ natsUrl, keyFile, archiveKeyFile, archiveMember: false }, database)
    bank = await createTestBank(nodeA)
    const agent = new StaffClient({ baseUrl: nodeA.url, credentials: new StaffToken(bank.agentToken) })
    phone = (await bank.enrol('phone')).client
    tablet = (await bank.enrol('tablet', { baseUrl: nodeB.url })).client
    conversationId = (await agent.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })).id
  })
  after(async () => {
    await nodeB?.stop()
    await nodeA?.stop()
    if (nats.exitCode === null) await stopNats(nats)
    await database.drop()
    rmSync(natsDir, { recursive: true, force: true })
  })

  test('delays nothing on the committing node, keeps it ready, and the other node catches up when NATS is back', async () => {
    const onA: Message[] = []
    const onB: Message[] = []
    const agentOnA = new StaffClient({ baseUrl: nodeA.url, credentials: new StaffToken(bank.agentToken) })
    const streamA = phone.stream({ onMessage: (m) => onA.push(m) })
    const streamB = tablet.stream({ onMessage: (m) => onB.push(m) })
    try {
      await Promise.all([streamA.ready(), streamB.ready()])
      await agentOnA.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: Buffer.from('before') })
      await eventually(
        () => [texts(onA), texts(onB)],
        ([a, b]) => a?.includes('before') === true && b?.includes('before') === true,
      )

      await stopNats(nats)
      await eventually(
        async () => (await (await fetch(`${nodeA.url}/metrics`)).text()).includes('strongroom_bus_connected 0'),
        Boolean,
      )
      const sentAt = performance.now()
      await agentOnA.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: Buffer.from('during') })
      const seenOnA = await eventually(
        () => texts(onA),
        (seen) => seen.includes('during'),
        2000,
      )
      const localDelayMs = performance.now() - sentAt
      assert.ok(seenOnA.includes('during'), 'the committing node delivered to its own sockets without NATS')
      assert.ok(localDelayMs < 1000, `delivered on the committing node after ${localDelayMs.toFixed(0)} ms`)
      const ready = await fetch(`${nodeA.url}/readyz`)
      assert.equal(ready.status, 200)
      assert.equal((await ready.json()).busConnected, false)
      assert.equal(texts(onB).includes('during'), false, 'the other node had no wake-up while NATS was down')

      nats = await startNats(natsPort, natsDir)
      const seenOnB = await eventually(
        () => texts(onB),
        (seen) => seen.includes('during'),
        10_000,
      )
      assert.deepEqual(seenOnB, ['before', 'during'])
      const metrics = await (await fetch(`${nodeB.url}/metrics`)).text()
      assert.match(metrics, /strongroom_bus_connected 1/)
      assert.match(metrics, /strongroom_bus_disconnects_total 1/)
      assert.match(metrics, /strongroom_bus_reconnects_total 1/)
    } finally {
      streamA.close()
      streamB.close()
    }
  })
})
