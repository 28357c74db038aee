/**
 * The README's production steps, word for word, from an empty PostgreSQL database (issue 23, item 8): the key files
 * and the schema with `strongroom`, a tenant, its staff and a customer with a phone number from the command line, an
 * SMPP channel (no Twilio) that carries the customer's texts, the pivot link and the step-up code, and the compliance
 * archive member on one chosen node, which the other nodes notice when it is missing. The nodes are production
 * processes (`strongroom start`) on PostgreSQL and NATS, started in a directory holding a stray `./strongroom-data`
 * that production must never read.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  enrolWithPivotLink,
  type MemberClient,
  pivotStepUpOptions,
  pivotTokenOf,
  StaffClient,
  StaffToken,
  sendPivotSmsCode,
} from '@strongroom/sdk'
import type { Pdu } from 'smpp'
import { type FakeSmsc, startFakeSmsc } from '../src/channels/connectors/fake-smsc.ts'
import { runStrongroom, strongroomFromSource } from '../src/testing/cli.ts'
import { eventually } from '../src/testing/eventually.ts'
import { startFakeCarrier } from '../src/testing/fake-carrier.ts'
import { createTestDatabase, type TestDatabase } from '../src/testing/harness.ts'
import { PROBLEMS, problemOf } from '../src/testing/problems.ts'
import { type ClusterNode, startNode, stopProcess } from './local-cluster.ts'

const services = Boolean(process.env.DATABASE_URL && process.env.NATS_URL)
// Under CI the production path must run: missing PostgreSQL or NATS fails the test instead of skipping it.
const skip = process.env.CI === 'true' ? false : !services && 'needs DATABASE_URL and NATS_URL'

const BANK_NUMBER = '+442071838760'
const CUSTOMER_PHONE = '+447700900555'
const SMSC_LOGIN = { systemId: 'bank01', password: 'pw12345' }
const textsSince = (smsc: FakeSmsc, from: number) =>
  smsc.submits
    .slice(from)
    .map((pdu: Pdu) => (pdu.short_message as { message: string }).message)
    .join('\n')

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('the production path of the README, from an empty database', { skip }, () => {
  let database: TestDatabase
  let dir: string
  let smsc: FakeSmsc
  let carrier: Server
  let env: NodeJS.ProcessEnv
  const children: ChildProcess[] = []
  let plain: ClusterNode
  let archiveNode: ClusterNode
  let tenantId: string
  let customerId: string
  let agentId: string
  const tokens = { admin: '', agent: '' }
  /** A staff client on the node without the archive member. */
  const staff = (token: string) => new StaffClient({ baseUrl: plain.url, credentials: new StaffToken(token) })

  const strongroom = (args: string[], extra: NodeJS.ProcessEnv = {}) => runStrongroom(args, { ...env, ...extra }, dir)
  const json = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const result = strongroom(args, extra)
    assert.equal(result.status, 0, `strongroom ${args.join(' ')}: ${result.stderr}`)
    return JSON.parse(result.stdout)
  }
  const readyz = async (node: ClusterNode) =>
    ((await (await fetch(`${node.url}/readyz`)).json()) as { archiveMember: string }).archiveMember
  const startProductionNode = async (name: string, extra: NodeJS.ProcessEnv) =>
    startNode(
      strongroomFromSource,
      name,
      { ...env, PORT: String(await freePort()), ...extra },
      path.join(dir, `${name}.log`),
      children,
      dir,
    )
  const claimArchive = (client: MemberClient, conversationId: string) =>
    client.request('POST', `/v1/conversations/${conversationId}/e2e/key-packages/claim`, {
      members: [{ kind: 'archive', id: 'archive' }],
    })

  before(async () => {
    assert.ok(services, 'production runs on PostgreSQL and NATS: set DATABASE_URL and NATS_URL')
    database = await createTestDatabase()
    dir = mkdtempSync(path.join(os.tmpdir(), 'sr-production-'))
    // A dev run's leftovers where the nodes start: production must neither need nor read them.
    mkdirSync(path.join(dir, 'strongroom-data'))
    for (const file of ['keyring.json', 'archive-keyring.json']) {
      writeFileSync(path.join(dir, 'strongroom-data', file), 'not a key file', { mode: 0o600 })
    }
    smsc = await startFakeSmsc(SMSC_LOGIN)
    const fakeCarrier = await startFakeCarrier('carrier-token')
    carrier = fakeCarrier.server
    env = {
      PATH: process.env.PATH,
      STRONGROOM_MODE: 'production',
      DATABASE_URL: database.url,
      NATS_URL: process.env.NATS_URL,
      HOST: '127.0.0.1',
      STRONGROOM_KEY_FILE: path.join(dir, 'keys', 'keyring.json'),
      STRONGROOM_PUBLIC_URL: 'https://bank.example',
      STRONGROOM_SMPP_HOSTS: `127.0.0.1:${smsc.port}`,
      STRONGROOM_SIM_SWAP_URL: fakeCarrier.url,
      STRONGROOM_SIM_SWAP_TOKEN: 'carrier-token',
      LOG_LEVEL: 'warn',
    }
  })

  after(async () => {
    await Promise.all(children.map((child) => stopProcess(child, 'SIGTERM')))
    await smsc?.close()
    carrier?.close()
    await database?.drop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('1. keys and schema: `keys init` in production mode, the archive key file named, then `migrate`', () => {
    mkdirSync(path.join(dir, 'keys'), { mode: 0o700 })
    assert.deepEqual(json(['keys', 'init']), { keyFile: env.STRONGROOM_KEY_FILE, kekId: 'kek-1' })
    // The archive's key file is never taken from ./strongroom-data: it must be named.
    const unnamed = strongroom(['keys', 'init', '--archive'])
    assert.equal(unnamed.status, 1)
    assert.match(unnamed.stderr, /STRONGROOM_ARCHIVE_KEY_FILE must be set in production mode/)
    const archiveKeyFile = path.join(dir, 'keys', 'archive-keyring.json')
    assert.deepEqual(json(['keys', 'init', '--archive'], { STRONGROOM_ARCHIVE_KEY_FILE: archiveKeyFile }), {
      keyFile: archiveKeyFile,
    })
    assert.ok(json(['migrate']).applied.length > 0)
  })

  test('2. a tenant, its staff and a customer with a phone number, from the command line', () => {
    tenantId = json(['tenant', 'create', '--name', 'Production Bank']).id
    tokens.admin = json(['staff', 'token', '--tenant', tenantId, '--name', 'ops', '--role', 'admin']).token
    const agent = json(['staff', 'token', '--tenant', tenantId, '--name', 'alice', '--role', 'agent'])
    tokens.agent = agent.token
    agentId = agent.staffId
    const badPhone = strongroom([
      'customer',
      'create',
      '--tenant',
      tenantId,
      '--ref',
      'C-0',
      '--name',
      'X',
      '--phone',
      '07700',
    ])
    assert.equal(badPhone.status, 2)
    assert.match(badPhone.stderr, /--phone must be a number in E\.164/)
    const customer = json([
      ...['customer', 'create', '--tenant', tenantId],
      ...['--ref', 'CUST-1', '--name', 'Pat Production', '--phone', CUSTOMER_PHONE],
    ])
    assert.equal(customer.phoneNumber, CUSTOMER_PHONE)
    customerId = customer.id
  })

  test('3. a node without the archive member ignores ./strongroom-data and says that no node runs the archive', async () => {
    plain = await startProductionNode('plain', { STRONGROOM_ARCHIVE_MEMBER: 'false' })
    assert.equal(await readyz(plain), 'none')
    assert.match(readFileSync(path.join(dir, 'plain.log'), 'utf8'), /no node runs the compliance archive member/)
  })

  let conversationId: string
  test('4. an SMPP channel: the customer’s text arrives; a secure conversation waits for the archive, saying why', async () => {
    await staff(tokens.admin).request('PUT', '/v1/channels/smpp', {
      address: BANK_NUMBER,
      host: '127.0.0.1',
      port: smsc.port,
      systemId: SMSC_LOGIN.systemId,
      agentId,
      secrets: { password: SMSC_LOGIN.password },
    })
    const answer = await smsc.deliver({
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: CUSTOMER_PHONE.slice(1),
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      destination_addr: BANK_NUMBER.slice(1),
      short_message: 'Hello, I need help with a payment',
    })
    assert.equal(answer.command_status, 0)
    const agent = staff(tokens.agent)
    const [conversation] = await eventually(
      () => agent.listConversations(),
      (list) => list.length === 1,
    )
    conversationId = (conversation as { id: string }).id
    const refused = await problemOf(claimArchive(agent, conversationId))
    assert.equal(refused.type, `${PROBLEMS}e2e/archive-unavailable`)
    assert.equal(refused.status, 503)
    assert.match(refused.problem.title, /STRONGROOM_ARCHIVE_MEMBER=true on one node/)
  })

  test('5. the archive member on its chosen node: every node sees it; a new tenant’s first conversation works anywhere', async () => {
    archiveNode = await startProductionNode('archive', {
      STRONGROOM_ARCHIVE_MEMBER: 'true',
      STRONGROOM_ARCHIVE_KEY_FILE: path.join(dir, 'keys', 'archive-keyring.json'),
    })
    assert.equal(await readyz(archiveNode), 'this node')
    assert.equal(await readyz(plain), 'running')
    await claimArchive(staff(tokens.agent), conversationId)
    // A tenant made after the archive member started: the node without it asks for the archive's key packages.
    const other = json(['tenant', 'create', '--name', 'Later Bank']).id
    const otherAgent = staff(json(['staff', 'token', '--tenant', other, '--name', 'bo', '--role', 'agent']).token)
    const customer = await otherAgent.createCustomer({ externalRef: 'L-1', displayName: 'Lee Later' })
    const created = await otherAgent.request<{ id: string }>('POST', '/v1/conversations', { customerId: customer.id })
    const claimed = await otherAgent.request<{ keyPackages: { kind: string }[] }>(
      'POST',
      `/v1/conversations/${created.id}/e2e/key-packages/claim`,
      { members: [{ kind: 'archive', id: 'archive' }] },
    )
    assert.deepEqual(
      claimed.keyPackages.map((k) => k.kind),
      ['archive'],
    )
  })

  test('6. the pivot: the link and the step-up code go out over SMPP, and “Text me a code” is offered without Twilio', async () => {
    const agent = staff(tokens.agent)
    const before = smsc.submits.length
    await agent.request('POST', `/v1/conversations/${conversationId}/pivot`, {})
    const link = await eventually(
      () => textsSince(smsc, before),
      (text) => /https:\/\/bank\.example\/secure\/#t=/.test(text),
    )
    const token = pivotTokenOf(/https:\/\/\S+/.exec(link)?.[0] ?? '')
    assert.ok(token)
    const options = await pivotStepUpOptions({ baseUrl: plain.url, token })
    assert.equal(options.sms, true, 'an SMS code is offered over SMPP')
    const beforeCode = smsc.submits.length
    await sendPivotSmsCode({ baseUrl: plain.url, token })
    const texted = await eventually(
      () => textsSince(smsc, beforeCode),
      (text) => /\b\d{6}\b/.test(text),
    )
    const code = /\b(\d{6})\b/.exec(texted)?.[1] as string
    const enrolled = await enrolWithPivotLink({
      baseUrl: plain.url,
      token,
      label: 'Browser',
      factor: { kind: 'sms-otp', code },
    })
    assert.ok(enrolled.secureConversationId)
    assert.equal(enrolled.device.customerId, customerId)
  })
})
