import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { base64ToBytes, enrolDevice, type Message, StaffClient, StaffToken } from '@strongroom/sdk'
import WebSocket from 'ws'
import { strongroomFromSource } from '../testing/cli.ts'
import { createTestDatabase, type TestDatabase } from '../testing/harness.ts'
import { needsPostgresAndNats } from '../testing/requirements.ts'

const bytes = (text: string) => new TextEncoder().encode(text)

interface Node {
  process: ChildProcess
  url: string
}

/**
 * Several server processes on one PostgreSQL and one NATS, as behind a load balancer. Nodes are killed without
 * warning (SIGKILL), and clients must go on through the others with nothing lost and nothing twice.
 */
describe('several nodes on one PostgreSQL and NATS', { skip: needsPostgresAndNats() }, () => {
  let database: TestDatabase
  let dir: string
  let env: NodeJS.ProcessEnv
  const nodes: Node[] = []

  function startNode(): Promise<Node> {
    const child = spawn(process.execPath, [...strongroomFromSource, 'start'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    return new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
      lines.on('line', (line) => {
        const entry = JSON.parse(line) as { msg?: string; url?: string }
        if (entry.msg === 'strongroom listening' && entry.url) {
          const node = { process: child, url: entry.url }
          nodes.push(node)
          resolve(node)
        }
      })
      child.once('exit', (code) => reject(new Error(`node exited with ${code}`)))
    })
  }

  function run(...args: string[]): Record<string, string> {
    return JSON.parse(execFileSync(process.execPath, [...strongroomFromSource, ...args], { env, encoding: 'utf8' }))
  }

  before(async () => {
    database = await createTestDatabase()
    dir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-cluster-'))
    env = {
      ...process.env,
      PORT: '0',
      DATABASE_URL: database.url,
      STRONGROOM_DATA_DIR: dir,
      STRONGROOM_DEV_SEED: 'false',
      STRONGROOM_STREAM_HEARTBEAT_MS: '1000',
      LOG_LEVEL: 'info',
    }
  })

  after(async () => {
    for (const node of nodes) node.process.kill('SIGKILL')
    await database.drop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('a device on one node sends, a device on another receives; killed nodes lose nothing', async () => {
    run('migrate')
    const tenant = run('tenant', 'create', '--name', 'Cluster Bank')
    const agentToken = run('staff', 'token', '--tenant', tenant.id as string, '--name', 'agent', '--role', 'agent')
    const [a, b, c] = await Promise.all([startNode(), startNode(), startNode()])
    assert.ok(a && b && c)

    const agent = new StaffClient({ baseUrl: a.url, credentials: new StaffToken(agentToken.token as string) })
    const customer = await agent.createCustomer({ externalRef: 'C-1', displayName: 'Cluster Customer' })
    const enrol = async (urls: string[], label: string) =>
      enrolDevice({
        baseUrl: urls,
        enrolmentCode: (await agent.issueEnrolmentCode(customer.id)).code,
        label,
        WebSocket: WebSocket as never,
      })
    const sender = await enrol([a.url, c.url], 'sender')
    const receiver = await enrol([b.url, c.url], 'receiver')
    const conversation = await agent.createConversation({ customerId: customer.id })

    // A device revoked through one node loses its socket on another at once.
    const lost = await enrol([b.url], 'lost')
    const lostErrors: string[] = []
    const lostStream = lost.client.stream({ onError: (e) => lostErrors.push(e.message) })
    await lostStream.ready()
    await agent.revokeDevice(lost.device.id)
    const revokedBy = Date.now() + 5000
    while (lostStream.state !== 'closed' && Date.now() < revokedBy) await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(lostErrors, ['this device has been revoked'])

    const received: Message[] = []
    const inbound = receiver.client.stream({ onMessage: (m) => received.push(m) })
    const outbound = sender.client.stream()
    await Promise.all([inbound.ready(), outbound.ready()])

    const total = 300
    const sends: Promise<unknown>[] = []
    for (let i = 0; i < total; i++) {
      sends.push(outbound.send(conversation.id, { contentType: 'text/plain', ciphertext: bytes(`m${i}`) }))
      if (i === 100) b.process.kill('SIGKILL') // the receiver's node dies
      if (i === 200) a.process.kill('SIGKILL') // the sender's node dies
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await Promise.all(sends)
    const deadline = Date.now() + 30_000
    while (received.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    await new Promise((resolve) => setTimeout(resolve, 500))

    const texts = received.map((m) => new TextDecoder().decode(base64ToBytes(m.ciphertext)))
    assert.deepEqual(
      texts,
      Array.from({ length: total }, (_, i) => `m${i}`),
    )
    assert.deepEqual(
      received.map((m) => m.seq),
      Array.from({ length: total }, (_, i) => i + 1),
    )
    inbound.close()
    outbound.close()

    // A fresh client whose first node is gone goes to the next one for plain requests too.
    const failover = new StaffClient({
      baseUrl: [a.url, c.url],
      credentials: new StaffToken(agentToken.token as string),
    })
    assert.equal((await failover.getConversation(conversation.id)).lastSeq, total)
  })
})
